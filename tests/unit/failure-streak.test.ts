/**
 * The kit's FailureStreak (services/src/kit/failure-streak.ts): an outage that fails a timer's every try is logged
 * once when it begins and once when it ends, with the count (billing-service's pass over parked payment events).
 */
import { describe, expect, it } from "vitest";
import { FailureStreak } from "../../services/src/kit/failure-streak";

describe("FailureStreak", () => {
  it("says to log the first failure of a streak only, and counts the streak when a try works again", () => {
    const s = new FailureStreak();
    expect(s.worked()).toBe(0);
    expect([s.failed(), s.failed(), s.failed()]).toEqual([true, false, false]);
    expect(s.worked()).toBe(3);
    expect(s.worked()).toBe(0);
    expect(s.failed()).toBe(true);
    expect(s.worked()).toBe(1);
  });
});
