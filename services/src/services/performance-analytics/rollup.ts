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
 * recompute. A pass with no watermark (or one written for another capital base, timeframe or figures
 * version, or older than INCREMENTAL_WITHIN_SECONDS), or asked `full`, recomputes every user. The watermark is written once every page is, so a pass that
 * stops half way leaves the last one in place and the next pass takes those users again. After it,
 * the change tables' partitions no pass reads again are dropped (retention.ts; a failure is logged).
 *
 * Memory does not grow with the number of fills: users are taken `pageUsers` at a time in id order
 * (keyset pagination), and ClickHouse sums their fills per strategy, symbol and day (DayFlow), so a
 * page holds at most pageUsers x strategies x symbols x days flows plus the closes of those symbols;
 * strategies are at most maxStrategies + 1 per user (the later labels share one series, data.ts).
 * The figures' definition is versioned (FIGURES_VERSION, domain.ts) and recorded with each pass: a
 * pass whose last completed watermark was computed under another version rebuilds every user, once,
 * and says so (log, result `reason`). During a rolling deploy replicas of two releases may lead in
 * turn; the newer one first records a claim of its version, and a pass of an older release that
 * finds a claim or a pass of a greater version does nothing (`ran: false` with the reason) or, met
 * mid-pass, stops (RollupSuperseded) without writing its watermark. The claiming pass's version is
 * taken from the second after the claim, so it outranks the rows of any older pass, which read its
 * clock before it looked for a claim; so the older release never overwrites newer figures and
 * neither rebuilds again.
 *
 * One replica at a time runs it (leader.ts): `holds` is asked before each user's write and before
 * the watermark's, and a pass that lost the leadership stops there. A pass's version (of its rows and
 * its watermark) is its start on ClickHouse's clock, so a later pass outranks an earlier one's writes
 * whatever the replicas' clocks say.
 */
import { randomInt } from "node:crypto";
import type { PerformanceStore, UserFlow } from "./data";
import { dailyCurveOf, dayOf, FIGURES_VERSION, MAX_STRATEGIES_PER_USER, mergeFlows, type DailyPoint, type DayFlow } from "./domain";
import { INCREMENTAL_WITHIN_SECONDS } from "./retention";
import type { RollupWatermarks } from "./watermark";

export const TOTAL = "*";
/** A pass's version is its start (ClickHouse unix seconds) times this plus a random tiebreak: below 2^53 until the year 2255. */
const VERSIONS_PER_SECOND = 1_000_000;

export interface RollupResult {
  /** False when another replica runs the rollup, or a newer release's figures version is in place (`reason`): this one did nothing. */
  ran: boolean;
  /** "incremental": the users changed since the watermark; "full": every user. */
  mode?: "full" | "incremental";
  users: number;
  groups: number;
  points: number;
  /** The figures version this release computes (FIGURES_VERSION). */
  figures?: number;
  /** Why a pass rebuilt every user by itself, or why it did not run although this replica leads. */
  reason?: string;
}

export class RollupLeadershipLost extends Error {
  constructor() {
    super("rollup leadership lost during the pass; the leader's next pass takes up from the last watermark");
    this.name = "RollupLeadershipLost";
  }
}

/** A release computing an older figures version found a newer one's claim during its pass. */
export class RollupSuperseded extends Error {
  constructor(readonly mine: number, readonly newest: number) {
    super(`figures version ${newest} of a newer release is being written; this release computes version ${mine} and stopped its pass`);
    this.name = "RollupSuperseded";
  }
}

export interface RollupLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
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
  /** A user's strategy series beyond this many, by first fill, are summed as one (PERF_MAX_STRATEGIES_PER_USER). */
  maxStrategies?: number;
  /** The figures version this release computes (FIGURES_VERSION; another value only where a test plays another release). */
  figures?: number;
  log?: RollupLog;
}

