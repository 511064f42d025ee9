/**
 * The scheduled rollup: users' fills marked to daily closes, per strategy and overall (strategy
 * "*"), written to pa_daily with the pass's version, one insert per user; readers take only the
 * user's latest version (a strategy or day an earlier pass wrote and this one did not is gone).
 *
 * Incremental by user: a pass recomputes only the users with an input inserted since the last
 * completed pass's watermark (watermark.ts: a fill, an order's strategy, a close of a symbol they
 * traded), less `overlapSeconds` for inserts in flight; the others keep their series. A user it
 * takes is recomputed whole, from the first fill: each day's equity carries every earlier fill
 * (position, cash), a late fill or a strategy that arrives after its fills changes days already
 * written, and drawdown is against the peak of the whole series; so the figures are those of a full
 * recompute. A pass with no watermark (or one written for another capital base or timeframe), or
 * asked `full`, recomputes every user. The watermark is written once every page is, so a pass that
 * stops half way leaves the last one in place and the next pass takes those users again.
 *
 * Memory does not grow with the number of fills: users are taken `pageUsers` at a time in id order
 * (keyset pagination), and ClickHouse sums their fills per strategy, symbol and day (DayFlow), so a
 * page holds at most pageUsers x strategies x symbols x days flows plus the closes of those symbols.
 * One replica at a time runs it (leader.ts): `holds` is asked before each user's write and before
 * the watermark's, and a pass that lost the leadership stops there. A pass's version (of its rows and
 * its watermark) is its start on ClickHouse's clock, so a later pass outranks an earlier one's writes
 * whatever the replicas' clocks say.
 */
import { randomInt } from "node:crypto";
import type { PerformanceStore, UserFlow } from "./data";
import { dailyCurveOf, dayOf, mergeFlows, type DailyPoint, type DayFlow } from "./domain";
import type { RollupWatermarks } from "./watermark";

export const TOTAL = "*";
/** A pass's version is its start (ClickHouse unix seconds) times this plus a random tiebreak: below 2^53 until the year 2255. */
const VERSIONS_PER_SECOND = 1_000_000;

export interface RollupResult {
  /** False when another replica runs the rollup (this one did nothing). */
  ran: boolean;
  /** "incremental": the users changed since the watermark; "full": every user. */
  mode?: "full" | "incremental";
  users: number;
  groups: number;
  points: number;
}

export class RollupLeadershipLost extends Error {
  constructor() {
    super("rollup leadership lost during the pass; the leader's next pass takes up from the last watermark");
    this.name = "RollupLeadershipLost";
  }
}

export interface RollupOptions {
  capital: number;
  timeframe: string;
  /** The rollup's name: its watermark's key (the leadership group's id). */
  name: string;
  watermarks: RollupWatermarks;
  now?: Date;
  pageUsers?: number;
  holds?: () => boolean;
  /** Recompute every user whatever the watermark. */
  full?: boolean;
  /** Seconds before the watermark whose inserts count as new again (inserts still in flight at the last pass's start). */
  overlapSeconds?: number;
}

export async function runRollup(store: PerformanceStore, o: RollupOptions): Promise<RollupResult> {
  const holds = o.holds ?? (() => true);
  if (!holds()) return { ran: false, users: 0, groups: 0, points: 0 };
  const pageUsers = o.pageUsers ?? 200;
  const today = dayOf((o.now ?? new Date()).getTime());
  const params = `capital=${o.capital};timeframe=${o.timeframe}`;
  // Read before any input: whatever is inserted from here on is new to the next pass.
  const through = await o.watermarks.serverNow();
  const prior = await o.watermarks.read(o.name);
  // Ordered by the passes' starts on ClickHouse's clock, never a replica's: a stale leader whose clock
  // runs ahead would otherwise outrank, with the series it wrote before stopping, the new leader's
  // later reads of those users, and the new leader's watermark would keep them from being read again.
  // Passes started in the same second differ in the random low digits (either read every input stamped
  // before that second, and the next pass takes that second again: inserted_at >= watermark).
  const version = Math.max(through * VERSIONS_PER_SECOND + randomInt(VERSIONS_PER_SECOND), (prior?.version ?? 0) + 1);
  const incremental = !o.full && prior !== undefined && prior.params === params;
  const since = { since: (prior?.through ?? 0) - (o.overlapSeconds ?? 60), closesAfter: prior?.day ?? today, timeframe: o.timeframe };
  const nextUsers = incremental ? (after: string) => o.watermarks.changedUserPage(after, pageUsers, since) : (after: string) => store.userPage(after, pageUsers);
  let users = 0;
  let groups = 0;
  let points = 0;
  for (let after = ""; ; ) {
    const page = await nextUsers(after);
    if (!page.length) break;
    after = page[page.length - 1];
    const computed = await rollupPage(store, await store.dayFlows(page), { ...o, today });
    for (const [userId, series] of computed.byUser) {
      if (!holds()) throw new RollupLeadershipLost();
      await store.writeDaily(userId, series, version);
    }
    users += computed.byUser.size;
    groups += computed.groups;
    points += computed.points;
    if (page.length < pageUsers) break;
  }
  if (!holds()) throw new RollupLeadershipLost();
  await o.watermarks.write(o.name, { through, day: today, params, version });
  return { ran: true, mode: incremental ? "incremental" : "full", users, groups, points };
}

/** The curves of one page of users: per strategy and the user's total (exported: tests compare a pass with it). */
export async function rollupPage(store: PerformanceStore, flows: UserFlow[], o: { capital: number; timeframe: string; today: string }) {
  const byUser = new Map<string, { strategy: string; points: DailyPoint[] }[]>();
  if (!flows.length) return { byUser, groups: 0, points: 0 };
  const symbols = [...new Set(flows.map((f) => f.symbol))];
  const firstDay = flows.reduce((a, f) => (f.day < a ? f.day : a), flows[0].day);
  const closes = await store.dailyCloses(symbols, o.timeframe, firstDay);
  const grouped = new Map<string, Map<string, DayFlow[]>>();
  for (const f of flows) {
    const strategies = grouped.get(f.userId) ?? grouped.set(f.userId, new Map()).get(f.userId)!;
    const list = strategies.get(f.strategy) ?? strategies.set(f.strategy, []).get(f.strategy)!;
    list.push(f);
  }
  let groups = 0;
  let points = 0;
  for (const [userId, strategies] of grouped) {
    const series: { strategy: string; points: DailyPoint[] }[] = [];
    for (const [strategy, list] of [...strategies, [TOTAL, mergeFlows([...strategies.values()].flat())] as const]) {
      // Through the last day anything is known for: the last fill or the last close of a traded symbol (never past today).
      const known = [...list.map((f) => f.day), ...[...new Set(list.map((f) => f.symbol))].flatMap((s) => [...(closes.get(s)?.keys() ?? [])])];
      const latest = known.reduce((a, b) => (b > a ? b : a));
      const curve = dailyCurveOf(list, closes, o.capital, latest > o.today ? o.today : latest);
      series.push({ strategy, points: curve });
      points += curve.length;
      groups++;
    }
    byUser.set(userId, series);
  }
  return { byUser, groups, points };
}
