/**
 * The gateway's routes under /api/: `/api/health` (every routed service's /health, each bounded)
 * and `/api/<route>/<path>` proxied to the catalog service with that route.
 *
 * Before anything is forwarded: the URL must be well-formed (percent-encoding included: 400
 * otherwise), the path is normalised (dot segments resolved) and the platform's own paths
 * (kit INTERNAL_PATH_PREFIXES: /internal, /metrics, /ready, /health) are never proxied, however
 * encoded. Identity headers are set from the verified identity only; credentials are not forwarded.
 * An API key's scopes are enforced here, for every routed service (./key-scopes.ts: an allow list;
 * whatever it does not grant a key needs a user session). The request itself goes over ./upstreams.ts.
 */
import type { FastifyRequest, preParsingHookHandler } from "fastify";
import { Counter } from "prom-client";
import type { ServiceDefinition } from "../../catalog";
import { awaitsContinue, clientRequestIdOf, errorBody, ErrorResponse, HttpError, IDENTITY_HEADERS, isClosingAnswer, isInternalPath, markDrainAnswer, publicServiceName, Type, type ApiKeyScope, type App, type Identity } from "../../kit";
import type { Auth } from "./authenticate";
import type { GatewayContext } from "./config";
import { serviceHealth, type ServiceHealth } from "./health";
import { CounterTally } from "./counter-tally";
import { keyRequirement, scopesMeet } from "./key-scopes";
import type { IncomingHttpHeaders } from "node:http";
import { answerHeaders, forwardedHeaders } from "./upstream-headers";
import { ClientGoneError, ClientStalledError, RESTART_WINDOW_MS, STALLED_CLIENT_LOG, sendPastClosing, UpstreamError, type UpstreamAnswer, type UpstreamFailure, type Upstreams } from "./upstreams";
import type { UpstreamShares } from "./upstream-shares";
import { upstreamInvalidText, upstreamRestartingText, upstreamUnavailableText } from "./upstream-texts";

/**
 * /api/health: the gateway's view of every service it routes to (OpenAPI), each keyed by its public
 * route (`/api/orders/`; the gateway itself `/api/`): anonymous, so never by its catalog name (before
 * session 52 every client read `order-management`, `payment-service` ... there).
 */
const HealthBody = Type.Object({
  status: Type.Union([Type.Literal("ok"), Type.Literal("degraded")]),
  services: Type.Record(Type.String(), Type.Object({ status: Type.Union([Type.Literal("ok"), Type.Literal("down")]), latencyMs: Type.Optional(Type.Number()), error: Type.Optional(Type.String()) })),
});

/** /api/health's 503: a service down (the report), or the gateway shutting down (the error body, SHUTTING_DOWN). */
const HealthUnavailable = Type.Union([HealthBody, ErrorResponse], { description: "A service is down (the report), or this gateway instance is shutting down (SHUTTING_DOWN, Retry-After)" });

export const STRIPPED_HEADERS = [...Object.values(IDENTITY_HEADERS), "authorization", "x-api-key"];
// Read once: an imported binding compiles to a getter read on every use (two through the kit's index),
// three to five uses on every request upstreamHeaders makes (the gateway bench's profile, session 57).
const IDENTITY = IDENTITY_HEADERS;

const badPercent = /%(?![0-9A-Fa-f]{2})/;

/**
 * Routing decisions kept by raw URL (a repeated URL skips the parse), at most `maxEntries` (cleared
 * when full), and only for URLs up to `maxUrlLength`: the cache is filled before authentication, and
 * 10,000 anonymous URLs of 8 KB each held about 155 MB; a long URL is parsed again (microseconds).
 */
export class TargetCache {
  private readonly targets = new Map<string, UpstreamTarget>();
  constructor(private readonly maxEntries = 10_000, private readonly maxUrlLength = 512) {}

  /** The routing decision of `rawUrl`, from the cache or `decide` (which may throw the 400/404). */
  target(rawUrl: string, decide: (rawUrl: string) => UpstreamTarget): UpstreamTarget {
    const known = this.targets.get(rawUrl);
    if (known) return known;
    const target = decide(rawUrl);
    if (rawUrl.length <= this.maxUrlLength) {
      if (this.targets.size >= this.maxEntries) this.targets.clear();
      this.targets.set(rawUrl, target);
    }
    return target;
  }

  /** The routing decision of `rawUrl` when held (the fast lane serves only URLs the Fastify path decided before). */
  peek(rawUrl: string): UpstreamTarget | undefined {
    return this.targets.get(rawUrl);
  }

