/** api-gateway's environment (validated at start; see kit/config.ts). */
import { setting } from "../../catalog";
import { type ConfigOf, type ServiceContext, Type } from "../../kit";

export const config = {
  JWT_SECRET: Type.String({ minLength: 64, secret: true }),
  // Limits, lockouts and timeouts each have a range (README "Stack configuration"): a value beyond it is
  // no limit at all (a million requests per window), a client locked out for days, or a timer Node
  // cannot arm (past 2^31-1 ms setTimeout fires after 1 ms: every request would be a 504).
  /** Window of the per-user and per-address request limit: 1 s to 1 h (a client over the limit waits for its end). */
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 1_000, maximum: 3_600_000 }),
  RATE_LIMIT_MAX_REQUESTS: Type.Integer({ default: 300, minimum: 1, maximum: 1_000_000 }),
  /** Cap per client IP on authenticated traffic (many accounts behind one address); default 4x the per-user limit. */
  RATE_LIMIT_IP_MAX_REQUESTS: Type.Optional(Type.Integer({ minimum: 1, maximum: 4_000_000 })),
  /**
   * Cap per IPv6 /48 (a site: RFC 6177 hands one a /48 to /56) on every request, anonymous ones too;
   * default 16x the per-address cap. A /48 holds 65,536 /64s, each counted as one address: without it
   * a client holding one had 65,536 address budgets. 16 is a site's many busy networks, at 1/4096 of that.
   */
  RATE_LIMIT_IPV6_SITE_MAX_REQUESTS: Type.Optional(Type.Integer({ minimum: 1, maximum: 64_000_000 })),
  /** Failed API-key verifications allowed per client IP in API_KEY_FAILURE_WINDOW_MS (not per key prefix: ./limits.ts). */
  API_KEY_MAX_FAILURES: Type.Integer({ default: 10, minimum: 1, maximum: 1_000 }),
  API_KEY_FAILURE_WINDOW_MS: Type.Integer({ default: 300_000, minimum: 1_000, maximum: 86_400_000 }),
  /** Upstream response timeout (bounded further by what is left of REQUEST_TIMEOUT_MS). */
  PROXY_TIMEOUT_MS: Type.Integer({ ...setting("api-gateway", "PROXY_TIMEOUT_MS"), atMost: { key: "REQUEST_TIMEOUT_MS", why: "the upstream's wait runs inside the request's budget: a longer one never fires (the request's 504 comes first)" } }),
  /** Whole-request budget at the gateway (authentication + upstream); 504 JSON beyond. */
  REQUEST_TIMEOUT_MS: Type.Integer(setting("api-gateway", "REQUEST_TIMEOUT_MS")),
  /**
   * How long an answer streamed to a client (past the 1 MiB the gateway buffers: ./upstreams.ts) may wait for
   * it to take any of it: a client whose socket stays full that long is cut, its upstream connection closed and
   * its place in its share (./upstream-shares.ts) given back (until session 59 held for as long as it kept the
   * connection open). 30 s: a reading client on the slowest link takes a socket's buffer (tens of KB) in
   * seconds, so 30 s with none of it taken is a client that stopped reading, not a slow one. No relation to
   * another setting: it bounds the client's side, as PROXY_TIMEOUT_MS the upstream's, and a stream may
   * outlast REQUEST_TIMEOUT_MS (which ends at the answer's head).
   */
  CLIENT_SEND_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1_000, maximum: 600_000 }),
  /** Per-service timeout of /api/health. */
  HEALTH_TIMEOUT_MS: Type.Integer(setting("api-gateway", "HEALTH_TIMEOUT_MS")),
  /** Longest accepted access-token age (defence in depth on top of exp). */
  ACCESS_TOKEN_MAX_AGE_S: Type.Integer(setting("api-gateway", "ACCESS_TOKEN_MAX_AGE_S")),
  /** Upper bound on how long a user's state is trusted from the in-process copy (pub/sub invalidates sooner). */
  USER_STATE_LOCAL_TTL_MS: Type.Integer({ default: 30_000, minimum: 0, maximum: 300_000 }),
  /** How long the merged OpenAPI document of /api/docs is reused before the services are asked again. */
  DOCS_CACHE_MS: Type.Integer({ default: 60_000, minimum: 0, maximum: 86_400_000 }),
  /**
   * The fast lane (./fast-lane): GETs and HEADs the gateway can decide from its caches served outside
   * node:http and Fastify, answers the same. true (the default, since session 55): it costs about 30 %
   * less gateway CPU a request and meets the 70 % throughput target where the path without it does not
   * (README "Gateway speed", session 54). false: every request through Fastify, as before.
   */
  GATEWAY_FAST_LANE: Type.Boolean({ default: true }),
};

export type GatewayConfig = ConfigOf<typeof config>;
export type GatewayContext = ServiceContext<GatewayConfig>;
