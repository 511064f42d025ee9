import { describe, expect, it } from "vitest";
import { median, percentile } from "../../bench/lib/stats";

describe("bench statistics", () => {
  it("percentile is the nearest rank: always a measured sample", () => {
    const xs = [4, 1, 3, 2];
    expect(percentile(xs, 50)).toBe(2);
    expect(percentile(xs, 75)).toBe(3);
    expect(percentile(xs, 100)).toBe(4);
    expect(percentile(xs, 0)).toBe(1);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 50)).toBe(50);
  });

  it("an infinite sample stays infinite in the tail", () => {
    expect(percentile([1, 2, Infinity], 99)).toBe(Infinity);
    expect(percentile([1, 2, Infinity], 50)).toBe(2);
  });

  it("median averages the two middle samples of an even count", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("leaves its argument unsorted, answers NaN for no samples and refuses a p outside 0..100", () => {
    const xs = [3, 1, 2];
    percentile(xs, 50);
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
    expect(percentile([], 50)).toBeNaN();
    expect(median([])).toBeNaN();
    expect(() => percentile(xs, 101)).toThrow(/0\.\.100/);
    expect(() => percentile(xs, NaN)).toThrow(/0\.\.100/);
  });
});