  /** Characters of the URLs held (the keys; their targets hold about as much again). */
  get heldUrlChars(): number {
    let n = 0;
    for (const url of this.targets.keys()) n += url.length;
    return n;
  }
}

export interface UpstreamTarget {
  service: ServiceDefinition;
  path: string;
  search: string;
}

/** The upstream path and query of a gateway URL, or a 400/404 HttpError. */
export function upstreamTarget(rawUrl: string, routes: ReadonlyMap<string, ServiceDefinition>): UpstreamTarget {
  if (badPercent.test(rawUrl)) throw new HttpError(400, "BAD_REQUEST", "Malformed percent-encoding in the URL", "url");
  const url = new URL(rawUrl, "http://gateway.invalid"); // resolves ./ ../ %2e segments
  const notFound = () => new HttpError(404, "NOT_FOUND", `No service at ${url.pathname.slice(0, 200)}`);
  const m = /^\/api\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const service = m ? routes.get(m[1]) : undefined;
  if (!m || !service) throw notFound();
  const path = m[2] ?? "/";
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
    decodeURIComponent(url.search.replace(/\+/g, " "));
  } catch {
    throw new HttpError(400, "BAD_REQUEST", "Malformed percent-encoding in the URL (not UTF-8)", "url");
  }
  if (isInternalPath(decoded) || decoded.includes("\\") || decoded.includes("/../") || decoded.includes("\0")) throw notFound();
  return { service, path, search: url.search };
}

/** Is the target one of its service's `anonymousPaths` (with or without a trailing "/"): served without credentials. */
export function isAnonymousTarget({ service, path }: UpstreamTarget): boolean {
  return service.anonymousPaths.some((p) => path === p || path === `${p}/`);
}

/** What the gateway's onRequest hook (./index.ts) learnt about a request under /api/. */
export interface GatewayRequestState {
  /** Local clock time the whole-request budget (REQUEST_TIMEOUT_MS) ends at. */
  deadline: number;
  /** Answers 504 at the deadline; cleared when the response is sent or the client goes away. */
  timer: NodeJS.Timeout;
  auth: Auth;
  /** The client's address bucket (kit addressBucketOf: an IPv6 client's /64), worked out once per request. */
  bucket: string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the gateway's onRequest hook for every request in its /api/ scope (null elsewhere). */
    gateway: GatewayRequestState | null;
  }
}

/** A 403 naming `scope` unless an API key with these scopes may send `method` to `path` of `service`. */
export function assertKeyMay(scopes: readonly ApiKeyScope[], service: string, method: string, path: string): void {
  const need = keyRequirement(service, method, path);
  if (scopesMeet(scopes, need)) return;
  if (need === "session") {
    throw new HttpError(403, "SESSION_REQUIRED", `${method} ${path.slice(0, 200)} needs a user session (an access token from /api/users/login): API keys may only read and trade`, "scope");
  }
  throw new HttpError(403, "INSUFFICIENT_SCOPE", `This API key's scopes (${scopes.join(", ")}) do not include ${need}, which ${method} needs here`, "scope");
}

/**
 * The identity a request to `target` is forwarded with, or the HttpError it is refused with: the
 * authentication's error, a 401 without credentials (unless the path is anonymous), an API key's
 * missing scope (403). The same decision on the Fastify path and in the fast lane.
 */
export function authorise(target: UpstreamTarget, a: Auth, method: string): Identity | undefined {
  if (a.error) throw a.error;
  if (!a.identity && !isAnonymousTarget(target)) throw new HttpError(401, "UNAUTHORIZED", "Authentication required: Bearer access token or x-api-key");
  const identity: Identity | undefined = a.identity;
  // What an anonymous caller may send needs no scope; everything else is checked against the key's.
  if (identity?.authMethod === "api-key" && !isAnonymousTarget(target)) assertKeyMay(identity.scopes ?? [], target.service.name, method, target.path);
  return identity;
}

/** The access line's reason for that 502 (a drain answer, at warn). */
export const restartReason = (serviceName: string, failure: UpstreamFailure): string =>
  `${serviceName} restarting: ${failure === "refused" ? "its connection refused" : "its connection closed before an answer"}, after an answer within ${RESTART_WINDOW_MS / 1000} s`;

/**
 * Headers never forwarded as sent: credentials, identity, a client's trace context (the gateway starts
 * the trace: kit telemetry), and the proxy headers a client can forge (Forwarded, X-Forwarded-Host,
 * -Proto, -Port, X-Real-IP): a service trusts the gateway as its proxy (kit TRUST_PROXY), so Fastify
 * would read a host and scheme from them; the gateway sends its own X-Forwarded-For only (session 54).
 */
