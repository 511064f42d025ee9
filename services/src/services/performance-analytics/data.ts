/** performance-analytics data access: ClickHouse pa_fills, pa_order_strategies, pa_daily, market_candles. */
import { clickhouseDateTime, type ClickHouseKitClient } from "../../kit";
import { dayOf, MAX_STRATEGIES_PER_USER, OTHER, type DailyPoint, type DayFlow, type PerfFill } from "./domain";

export interface FillRow extends PerfFill { orderId: string; userId: string }
export interface UserFlow extends DayFlow { userId: string; strategy: string }

const DAY_MS = 86_400_000;

export class PerformanceStore {
  constructor(private readonly ch: ClickHouseKitClient) {}

  async insertFills(fills: FillRow[]): Promise<void> {
    if (!fills.length) return;
    await this.ch.insert(
      "pa_fills",
      fills.map((f) => ({ fill_id: f.fillId, order_id: f.orderId, user_id: f.userId, symbol: f.symbol, side: f.side, quantity: f.quantity, price: f.price, fee: f.fee, ts_ms: f.tsMs, at: clickhouseDateTime(f.tsMs) })),
    );
  }

  async insertStrategies(rows: { orderId: string; userId: string; strategy: string }[]): Promise<void> {
    // inserted_at takes its DEFAULT (the kit's insert names the columns): the rollup's watermark reads it.
    if (rows.length) await this.ch.insert("pa_order_strategies", rows.map((r) => ({ order_id: r.orderId, user_id: r.userId, strategy: r.strategy })));
  }

  /** The next `limit` users with fills, after `after` in id order (keyset pagination: no offset to skip). */
  async userPage(after: string, limit: number): Promise<string[]> {
    const rows = await this.ch.query<{ user_id: string }>(
      "SELECT user_id FROM pa_fills WHERE user_id > {after:String} GROUP BY user_id ORDER BY user_id LIMIT {limit:UInt32}",
      { after, limit },
    );
    return rows.map((r) => r.user_id);
  }

  /**
   * The users' fills (deduplicated by FINAL) summed per strategy, symbol and UTC day, with the day's
   * last fill price: one row per (user, strategy, symbol, day) whatever the number of fills. A fill
   * whose order event has not arrived yet counts as 'manual'. A user's strategies beyond the first
   * `maxStrategies` by first fill (ties by name) are summed as one, OTHER.
   *
   * The bound is applied here, in ClickHouse, not after the query nor at ingestion: folding the rows
   * once they are read would still have ClickHouse build and send strategies x symbols x days rows,
   * and a label is free to invent (any client order id prefix, 50 orders/s), so the rows, the curves
   * and the pa_daily rows of every pass grew with the labels. Here what a label costs is one row of
   * the ranking (as a fill costs one row of the scan every pass reads anyway), and what leaves
   * ClickHouse is at most maxStrategies + 1 series per user. Ingestion could not rank by first fill
   * (an order event comes before its fills, and consumers of several partitions would race over who
   * is first). 18.16 has no window functions: the ranking is ORDER BY ... LIMIT n BY user_id, and a
   * fill's series is its label when (user, label) is IN it, so the fills are read twice.
   */
  async dayFlows(users: string[], maxStrategies = MAX_STRATEGIES_PER_USER): Promise<UserFlow[]> {
    if (!users.length) return [];
    const labelled = `SELECT user_id, fill_id, symbol, side, quantity, price, fee, ts_ms, if(empty(strategy), 'manual', strategy) AS strat
         FROM (SELECT user_id, fill_id, order_id, symbol, side, quantity, price, fee, ts_ms FROM pa_fills FINAL WHERE has({users:Array(String)}, user_id))
         ANY LEFT JOIN (SELECT order_id, strategy FROM pa_order_strategies FINAL WHERE has({users:Array(String)}, user_id)) USING order_id`;
    const rows = await this.ch.query<{ user_id: string; series: string; symbol: string; day_num: string; qty: number; cash: number; fees: number; trades: string; last_price: number; last_ts: string; last_fill: string }>(
      `SELECT user_id, series, symbol, toString(intDiv(ts_ms, 86400000)) AS day_num,
              sum(if(side = 'sell', -quantity, quantity)) AS qty, sum(if(side = 'sell', quantity, -quantity) * price - fee) AS cash,
              sum(fee) AS fees, toString(count()) AS trades,
              argMax(price, (ts_ms, fill_id)) AS last_price, toString(max(ts_ms)) AS last_ts, argMax(fill_id, (ts_ms, fill_id)) AS last_fill
         FROM (SELECT user_id, fill_id, symbol, side, quantity, price, fee, ts_ms,
                      if((user_id, strat) IN (
                           SELECT user_id, strat FROM (SELECT user_id, strat, min(ts_ms) AS first_ts FROM (${labelled}) GROUP BY user_id, strat)
                            ORDER BY user_id, first_ts, strat LIMIT {maxStrategies:UInt32} BY user_id),
                         strat, {other:String}) AS series
                 FROM (${labelled}))
        GROUP BY user_id, series, symbol, day_num`,
      { users, maxStrategies, other: OTHER },
    );
    return rows.map((r) => ({
      userId: r.user_id,
      strategy: r.series,
      day: dayOf(Number(r.day_num) * DAY_MS),
      symbol: r.symbol,
      quantity: r.qty,
      cash: r.cash,
      fees: r.fees,
      trades: Number(r.trades),
      lastPrice: r.last_price,
      lastTs: Number(r.last_ts),
      lastFillId: r.last_fill,
    }));
  }

