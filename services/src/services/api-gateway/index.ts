/**
 * api-gateway: the single entry behind Nginx.
 *
 * - `/api/<route>/<path>` is proxied to the catalog service with that `route` (base URL from
 *   SERVICE_<NAME>_URL or http://<name>:<port>), path normalised (dot segments resolved);
 *   `/internal/...` paths are never proxied (service-to-service only).
 * - Authentication: `Authorization: Bearer <access JWT>` (HS256, JWT_SECRET, iss/aud/exp/iat checked)
 *   or `x-api-key: atk_...` (Dragonfly cache `apikey:<sha256>` filled by user-management; on a miss
 *   the gateway asks user-management's /internal/api-keys/verify). The catalog's `anonymousPaths`
 *   pass without credentials; presented credentials must still be valid.
 * - Identity to upstreams: client-sent x-user-id / x-user-role / x-auth-method / x-api-key-id are
 *   always stripped; the gateway sets them from the verified identity. Authorization and x-api-key
 *   are not forwarded.
 * - Rate limits (@fastify/rate-limit, Redis store on Dragonfly, shared by all replicas):
 *   RATE_LIMIT_MAX_REQUESTS per RATE_LIMIT_WINDOW_MS per user (authenticated) or per client IP
 *   (anonymous, and requests with bad credentials), headers x-ratelimit-limit/remaining/reset and
 *   retry-after on 429. Authenticated traffic is also capped per client IP
 *   (RATE_LIMIT_IP_MAX_REQUESTS, default 4x) so many accounts behind one address cannot multiply
 *   the budget. If Dragonfly is unreachable requests are let through (fail open, logged; /ready
 *   reports it failed). Behind Nginx set TRUST_PROXY=1 so the client IP comes from X-Forwarded-For.
 * - `/api/health`: aggregates GET /health of every service the gateway calls, each with a timeout.
 */
import type { FastifyRequest } from "fastify";
import type { Result } from "ioredis";
import replyFrom from "@fastify/reply-from";
import rateLimit from "@fastify/rate-limit";
import { Counter } from "prom-client";
import { catalog, type ServiceDefinition } from "../../catalog";
import { defineService, errorBody, HttpError, IDENTITY_HEADERS, jwtKey, peerBaseUrl, TokenError, verifyAccessToken, type Identity, Type } from "../../kit";
import { apiKeyCacheKey, hashApiKey, parseApiKey, type ApiKeyIdentity } from "../user-management/api-keys";
import { UsageEmitter } from "./usage";

const config = {
  JWT_SECRET: Type.String({ minLength: 64, secret: true }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 100 }),
  RATE_LIMIT_MAX_REQUESTS: Type.Integer({ default: 300, minimum: 1 }),
  /** Cap per client IP on authenticated traffic (many accounts behind one address); default 4x the per-user limit. */
  RATE_LIMIT_IP_MAX_REQUESTS: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Upstream response timeout. */
  PROXY_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100 }),
  /** Per-service timeout of /api/health. */
  HEALTH_TIMEOUT_MS: Type.Integer({ default: 2_000, minimum: 50 }),
  /** Longest accepted access-token age (defence in depth on top of exp). */
  ACCESS_TOKEN_MAX_AGE_S: Type.Integer({ default: 3_600, minimum: 60 }),
};

declare module "ioredis" {
  interface RedisCommander<Context> {
    /** The per-IP counter script defined below (ioredis `defineCommand`). */
    gwIpLimit(key: string, windowMs: number): Result<[number, number], Context>;
  }
}

type Auth = { identity?: Identity; error?: HttpError };

const stripped = [...Object.values(IDENTITY_HEADERS), "authorization", "x-api-key"];

