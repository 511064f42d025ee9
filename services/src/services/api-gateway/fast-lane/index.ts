/**
 * The gateway's fast lane (README "Gateway speed"): the common request, a GET or HEAD under
 * /api/<route>/ the gateway can decide from its caches, served on node:net sockets with Node's own
 * llhttp parser (./connections.ts, ./upstream-pool.ts) instead of node:http's objects, Fastify and
 * undici, which cost the gateway most of its CPU per request (docs/measurements/gateway.md). What
 * it serves looks as through Fastify to the client, the upstream and the operator (./serve.ts, ./exchange.ts,
 * ./answer.ts); everything else is handed to node:http and Fastify, connection and all.
 *
 * On by default (../config.ts GATEWAY_FAST_LANE says why). GATEWAY_FAST_LANE=false: no lane, every
 * connection node:http's from its first byte. Off as well
 * when tracing is on (OTEL_EXPORTER_OTLP_*: the spans are node:http's and Fastify's) or when this
 * Node has no llhttp binding of the expected shape (./llhttp.ts).
 */
import { Counter } from "prom-client";
import { pathOf, type ServiceMetrics } from "../../../kit";
import { headerCountLimitFor } from "../../../kit/request-framing";
import { accessLogOf } from "../../../kit/probes";
import { clientAddressOf } from "../../../kit/client-address";
import { parseTrustProxy } from "../../../kit/request-guards";
import { tracesEndpoint } from "../../../kit/telemetry";
import type { Authenticator } from "../authenticate";
import { CounterTally } from "../counter-tally";
import type { GatewayContext } from "../config";
import type { GatewayLimits } from "../limits";
import type { ProxyShared } from "../proxy";
import type { UpstreamShares } from "../upstream-shares";
import type { UpstreamAnswerTimes } from "../upstreams";
import type { UsageEmitter } from "../usage";
import { LaneListener } from "./connections";
import { FastifyRouteCheck, type FindRoute } from "./fastify-route";
import { httpCommon } from "./llhttp";
import type { LaneDeps } from "./deps";
import { serveRequest } from "./serve";
import { UpstreamPool } from "./upstream-pool";

export interface FastLaneParts {
  shared: ProxyShared;
  routes: ReadonlyMap<string, unknown>;
  bases: ReadonlyMap<string, string>;
  authenticator: Authenticator;
  limits: GatewayLimits;
  usage: UsageEmitter | undefined;
  security: Readonly<Record<string, string>>;
  /** The Fastify path's record of each upstream's last answer (../upstreams.ts Upstreams.answers), shared. */
  upstreamAnswers: UpstreamAnswerTimes;
  /** Connections to each service, as many as the Fastify path's (../index.ts). */
  connections: number;
  /** Each client's share of the connections to a service: the Fastify path's instance, one count for both paths. */
  shares: UpstreamShares;
}

/** Why the lane is off (undefined: on). */
export function fastLaneOff(ctx: GatewayContext): string | undefined {
  if (!ctx.config.GATEWAY_FAST_LANE) return "GATEWAY_FAST_LANE=false";
  if (tracesEndpoint(ctx.env)) return "tracing is on (the spans are node:http's and Fastify's)";
  if (!httpCommon) return "this Node has no llhttp binding of the expected shape";
  return undefined;
}

/**
 * The kit's request-duration histogram (its /api/* route) observed through a child per method and status,
 * made once: prom-client's observe with a labels object made a function and two objects on each call.
 */
function durationsOf(metrics: ServiceMetrics): LaneDeps["observeDuration"] {
  const children = new Map<string, { observe(seconds: number): void }[]>();
  return (method, status, seconds) => {
    let byStatus = children.get(method);
    if (!byStatus) children.set(method, (byStatus = []));
    (byStatus[status] ??= metrics.httpDuration.labels({ method, route: "/api/*", status_code: String(status) })).observe(seconds);
  };
}

