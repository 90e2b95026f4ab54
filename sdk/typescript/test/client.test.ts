// The client over grpc-web against a server that pages, throttles and takes only fresh tokens.

import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcWebTransport } from "@connectrpc/connect-node";

import { AuthService, TokenPairSchema } from "../src/gen/complianceiq/auth/v1/auth_pb.js";
import type { ExchangeApiKeyRequest, RefreshRequest } from "../src/gen/complianceiq/auth/v1/auth_pb.js";
import { UserService, UserSchema } from "../src/gen/complianceiq/user/v1/user_pb.js";
import type { ListUsersRequest } from "../src/gen/complianceiq/user/v1/user_pb.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { Credentials, Platform, PlatformError, items, pages } from "../src/index.js";
import type { RetryPolicy } from "../src/index.js";

const USERS = 5;

interface Failure {
  code: Code;
  reason: string;
  retryAfterMs?: number;
  violation?: [string, string];
}

/** What the server saw, and how it behaves. */
const seen = {
  calls: [] as [number, string][],
  pageTokens: [] as string[],
  refreshes: [] as RefreshRequest[],
  exchanges: 0,
  failures: [] as Failure[],
  validToken: "",
  revoked: false,
};

/** A refusal as the platform sends it: ErrorInfo, and RetryInfo or BadRequest when given. */
function refusal({ code, reason, retryAfterMs, violation }: Failure): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: { reason, domain: "complianceiq.io" } },
  ];
  if (retryAfterMs !== undefined) {
    const delay = { seconds: BigInt(Math.floor(retryAfterMs / 1000)), nanos: (retryAfterMs % 1000) * 1e6 };
    details.push({ desc: RetryInfoSchema, value: { retryDelay: delay } });
  }
  if (violation) {
    const [field, why] = violation;
    details.push({ desc: BadRequestSchema, value: { fieldViolations: [{ field, reason: why, description: why }] } });
  }
  return new ConnectError(`${reason} from the test server`, code, undefined, details);
}

function routes(router: ConnectRouter) {
  router.service(UserService, {
    getCurrentUser(_request: unknown, context: HandlerContext) {
      const token = (context.requestHeader.get("authorization") ?? "").replace(/^Bearer /, "");
      seen.calls.push([Date.now(), token]);
      if (token !== seen.validToken) throw refusal({ code: Code.Unauthenticated, reason: "TOKEN_INVALID" });
      const failure = seen.failures.shift();
      if (failure) throw refusal(failure);
      return create(UserSchema, { id: "me", email: "me@example.com" });
    },
    listUsers(request: ListUsersRequest) {
      seen.pageTokens.push(request.pageToken);
      if (request.pageToken && !request.pageToken.startsWith("from-")) {
        throw refusal({ code: Code.InvalidArgument, reason: "INVALID_REQUEST" });
      }
      const start = request.pageToken ? Number(request.pageToken.slice("from-".length)) : 0;
      const end = Math.min(start + Math.max(request.pageSize, 1), USERS);
      const users = Array.from({ length: end - start }, (_, n) => create(UserSchema, { id: `user-${start + n}` }));
      return { users, nextPageToken: end < USERS ? `from-${end}` : "", totalSize: USERS };
    },
  });
  router.service(AuthService, {
    refresh(request: RefreshRequest) {
      seen.refreshes.push(request);
      if (seen.revoked) throw refusal({ code: Code.Unauthenticated, reason: "SESSION_REVOKED" });
      const generation = seen.refreshes.length;
      seen.validToken = `access-${generation}`;
      return create(TokenPairSchema, {
        accessToken: seen.validToken,
        refreshToken: `refresh-${generation}`,
        tokenType: "Bearer",
        expiresIn: 900,
      });
    },
    exchangeApiKey(request: ExchangeApiKeyRequest) {
      if (request.secret !== "ciq_key_secret") {
        throw refusal({ code: Code.Unauthenticated, reason: "API_KEY_INVALID" });
      }
      seen.exchanges += 1;
      seen.validToken = `key-token-${seen.exchanges}`;
      return { accessToken: seen.validToken, expiresIn: 60 };
    },
  });
}

let server: http.Server;
let baseUrl = "";

before(async () => {
  server = http.createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  Object.assign(seen, { calls: [], pageTokens: [], refreshes: [], exchanges: 0, failures: [], validToken: "", revoked: false });
});

const fast: Partial<RetryPolicy> = { initialBackoffMs: 5, maxBackoffMs: 20 };

function platform(credentials = Credentials.none(), retry = fast): Platform {
  return new Platform((interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }), {
    credentials,
    retry,
  });
}

