/**
 * The scheduled rollup: every fill marked to daily closes, per user and strategy and per user
 * overall (strategy "*"), written to pa_daily with a new version, one insert per user; readers take
 * only the user's latest version (a strategy or day an earlier pass wrote and this one did not is gone). A full recompute each pass: exact and idempotent, O(fills); an incremental pass (only
 * users with new fills) is the next step when the fill count makes this slow.
 */
import type { PerformanceStore } from "./data";
import { dailyCurve, dayOf, type DailyPoint, type PerfFill } from "./domain";

export const TOTAL = "*";

export async function runRollup(store: PerformanceStore, o: { capital: number; timeframe: string; now?: Date }): Promise<{ groups: number; points: number }> {
  const fills = await store.allFills();
  if (!fills.length) return { groups: 0, points: 0 };
  const today = dayOf((o.now ?? new Date()).getTime());
  const symbols = [...new Set(fills.map((f) => f.symbol))];
  const firstDay = dayOf(fills.reduce((a, f) => Math.min(a, f.tsMs), Infinity));
  const closes = await store.dailyCloses(symbols, o.timeframe, firstDay);
  const groups = new Map<string, { userId: string; strategy: string; fills: PerfFill[] }>();
  const add = (userId: string, strategy: string, f: PerfFill) => {
    const key = `${userId}\u0000${strategy}`;
    if (!groups.has(key)) groups.set(key, { userId, strategy, fills: [] });
    groups.get(key)!.fills.push(f);
  };
  for (const f of fills) {
    add(f.userId, f.strategy || "manual", f);
    add(f.userId, TOTAL, f);
  }
  const version = Date.now();
  const byUser = new Map<string, { strategy: string; points: DailyPoint[] }[]>();
  let points = 0;
  for (const g of groups.values()) {
    // Through the last day anything is known for: the last fill or the last close of a traded symbol (never past today).
    const known = [...g.fills.map((f) => dayOf(f.tsMs)), ...[...new Set(g.fills.map((f) => f.symbol))].flatMap((s) => [...(closes.get(s)?.keys() ?? [])])];
    const latest = known.reduce((a, b) => (b > a ? b : a));
    const curve = dailyCurve(g.fills, closes, o.capital, latest > today ? today : latest);
    if (!byUser.has(g.userId)) byUser.set(g.userId, []);
    byUser.get(g.userId)!.push({ strategy: g.strategy, points: curve });
    points += curve.length;
  }
  for (const [userId, series] of byUser) await store.writeDaily(userId, series, version);
  return { groups: groups.size, points };
}
