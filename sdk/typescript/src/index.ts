// The ComplianceIQ client SDK for TypeScript: Connect clients of every service (the messages
// and service descriptors protoc-gen-es generates from proto/, under ./gen), with what every
// caller would otherwise write by hand: credentials that renew themselves, retries that honour
// the platform's RetryInfo, list RPCs as async iterators, and errors with their google.rpc
// details decoded. It runs in browsers (grpc-web, `createGrpcWebTransport` of
// @connectrpc/connect-web) and in Node (@connectrpc/connect-node).
//
//   const platform = new Platform((interceptors) => createGrpcWebTransport({ baseUrl, interceptors }), {
//     credentials: Credentials.apiKey(secret),
//   });
//   const me = await platform.client(UserService).getCurrentUser({});

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";

import { AuthService } from "./gen/complianceiq/auth/v1/auth_pb.js";
import type { TokenPair } from "./gen/complianceiq/auth/v1/auth_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

export { Code } from "@connectrpc/connect";

/** When and how often a call is tried again. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retry). */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  /** The longest wait a platform's RetryInfo is honoured for; past it the error is thrown. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 5,
  initialBackoffMs: 100,
  maxBackoffMs: 5000,
  multiplier: 2,
  maxRetryAfterMs: 60_000,
};

/** One field of a request the platform refused, and why. */
export interface FieldViolation {
  field: string;
  reason: string;
  description: string;
}

const platformError = Symbol("PlatformError");

/** A failed call: a ConnectError (code, message, metadata) with the google.rpc details decoded. */
export class PlatformError extends ConnectError {
  readonly [platformError] = true;
  /** google.rpc.ErrorInfo.reason: what to branch on (TRAINING_LIMIT, LINK_EXPIRED ...). */
  readonly reason?: string;
  readonly fieldViolations: FieldViolation[];
  /** google.rpc.RetryInfo: how long the platform asks the caller to wait. */
  readonly retryAfterMs?: number;
  /** google.rpc.ResourceInfo: the resource at issue, as [type, name]. */
  readonly resource?: [string, string];

  constructor(error: ConnectError) {
    super(error.rawMessage, error.code, error.metadata, undefined, error.cause);
    // The name stays "ConnectError": Connect passes on only errors it recognises by it.
    this.details.push(...error.details);
    this.reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
    this.fieldViolations = error
      .findDetails(BadRequestSchema)
      .flatMap((request) => request.fieldViolations)
      .map(({ field, reason, description }) => ({ field, reason, description }));
    const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
    this.retryAfterMs = delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined;
    const resource = error.findDetails(ResourceInfoSchema)[0];
    this.resource = resource ? [resource.resourceType, resource.resourceName] : undefined;
  }

  // ConnectError's own check accepts any ConnectError (copies of the library included); a
  // PlatformError is one this SDK decoded.
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && platformError in value;
  }

  /** Any error a call threw, as a PlatformError. */
  static override from(error: unknown): PlatformError {
    return error instanceof PlatformError ? error : new PlatformError(ConnectError.from(error));
  }

  /** Whether another attempt may succeed. */
  get retryable(): boolean {
    return this.code === Code.Unavailable || this.code === Code.ResourceExhausted;
  }
}

/** The wait in ms before attempt `attempt + 1` after `error`; undefined when none is due. */
export function retryDelay(policy: RetryPolicy, attempt: number, error: PlatformError): number | undefined {
  if (!error.retryable || attempt >= policy.maxAttempts) return undefined;
  if (error.retryAfterMs !== undefined) {
    return error.retryAfterMs <= policy.maxRetryAfterMs ? error.retryAfterMs : undefined;
  }
  const backoff = Math.min(policy.initialBackoffMs * policy.multiplier ** (attempt - 1), policy.maxBackoffMs);
  // Half fixed, half random, so callers throttled together spread out.
  return backoff / 2 + Math.random() * (backoff / 2);
}

type Kind = "none" | "token" | "session" | "apiKey";

/** How the client proves who it is; renewed by the client as needed. */
export class Credentials {
  static readonly RENEW_BEFORE_MS = 10_000;
  private token = "";
  private renewAt?: number;
  private renewing?: Promise<boolean>;
  private onRenewed?: (tokens: TokenPair) => void;

  private constructor(
    readonly kind: Kind,
    private secret = "",
    private refreshToken = "",
    private organizationId = "",
    expiresIn = 0,
  ) {
    if (kind === "token" || kind === "session") this.token = secret;
    if (kind === "session" && expiresIn > 0) this.renewAt = this.renewTime(expiresIn);
    if (kind === "apiKey") this.renewAt = 0;
  }

  static none(): Credentials {
    return new Credentials("none");
  }

  /** An access token used as given; once expired, calls fail UNAUTHENTICATED. */
  static token(accessToken: string): Credentials {
    return new Credentials("token", accessToken);
  }

