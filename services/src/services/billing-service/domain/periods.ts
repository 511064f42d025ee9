/**
 * Billing periods in UTC. A monthly subscription anchored on the 31st renews on the last day of
 * shorter months and returns to the 31st when the month has one (the anchor day is kept, not the
 * previous period's clamped day), the rule card processors' billing engines use.
 */
export type Interval = "month" | "year";

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** The instant `n` intervals after `anchor`, keeping the anchor's day (clamped) and time of day. */
export function addIntervals(anchor: Date, interval: Interval, n: number): Date {
  const months = interval === "month" ? n : 12 * n;
  const y = anchor.getUTCFullYear();
  const m = anchor.getUTCMonth() + months;
  const year = y + Math.floor(m / 12);
  const month0 = ((m % 12) + 12) % 12;
  const day = Math.min(anchor.getUTCDate(), daysInMonth(year, month0));
  return new Date(Date.UTC(year, month0, day, anchor.getUTCHours(), anchor.getUTCMinutes(), anchor.getUTCSeconds(), anchor.getUTCMilliseconds()));
}

export interface Period {
  start: Date;
  end: Date;
}

/** The period containing `at` for a subscription whose billing cycle is anchored at `anchor`. */
export function periodAt(anchor: Date, interval: Interval, at: Date): Period {
  if (at < anchor) throw new Error("instant before the billing anchor");
  // Estimate the index, then correct: months have different lengths.
  const approx = interval === "month" ? (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (at.getUTCMonth() - anchor.getUTCMonth()) : at.getUTCFullYear() - anchor.getUTCFullYear();
  let n = Math.max(0, approx - 1);
  while (addIntervals(anchor, interval, n + 1) <= at) n++;
  return { start: addIntervals(anchor, interval, n), end: addIntervals(anchor, interval, n + 1) };
}