async function refused(call: Promise<unknown>): Promise<PlatformError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof PlatformError, `a PlatformError, not ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

test("pages follow the next page token to the end", async () => {
  const users = platform().client(UserService);
  const list = (request: Parameters<typeof users.listUsers>[0]) => users.listUsers(request);
  const sizes: number[] = [];
  for await (const page of pages(list, { pageSize: 2 })) sizes.push(page.users.length);
  assert.deepEqual(sizes, [2, 2, 1]);
  assert.deepEqual(seen.pageTokens, ["", "from-2", "from-4"]);
  const ids: string[] = [];
  for await (const user of items(list, { pageSize: 2 }, (page) => page.users)) ids.push(user.id);
  assert.deepEqual(ids, ["user-0", "user-1", "user-2", "user-3", "user-4"]);
  const error = await refused((async () => {
    for await (const _ of pages(list, { pageToken: "forged" })) {
      // the first page is refused
    }
  })());
  assert.equal(error.code, Code.InvalidArgument);
});

test("throttled calls wait as long as RetryInfo asks, then succeed", async () => {
  seen.validToken = "fixed";
  seen.failures = [
    { code: Code.ResourceExhausted, reason: "RATE_LIMITED", retryAfterMs: 300 },
    { code: Code.Unavailable, reason: "MODULE_UNAVAILABLE" },
  ];
  const me = await platform(Credentials.token("fixed")).client(UserService).getCurrentUser({});
  assert.equal(me.email, "me@example.com");
  assert.equal(seen.calls.length, 3);
  const waited = seen.calls[1][0] - seen.calls[0][0];
  assert.ok(waited >= 290, `RetryInfo asked for 300 ms; the client waited ${waited} ms`);
});

test("retries stop at the policy, and other errors are not retried", async () => {
  seen.validToken = "fixed";
  seen.failures = Array.from({ length: 10 }, () => ({ code: Code.Unavailable, reason: "MODULE_UNAVAILABLE" }));
  const users = platform(Credentials.token("fixed"), { ...fast, maxAttempts: 3 }).client(UserService);
  const unavailable = await refused(users.getCurrentUser({}));
  assert.deepEqual([unavailable.code, unavailable.reason], [Code.Unavailable, "MODULE_UNAVAILABLE"]);
  assert.equal(seen.calls.length, 3);

  seen.calls = [];
  seen.failures = [{ code: Code.InvalidArgument, reason: "INVALID_REQUEST", violation: ["page_size", "OUT_OF_RANGE"] }];
  const invalid = await refused(users.getCurrentUser({}));
  assert.equal(seen.calls.length, 1);
  assert.deepEqual(
    invalid.fieldViolations.map((v) => [v.field, v.reason]),
    [["page_size", "OUT_OF_RANGE"]],
  );

  seen.failures = [{ code: Code.ResourceExhausted, reason: "QUOTA", retryAfterMs: 3_600_000 }];
  const exhausted = await refused(users.getCurrentUser({}));
  assert.equal(exhausted.retryAfterMs, 3_600_000);
});

test("a refused session token is refreshed once and the call repeated", async () => {
  seen.validToken = "no token yet";
  const renewed: string[] = [];
  const session = Credentials.session(
    create(TokenPairSchema, { accessToken: "expired", refreshToken: "refresh-0", organizationId: "org-1" }),
    (tokens) => renewed.push(tokens.refreshToken),
  );
  const users = platform(session).client(UserService);
  assert.equal((await users.getCurrentUser({})).id, "me");
  assert.deepEqual(seen.calls.map(([, token]) => token), ["expired", "access-1"]);
  assert.deepEqual(seen.refreshes.map((r) => [r.refreshToken, r.organizationId]), [["refresh-0", "org-1"]]);
  assert.deepEqual(renewed, ["refresh-1"], "the keeper of the session hears the new pair");
  seen.validToken = "none";
  seen.revoked = true;
  const revoked = await refused(users.getCurrentUser({}));
  assert.equal(revoked.reason, "SESSION_REVOKED");
  assert.equal(seen.refreshes[1].refreshToken, "refresh-1", "the rotated refresh token");
});

test("an API key is exchanged before the first call and its token reused", async () => {
  const users = platform(Credentials.apiKey("ciq_key_secret")).client(UserService);
  await Promise.all([users.getCurrentUser({}), users.getCurrentUser({}), users.getCurrentUser({})]);
  assert.equal(seen.exchanges, 1, "concurrent calls share one exchange");
  assert.ok(seen.calls.every(([, token]) => token === "key-token-1"));
  const wrong = await refused(platform(Credentials.apiKey("ciq_wrong")).client(UserService).getCurrentUser({}));
  assert.equal(wrong.reason, "API_KEY_INVALID");
  assert.ok(!JSON.stringify({ credentials: Credentials.apiKey("ciq_key_secret") }).includes("ciq_key_secret"));
});
