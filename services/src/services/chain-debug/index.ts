/**
 * chain-debug (8030, `/api/debug/`): error tracking and request traces for the platform.
 * Every service exports its spans here over OTLP/HTTP JSON (the kit's tracing, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * = http://chain-debug:8030/internal/otlp/v1/traces); spans and their exception events are stored in
 * ClickHouse (debug_spans, debug_errors), errors grouped by fingerprint (./fingerprint.ts).
 *   POST /internal/otlp/v1/traces   OTLP intake (internal only; the gateway never proxies /internal)
 *   GET  /traces?limit&errorsOnly&service   recent requests (root spans)            admin
 *   GET  /traces/:traceId           one request's path across services as a tree,
 *                                   plus the traces linked to it (Kafka consumers)  admin
 *   GET  /requests/:requestId       trace ids of a request id (x-request-id)       admin
 *   GET  /errors?limit&service      error groups: count, first and last seen       admin
 *   GET  /errors/:fingerprint       one group and its latest occurrences           admin
 * Retention: daily partitions older than DEBUG_RETENTION_DAYS are dropped hourly (18.16 has no TTL).
 */
import { defineService, Type } from "../../kit";
import { registerRoutes } from "./routes";
import { DebugStore } from "./store";
import { dropExpiredPartitions } from "./retention";

export default defineService({
  name: "chain-debug",
  config: {
    DEBUG_RETENTION_DAYS: Type.Integer({ default: 14, minimum: 1, maximum: 3_650 }),
    /** Largest OTLP request accepted (an exporter batch of 512 spans is well under 4 MiB). */
    DEBUG_MAX_BODY_BYTES: Type.Integer({ default: 8 * 1_048_576, minimum: 65_536, maximum: 64 * 1_048_576 }),
  },
  async register(ctx) {
    const ch = ctx.app.clickhouse;
    registerRoutes(ctx.app, new DebugStore(ch), { maxBodyBytes: ctx.config.DEBUG_MAX_BODY_BYTES });
    const sweep = () =>
      dropExpiredPartitions(ch, ctx.config.DEBUG_RETENTION_DAYS).catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "retention sweep failed"));
    const timer = setInterval(sweep, 3_600_000);
    timer.unref();
    ctx.onClose(() => clearInterval(timer));
  },
});
