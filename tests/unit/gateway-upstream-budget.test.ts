/**
 * The gateway's one connection budget per service (api-gateway upstream-budget.ts), its rule alone: slots
 * taken up to its size, then pools queued first come first served, a slot given back going to the pool
 * waiting longest, an idle connection reclaimed for a waiting pool. Its bound on real connections, both paths:
 * tests/services/gateway-upstream-budget.test.ts and gateway-upstream-connections.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ConnectionBudget, type ConnectionHolder } from "../../services/src/services/api-gateway/upstream-budget";

/** A pool stood in: counts the slots granted to it; `idle` connections it can close (each gives its slot back at once). */
function holder(budget: ConnectionBudget, idle = 0) {
  const h = {
    granted: 0,
    /** Times its queue was closed (the budget's closeQueues). */
    queuesClosed: 0,
    idle,
    closeIdle(): boolean {
      if (h.idle === 0) return false;
      h.idle--;
      budget.give();
      return true;
    },
  };
  const pool: ConnectionHolder = { granted: () => void h.granted++, closeIdle: () => h.closeIdle(), closeQueue: () => void h.queuesClosed++ };
  budget.join(pool);
  return { h, pool };
}

describe("one connection budget per service", () => {
  it("slots up to its size, then each pool queued in turn; a slot given back goes to the pool waiting longest", () => {
    const budget = new ConnectionBudget(2);
    const lane = holder(budget);
    const fastify = holder(budget);
    expect([budget.take(lane.pool), budget.take(fastify.pool)]).toEqual([true, true]);
    expect(budget.take(fastify.pool)).toBe(false);
    expect(budget.take(lane.pool)).toBe(false);
    expect(budget.next).toBe(fastify.pool);
    budget.give();
    expect([fastify.h.granted, lane.h.granted, budget.inUse]).toEqual([1, 0, 2]);
    budget.give();
    expect([fastify.h.granted, lane.h.granted, budget.inUse, budget.next]).toEqual([1, 1, 2, undefined]);
    budget.give();
    expect(budget.inUse).toBe(1);
  });

  it("a pool queued has another pool's idle connection closed for it; a withdrawn wait is not granted", () => {
    const budget = new ConnectionBudget(1);
    const lane = holder(budget, 1);
    const fastify = holder(budget);
    expect(budget.take(lane.pool)).toBe(true); // the lane's idle connection
    expect(budget.take(fastify.pool)).toBe(false);
    budget.reclaim(fastify.pool);
    expect([lane.h.idle, fastify.h.granted, budget.inUse]).toEqual([0, 1, 1]);
    expect(budget.take(lane.pool)).toBe(false);
    budget.withdraw(lane.pool);
    budget.give();
    expect([lane.h.granted, budget.inUse]).toEqual([0, 0]);
  });
});
