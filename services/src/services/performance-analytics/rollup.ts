/**
 * The scheduled rollup: every user's fills marked to daily closes, per strategy and overall (strategy
 * "*"), written to pa_daily with the pass's version, one insert per user; readers take only the
 * user's latest version (a strategy or day an earlier pass wrote and this one did not is gone). A
 * full recompute each pass: exact and idempotent.
 *
 * Memory does not grow with the number of fills: users are taken `pageUsers` at a time in id order
 * (keyset pagination), and ClickHouse sums their fills per strategy, symbol and day (DayFlow), so a
 * page holds at most pageUsers x strategies x symbols x days flows plus the closes of those symbols.
 * One replica at a time runs it (leader.ts): `holds` is asked before each user's write, and a pass
 * that lost the leadership stops there (the new leader's pass writes every user again).
 */
import type { PerformanceStore, UserFlow } from "./data";
import { dailyCurveOf, dayOf, mergeFlows, type DailyPoint, type DayFlow } from "./domain";

export const TOTAL = "*";

export interface RollupResult {
  /** False when another replica runs the rollup (this one did nothing). */
  ran: boolean;
  groups: number;
  points: number;
}

export class RollupLeadershipLost extends Error {
  constructor() {
    super("rollup leadership lost during the pass; the leader's next pass rewrites every user");
    this.name = "RollupLeadershipLost";
  }
}

export async function runRollup(
  store: PerformanceStore,
  o: { capital: number; timeframe: string; now?: Date; pageUsers?: number; holds?: () => boolean },
): Promise<RollupResult> {
  const holds = o.holds ?? (() => true);
  if (!holds()) return { ran: false, groups: 0, points: 0 };
  const pageUsers = o.pageUsers ?? 200;
  const today = dayOf((o.now ?? new Date()).getTime());
  const version = Date.now();
  let groups = 0;
  let points = 0;
  for (let after = ""; ; ) {
    const users = await store.userPage(after, pageUsers);
    if (!users.length) break;
    after = users[users.length - 1];
    const page = await rollupPage(store, await store.dayFlows(users), { ...o, today });
    for (const [userId, series] of page.byUser) {
      if (!holds()) throw new RollupLeadershipLost();
      await store.writeDaily(userId, series, version);
    }
    groups += page.groups;
    points += page.points;
    if (users.length < pageUsers) break;
  }
  return { ran: true, groups, points };
}

/** The curves of one page of users: per strategy and the user's total. */
async function rollupPage(store: PerformanceStore, flows: UserFlow[], o: { capital: number; timeframe: string; today: string }) {
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
