import { describe, expect, it } from "vitest";
import { Cron } from "croner";
import { GAP_SAMPLE_DAYS, GAP_SAMPLE_FROM, tickGaps } from "../../stacks/cron-gaps";

/**
 * The oracle: every tick of the span, one croner step each, read as the Docker cron runner reads a
 * schedule (timezone "UTC"), the gap after the span's last tick included. Slow, so only for schedules
 * firing at most a few hundred times in 400 days.
 */
function everyTickGaps(schedule: string): { shortest: number; longest: number } | undefined {
  const cron = new Cron(schedule, { paused: true, timezone: "UTC", mode: "5-part" });
  const until = GAP_SAMPLE_FROM.getTime() + GAP_SAMPLE_DAYS * 86_400_000;
  const gaps: number[] = [];
  for (let tick = cron.nextRun(new Date(GAP_SAMPLE_FROM.getTime() - 1)); tick && tick.getTime() < until; ) {
    const next = cron.nextRun(tick);
    if (!next) break;
    gaps.push((next.getTime() - tick.getTime()) / 1000);
    tick = next;
  }
  return gaps.length === 0 ? undefined : { shortest: Math.min(...gaps), longest: Math.max(...gaps) };
}

describe("tickGaps: a day's times once, then the days that fire (session 44)", () => {
  it("gives every tick's gaps for schedules of every day shape: weekdays, month days, L, #, both day fields, months, a year's last minute", () => {
    const schedules = [
      "0 9 * * 1-5", "30 1 * 2 *", "0,30 8 * * 6", "15 2 1,15 * *", "0 0 L * *", "0 12 * * 5#2", "0 0 13 * 5",
      "59 23 31 12 *", "0 0 1 1 *", "0 0 1 */3 *", "5 4 * * sun", "0 0 31 * *", "0 0 29 2 *", "0 6,18 * * 0",
      "45 23 * * 0,3", "0 0 1-7 * 1",
    ];
    for (const schedule of schedules) expect(tickGaps(schedule), schedule).toEqual(everyTickGaps(schedule));
  });

  it("gives the gaps of dense schedules without stepping through each tick: every minute, weekday office hours, uneven steps", () => {
    expect(tickGaps("* * * * *")).toEqual({ shortest: 60, longest: 60 });
    // Friday 23:40 to Monday 00:00.
    expect(tickGaps("*/20 * * * 1-5")).toEqual({ shortest: 1200, longest: 2 * 86_400 + 1200 });
    // Friday 17:45 to Monday 09:00.
    expect(tickGaps("*/15 9-17 * * 1-5")).toEqual({ shortest: 900, longest: 2 * 86_400 + 15 * 3600 + 900 });
    // Minutes 0, 7, ..., 56 of hours 0, 5, ..., 20: 56 -> 0 of the next hour five hours on is 4 h 4 min.
    expect(tickGaps("*/7 */5 * * *")).toEqual({ shortest: 420, longest: 4 * 3600 + 4 * 60 });
  });
});
