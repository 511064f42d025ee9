/**
 * The two summaries every benchmark prints, defined once so figures from different scripts mean
 * the same thing.
 *
 * - `percentile(xs, p)`: nearest rank, the smallest sample with at least p % of the samples at or
 *   below it (p50 of 1..4 is 2, p99 of 100 samples the 99th). It is always a value that was
 *   measured, and an infinite sample (an order that never filled) stays infinite, so a p99 over
 *   lost work says so instead of averaging it away.
 * - `median(xs)`: the middle sample, or the mean of the two middle ones for an even count (the
 *   median of a few rounds, where which middle one is picked would move the figure).
 *
 * Both leave their argument unsorted and answer NaN for no samples.
 */

const ascending = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);

export function percentile(xs: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be within 0..100, got ${p}`);
  if (xs.length === 0) return NaN;
  const s = ascending(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = ascending(xs);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
