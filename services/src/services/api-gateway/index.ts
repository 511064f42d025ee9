/**
 * api-gateway: the single entry behind Nginx.
 *
 * - `/api/<route>/<path>` is proxied to the catalog service with that `route` (./proxy.ts); the
 *   platform's own paths (/internal, /metrics, /ready, /health) never are.
 * - Authentication (./authenticate.ts): Bearer access JWT or x-api-key, then the user's current
 *   state (./user-states.ts): revocation (disable, delete, role change, logout everywhere, key
 *   revoked, one session ended: ./revoked-sessions.ts) takes effect within a second. The catalog's `anonymousPaths` pass without
 *   credentials; presented credentials must still be valid.
 * - Identity to upstreams: client-sent x-user-id / x-user-role / x-auth-method / x-api-key-id are
 *   always stripped; the gateway sets them from the verified identity.
 * - Rate limits (Dragonfly, shared by all replicas, leased in slices: ./leased-counter.ts): RATE_LIMIT_MAX_REQUESTS per
 *   RATE_LIMIT_WINDOW_MS per user (authenticated) or per client IP (anonymous and bad credentials);
 *   authenticated traffic also capped per client IP (RATE_LIMIT_IP_MAX_REQUESTS, default 4x);
 *   failed API-key verifications per IP (./limits.ts). The client IP is the
 *   peer address unless the peer is listed in TRUST_PROXY (the edge's addresses/CIDRs), then the
 *   nearest untrusted X-Forwarded-For entry: a client cannot pick its own bucket. An IPv6 client is
 *   counted by its /64 (kit addressBucketOf), which it cannot leave by picking another address, and
 *   every request of an IPv6 site (/48) once more against RATE_LIMIT_IPV6_SITE_MAX_REQUESTS (default
 *   16x the per-IP cap): a client holding a /48 has 65,536 /64s.
 * - REQUEST_TIMEOUT_MS bounds receiving the request with its authentication (a body still arriving
 *   then: 408, the connection closed, nothing forwarded), and again the upstream's answer from the
 *   moment the body is in (504 JSON beyond): an upload's time is not taken from the upstream's.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
import { catalog, type ServiceDefinition } from "../../catalog";
import { addressBucketOf, afterGrace, defineService, errorBody, HttpError, installAnswerHeaders, jwtKey, pathOf, PEER_CLOSE_GRACE_MS, peerBaseUrl, siteBucketOf } from "../../kit";
import { Authenticator, type Auth } from "./authenticate";
import { config } from "./config";
import { GatewayLimits } from "./limits";
import { fastLaneOff, installFastLane } from "./fast-lane";
import { takeHandedOver } from "./fast-lane/handed-over";
import { registerProxyRoutes, type GatewayRequestState } from "./proxy";
import { UpstreamShares } from "./upstream-shares";
import { Upstreams } from "./upstreams";
import { UsageEmitter } from "./usage";
import { registerApiDocs, type OpenApiDocument } from "./docs";
import { SECURITY_HEADERS } from "./security-headers";
import { UserStates } from "./user-states";

/**
 * Connections to each service from this gateway process, both paths' together (the Fastify path's,
 * ./upstreams.ts, and the fast lane's: one budget, ./upstream-budget.ts; until session 60, 128 each);
 * each client's share of them: ./upstream-shares.ts.
 */
const UPSTREAM_CONNECTIONS = 128;

