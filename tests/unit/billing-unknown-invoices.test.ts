/**
 * billing-service's rules for payment events it cannot apply yet (domain/unknown-invoices.ts): a batch whose row
 * another transaction holds (session 58) is looked at again after pauses doubling from FIRST_PAUSE_MS within its
 * budget, none once the budget is spent, each look's lock wait half of what is left of the budget, never below
 * MIN_LOCK_WAIT_MS (lock_timeout 0: no bound); an event naming an invoice billing does not have is parked unless
 * it is older than RACE_WINDOW_MS (session 60; until then the same pauses paced the looks for its invoice).
 */
import { describe, expect, it } from "vitest";
import { FIRST_PAUSE_MS, lockWaitMs, MIN_LOCK_WAIT_MS, nextLookPause, parkedPassIntervalMs, RACE_WINDOW_MS, tooOldToPark } from "../../services/src/services/billing-service/domain/unknown-invoices";

/** The pauses of a batch whose row stays held. */
function pauses(budgetMs: number): number[] {
  const out: number[] = [];
  let waitedMs = 0;
  for (let looks = 1; ; looks++) {
    const p = nextLookPause({ looks, waitedMs, budgetMs });
    if (p === undefined) return out;
    out.push(p);
    waitedMs += p;
  }
}

describe("looking again for a payment event's unknown invoice", () => {
  it("doubles from the first pause and spends the budget exactly, then gives up", () => {
    expect(FIRST_PAUSE_MS).toBe(100);
    expect(pauses(2_000)).toEqual([100, 200, 400, 800, 500]);
    expect(pauses(2_000).reduce((a, b) => a + b, 0)).toBe(2_000);
    expect(pauses(100)).toEqual([100]);
  });

  it("a budget of 0 sets the event aside at once", () => {
    expect(pauses(0)).toEqual([]);
  });

  it("an event older than the race window is not parked; one ahead of our clock (another host's) is", () => {
    expect(tooOldToPark(RACE_WINDOW_MS + 1)).toBe(true);
    expect(tooOldToPark(RACE_WINDOW_MS)).toBe(false);
    expect(tooOldToPark(-5_000)).toBe(false);
  });

  it("a held row is looked at again with the same pauses, whatever the event's age", () => {
    expect(pauses(2_000)).toEqual([100, 200, 400, 800, 500]);
    expect(pauses(0)).toEqual([]);
  });

  it("a look waits for a lock half of what is left of the budget, at least the floor", () => {
    expect(lockWaitMs({ waitedMs: 0, budgetMs: 2_000 })).toBe(1_000);
    expect(lockWaitMs({ waitedMs: 1_000.6, budgetMs: 2_000 })).toBe(499);
    expect(lockWaitMs({ waitedMs: 1_950, budgetMs: 2_000 })).toBe(MIN_LOCK_WAIT_MS);
    expect(lockWaitMs({ waitedMs: 2_500, budgetMs: 2_000 })).toBe(MIN_LOCK_WAIT_MS);
    expect(lockWaitMs({ waitedMs: 0, budgetMs: 0 })).toBe(MIN_LOCK_WAIT_MS);
    expect(MIN_LOCK_WAIT_MS).toBeGreaterThan(0);
  });

  it("parked events are settled a few times within the wait: a quarter of it, within 100 ms and 1 s", () => {
    expect(parkedPassIntervalMs(2_000)).toBe(500);
    expect(parkedPassIntervalMs(0)).toBe(100);
    expect(parkedPassIntervalMs(100_000)).toBe(1_000);
  });
});
