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
 * Pulumi runs), this many ticks or days at most. 12,000 ticks cover a week of a schedule firing
 * every minute; a daily one is sampled over the 400 days. Measured in session 43 (tickGaps called
 * directly): 0.4-3.5 s of CPU a schedule here (about 0.3 ms a tick), cached per schedule string; an
 * analytic gap or an early stop would make a stack's parse cheaper (not done).
 */
export const GAP_SAMPLE_FROM = new Date("2026-01-01T00:00:00Z");
const GAP_SAMPLE_TICKS = 12_000;
export const GAP_SAMPLE_DAYS = 400;

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
  const cron = new Cron(schedule, { paused: true, timezone: "UTC", mode: "5-part" });
  const until = GAP_SAMPLE_FROM.getTime() + GAP_SAMPLE_DAYS * 86_400_000;
  let previous = cron.nextRun(GAP_SAMPLE_FROM);
  if (!previous) return undefined;
  let longest = 0;
  let shortest = Infinity;
  for (let i = 0; i < GAP_SAMPLE_TICKS && previous.getTime() < until; i++) {
    const next: Date | null = cron.nextRun(previous);
    // A schedule firing once in the sampled span (e.g. 29 February) has its gap beyond it.
    if (!next) break;
    const gap = (next.getTime() - previous.getTime()) / 1000;
    longest = Math.max(longest, gap);
    shortest = Math.min(shortest, gap);
    previous = next;
  }
  return longest === 0 ? undefined : { shortest, longest };
}