export default defineService({
  name: "api-gateway",
  config,
  async register(ctx) {
    const { app, config: cfg, log, definition } = ctx;
    const key = jwtKey(cfg.JWT_SECRET);
    const redis = ctx.datastores.dragonfly.redis;
    const auth = new WeakMap<FastifyRequest, Auth>();

    // Routed services this gateway may call, by route segment.
    const routes = new Map<string, ServiceDefinition>();
    for (const s of catalog) if (s.route && definition.calls.includes(s.name)) routes.set(s.route, s);
    const bases = new Map([...routes.values()].map((s) => [s.name, peerBaseUrl(s.name, ctx.env)]));

    const upstreamTotal = new Counter({
      name: "gateway_upstream_responses_total",
      help: "Proxied responses by upstream service and status",
      labelNames: ["upstream", "status_code"],
      registers: [ctx.metrics.registry],
    });

    async function verifyApiKey(request: FastifyRequest, apiKey: string): Promise<Identity> {
      if (!parseApiKey(apiKey)) throw new HttpError(401, "INVALID_API_KEY", "Invalid API key");
      const hash = hashApiKey(apiKey);
      const cached = await redis.get(apiKeyCacheKey(hash)).catch(() => null);
      let id: ApiKeyIdentity | undefined;
      if (cached) id = JSON.parse(cached) as ApiKeyIdentity;
      else {
        const r = await ctx.peers.call<ApiKeyIdentity>("user-management", "/internal/api-keys/verify", {
          body: { key: apiKey },
          requestId: String(request.id),
          timeoutMs: 5_000,
        });
        if (r.status === 401) throw new HttpError(401, "INVALID_API_KEY", "Invalid API key");
        if (r.status !== 200) throw new HttpError(503, "AUTH_UNAVAILABLE", "API key verification unavailable");
        id = r.body;
      }
      return { userId: id.userId, role: id.role, authMethod: "api-key", apiKeyId: id.apiKeyId };
    }

    async function authenticate(request: FastifyRequest): Promise<Auth> {
      const authz = request.headers.authorization;
      const apiKey = request.headers["x-api-key"];
      try {
        if (authz !== undefined) {
          const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(authz);
          if (!m) return { error: new HttpError(401, "INVALID_TOKEN", "Authorization must be 'Bearer <access token>'") };
          const claims = await verifyAccessToken(key, m[1], cfg.ACCESS_TOKEN_MAX_AGE_S);
          return { identity: { userId: claims.userId, role: claims.role, authMethod: "jwt" } };
        }
        if (typeof apiKey === "string") return { identity: await verifyApiKey(request, apiKey) };
        return {};
      } catch (e) {
        if (e instanceof TokenError)
          return { error: new HttpError(401, e.reason === "expired" ? "TOKEN_EXPIRED" : "INVALID_TOKEN", e.reason === "expired" ? "Access token expired" : "Invalid access token") };
        if (e instanceof HttpError) return { error: e };
        request.log.error({ err: e }, "authentication failed unexpectedly");
        return { error: new HttpError(503, "AUTH_UNAVAILABLE", "Authentication unavailable") };
      }
    }

    await app.register(replyFrom, {
      undici: { connections: 128, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: cfg.PROXY_TIMEOUT_MS, bodyTimeout: cfg.PROXY_TIMEOUT_MS },
      disableRequestLogging: true,
      // Never retry non-idempotent requests on a dead upstream.
      retryMethods: ["GET", "HEAD", "OPTIONS"],
      maxRetriesOn503: 0,
    });

    // One usage event per /api/ request when the event stream is configured (usage.ts).
    const usage = ctx.datastores.isEnabled("redpanda") ? new UsageEmitter(ctx) : undefined;
    usage?.start();

    // Everything under /api/ in its own scope: raw bodies, auth, rate limit.
    await app.register(async (api) => {
      if (usage)
        api.addHook("onResponse", async (request, reply) => {
          const id = auth.get(request)?.identity;
          const m = /^\/api\/([^/?]+)/.exec(request.url);
          usage.record({
            userId: id?.userId ?? null,
            apiKeyId: id?.apiKeyId ?? null,
            route: m && routes.has(m[1]) ? m[1] : "unknown",
            method: request.method,
            status: reply.statusCode,
            latencyMs: Math.round(reply.elapsedTime * 1000) / 1000,
          });
        });
      // Bodies are forwarded as received (size-limited by BODY_LIMIT_BYTES -> 413), not re-serialised.
      api.removeAllContentTypeParsers();
      api.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

      api.addHook("onRequest", async (request) => {
        for (const h of stripped) if (h !== "authorization" && h !== "x-api-key") delete request.headers[h];
        auth.set(request, await authenticate(request));
      });

      // Per-IP cap on authenticated traffic (anonymous traffic is already keyed by IP below).
      const ipMax = cfg.RATE_LIMIT_IP_MAX_REQUESTS ?? cfg.RATE_LIMIT_MAX_REQUESTS * 4;
      // One round trip: INCR, start the window on the first hit, return count and remaining ms.
      const ipLimit = (key: string): Promise<[number, number]> => redis.gwIpLimit(key, cfg.RATE_LIMIT_WINDOW_MS);
      redis.defineCommand("gwIpLimit", {
        numberOfKeys: 1,
        lua: `local c = redis.call('INCR', KEYS[1])
              if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
              return {c, redis.call('PTTL', KEYS[1])}`,
      });
      api.addHook("preHandler", async (request) => {
        if (!auth.get(request)?.identity) return;
        let count: number;
        let ttl: number;
        try {
          [count, ttl] = await ipLimit(`gw-rl-ip:${request.ip}`);
        } catch {
          return; // fail open, like the per-user limit
        }
        if (count > ipMax)
          throw new HttpError(429, "RATE_LIMITED", `Rate limit exceeded for this client address: ${ipMax} requests per window`, undefined, {
            "retry-after": String(Math.max(1, Math.ceil(ttl / 1000))),
          });
      });

      await api.register(rateLimit, {
        global: true,
        hook: "preHandler",
        max: cfg.RATE_LIMIT_MAX_REQUESTS,
        timeWindow: cfg.RATE_LIMIT_WINDOW_MS,
        redis,
        nameSpace: "gw-rl:",
        skipOnError: true,
        keyGenerator: (request) => {
          const id = auth.get(request)?.identity;
          return id ? `user:${id.userId}` : `ip:${request.ip}`;
        },
        errorResponseBuilder: (_request, context) =>
          new HttpError(429, "RATE_LIMITED", `Rate limit exceeded: ${context.max} requests per ${context.after === "" ? "window" : "window; retry in " + context.after}`),
      });

      api.get("/api/health", async (_request, reply) => {
        const targets = [...routes.values()];
        const results: Record<string, { status: "ok" | "down"; latencyMs?: number; error?: string }> = {
          [definition.name]: { status: "ok", latencyMs: 0 },
        };
        await Promise.all(
          targets.map(async (s) => {
            const t0 = performance.now();
            try {
              const r = await fetch(`${bases.get(s.name)}/health`, { signal: AbortSignal.timeout(cfg.HEALTH_TIMEOUT_MS) });
              await r.arrayBuffer();
              results[s.name] = r.ok
                ? { status: "ok", latencyMs: Math.round(performance.now() - t0) }
                : { status: "down", error: `HTTP ${r.status}` };
            } catch (e) {
              results[s.name] = { status: "down", error: (e as Error).name === "TimeoutError" ? `no answer within ${cfg.HEALTH_TIMEOUT_MS} ms` : "unreachable" };
            }
          }),
        );
        const allUp = Object.values(results).every((r) => r.status === "ok");
        return reply.status(allUp ? 200 : 503).send({ status: allUp ? "ok" : "degraded", services: results });
      });

      api.all("/api/*", async (request, reply) => {
        const url = new URL(request.url, "http://gateway.invalid"); // resolves ./ ../ %2e segments
        const m = /^\/api\/([^/]+)(\/.*)?$/.exec(url.pathname);
        const service = m ? routes.get(m[1]) : undefined;
        if (!m || !service) throw new HttpError(404, "NOT_FOUND", `No service at ${url.pathname.slice(0, 200)}`);
        const path = m[2] ?? "/";
        let decoded: string;
        try {
          decoded = decodeURIComponent(path).toLowerCase();
        } catch {
          throw new HttpError(400, "BAD_REQUEST", "Malformed path");
        }
        if (decoded.startsWith("/internal") || decoded.includes("\\") || decoded.includes("/../") || decoded.includes("\0"))
          throw new HttpError(404, "NOT_FOUND", `No service at ${url.pathname.slice(0, 200)}`);

        const a = auth.get(request) ?? {};
        if (a.error) throw a.error;
        const anonymous = service.anonymousPaths.some((p) => path === p || path === `${p}/`);
        if (!a.identity && !anonymous) throw new HttpError(401, "UNAUTHORIZED", "Authentication required: Bearer access token or x-api-key");

        const identity = a.identity;
        // Bodies arrive as raw Buffers (content-type parser above): forward them byte for byte.
        const raw = Buffer.isBuffer(request.body) && request.method !== "GET" && request.method !== "HEAD" ? request.body : undefined;
        return reply.from(`${bases.get(service.name)}${path}${url.search}`, {
          timeout: cfg.PROXY_TIMEOUT_MS,
          ...(raw ? { body: raw, contentType: request.headers["content-type"] ?? "application/octet-stream" } : {}),
          rewriteRequestHeaders: (_req, headers) => {
            const h: Record<string, string | string[] | undefined> = { ...headers };
            for (const name of stripped) delete h[name];
            h["x-request-id"] = String(request.id);
            h["x-forwarded-for"] = request.ip;
            if (identity) {
              h[IDENTITY_HEADERS.userId] = identity.userId;
              h[IDENTITY_HEADERS.role] = identity.role;
              h[IDENTITY_HEADERS.authMethod] = identity.authMethod;
              if (identity.apiKeyId) h[IDENTITY_HEADERS.apiKeyId] = identity.apiKeyId;
            }
            return h as typeof headers;
          },
          onResponse: (_req, rep, res) => {
            upstreamTotal.inc({ upstream: service.name, status_code: String(res.statusCode) });
            rep.send(res.stream);
          },
          onError: (rep, { error }) => {
            const timedOut = /timeout/i.test(error.name + error.message) || (error as { code?: string }).code === "UND_ERR_HEADERS_TIMEOUT";
            upstreamTotal.inc({ upstream: service.name, status_code: timedOut ? "504" : "502" });
            log.warn({ upstream: service.name, err: { message: error.message } }, "upstream request failed");
            rep
              .status(timedOut ? 504 : 502)
              .send(errorBody(request, timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE", `${service.name} is unavailable`));
          },
        });
      });
    });
  },
});
