/**
 * chain-debug's HTTP API. The OTLP intake is internal (the gateway never proxies /internal); every
 * other route is admin-only (the gateway's verified role, checked here).
 */
import type { App } from "../../kit";
import { HttpError, requireIdentity, ResponseObject, Type, unavailable } from "../../kit";
import { OtlpError, parseOtlpTraces } from "./otlp";
import type { DebugStore } from "./store";
import { buildTree } from "./tree";

const TraceId = Type.String({ pattern: "^[0-9a-fA-F]{32}$" });
const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 }));
const Service = Type.Optional(Type.String({ pattern: "^[a-z0-9-]{1,64}$" }));
/** Spans of one trace an answer holds (its linked traces' too). */
export const MAX_TRACE_SPANS = 10_000;

// Responses (OpenAPI; unnamed fields are kept).
const TracesOut = ResponseObject({ traces: Type.Array(ResponseObject({}, { description: "a trace: id, root span, services, duration, errors" })) });
const TreeOut = ResponseObject({ traceId: Type.String() }, { description: "the trace's span tree and the traces linked to it (consumers of its messages)" });

export function registerRoutes(app: App, store: DebugStore, opts: { maxBodyBytes: number }): void {
  // OTLP/JSON's int64 (nanosecond times, intValue) may come as JSON numbers: taken as the nearest double (the microsecond stored may be one off).
  app.post("/internal/otlp/v1/traces", { bodyLimit: opts.maxBodyBytes, config: { takesInexactNumbers: true, takesAnyBody: true } }, async (req) => {
    let parsed;
    try {
      parsed = parseOtlpTraces(req.body);
    } catch (e) {
      if (e instanceof OtlpError) throw new HttpError(400, "INVALID_OTLP", e.message, e.field);
      throw e;
    }
    try {
      await store.insert(parsed.spans, parsed.errors);
    } catch (err) {
      // 503 is retryable for OTLP exporters: the batch comes again instead of being lost.
      req.log.warn({ err: { message: (err as Error).message } }, "spans not stored; exporter asked to retry");
      throw unavailable("STORAGE_UNAVAILABLE", "spans could not be stored; retry", 2);
    }
    return { partialSuccess: {} };
  });

  app.get("/traces", { schema: { querystring: Type.Object({ limit: Limit, errorsOnly: Type.Optional(Type.Boolean()), service: Service }), response: { 200: TracesOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return { traces: await store.recentTraces(req.query.limit ?? 50, req.query.errorsOnly ?? false, req.query.service) };
  });

  app.get("/traces/:traceId", { schema: { params: Type.Object({ traceId: TraceId }), response: { 200: TreeOut } } }, async (req) => {
    requireIdentity(req, "admin");
    const traceId = req.params.traceId.toLowerCase();
    // A trace's first MAX_TRACE_SPANS spans, `truncated: true` when it has more: spans come from
    // any peer's exporter, and a trace read whole was as large as they made it.
    const tree = async (id: string) => {
      const rows = await store.trace(id, MAX_TRACE_SPANS + 1);
      return { ...buildTree(rows.slice(0, MAX_TRACE_SPANS)), ...(rows.length > MAX_TRACE_SPANS ? { truncated: true } : {}) };
    };
    const own = await tree(traceId);
    if (own.spanCount === 0) throw new HttpError(404, "NOT_FOUND", `no spans of trace ${traceId} (not received yet, or expired)`);
    // Work the request caused elsewhere and linked to it (Kafka consumers' batches).
    const linked = [];
    for (const id of await store.linkedTraces(traceId)) linked.push({ traceId: id, ...(await tree(id)) });
    return { traceId, ...own, linked };
  });

  app.get("/requests/:requestId", { schema: { params: Type.Object({ requestId: Type.String({ pattern: "^[A-Za-z0-9._:-]{1,128}$" }) }), response: { 200: ResponseObject({ requestId: Type.String(), traceIds: Type.Array(Type.String()) }) } } }, async (req) => {
    requireIdentity(req, "admin");
    return { requestId: req.params.requestId, traceIds: await store.traceIdsByRequest(req.params.requestId) };
  });

  app.get("/errors", { schema: { querystring: Type.Object({ limit: Limit, service: Service }), response: { 200: ResponseObject({ groups: Type.Array(ResponseObject({}, { description: "an error group: fingerprint, service, message, counts, first and last seen" })) }) } } }, async (req) => {
    requireIdentity(req, "admin");
    return { groups: await store.groups(req.query.limit ?? 50, req.query.service) };
  });

  app.get("/errors/:fingerprint", { schema: { params: Type.Object({ fingerprint: Type.String({ pattern: "^[0-9a-f]{32}$" }) }), querystring: Type.Object({ limit: Limit }), response: { 200: ResponseObject({ occurrences: Type.Array(Type.Unknown()) }, { description: "the error group and its latest occurrences" }) } } }, async (req) => {
    requireIdentity(req, "admin");
    // That group alone: picked out of the 1,000 newest, an older one was a 404.
    const [group] = await store.groups(1, undefined, req.params.fingerprint);
    if (!group) throw new HttpError(404, "NOT_FOUND", "no such error group");
    return { ...group, occurrences: await store.occurrences(req.params.fingerprint, req.query.limit ?? 50) };
  });
}
