/**
 * performance-analytics: the rollup's watermark (ClickHouse pa_rollup_watermark, migration 0008) and
 * the users whose inputs changed since it. Times are ClickHouse's own clock in seconds: the clock
 * that stamps `inserted_at` on pa_fills, pa_order_strategies and market_candles, so a replica's
 * clock never decides what counts as new.
 */
import type { ClickHouseKitClient } from "../../kit";

export interface Watermark {
  /** Inputs inserted from this second (less the pass's overlap) are new to the next pass. */
  through: number;
  /** The UTC day the pass ran on (YYYY-MM-DD): the last day a curve could end on. */
  day: string;
  /** The figures' parameters (capital base and price timeframe): another value rebuilds every user. */
  params: string;
  /** The pass's version of pa_daily rows; the next pass writes a greater one. */
  version: number;
}

export interface ChangedSince {
  /** Unix seconds: inputs inserted at or after it count as changed. */
  since: number;
  /** Closes dated after this day count as changed too (a curve ends on the pass's day at the latest). */
  closesAfter: string;
  timeframe: string;
}

export class RollupWatermarks {
  constructor(private readonly ch: ClickHouseKitClient) {}

  /** ClickHouse's clock, in unix seconds. */
  async serverNow(): Promise<number> {
    const rows = await this.ch.query<{ s: string }>("SELECT toString(toUInt32(now())) AS s");
    return Number(rows[0].s);
  }

  /** The watermark of the last completed pass of rollup `name` (highest version), if any. */
  async read(name: string): Promise<Watermark | undefined> {
    const rows = await this.ch.query<{ through: string; day: string; params: string; version: string }>(
      `SELECT toString(through) AS through, toString(day) AS day, params, toString(version) AS version
         FROM pa_rollup_watermark WHERE name = {name:String} ORDER BY version DESC LIMIT 1`,
      { name },
    );
    const r = rows[0];
    return r && { through: Number(r.through), day: r.day, params: r.params, version: Number(r.version) };
  }

  async write(name: string, w: Watermark): Promise<void> {
    await this.ch.insert("pa_rollup_watermark", [{ name, through: w.through, day: w.day, params: w.params, version: w.version }]);
  }

  /**
   * The next `limit` users, after `after` in id order, with an input changed since `c.since`: a fill
   * or an order's strategy inserted since, or a fill in a symbol with a candle of the timeframe
   * inserted since or dated after `c.closesAfter` (the close of a day moves the marks and the end of
   * every curve in that symbol). No table is ordered by inserted_at: this reads that column of the
   * three tables, and the symbol and user columns of pa_fills (a full pass reads every fill, FINAL).
   */
  async changedUserPage(after: string, limit: number, c: ChangedSince): Promise<string[]> {
    const rows = await this.ch.query<{ user_id: string }>(
      `SELECT user_id FROM (
           SELECT user_id FROM pa_fills WHERE inserted_at >= toDateTime({since:UInt32})
           UNION ALL
           SELECT user_id FROM pa_order_strategies WHERE inserted_at >= toDateTime({since:UInt32})
           UNION ALL
           SELECT user_id FROM pa_fills WHERE symbol IN (
             SELECT symbol FROM market_candles
              WHERE timeframe = {tf:String} AND (inserted_at >= toDateTime({since:UInt32}) OR toDate(open_time) > {closesAfter:Date})))
        WHERE user_id > {after:String} GROUP BY user_id ORDER BY user_id LIMIT {limit:UInt32}`,
      { since: c.since, tf: c.timeframe, closesAfter: c.closesAfter, after, limit },
    );
    return rows.map((r) => r.user_id);
  }
}