export default defineService({
  name: "api-gateway",
  config,
  async register(ctx) {
    const { app, config: cfg, log, definition } = ctx;
    const redis = app.redis;
    // Routed services this gateway may call, by route segment.
    const routes = new Map<string, ServiceDefinition>();
    for (const s of catalog) if (s.route && definition.calls.includes(s.name)) routes.set(s.route, s);
    const bases = new Map([...routes.values()].map((s) => [s.name, peerBaseUrl(s.name, ctx.env)]));

    let stateErrorLogged = false;
    const states = new UserStates(redis, ctx.peers, cfg.USER_STATE_LOCAL_TTL_MS, (err) => {
      if (!stateErrorLogged) log.warn({ err: { message: err.message } }, "revocation channel unavailable; reading user states from Dragonfly");
      stateErrorLogged = true;
    });
    states.start();
    ctx.onClose(() => states.close());
    const ipMax = cfg.RATE_LIMIT_IP_MAX_REQUESTS ?? cfg.RATE_LIMIT_MAX_REQUESTS * 4;
    const limits = new GatewayLimits(redis, {
      windowMs: cfg.RATE_LIMIT_WINDOW_MS,
      ipMax,
      siteMax: cfg.RATE_LIMIT_IPV6_SITE_MAX_REQUESTS ?? ipMax * 16,
      keyFailureMax: cfg.API_KEY_MAX_FAILURES,
      keyFailureWindowMs: cfg.API_KEY_FAILURE_WINDOW_MS,
    });
    const authenticator = new Authenticator({ key: jwtKey(cfg.JWT_SECRET), maxTokenAgeS: cfg.ACCESS_TOKEN_MAX_AGE_S, redis, peers: ctx.peers, states, limits });

    // A request still waiting for a connection PEER_CLOSE_GRACE_MS into the close: 503 SHUTTING_DOWN (./upstream-budget.ts closeQueues).
    const upstreams = new Upstreams({ connections: UPSTREAM_CONNECTIONS, keepAliveTimeoutMs: 30_000, sendTimeoutMs: cfg.CLIENT_SEND_TIMEOUT_MS, closing: afterGrace(ctx.closing, PEER_CLOSE_GRACE_MS) });
    ctx.onClose(() => upstreams.close());

    // One usage event per /api/ request when the event stream is configured (usage.ts).
    const usage = ctx.datastores.isEnabled("redpanda") ? new UsageEmitter(ctx) : undefined;
    usage?.start();

    // Every answer, errors and 404s included, carries the platform's security headers: those Node
    // and the kit answer before Fastify sees the request too (kit raw-answers.ts).
    installAnswerHeaders(app, SECURITY_HEADERS);

    // Everything under /api/ in its own scope: raw bodies, auth, rate limit, whole-request timeout.
    // The hooks are callback-style and answer synchronously when the caches can (cached token, user
    // state and rate-limit leases): no promise per request on the hot path.
    await app.register(async (api) => {
      api.decorateRequest("gateway", null);
      const onTimeout = (request: FastifyRequest, reply: FastifyReply) => {
        if (reply.sent || reply.raw.headersSent) return;
        if (!request.raw.complete) {
          // The client's upload is late, not an upstream: nothing was forwarded, and the rest of the
          // body is not waited for (closing the connection also keeps Node from answering it again).
          log.info({ requestId: request.id, url: pathOf(request.url), timeoutMs: cfg.REQUEST_TIMEOUT_MS }, "request body not received in time");
          reply.header("connection", "close").status(408).send(errorBody(request, "REQUEST_TIMEOUT", `The request body did not arrive within ${cfg.REQUEST_TIMEOUT_MS} ms`, "body"));
          return;
        }
        answerTimedOut(request, reply);
      };
      const answerTimedOut = (request: FastifyRequest, reply: FastifyReply) => {
        log.warn({ requestId: request.id, url: pathOf(request.url), timeoutMs: cfg.REQUEST_TIMEOUT_MS }, "request timed out at the gateway");
        reply.status(504).send(errorBody(request, "GATEWAY_TIMEOUT", `No answer within ${cfg.REQUEST_TIMEOUT_MS} ms`));
      };
      const startBudget = (request: FastifyRequest, reply: FastifyReply, ms = cfg.REQUEST_TIMEOUT_MS): GatewayRequestState["timer"] => setTimeout(onTimeout, Math.max(0, ms), request, reply);
      api.addHook("onResponse", (request, reply, done) => {
        const state = request.gateway;
        clearTimeout(state?.timer);
        usage?.recordRequest(routes, request.url, request.method, reply.statusCode, reply.elapsedTime, state?.auth.identity);
        done();
      });
      // Bodies are forwarded as received (size-limited by BODY_LIMIT_BYTES -> 413), not re-serialised.
      api.removeAllContentTypeParsers();
      api.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

      // Who is calling, then the per-IP cap on authenticated traffic (anonymous traffic is keyed by
      // IP in the rate limit below). Client-sent identity headers are never forwarded (./proxy.ts).
      api.addHook("onRequest", (request, reply, done) => {
        // Counted by address bucket (kit addressBucketOf): an IPv6 client by its /64, not per address it picks.
        const bucket = addressBucketOf(request.ip);
        // A request the fast lane began and handed over keeps its budget from the lane's read, and its
        // credentials warm-up's answer (./fast-lane/handed-over.ts): one bound, one authentication.
        const begun = takeHandedOver(request.raw.socket, request.method, request.url);
        const now = Date.now();
        if (begun && begun.deadline <= now) {
          // Its budget ran out while the lane held it (its warm-ups took it all): the answer of a request
          // whose budget runs out here, at once (before session 56, one more credentials call under a
          // 1 ms budget first: a user-state read that could not be answered in time).
          return answerTimedOut(request, reply);
        }
        const deadline = begun?.deadline ?? now + cfg.REQUEST_TIMEOUT_MS;
        const state: GatewayRequestState = { deadline, timer: startBudget(request, reply, deadline - Date.now()), auth: {}, bucket };
        request.gateway = state;
        const capIp = () => (state.auth.identity ? limits.checkIp(bucket) : undefined);
        const identify = () => {
          try {
            const known = begun?.auth ?? authenticator.cached(request.headers);
            if (known) {
              state.auth = known;
              const pending = capIp();
              if (!pending) return done();
              pending.then(() => done(), done);
              return;
            }
          } catch (e) {
            return done(e as Error);
          }
          authenticator
            .authenticate(request.headers, bucket, String(request.id), Math.max(1, state.deadline - Date.now()))
            .then((a) => {
              state.auth = a;
              return capIp();
            })
            .then(() => done(), done);
        };
        // Every request of an IPv6 site (its /48) is counted first, before authentication costs anything.
        const site = siteBucketOf(request.ip);
        if (!site) return identify();
        try {
          const pending = limits.checkSite(site);
          if (!pending) return identify();
          pending.then(identify, done);
        } catch (e) {
          done(e as Error);
        }
      });
      // A request with a body: the upstream's budget starts once the body is in (see the header).
      api.addHook("preValidation", (request, reply, done) => {
        const state = request.gateway;
        if (state && request.body !== undefined) {
          clearTimeout(state.timer);
          state.deadline = Date.now() + cfg.REQUEST_TIMEOUT_MS;
          state.timer = startBudget(request, reply);
        }
        done();
      });
      api.addHook("onRequestAbort", (request, done) => {
        clearTimeout(request.gateway?.timer);
        done();
      });

      await api.register(rateLimit, {
        global: true,
        // Counted once per request, before its body is read (after onRequest's authentication, which
        // keys it): a client over its limit that waits for `100 Continue` gets its 429 alone, never
        // invited to upload a body that is then refused (counted at preHandler until session 53).
        hook: "preParsing",
        max: cfg.RATE_LIMIT_MAX_REQUESTS,
        timeWindow: cfg.RATE_LIMIT_WINDOW_MS,
        store: limits.rateLimitStore("gw-rl:", cfg.RATE_LIMIT_MAX_REQUESTS, cfg.RATE_LIMIT_WINDOW_MS),
        skipOnError: true,
        keyGenerator: (request) => {
          const id = request.gateway?.auth.identity;
          return id ? `user:${id.userId}` : `ip:${request.gateway?.bucket ?? addressBucketOf(request.ip)}`;
        },
        errorResponseBuilder: (_request, context) =>
          new HttpError(429, "RATE_LIMITED", `Rate limit exceeded: ${context.max} requests per ${context.after === "" ? "window" : "window; retry in " + context.after}`),
      });

      // The merged OpenAPI document and its page (docs.ts), before the proxy's /api/* wildcard.
      await registerApiDocs(api, { ownDocument: () => app.swagger() as OpenApiDocument, routed: [...routes.values()], peers: ctx.peers, timeoutMs: cfg.HEALTH_TIMEOUT_MS, cacheMs: cfg.DOCS_CACHE_MS, log });
      // One count of each client's requests under way for both paths (./upstream-shares.ts): until session 59 each
      // path counted its own, and one client could hold its share of the lane's connections and of the Fastify path's.
      const shares = new UpstreamShares(UPSTREAM_CONNECTIONS);
      const shared = registerProxyRoutes(api, ctx, { routes, bases, upstreams, shares });
      const off = fastLaneOff(ctx);
      if (off) log.info({ reason: off }, "gateway fast lane off");
      else installFastLane(ctx, { shared, routes, bases, authenticator, limits, usage, security: SECURITY_HEADERS, upstreamAnswers: upstreams.answers, connections: UPSTREAM_CONNECTIONS, shares });
    });
  },
});
