/**
 * usage_events in ClickHouse (migration clickhouse/0003). Written in batches from platform.usage;
 * read as counts and latency per user / API key / route. Billable units are the requests a user
 * made that the platform served: status < 500 and not rate-limited (429).
 */
import type { ClickHouseKitClient } from "../../kit";
import type { UsageEventMsg } from "../../business/events";

const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

export function usageRow(e: UsageEventMsg) {
  return {
    event_id: e.eventId,
    at: chTime(e.ts),
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
    if (events.length) await this.ch.insert("usage_events", events.map(usageRow));
  }

  async billableUnits(userId: string, from: Date, to: Date): Promise<number> {
    const rows = await this.ch.query<{ units: string }>(
      `SELECT toString(uniqExact(event_id)) AS units FROM usage_events
       WHERE user_id = {userId:String} AND at >= {from:DateTime} AND at < {to:DateTime} AND status < 500 AND status != 429`,
      { userId, from, to },
    );
    return Number(rows[0]?.units ?? 0);
  }

  /** Per user (or one user), API key and route: requests, 5xx errors, latency quantiles. */
  async breakdown(from: Date, to: Date, userId?: string): Promise<UsageBreakdown[]> {
    const rows = await this.ch.query<{ user_id: string; api_key_id: string; route: string; requests: string; errors: string; p50: number; p95: number }>(
      `SELECT user_id, api_key_id, route, toString(uniqExact(event_id)) AS requests, toString(uniqExactIf(event_id, status >= 500)) AS errors,
              quantile(0.5)(latency_ms) AS p50, quantile(0.95)(latency_ms) AS p95
       FROM usage_events
       WHERE at >= {from:DateTime} AND at < {to:DateTime} AND ({all:UInt8} = 1 OR user_id = {userId:String})
       GROUP BY user_id, api_key_id, route ORDER BY user_id, route, api_key_id LIMIT 1000`,
      { from, to, all: userId === undefined ? 1 : 0, userId: userId ?? "" },
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
