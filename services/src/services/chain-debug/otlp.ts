/**
 * OTLP/HTTP JSON (opentelemetry-proto's JSON mapping: hex ids, nanosecond times as strings or
 * numbers, typed attribute values) into the rows chain-debug stores: one per span, one per
 * exception event. Pure; anything malformed is a OtlpError naming the field.
 */
import { isJsonObject, LATEST_INSTANT } from "../../kit";
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
/**
 * Events and links one span may carry (the SDK's default span limits are 128 of each). An exception
 * event's index is a UInt16 column: past 65,535 events ClickHouse wrapped it, and the error counts
 * (uniqExact over trace, span and index) merged different events.
 */
export const MAX_EVENTS_PER_SPAN = 1_000;
export const MAX_LINKS_PER_SPAN = 1_000;
const MAX_STRING = 16_384;
/**
 * The latest instant a span may carry, in microseconds: the platform's (kit instants.ts), what the
 * tables' Date and DateTime columns hold. Past it ClickHouse refused the insert (a 503 the exporter
 * retried forever) or stored the day wrapped to another year.
 */
const LATEST_US = Date.parse(LATEST_INSTANT) * 1000;

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

/** Nanoseconds (string or number) -> microseconds, within the instants the platform stores. */
function micros(v: unknown, field: string): number {
  const us = typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v / 1000) : typeof v === "string" && /^\d{1,20}$/.test(v) ? Number(BigInt(v) / 1000n) : NaN;
  if (us >= 0 && us <= LATEST_US) return us;
  throw new OtlpError(field, `${field} must be nanoseconds since the epoch, at most ${LATEST_INSTANT}`);
}

/**
 * An enum of the protocol (span kind, status code) as its column holds it (UInt8): a number other than
 * one of its values is refused (300 was stored wrapped to 44, -1 failed the insert); anything else but
 * a number (absent, an enum's name) is 0, unspecified, as before.
 */
function enumValue(v: unknown, max: number, field: string): number {
  if (typeof v !== "number") return 0;
  if (Number.isInteger(v) && v >= 0 && v <= max) return v;
  throw new OtlpError(field, `${field} must be an integer from 0 to ${max}`);
}

/** A list of at most `max` items (events, links of a span). */
function bounded(v: unknown, max: number, field: string): unknown[] {
  const items = list(v, field);
  if (items.length > max) throw new OtlpError(field, `at most ${max} ${field.slice(field.lastIndexOf(".") + 1)} per span`);
  return items;
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
  // No prototype: a key "__proto__" is an attribute like any other, not the object's prototype
  // (whose members, an "http.request.id" among them, the reads below would then find).
  const out: Record<string, AttrValue> = Object.create(null);
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
        const events = bounded(s.events, MAX_EVENTS_PER_SPAN, `${f}.events`).map((e, ei) => {
          const ef = `${f}.events[${ei}]`;
          if (!isJsonObject(e)) throw new OtlpError(ef, `${ef} must be an object`);
          return { name: clip(str(e.name)), at_us: micros(e.timeUnixNano, `${ef}.timeUnixNano`), attributes: attributes(e.attributes, `${ef}.attributes`) };
        });
        const links = bounded(s.links, MAX_LINKS_PER_SPAN, `${f}.links`).map((l, li) => {
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
          kind: enumValue(s.kind, 5, `${f}.kind`),
          start_us: start,
          duration_us: Math.max(0, end - start),
          status_code: enumValue(status.code, 2, `${f}.status.code`),
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