export async function runRollup(store: PerformanceStore, o: RollupOptions): Promise<RollupResult> {
  const holds = o.holds ?? (() => true);
  if (!holds()) return { ran: false, users: 0, groups: 0, points: 0 };
  const pageUsers = o.pageUsers ?? 200;
  const today = dayOf((o.now ?? new Date()).getTime());
  const maxStrategies = o.maxStrategies ?? MAX_STRATEGIES_PER_USER;
  // Another bound regroups the series: a full pass. Named only when not the default, so the params of
  // the default setting are those the watermarks already hold (the release introducing the bound
  // rebuilds every user anyway: it raised FIGURES_VERSION).
  const params = `capital=${o.capital};timeframe=${o.timeframe}${maxStrategies === MAX_STRATEGIES_PER_USER ? "" : `;strategies=${maxStrategies}`}`;
  const figures = o.figures ?? FIGURES_VERSION;
  // Read before any input: whatever is inserted from here on is new to the next pass. Read before the
  // figures versions too: a newer release's claim after this read gets a greater version (below).
  const through = await o.watermarks.serverNow();
  const prior = await o.watermarks.read(o.name);
  const newest = await o.watermarks.newestFigures(o.name);
  if (newest > figures) {
    const reason = `figures version ${newest} of a newer release is in pa_daily; this release computes version ${figures} and leaves the rollup to it`;
    o.log?.warn({ rollup: o.name, figures, newest }, reason);
    return { ran: false, users: 0, groups: 0, points: 0, figures, reason };
  }
  const rebuild = prior !== undefined && prior.figures !== figures;
  // A version no pass wrote yet is claimed before this pass's first write. An older release's pass
  // that looks for claims after this one backs off; one that looked before read its clock before
  // that, so its version is below this pass's, taken from the second after the claim.
  const claimed = newest < figures;
  if (claimed) await o.watermarks.claim(o.name, figures);
  const start = claimed ? (await o.watermarks.serverNow()) + 1 : through;
  // Ordered by the passes' starts on ClickHouse's clock, never a replica's: a stale leader whose clock
  // runs ahead would otherwise outrank, with the series it wrote before stopping, the new leader's
  // later reads of those users, and the new leader's watermark would keep them from being read again.
  // Passes started in the same second differ in the random low digits (either read every input stamped
  // before that second, and the next pass takes that second again: inserted_at >= watermark).
  const version = Math.max(start * VERSIONS_PER_SECOND + randomInt(VERSIONS_PER_SECOND), (prior?.version ?? 0) + 1);
  // A watermark that old may have lost the changes since it (retention.ts: its name no longer held them back).
  const stale = prior !== undefined && through - prior.through > INCREMENTAL_WITHIN_SECONDS;
  const incremental = !o.full && !rebuild && !stale && prior !== undefined && prior.params === params;
  const reason = rebuild
    ? `figures version ${prior.figures} -> ${figures}: rebuilding every user`
    : stale
      ? `watermark older than ${INCREMENTAL_WITHIN_SECONDS / 86_400} days (its changes may be trimmed): recomputing every user`
      : undefined;
  if (reason) o.log?.info({ rollup: o.name, from: prior?.figures, to: figures, ...(stale && { watermark: prior.through }) }, reason);
  const since = { since: (prior?.through ?? 0) - (o.overlapSeconds ?? 60), timeframe: o.timeframe };
  const nextUsers = incremental ? (after: string) => o.watermarks.changedUserPage(after, pageUsers, since) : (after: string) => store.userPage(after, pageUsers);
  const superseded = async () => {
    const latest = await o.watermarks.newestFigures(o.name);
    if (latest > figures) throw new RollupSuperseded(figures, latest);
  };
  let users = 0;
  let groups = 0;
  let points = 0;
  for (let after = ""; ; ) {
    const page = await nextUsers(after);
    if (!page.length) break;
    await superseded();
    after = page[page.length - 1];
    const computed = await rollupPage(store, await store.dayFlows(page, maxStrategies), { ...o, today });
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
  await superseded();
  await o.watermarks.write(o.name, { through, day: today, params, version, figures });
  // Housekeeping once the figures and the watermark are in: a failure leaves the rows for the next pass to drop.
  try {
    const trimmed = await o.watermarks.trim(o.name);
    if (trimmed.dropped.length || trimmed.passRows) o.log?.info({ rollup: o.name, ...trimmed }, "rollup change partitions and superseded passes trimmed");
  } catch (err) {
    o.log?.warn({ rollup: o.name, err: { message: (err as Error).message } }, "trimming the rollup's tables failed; the next pass tries again");
  }
  return { ran: true, mode: incremental ? "incremental" : "full", users, groups, points, figures, ...(reason && { reason }) };
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
