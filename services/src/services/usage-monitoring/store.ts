/**
 * Usage events in ClickHouse: `usage_events_ms` (migration clickhouse/0021), to the millisecond,
 * and `usage_events` (clickhouse/0004), whole seconds, written before 0021. Written in batches from
 * platform.usage; read as counts and latency per user / API key / route. Billable units are the
 * requests a user made that the platform served: status < 500 and not rate-limited (429).
 */
import { clickhouseDateTime, type ClickHouseKitClient } from "../../kit";
import type { UsageEventMsg } from "../../business/events";
import type { UsageRowKey } from "./domain";

/** The millisecond of epoch `ms` within its second (0-999). */
const milliOf = (ms: number) => ((ms % 1000) + 1000) % 1000;

/**
 * The usage rows of [from, to) whose `filter` holds, as a subquery of `columns`. The rows of
 * usage_events_ms compare to the millisecond: its second (`at`) first, then `at_ms` within the
 * bounds' own seconds (no epoch arithmetic: the server's time zone reads both sides alike). The rows
 * of usage_events only know their second, and are read as they always were, between the seconds of
 * `from` and `to`: a window split before 0021 (a plan change) still counts each of them once.
 * Parameters: rangeParams.
 */
function usageIn(columns: string, filter: string): string {
  return `(SELECT ${columns} FROM usage_events WHERE at >= {fromSecond:DateTime} AND at < {toSecond:DateTime} AND ${filter}
           UNION ALL
           SELECT ${columns} FROM usage_events_ms WHERE at >= {fromSecond:DateTime} AND at <= {toSecond:DateTime}
             AND (at > {fromSecond:DateTime} OR at_ms >= {fromMilli:UInt16}) AND (at < {toSecond:DateTime} OR at_ms < {toMilli:UInt16}) AND ${filter})`;
}

function rangeParams(from: Date, to: Date) {
  return { fromSecond: clickhouseDateTime(from.getTime()), toSecond: clickhouseDateTime(to.getTime()), fromMilli: milliOf(from.getTime()), toMilli: milliOf(to.getTime()) };
}

export function usageRow(e: UsageEventMsg) {
  return {
    event_id: e.eventId,
    at: clickhouseDateTime(e.ts),
    at_ms: milliOf(e.ts),
    user_id: e.userId ?? "",
    api_key_id: e.apiKeyId ?? "",
    route: e.route,
    method: e.method,
    status: e.status,
    latency_ms: e.latencyMs,
  };
}

export interface UsageBreakdown {
  userId: string;
  apiKeyId: string | null;
  route: string;
  requests: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
}

export class UsageStore {
  constructor(private readonly ch: ClickHouseKitClient) {}

  async insert(events: UsageEventMsg[]): Promise<void> {
    if (events.length) await this.ch.insert("usage_events_ms", events.map(usageRow));
  }

  /** The user's billable requests in [from, to), to the millisecond. */
  async billableUnits(userId: string, from: Date, to: Date): Promise<number> {
    const rows = await this.ch.query<{ units: string }>(
      `SELECT toString(uniqExact(event_id)) AS units FROM ${usageIn("event_id", "user_id = {userId:String} AND status < 500 AND status != 429")}`,
      { userId, ...rangeParams(from, to) },
    );
    return Number(rows[0]?.units ?? 0);
  }

  /**
   * Per user (or one user), API key and route: requests, 5xx errors, latency quantiles; at most
   * `limit` rows in (user, route, API key) order, after the row `after` when given. One user's
   * filter is a plain `user_id =`, the tables' first key column: written as `({all} = 1 OR user_id =
   * ...)`, ClickHouse (18.16) could not use the key, and a trader's own usage read every user's rows
   * of the period (in the test, 600,000 rows of others' for their 2), at each request the rate limit let through.
   * The page's bound is a filter on the grouped columns, so each page reads only the rows from its
   * cursor's user on (`user_id` leads the key); the three columns make each answered row's place
   * unique, so no row is answered twice or skipped across pages. Spelled out rather than as a tuple
   * comparison, which 18.16 may not have.
   */
  async breakdown(from: Date, to: Date, userId?: string, page: { limit: number; after: UsageRowKey | null } = { limit: 1000, after: null }): Promise<UsageBreakdown[]> {
    const filters = [userId === undefined ? "1" : "user_id = {userId:String}"];
    if (page.after) {
      filters.push(
        `(user_id > {afterUser:String} OR (user_id = {afterUser:String} AND (route > {afterRoute:String} OR (route = {afterRoute:String} AND api_key_id > {afterKey:String}))))`,
      );
    }
    const after = page.after ? { afterUser: page.after[0], afterRoute: page.after[1], afterKey: page.after[2] } : {};
    const rows = await this.ch.query<{ user_id: string; api_key_id: string; route: string; requests: string; errors: string; p50: number; p95: number }>(
      `SELECT user_id, api_key_id, route, toString(uniqExact(event_id)) AS requests, toString(uniqExactIf(event_id, status >= 500)) AS errors,
              quantile(0.5)(latency_ms) AS p50, quantile(0.95)(latency_ms) AS p95
       FROM ${usageIn("event_id, user_id, api_key_id, route, status, latency_ms", filters.join(" AND "))}
       GROUP BY user_id, api_key_id, route ORDER BY user_id, route, api_key_id LIMIT {limit:UInt32}`,
      { ...rangeParams(from, to), ...(userId === undefined ? {} : { userId }), ...after, limit: page.limit },
    );
    return rows.map((r) => ({
      userId: r.user_id,
      apiKeyId: r.api_key_id || null,
      route: r.route,
      requests: Number(r.requests),
      errors: Number(r.errors),
      p50Ms: Math.round(r.p50 * 1000) / 1000,
      p95Ms: Math.round(r.p95 * 1000) / 1000,
    }));
  }
}