  /** A person's session from Login or Refresh: refreshed before expiry and once on refusal.
   *  Refresh tokens are single use: `onRenewed` hears every new pair, for a caller that keeps
   *  the session (a browser tab across reloads). */
  static session(tokens: TokenPair, onRenewed?: (tokens: TokenPair) => void): Credentials {
    const credentials = new Credentials(
      "session",
      tokens.accessToken,
      tokens.refreshToken,
      tokens.organizationId,
      tokens.expiresIn,
    );
    credentials.onRenewed = onRenewed;
    return credentials;
  }

  /** An organization API key, exchanged for its minute-long access tokens. */
  static apiKey(secret: string): Credentials {
    return new Credentials("apiKey", secret);
  }

  /** Secrets never reach a log through a string conversion. */
  toString(): string {
    return `Credentials(${this.kind})`;
  }

  toJSON(): string {
    return this.toString();
  }

  private renewTime(lifetimeSeconds: number): number {
    const lifetime = lifetimeSeconds * 1000;
    return Date.now() + lifetime - Math.min(Credentials.RENEW_BEFORE_MS, lifetime / 5);
  }

  /** The header value, if any. */
  authorization(): string | undefined {
    return this.token ? `Bearer ${this.token}` : undefined;
  }

  /** Renews the token when due (or `force`d after a refusal): whether a new one was obtained.
   *  Concurrent calls share one renewal. */
  async renew(auth: Client<typeof AuthService>, force: boolean): Promise<boolean> {
    const due = this.renewAt !== undefined && Date.now() >= this.renewAt;
    if (!due && !force) return false;
    this.renewing ??= this.renewNow(auth).finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renewNow(auth: Client<typeof AuthService>): Promise<boolean> {
    try {
      if (this.kind === "session") {
        const tokens = await auth.refresh({ refreshToken: this.refreshToken, organizationId: this.organizationId });
        this.token = tokens.accessToken;
        this.refreshToken = tokens.refreshToken;
        this.renewAt = tokens.expiresIn > 0 ? this.renewTime(tokens.expiresIn) : undefined;
        this.onRenewed?.(tokens);
        return true;
      }
      if (this.kind === "apiKey") {
        const exchanged = await auth.exchangeApiKey({ secret: this.secret });
        this.token = exchanged.accessToken;
        this.renewAt = this.renewTime(exchanged.expiresIn);
        return true;
      }
      return false;
    } catch (error) {
      throw PlatformError.from(error);
    }
  }
}

/** Builds a transport with the given interceptors (grpc-web in browsers, any in Node). */
export type TransportFactory = (interceptors: Interceptor[]) => Transport;

/** The platform behind one transport, with credentials and a retry policy. */
export class Platform {
  readonly transport: Transport;
  private readonly auth: Client<typeof AuthService>;

  constructor(
    private readonly makeTransport: TransportFactory,
    private readonly options: { credentials?: Credentials; retry?: Partial<RetryPolicy> } = {},
  ) {
    const credentials = options.credentials ?? Credentials.none();
    const retry = { ...defaultRetryPolicy, ...options.retry };
    // Renewals go out without the interceptors: no token of their own, no recursion.
    this.auth = createClient(AuthService, makeTransport([]));
    this.transport = makeTransport([this.interceptor(credentials, retry)]);
  }

  /** The same platform with other credentials (after a login, or as an API key). */
  withCredentials(credentials: Credentials): Platform {
    return new Platform(this.makeTransport, { ...this.options, credentials });
  }

  /** A client of `service` whose calls carry the token and are retried. */
  client<T extends DescService>(service: T): Client<T> {
    return createClient(service, this.transport);
  }

  private interceptor(credentials: Credentials, retry: RetryPolicy): Interceptor {
    return (next) => async (request) => {
      let renewed = false;
      for (let attempt = 1; ; attempt++) {
        await credentials.renew(this.auth, false);
        const authorization = credentials.authorization();
        if (authorization) request.header.set("authorization", authorization);
        try {
          return await next(request);
        } catch (raw) {
          const error = PlatformError.from(raw);
          // A streamed request cannot be sent twice.
          if (request.stream) throw error;
          if (error.code === Code.Unauthenticated && !renewed) {
            renewed = true;
            if (await credentials.renew(this.auth, true)) {
              attempt--;
              continue;
            }
          }
          const wait = retryDelay(retry, attempt, error);
          if (wait === undefined) throw error;
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    };
  }
}

/** A list request and response, AIP-158 style. */
interface PageRequest {
  pageToken?: string;
}
interface PageResponse {
  nextPageToken: string;
}

/** Every page of a list RPC from `request`'s page on, fetched as iterated. */
export async function* pages<Req extends PageRequest, Resp extends PageResponse>(
  list: (request: Req) => Promise<Resp>,
  request: Req,
): AsyncGenerator<Resp> {
  let next: Req | undefined = { ...request };
  while (next) {
    const page: Resp = await list(next);
    yield page;
    next = page.nextPageToken ? { ...next, pageToken: page.nextPageToken } : undefined;
  }
}

/** Every item of every page: `select` picks the page's items (`(page) => page.users`). */
export async function* items<Req extends PageRequest, Resp extends PageResponse, Item>(
  list: (request: Req) => Promise<Resp>,
  request: Req,
  select: (page: Resp) => Item[],
): AsyncGenerator<Item> {
  for await (const page of pages(list, request)) yield* select(page);
}
