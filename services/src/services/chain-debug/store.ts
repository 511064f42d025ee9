/** chain-debug's ClickHouse tables (migration 0020_chain_debug.sql): spans and exception events. */
import { clickhouseDateTime, isClosedSocket, type ClickHouseKitClient } from "../../kit";
import type { ErrorRow, SpanRow } from "./otlp";

export interface ErrorGroup {
  fingerprint: string;
  type: string;
  message: string;
  services: string[];
  count: number;
  firstSeen: string;
  lastSeen: string;
  lastTraceId: string;
}

const iso = (us: number | string) => new Date(Number(us) / 1000).toISOString();
const dayOf = (us: number) => new Date(us / 1000).toISOString().slice(0, 10);
const secondOf = (us: number) => clickhouseDateTime(us / 1000);

export class DebugStore {
  constructor(private readonly ch: ClickHouseKitClient) {}

  /** Stores a batch; a reused keep-alive socket the server already closed is retried once (duplicates are read once). */
  async insert(spans: SpanRow[], errors: ErrorRow[]): Promise<void> {
    const once = async <T>(table: string, rows: T[]) => {
      if (!rows.length) return;
      try {
        await this.ch.insert(table, rows);
      } catch (err) {
        if (!isClosedSocket(err)) throw err;
        await this.ch.insert(table, rows);
      }
    };
    await once("debug_spans", spans.map((s) => ({ ...s, date: dayOf(s.start_us) })));
    await once("debug_errors", errors.map((e) => ({ ...e, at: secondOf(e.at_us), date: dayOf(e.at_us) })));
  }

  /** The first `limit` spans of a trace by start, deduplicated by span id (retried exports). */
  async trace(traceId: string, limit: number): Promise<SpanRow[]> {
    return this.ch.query<SpanRow>(
      `SELECT trace_id, span_id, parent_span_id, service, name, kind, toString(start_us) AS start_us, toString(duration_us) AS duration_us,
              status_code, status_message, http_status, request_id, attributes, events, links, link_trace_ids
       FROM debug_spans WHERE trace_id = {traceId:String} ORDER BY start_us LIMIT 1 BY span_id LIMIT {limit:UInt32}`,
      { traceId, limit },
    );
  }

  /** Traces with a span linking into `traceId` (a Kafka consumer's batch linked to the producing request). */
  async linkedTraces(traceId: string, limit = 20): Promise<string[]> {
    const rows = await this.ch.query<{ trace_id: string }>(
      `SELECT DISTINCT trace_id FROM debug_spans WHERE has(link_trace_ids, {traceId:String}) AND trace_id != {traceId:String} LIMIT {limit:UInt32}`,
      { traceId, limit },
    );
    return rows.map((r) => r.trace_id);
  }

  async traceIdsByRequest(requestId: string): Promise<string[]> {
    const rows = await this.ch.query<{ trace_id: string }>(`SELECT DISTINCT trace_id FROM debug_spans WHERE request_id = {requestId:String} LIMIT 10`, { requestId });
    return rows.map((r) => r.trace_id);
  }

  /** Recent root spans (entry requests), newest first; `errorsOnly` keeps failed ones. */
  async recentTraces(limit: number, errorsOnly: boolean, service?: string) {
    const rows = await this.ch.query<{ trace_id: string; service: string; name: string; start_us: string; duration_us: string; status_code: number; http_status: number; request_id: string }>(
      `SELECT trace_id, service, name, toString(start_us) AS start_us, toString(duration_us) AS duration_us, status_code, http_status, request_id
       FROM debug_spans WHERE parent_span_id = '' ${errorsOnly ? "AND status_code = 2" : ""} ${service ? "AND service = {service:String}" : ""}
       ORDER BY start_us DESC LIMIT 1 BY span_id LIMIT {limit:UInt32}`,
      { limit, ...(service ? { service } : {}) },
    );
    return rows.map((r) => ({ traceId: r.trace_id, service: r.service, name: r.name, startedAt: iso(r.start_us), durationUs: Number(r.duration_us), error: r.status_code === 2, httpStatus: r.http_status || undefined, requestId: r.request_id || undefined }));
  }

  /** Error groups with exact counts (duplicates from retried exports are counted once); `fingerprint`: that group alone. */
  async groups(limit: number, service?: string, fingerprint?: string): Promise<ErrorGroup[]> {
    const where = [service ? "service = {service:String}" : "", fingerprint ? "fingerprint = {fingerprint:String}" : ""].filter(Boolean);
    const rows = await this.ch.query<{ fingerprint: string; type: string; message: string; services: string[]; n: string; first_us: string; last_us: string; last_trace: string }>(
      `SELECT fingerprint, any(type) AS type, argMax(message, at_us) AS message, groupUniqArray(service) AS services,
              toString(uniqExact(trace_id, span_id, event_index)) AS n, toString(min(at_us)) AS first_us, toString(max(at_us)) AS last_us,
              argMax(trace_id, at_us) AS last_trace
       FROM debug_errors ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       GROUP BY fingerprint ORDER BY max(at_us) DESC LIMIT {limit:UInt32}`,
      { limit, ...(service ? { service } : {}), ...(fingerprint ? { fingerprint } : {}) },
    );
    return rows.map((r) => ({ fingerprint: r.fingerprint, type: r.type, message: r.message, services: [...r.services].sort(), count: Number(r.n), firstSeen: iso(r.first_us), lastSeen: iso(r.last_us), lastTraceId: r.last_trace }));
  }

  async occurrences(fingerprint: string, limit: number) {
    const rows = await this.ch.query<{ trace_id: string; span_id: string; service: string; span_name: string; message: string; stack: string; at_us: string }>(
      `SELECT trace_id, span_id, service, span_name, message, stack, toString(at_us) AS at_us FROM debug_errors
       WHERE fingerprint = {fingerprint:String} ORDER BY at_us DESC LIMIT 1 BY trace_id, span_id, event_index LIMIT {limit:UInt32}`,
      { fingerprint, limit },
    );
    return rows.map((r) => ({ traceId: r.trace_id, spanId: r.span_id, service: r.service, span: r.span_name, message: r.message, stack: r.stack, at: iso(r.at_us) }));
  }
}
