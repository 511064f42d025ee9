/**
 * The gaps between a cron schedule's ticks, as croner (the Docker cron runner; for the syntax the
 * stack accepts, a CronJob alike) reads a five-field UTC schedule. One sampling for the parser
 * (stacks/config.ts: a schedule that leaves a job too little time, or fires at most once, is refused
 * there) and for the components (components/monitoring/scheduled-jobs.ts: a run's time limit and
 * the overdue alerts). Pure: croner only.
 */
import { Cron } from "croner";

/**
 * Sampling of a schedule for its gaps: from a fixed instant (the result must not depend on when
 * Pulumi runs), over this many days. A five-field schedule's times of day come from its minute and
 * hour fields alone, so every day it fires, it fires at the same times (UTC has no daylight saving):
 * the sampling reads one firing day's times and then which days fire (at most one croner step a
 * day), instead of every tick. Session 43's sampling stepped through up to 12,000 ticks, 0.4-3.5 s of
 * CPU a schedule (a week of a schedule firing every minute); this reads at most 1,440 + 400 ticks.
 */
export const GAP_SAMPLE_FROM = new Date("2026-01-01T00:00:00Z");
export const GAP_SAMPLE_DAYS = 400;
const DAY_MS = 86_400_000;

export interface TickGaps {
  shortest: number;
  longest: number;
}

/** tickGaps of each schedule already sampled: a job's limit, its alert rules and the parser read the same schedule. */
const sampledGaps = new Map<string, TickGaps | undefined>();

/**
 * The shortest and the longest time between two consecutive ticks of a schedule, in seconds;
 * undefined when it fires at most once in the sampled span (29 February: once in four years; or
 * never). Throws croner's error for an expression it cannot read.
 */
export function tickGaps(schedule: string): TickGaps | undefined {
  if (!sampledGaps.has(schedule)) sampledGaps.set(schedule, sampleTickGaps(schedule));
  return sampledGaps.get(schedule);
}

function sampleTickGaps(schedule: string): TickGaps | undefined {
  // utcOffset 0 rather than timezone "UTC": the same ticks (no daylight saving), without croner's
  // conversion through Intl on every step (59 against 376 µs a tick, measured here).
  const cron = new Cron(schedule, { paused: true, utcOffset: 0, mode: "5-part" });
  const from = GAP_SAMPLE_FROM.getTime();
  const until = from + GAP_SAMPLE_DAYS * DAY_MS;
  const first = cron.nextRun(new Date(from - 1));
  if (!first || first.getTime() >= until) return undefined;
  const times = timesOfDay(cron, first);
  const days = firingDays(cron, dayStart(first.getTime()), until);
  let shortest = Infinity;
  let longest = 0;
  const gap = (seconds: number): void => {
    shortest = Math.min(shortest, seconds);
    longest = Math.max(longest, seconds);
  };
  for (let i = 1; i < times.length; i++) gap((times[i] - times[i - 1]) / 1000);
  // From a firing day's last tick to the next firing day's first.
  for (let i = 1; i < days.length; i++) gap((days[i] - days[i - 1] + times[0] - times[times.length - 1]) / 1000);
  // undefined: no tick in the span (29 February: the next is in 2028), or no tick after the only one.
  return longest === 0 ? undefined : { shortest, longest };
}

function dayStart(ms: number): number {
  return ms - (ms % DAY_MS);
}

/** The ticks of `first`'s day, as milliseconds since that day's midnight (UTC), in order. */
function timesOfDay(cron: Cron, first: Date): number[] {
  const midnight = dayStart(first.getTime());
  const times: number[] = [];
  for (let tick: Date | null = first; tick && tick.getTime() < midnight + DAY_MS; tick = cron.nextRun(tick)) {
    times.push(tick.getTime() - midnight);
  }
  return times;
}

/**
 * The midnights (UTC) of the days the schedule fires on, from `firstDay` (before `until`) to the first
 * at or after `until`, so the last gap that starts in the span is measured: one step a firing day.
 */
function firingDays(cron: Cron, firstDay: number, until: number): number[] {
  const days = [firstDay];
  while (days[days.length - 1] < until) {
    const next = cron.nextRun(new Date(days[days.length - 1] + DAY_MS - 1));
    if (!next) break;
    days.push(dayStart(next.getTime()));
  }
  return days;
}
