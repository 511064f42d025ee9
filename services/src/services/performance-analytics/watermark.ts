/**
 * performance-analytics: the rollup's watermark (ClickHouse pa_rollup_passes, migration 0009; the
 * rows of pa_rollup_watermark, 0008, still count, as figures 1), the figures' versions passes wrote
 * or claimed, and the users whose inputs changed since a watermark. Times are ClickHouse's own clock
 * in seconds: the clock that stamps `inserted_at` on pa_fills, pa_order_strategies and
 * market_candles, so a replica's clock never decides what counts as new.
 */
import type { ClickHouseKitClient } from "../../kit";
import { changesNeededFrom, deleteSupersededPasses, dropChangesBefore, type Trimmed } from "./retention";

export interface Watermark {
  /** Inputs inserted from this second (less the pass's overlap) are new to the next pass. */
  through: number;
  /** The UTC day the pass ran on (YYYY-MM-DD): the last day a curve could end on. */
  day: string;
  /** The figures' parameters (capital base and price timeframe): another value rebuilds every user. */
  params: string;
  /** The pass's version of pa_daily rows; the next pass writes a greater one. */
  version: number;
  /** The figures' definition (FIGURES_VERSION) the pass computed them with. */
  figures: number;
}

export interface ChangedSince {
  /**
   * Unix seconds: inputs inserted at or after it count as changed, and closes dated on a later day
   * (the last pass capped curves at its own day, that of its watermark).
   */
  since: number;
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
    const rows = await this.ch.query<{ through: string; day: string; params: string; version: string; figures: string }>(
      // Ordered by the number (pass_version), not by `version`: that alias is its text here, and "99" sorts after "1796172160991822".
      `SELECT toString(through) AS through, toString(day) AS day, params, toString(pass_version) AS version, toString(figures) AS figures FROM (
           SELECT through, day, params, version AS pass_version, figures FROM pa_rollup_passes WHERE name = {name:String} AND complete = 1
           UNION ALL
           SELECT through, day, params, version AS pass_version, toUInt32(1) AS figures FROM pa_rollup_watermark WHERE name = {name:String})
        ORDER BY pass_version DESC LIMIT 1`,
      { name },
    );
    const r = rows[0];
    return r && { through: Number(r.through), day: r.day, params: r.params, version: Number(r.version), figures: Number(r.figures) };
  }

  /** The greatest figures version a pass of rollup `name` completed or claimed (0 if none). */
  async newestFigures(name: string): Promise<number> {
    const rows = await this.ch.query<{ figures: string }>("SELECT toString(max(figures)) AS figures FROM pa_rollup_passes WHERE name = {name:String}", { name });
    return Number(rows[0]?.figures ?? 0);
  }

  async write(name: string, w: Watermark): Promise<void> {
    await this.ch.insert("pa_rollup_passes", [{ name, through: w.through, day: w.day, params: w.params, figures: w.figures, version: w.version, complete: 1 }]);
  }

  /** After a completed pass of `name`: drops the changes no pass reads again and `name`'s superseded pass rows (retention.ts). */
  async trim(name: string): Promise<Trimmed> {
    const neededFrom = await changesNeededFrom(this.ch);
    const dropped = neededFrom === undefined ? [] : await dropChangesBefore(this.ch, neededFrom);
    return { dropped, passRows: await deleteSupersededPasses(this.ch, name) };
  }

  /** A release about to write figures no pass of `name` wrote yet says so first: older releases back off from then on. */
  async claim(name: string, figures: number): Promise<void> {
    await this.ch.insert("pa_rollup_passes", [{ name, through: 0, day: "1970-01-01", params: "", figures, version: 0, complete: 0 }]);
  }

  /**
   * The next `limit` users, after `after` in id order, with an input changed since `c.since`: a fill
   * or an order's strategy inserted since, or a fill in a symbol with a candle of the timeframe
   * inserted since or dated after the day of `c.since` (the close of a day moves the marks and the
   * end of every curve in that symbol). Reads the changes the inserts fed (migration 0009), ordered
   * by their time: the primary key's range from `c.since` on, and pa_symbol_users by symbol.
   */
  async changedUserPage(after: string, limit: number, c: ChangedSince): Promise<string[]> {
    const rows = await this.ch.query<{ user_id: string }>(
      `SELECT user_id FROM (
           SELECT user_id FROM pa_changed_users WHERE changed_at >= toDateTime({since:UInt32})
           UNION ALL
           SELECT user_id FROM pa_symbol_users WHERE symbol IN (
             SELECT symbol FROM pa_changed_symbols WHERE changed_at >= toDateTime({since:UInt32}) AND timeframe = {tf:String}))
        WHERE user_id > {after:String} GROUP BY user_id ORDER BY user_id LIMIT {limit:UInt32}`,
      { since: c.since, tf: c.timeframe, after, limit },
    );
    return rows.map((r) => r.user_id);
  }
}