/** Takes over the server's connections (see the file's comment). */
export function installFastLane(ctx: GatewayContext, p: FastLaneParts): void {
  const { config: cfg, app, log } = ctx;
  const pool = new UpstreamPool({ connections: p.connections, keepAliveTimeoutMs: 30_000, answers: p.upstreamAnswers, log });
  let closing = false;
  const deps: LaneDeps = {
    server: app.server,
    targets: p.shared.targets,
    fastifyRoute: new FastifyRouteCheck(((o) => app.findRoute(o)) as FindRoute),
    targetOf: p.shared.targetOf,
    routes: p.routes,
    bases: new Map([...p.bases].map(([name, url]) => [name, new URL(url)])),
    authenticator: p.authenticator,
    limits: p.limits,
    rateMax: cfg.RATE_LIMIT_MAX_REQUESTS,
    clientAddress: clientAddressOf(parseTrustProxy(cfg.TRUST_PROXY, cfg.TRUST_PROXY_GLOBAL_IPV6)),
    maxHeaders: headerCountLimitFor(true),
    security: p.security,
    pool,
    shares: p.shares,
    sendTimeoutMs: cfg.CLIENT_SEND_TIMEOUT_MS,
    proxyTimeoutMs: cfg.PROXY_TIMEOUT_MS,
    requestTimeoutMs: cfg.REQUEST_TIMEOUT_MS,
    log,
    accessLog: accessLogOf(log),
    pathOf,
    observeDuration: durationsOf(ctx.metrics),
    upstreamTotal: p.shared.upstreamTotal,
    upstreamAnswers: p.shared.upstreamAnswers,
    usage: p.usage,
    draining: ctx.draining,
    closing: () => closing,
  };
  // What the lane did: requests it served, connections it handed to node:http and why (their requests
  // are counted by the kit's http_request_duration_seconds like every other): "request" (not one whole
  // GET or HEAD in the read), "parse" (llhttp refused it), "pipelined" (bytes arrived while the lane
  // answered), "framing", "route" (not routed before), "credentials", "limit" (no live lease, or over),
  // "headers" (not sendable as is), "closing", "error"; and the cold caches it warmed before deciding a
  // request again (outcome "warmed": "route", "credentials", "limit"), its connection kept.
  // (Requests served: counted in process, added when the counter is read: ../counter-tally.ts.)
  const served = new CounterTally<"outcome" | "reason">(() => ({ outcome: "served", reason: "" }));
  const lanes: Counter<"outcome" | "reason"> = new Counter({
    name: "gateway_fast_lane_total",
    help: "Requests served by the gateway's fast lane, caches it warmed and connections it handed to Fastify (by reason)",
    labelNames: ["outcome", "reason"],
    registers: [ctx.metrics.registry],
    collect: () => served.addTo(lanes),
  });
  const lane = new LaneListener(
    app.server,
    (req, conn) => {
      const taken = serveRequest(deps, req, conn);
      if (taken === true) served.add("served", 0);
      return taken;
    },
    () => closing,
    (err, outcome) => log.error({ err }, `fast lane failed on a request; ${outcome}`),
    (reason, req) => {
      lanes.inc({ outcome: "handed_over", reason });
      // (Debug: the request's id, the one Fastify's lines name next: ./handed-over.ts.)
      if (req?.requestId !== undefined && log.isLevelEnabled("debug")) log.debug({ requestId: req.requestId, method: req.method, url: pathOf(req.url), reason }, "fast lane handed the request over");
    },
    (reason, req) => {
      lanes.inc({ outcome: "warmed", reason });
      if (log.isLevelEnabled("debug")) log.debug({ requestId: req.requestId, method: req.method, url: pathOf(req.url), reason }, "fast lane warming a cold cache");
    },
  );
  ctx.closing.addEventListener("abort", () => {
    closing = true;
    lane.closeIdle();
  });
  ctx.onClose(() => pool.close());
}