export const DROPPED_HEADERS: ReadonlySet<string> = new Set([...STRIPPED_HEADERS, "traceparent", "tracestate", "baggage", "forwarded", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip"]);

/**
 * The headers a request goes upstream with: the client's (./upstreams.ts forwardedHeaders, less
 * DROPPED_HEADERS), the gateway's request id, the client's own id under x-client-request-id, the
 * client address, and the identity headers from the verified identity only.
 */
export function upstreamHeaders(incoming: IncomingHttpHeaders, requestId: string, clientRequestId: string | undefined, ip: string, identity: Identity | undefined): Record<string, string | string[]> {
  const headers = forwardedHeaders(incoming, DROPPED_HEADERS);
  // The gateway's own id (kit clientRequestIdOf): a client cannot give its request another's id.
  // What it sent is passed on under its own name, for its correlation, never as sent.
  headers["x-request-id"] = requestId;
  if (clientRequestId) headers["x-client-request-id"] = clientRequestId;
  else delete headers["x-client-request-id"];
  headers["x-forwarded-for"] = ip;
  if (identity) {
    headers[IDENTITY.userId] = identity.userId;
    headers[IDENTITY.role] = identity.role;
    headers[IDENTITY.authMethod] = identity.authMethod;
    if (identity.apiKeyId) headers[IDENTITY.apiKeyId] = identity.apiKeyId;
    if (identity.scopes) headers[IDENTITY.apiKeyScopes] = identity.scopes.join(",");
  }
  return headers;
}

/** What the proxy route shares with the fast lane (./fast-lane): its routing decisions and its upstream counter. */
export interface ProxyShared {
  targets: TargetCache;
  /** The routing decision of a URL as the proxy route makes it (kept in `targets`), or its 400/404 thrown. */
  targetOf: (rawUrl: string) => UpstreamTarget;
  upstreamTotal: Counter<"upstream" | "status_code">;
  upstreamAnswers: CounterTally<"upstream" | "status_code">; // (the fast lane's increments of upstreamTotal)
}

export interface ProxyDeps {
  routes: ReadonlyMap<string, ServiceDefinition>;
  bases: ReadonlyMap<string, string>;
  upstreams: Upstreams;
  shares: UpstreamShares;
}

export function registerProxyRoutes(api: App, ctx: GatewayContext, d: ProxyDeps): ProxyShared {
  const { config: cfg, log } = ctx;
  // The fast lane's answers are tallied in process and added when the counter is read (./counter-tally.ts).
  const upstreamAnswers = new CounterTally<"upstream" | "status_code">((upstream, status) => ({ upstream, status_code: String(status) }));
  const upstreamTotal: Counter<"upstream" | "status_code"> = new Counter({
    name: "gateway_upstream_responses_total",
    help: "Proxied responses by upstream service and status",
    labelNames: ["upstream", "status_code"],
    registers: [ctx.metrics.registry],
    collect: () => upstreamAnswers.addTo(upstreamTotal),
  });

  // Takes no query parameter (the kit's default): it reads none.
  // Each service's health is cut on the gateway's close (./health.ts): the error body's 503 SHUTTING_DOWN then.
  api.get("/api/health", { schema: { security: [], response: { 200: HealthBody, 503: HealthUnavailable } } }, async (request, reply) => {
    const results: Record<string, ServiceHealth> = { "/api/": { status: "ok", latencyMs: 0 } };
    await Promise.all(
      [...d.routes.values()].map(async (s) => {
        results[`/api/${s.route}/`] = await serviceHealth(ctx.peers, s.name, cfg.HEALTH_TIMEOUT_MS, String(request.id));
      }),
    );
    const allUp = Object.values(results).every((r) => r.status === "ok");
    return reply.status(allUp ? 200 : 503).send({ status: allUp ? "ok" : "degraded", services: results });
  });

  const targets = new TargetCache();
  const decide = (rawUrl: string) => upstreamTarget(rawUrl, d.routes); // throws the 400/404
  // Takes any query: passed on as sent to the service, whose route judges it (kit query-parameters.ts).
  // No querystring schema, so the kit checks nothing here: the proxied path pays nothing for it.
  /** What the request's line and headers alone decide: its target, who calls, an API key's scope (a 400, 401, 403 or 404 thrown). */
  const admitted = (request: FastifyRequest): { target: UpstreamTarget; identity?: Identity } => {
    const target = targets.target(request.url, decide);
    return { target, identity: authorise(target, request.gateway?.auth ?? {}, request.method) };
  };
  // A client waiting for `100 Continue` (kit request-framing.ts: written when the body is first read)
  // is refused before its body is asked for: 401 and the rest, not 100 Continue then 401 (session 52).
  const preParsing: preParsingHookHandler = (request, _reply, payload, done) => {
    if (!awaitsContinue(request.raw)) return done(null, payload);
    try {
      admitted(request);
    } catch (e) {
      return done(e as Error);
    }
    done(null, payload);
  };
  api.all("/api/*", { schema: { hide: true }, config: { takesAnyQuery: true, takesAnyBody: true }, preParsing }, async (request, reply) => {
    const { target, identity } = admitted(request);
    const { service, path, search } = target;
    const state = request.gateway;
    const headers = upstreamHeaders(request.headers, String(request.id), clientRequestIdOf(request.raw), request.ip, identity);
    // Bodies arrive as raw Buffers (the scope's content-type parser): forwarded byte for byte.
    const body = Buffer.isBuffer(request.body) && request.method !== "GET" && request.method !== "HEAD" ? request.body : undefined;
    if (body && headers["content-type"] === undefined) headers["content-type"] = "application/octet-stream";
    const timeoutMs = Math.max(1, Math.min(cfg.PROXY_TIMEOUT_MS, (state?.deadline ?? Infinity) - Date.now()));
    let answer: UpstreamAnswer;
    try {
      // A GET or HEAD a closing upstream answered 503 SHUTTING_DOWN is sent once more (./upstreams.ts sendPastClosing);
      // counted among the client's requests to the service (./upstream-shares.ts: a 429 past its share).
      const resent = () => log.info({ requestId: request.id, upstream: service.name }, "upstream shutting down: sent once more");
      answer = await d.shares.run(service.name, identity?.userId ?? request.ip, () => sendPastClosing(d.upstreams, d.bases.get(service.name)!, { method: request.method, path: `${path}${search}`, headers, body, timeoutMs, answering: reply.raw }, state?.deadline ?? Date.now() + timeoutMs, resent));
    } catch (e) {
      // Its client gone (or its 504 sent) first: the upstream request ended, as the lane's (nothing answered, counted or logged).
      if (e instanceof ClientGoneError) return reply.sent ? reply : undefined;
      if (!(e instanceof UpstreamError)) throw e;
      upstreamTotal.inc({ upstream: service.name, status_code: e.timedOut ? "504" : "502" });
      log.warn({ upstream: service.name, failure: e.failure, restarting: e.restarting, err: { message: e.message } }, "upstream request failed");
      if (reply.sent) return reply;
      if (e.restarting) {
        // A deploy, not an outage (./upstreams.ts says how it is told): counted as the 502 it is, logged at warn.
        markDrainAnswer(reply, restartReason(service.name, e.failure));
        return reply.status(502).header("retry-after", "1").send(errorBody(request, "UPSTREAM_UNAVAILABLE", upstreamRestartingText(service.name)));
      }
      return reply.status(e.timedOut ? 504 : 502).send(errorBody(request, e.timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE", upstreamUnavailableText(service.name)));
    }
    upstreamTotal.inc({ upstream: service.name, status_code: String(answer.statusCode) });
    if (reply.sent) {
      // The whole-request timeout answered first.
      if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
      return reply;
    }
    if (answer.statusCode < 200 || answer.statusCode > 599) {
      if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
      return reply.status(502).send(errorBody(request, "UPSTREAM_UNAVAILABLE", upstreamInvalidText(service.name)));
    }
    // A service closing behind the gateway (a deploy's drain): forwarded and counted, logged as a drain answer, not an error.
    if (isClosingAnswer(answer.statusCode, answer.body)) markDrainAnswer(reply, `${service.name} shutting down (its answer forwarded)`);
    const streamed = !Buffer.isBuffer(answer.body);
    // (Fastify logs no stream's failure here: the kit's access line only. A stalled client is said, as the lane says it.)
    if (!Buffer.isBuffer(answer.body)) answer.body.once("error", (e) => e instanceof ClientStalledError && log.warn({ requestId: request.id, upstream: service.name, sendTimeoutMs: cfg.CLIENT_SEND_TIMEOUT_MS }, STALLED_CLIENT_LOG));
    // A HEAD answer has no body but the length of what GET would send: kept as the upstream gave it.
    reply.code(answer.statusCode).headers(answerHeaders(answer.headers, streamed || request.method === "HEAD"));
    return reply.send(request.method === "HEAD" ? undefined : answer.body);
  });
  return { targets, targetOf: (rawUrl) => targets.target(rawUrl, decide), upstreamTotal, upstreamAnswers };
}
