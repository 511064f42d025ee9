/**
 * OTLP/HTTP JSON (opentelemetry-proto's JSON mapping: hex ids, nanosecond times as strings or
 * numbers, typed attribute values) into the rows chain-debug stores: one per span, one per
 * exception event. Pure; anything malformed is a OtlpError naming the field.
 */
import { isJsonObject } from "../../kit";
import { fingerprintOf } from "./fingerprint";

export class OtlpError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export type AttrValue = string | number | boolean | null | AttrValue[] | { [k: string]: AttrValue };

export interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  service: string;
  name: string;
  kind: number;
  start_us: number;
  duration_us: number;
  status_code: number;
  status_message: string;
  http_status: number;
  request_id: string;
  attributes: string;
  events: string;
  links: string;
  link_trace_ids: string[];
}

export interface ErrorRow {
  fingerprint: string;
  at_us: number;
  service: string;
  trace_id: string;
  span_id: string;
  event_index: number;
  type: string;
  message: string;
  stack: string;
  span_name: string;
}

/** Limits per request (the exporter sends at most 512 spans per batch). */
export const MAX_SPANS = 5_000;
const MAX_STRING = 16_384;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

const list = (v: unknown, field: string): unknown[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new OtlpError(field, `${field} must be an array`);
  return v;
};
const clip = (s: string) => (s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…` : s);

function id(v: unknown, re: RegExp, field: string, optional = false): string {
  if ((v === undefined || v === "" || v === null) && optional) return "";
  const s = typeof v === "string" ? v.toLowerCase() : "";
  if (!re.test(s) || /^0+$/.test(s)) throw new OtlpError(field, `${field} must be a non-zero hex id of ${re === HEX32 ? 32 : 16} characters`);
  return s;
}

/** Nanoseconds (string or number) -> microseconds. */
function micros(v: unknown, field: string): number {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.floor(v / 1000);
  if (typeof v === "string" && /^\d{1,20}$/.test(v)) return Number(BigInt(v) / 1000n);
  throw new OtlpError(field, `${field} must be nanoseconds since the epoch`);
}

function value(v: unknown, field: string, depth = 0): AttrValue {
  if (!isJsonObject(v) || depth > 4) return null;
  if (typeof v.stringValue === "string") return clip(v.stringValue);
  if (typeof v.boolValue === "boolean") return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (isJsonObject(v.arrayValue)) return list(v.arrayValue.values, field).map((x) => value(x, field, depth + 1));
  if (isJsonObject(v.kvlistValue)) return attributes(v.kvlistValue.values, field, depth + 1);
  return null;
}

export function attributes(v: unknown, field: string, depth = 0): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [i, kv] of list(v, field).entries()) {
    if (!isJsonObject(kv) || typeof kv.key !== "string") throw new OtlpError(`${field}[${i}]`, `${field}[${i}] must be { key, value }`);
    out[kv.key] = value(kv.value, `${field}[${i}].value`, depth);
  }
  return out;
}

const str = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

/** Parses one ExportTraceServiceRequest (JSON). */
export function parseOtlpTraces(body: unknown): { spans: SpanRow[]; errors: ErrorRow[] } {
  if (!isJsonObject(body)) throw new OtlpError("body", "body must be an ExportTraceServiceRequest object");
  const spans: SpanRow[] = [];
  const errors: ErrorRow[] = [];
  for (const [ri, rs] of list(body.resourceSpans, "resourceSpans").entries()) {
    const rf = `resourceSpans[${ri}]`;
    if (!isJsonObject(rs)) throw new OtlpError(rf, `${rf} must be an object`);
    const resource = isJsonObject(rs.resource) ? attributes(rs.resource.attributes, `${rf}.resource.attributes`) : {};
    const service = str(resource["service.name"]) || "unknown";
    for (const [si, ss] of list(rs.scopeSpans, `${rf}.scopeSpans`).entries()) {
      const sf = `${rf}.scopeSpans[${si}]`;
      if (!isJsonObject(ss)) throw new OtlpError(sf, `${sf} must be an object`);
      for (const [pi, s] of list(ss.spans, `${sf}.spans`).entries()) {
        const f = `${sf}.spans[${pi}]`;
        if (!isJsonObject(s)) throw new OtlpError(f, `${f} must be an object`);
        if (spans.length >= MAX_SPANS) throw new OtlpError("resourceSpans", `at most ${MAX_SPANS} spans per request`);
        const traceId = id(s.traceId, HEX32, `${f}.traceId`);
        const spanId = id(s.spanId, HEX16, `${f}.spanId`);
        const start = micros(s.startTimeUnixNano, `${f}.startTimeUnixNano`);
        const end = micros(s.endTimeUnixNano, `${f}.endTimeUnixNano`);
        const attrs = attributes(s.attributes, `${f}.attributes`);
        const name = clip(str(s.name));
        const events = list(s.events, `${f}.events`).map((e, ei) => {
          const ef = `${f}.events[${ei}]`;
          if (!isJsonObject(e)) throw new OtlpError(ef, `${ef} must be an object`);
          return { name: clip(str(e.name)), at_us: micros(e.timeUnixNano, `${ef}.timeUnixNano`), attributes: attributes(e.attributes, `${ef}.attributes`) };
        });
        const links = list(s.links, `${f}.links`).map((l, li) => {
          const lf = `${f}.links[${li}]`;
          if (!isJsonObject(l)) throw new OtlpError(lf, `${lf} must be an object`);
          return { trace_id: id(l.traceId, HEX32, `${lf}.traceId`), span_id: id(l.spanId, HEX16, `${lf}.spanId`) };
        });
        const status = isJsonObject(s.status) ? s.status : {};
        const httpStatus = Number(attrs["http.response.status_code"] ?? attrs["http.status_code"] ?? 0);
        spans.push({
          trace_id: traceId,
          span_id: spanId,
          parent_span_id: id(s.parentSpanId, HEX16, `${f}.parentSpanId`, true),
          service,
          name,
          kind: Number.isInteger(s.kind) ? Number(s.kind) : 0,
          start_us: start,
          duration_us: Math.max(0, end - start),
          status_code: Number.isInteger(status.code) ? Number(status.code) : 0,
          status_message: clip(str(status.message)),
          http_status: Number.isInteger(httpStatus) && httpStatus > 0 && httpStatus < 1000 ? httpStatus : 0,
          request_id: str(attrs["http.request.id"]).slice(0, 128),
          attributes: JSON.stringify(attrs),
          events: JSON.stringify(events),
          links: JSON.stringify(links),
          link_trace_ids: [...new Set(links.map((l) => l.trace_id))],
        });
        events.forEach((e, ei) => {
          if (e.name !== "exception") return;
          const type = str(e.attributes["exception.type"]) || "Error";
          const message = str(e.attributes["exception.message"]);
          const stack = str(e.attributes["exception.stacktrace"]);
          errors.push({ fingerprint: fingerprintOf(type, message, stack), at_us: e.at_us, service, trace_id: traceId, span_id: spanId, event_index: ei, type, message, stack, span_name: name });
        });
      }
    }
  }
  return { spans, errors };
}
