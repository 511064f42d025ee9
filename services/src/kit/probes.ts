/**
 * What every service answers besides its own routes: `GET /health` (liveness, no dependency
 * checks), `GET /ready` (datastores + extra checks, each bounded), `GET /metrics` (prom-client),
 * plus the request id header and the one "request completed" log line per request.
 */
import type { Logger } from "pino";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { INTERNAL_PATH_PREFIXES, isInternalPath, type Datastore } from "../catalog";
import { clientRequestIdOf, type App } from "./app";
import type { Datastores } from "./datastores";
import { drainAnswerOf, markDrainAnswer } from "./drain-answers";
import { withTimeout } from "./deadline";
import { levelEnabled } from "./request-logger";
import { pathOf } from "./request-path";
import { scrubString } from "./telemetry/scrub";

export type ReadinessCheck = () => Promise<void>;

/** The platform's own paths (probes, metrics, /internal), in the catalog (catalog/edge.ts), which the policy pack reads too. */
export { INTERNAL_PATH_PREFIXES, isInternalPath };

export interface ServiceMetrics {
  registry: Registry;
  httpDuration: Histogram<string>;
  dependencyUp: Gauge<string>;
}

export function createMetrics(service: string, defaultMetrics: boolean): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route and status",
    labelNames: ["method", "route", "status_code"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const dependencyUp = new Gauge({
    name: "service_dependency_up",
    help: "1 when the dependency answered its last readiness check, 0 when it failed",
    labelNames: ["dependency"],
    registers: [registry],
  });
  return { registry, httpDuration, dependencyUp };
}

export interface ProbeOptions {
  service: string;
  log: Logger;
  metrics: ServiceMetrics;
  datastores: Datastores;
  extraChecks: ReadonlyArray<{ name: string; check: ReadinessCheck; required: boolean }>;
  readyTimeoutMs: number;
  /** Shutting down, still serving (runService's SHUTDOWN_DRAIN_MS): /ready answers 503 and every response closes its connection. */
  draining: () => boolean;
  /** The entry point: the access line also names the x-request-id the client sent (`clientRequestId`, never the request's id). */
  logClientRequestIds?: boolean;
}

/**
 * The logger of the access line. Its fields are fixed and hold no secret (the request id, method,
 * path without the query or a fragment, status, duration), so it skips the redaction
 * (./log-redaction.ts), which it would pay on every request of every service. bench/log-redaction.ts, CPU per line on 2026-12-05:
 * 5.9 µs skipping, 6.6 µs through the walk; pino's wildcard paths it replaced cost 19 µs (earlier
 * measured with a null stream, 34 vs 6 µs).
 */
export function accessLogOf(log: Logger): Logger {
  return log.child({}, { formatters: { log: writtenAsGiven } });
}

const writtenAsGiven = (fields: object): object => fields;

export function installProbes(app: App, o: ProbeOptions): void {
  const { metrics, datastores } = o;
  const accessLog = accessLogOf(o.log);
  // Callback-style hooks: they run on every request of every service, and an async hook costs a
  // promise and a microtask turn each.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    // Draining: the request is served, and its connection closed after the answer, so a client
    // holding keep-alive connections (the gateway's pools, the ingress) moves to the other replicas
    // before this one stops listening, instead of sending a request into the close (a 503).
    if (o.draining()) reply.header("connection", "close");
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    // A drain answer (./closing-answers.ts) is counted above as the 5xx it is, and logged as what it is: not an error.
    const drain = reply.statusCode >= 500 ? drainAnswerOf(reply) : undefined;
    const level = drain ? drain.level : reply.statusCode >= 500 ? "error" : "info";
    // From the service logger with the request id as a field: the same line as from request.log
    // (at the route's log level), without making the request's child logger (./request-logger.ts).
    if (levelEnabled(request.log, level)) {
      const clientRequestId = o.logClientRequestIds ? clientRequestIdOf(request.raw) : undefined;
      accessLog[level]({ requestId: request.id, ...(clientRequestId ? { clientRequestId } : {}), method: request.method, url: pathOf(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...(drain ? { reason: drain.reason } : {}) }, "request completed");
    }
    done();
  });

  // The probes and /metrics take no query parameter (the kit's default, ./query-parameters.ts: any is
  // a 400 naming it): Kubernetes' httpGet probes and the containers' HEALTHCHECK (components/services.ts,
  // src/healthcheck.ts) ask the bare paths, Prometheus scrapes /metrics with no `params`
  // (components/monitoring/prometheus.ts) and negotiates its format by the Accept header, and
  // prom-client reads no parameter to filter by.
  app.get("/health", { logLevel: "warn" }, async () => ({ status: "ok", service: o.service }));

  app.get("/ready", { logLevel: "warn" }, async (_request, reply) => {
    if (o.draining()) {
      // Info: the route logs at warn, so the probes of a drain write nothing (they were errors before).
      markDrainAnswer(reply, "draining: the service received SIGTERM", "info");
      return reply.status(503).send({ status: "draining", service: o.service, dependencies: {} });
    }
    type Result = { status: "ok" | "failed" | "disabled"; required: boolean; latencyMs?: number; error?: string };
    const checks: Array<{ name: string; required: boolean; run?: ReadinessCheck }> = [
      ...datastores.list().map(({ name, state }) => ({
        name: name as string,
        required: state.status === "enabled" && state.required,
        run: state.status === "enabled" ? () => datastores.get(name as Datastore).ping() : undefined,
      })),
      ...o.extraChecks.map((c) => ({ name: c.name, required: c.required, run: c.check })),
    ];
    const results: Record<string, Result> = {};
    await Promise.all(
      checks.map(async (c) => {
        if (!c.run) {
          results[c.name] = { status: "disabled", required: false };
          return;
        }
        const t0 = performance.now();
        try {
          await withTimeout(c.run(), o.readyTimeoutMs, c.name);
          results[c.name] = { status: "ok", required: c.required, latencyMs: Math.round((performance.now() - t0) * 10) / 10 };
          metrics.dependencyUp.set({ dependency: c.name }, 1);
        } catch (e) {
          // A client's message may hold its login: arangojs refuses an ARANGO_URL with `user:password@`
          // naming the whole URL. Credential shapes masked as in spans and logs.
          results[c.name] = { status: "failed", required: c.required, error: scrubString((e as Error).message || String(e)) };
          metrics.dependencyUp.set({ dependency: c.name }, 0);
        }
      }),
    );
    const ready = Object.values(results).every((r) => r.status !== "failed" || !r.required);
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready", service: o.service, dependencies: results });
  });

  app.get("/metrics", { logLevel: "warn" }, async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