  /**
   * Daily closes (the last candle of each UTC day) of the symbols, from `fromDay`. The day is the
   * UTC day of the candle's instant (whole days of epoch seconds), as dayFlows buckets the fills:
   * toDate(open_time) answered the server's time zone's day, so on a server not in UTC a fill's day
   * was marked with another day's close.
   */
  async dailyCloses(symbols: string[], timeframe: string, fromDay: string): Promise<Map<string, Map<string, number>>> {
    const out = new Map<string, Map<string, number>>();
    if (!symbols.length) return out;
    const rows = await this.ch.query<{ symbol: string; day_num: string; close: number }>(
      `SELECT symbol, toString(intDiv(toUInt32(open_time), 86400)) AS day_num, argMax(close, open_time) AS close FROM market_candles
       WHERE has({symbols:Array(String)}, symbol) AND timeframe = {tf:String} AND open_time >= toDateTime({from:UInt32})
       GROUP BY symbol, day_num`,
      { symbols, tf: timeframe, from: Date.parse(`${fromDay}T00:00:00Z`) / 1000 },
    );
    for (const r of rows) {
      if (!out.has(r.symbol)) out.set(r.symbol, new Map());
      out.get(r.symbol)!.set(dayOf(Number(r.day_num) * DAY_MS), r.close);
    }
    return out;
  }

  /** All series of one user in one insert (one block: a reader never sees half a rollup of a user). */
  async writeDaily(userId: string, series: { strategy: string; points: DailyPoint[] }[], version: number): Promise<void> {
    const rows = series.flatMap(({ strategy, points }) =>
      points.map((p) => ({ user_id: userId, strategy, day: p.day, equity: p.equity, pnl: p.pnl, daily_return: p.dailyReturn, exposure: p.exposure, drawdown: p.drawdown, fees: p.fees, trades: p.trades, version })),
    );
    if (rows.length) await this.ch.insert("pa_daily", rows);
  }

  /** The user's series from the latest rollup only: rows an earlier rollup wrote (a day or a strategy that no longer applies) are ignored. */
  async daily(userId: string, strategy?: string): Promise<Map<string, DailyPoint[]>> {
    const rows = await this.ch.query<{ strategy: string; day: string; equity: number; pnl: number; daily_return: number; exposure: number; drawdown: number; fees: number; trades: number }>(
      `SELECT strategy, toString(day) AS day, equity, pnl, daily_return, exposure, drawdown, fees, trades FROM pa_daily FINAL
       WHERE user_id = {userId:String} AND ({any:UInt8} = 1 OR strategy = {strategy:String})
         AND version = (SELECT max(version) FROM pa_daily WHERE user_id = {userId:String})
       ORDER BY strategy, day`,
      { userId, any: strategy === undefined ? 1 : 0, strategy: strategy ?? "" },
    );
    const out = new Map<string, DailyPoint[]>();
    for (const r of rows) {
      if (!out.has(r.strategy)) out.set(r.strategy, []);
      out.get(r.strategy)!.push({ day: r.day, equity: r.equity, pnl: r.pnl, dailyReturn: r.daily_return, exposure: r.exposure, drawdown: r.drawdown, fees: r.fees, trades: Number(r.trades) });
    }
    return out;
  }
}
