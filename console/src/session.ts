// Who is signed in: the token pair, kept in the tab's sessionStorage (gone with the tab) and
// renewed through the SDK, which hands every rotated pair back to be kept.

import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";

import { Credentials, Platform } from "../../sdk/typescript/src/index.js";
import { TokenPairSchema } from "../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import type { TokenPair } from "../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";

const KEY = "complianceiq.session";

/** The platform this page was served by, over grpc-web. */
const anonymous = new Platform((interceptors) =>
  createGrpcWebTransport({ baseUrl: window.location.origin, interceptors }),
);

let current: { tokens: TokenPair; platform: Platform } | undefined;

function keep(tokens: TokenPair) {
  sessionStorage.setItem(KEY, toJsonString(TokenPairSchema, tokens));
  if (current) current.tokens = tokens;
}

function load(): typeof current {
  const text = sessionStorage.getItem(KEY);
  if (!text) return undefined;
  try {
    const tokens = fromJsonString(TokenPairSchema, text);
    return { tokens, platform: anonymous.withCredentials(Credentials.session(tokens, keep)) };
  } catch {
    sessionStorage.removeItem(KEY);
    return undefined;
  }
}

current = load();

/** Signs in with a token pair from Login, VerifyMfa or Refresh. */
export function signIn(tokens: TokenPair) {
  keep(tokens);
  current = { tokens, platform: anonymous.withCredentials(Credentials.session(tokens, keep)) };
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  current = undefined;
}

export function signedIn(): boolean {
  return current !== undefined;
}

/** The organization the session acts in ("" before the person has one). */
export function organizationId(): string {
  return current?.tokens.organizationId ?? "";
}

export function refreshToken(): string {
  return current?.tokens.refreshToken ?? "";
}

/** A client whose calls carry the session (or none, signed out). */
export function client<T extends DescService>(service: T): Client<T> {
  return (current?.platform ?? anonymous).client(service);
}

/** A client whose calls carry no session, for sign-up and sign-in. */
export function publicClient<T extends DescService>(service: T): Client<T> {
  return anonymous.client(service);
}

/** The claims of the session's access token, read (not verified: the platform verifies). */
export function claims(): Record<string, unknown> {
  const token = current?.tokens.accessToken ?? "";
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)) as Record<string, unknown>;
  } catch {
    return {};
  }
}
