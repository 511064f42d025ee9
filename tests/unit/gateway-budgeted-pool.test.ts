/**
 * The gateway's one pool class for both paths' connections to a service (api-gateway budgeted-pool.ts), its
 * protocol alone, with connections and requests stood in (numbers and strings) and its members recorded: an
 * idle connection reused last-in first-out, new ones within the budget, a queue served in order, a freed
 * connection closed for the other pool waiting longer, a request leaving the queue, the queues closed by the
 * gateway's close, the pool's own close. Over real connections, both paths: tests/services/gateway-upstream-budget.test.ts.
 */
import { describe, expect, it } from "vitest";
import { BudgetedPool, type PoolMembers } from "../../services/src/services/api-gateway/budgeted-pool";
import { ConnectionBudget } from "../../services/src/services/api-gateway/upstream-budget";

/** A pool of numbered connections for named requests; what its members were asked, in order. */
function poolOf(budget: ConnectionBudget, name: string) {
  const calls: string[] = [];
  let opened = 0;
  const members: PoolMembers<string, string> = {
    open: () => {
      const c = `${name}${++opened}`;
      calls.push(`open ${c}`);
      return c;
    },
    hand: (w, c) => void calls.push(`hand ${c} to ${w}`),
    retire: (c) => void calls.push(`retire ${c}`),
    refuse: (w) => void calls.push(`refuse ${w}`),
  };
  const pool = new BudgetedPool(budget, members);
  /** `w` asks for a connection: the one it got at once, or "waits" / "refused". */
  const ask = (w: string, fresh = false): string => pool.now(fresh) ?? (pool.wait(w) ? "waits" : "refused");
  return { pool, calls, ask };
}

describe("one budgeted pool", () => {
  it("reuses the last connection released, opens new ones within the budget, queues past it; the common path asks its members nothing", () => {
    const budget = new ConnectionBudget(2);
    const { pool, calls, ask } = poolOf(budget, "c");
    expect([ask("r1"), ask("r2")]).toEqual(["c1", "c2"]);
    pool.release("c1");
    pool.release("c2");
    calls.length = 0;
    expect(ask("r3")).toBe("c2"); // the warmest
    pool.release("c2");
    expect(ask("r4")).toBe("c2");
    expect(calls).toEqual([]);
    expect(ask("r5", true)).toBe("waits"); // a resend wants a new connection: none free, c1 idle is closed for it
    expect(calls).toEqual(["retire c1"]);
    pool.forget("c1"); // closed: its slot to this pool's waiting request
    expect(calls).toEqual(["retire c1", "open c3", "hand c3 to r5"]);
    expect([pool.size, budget.inUse]).toEqual([2, 2]);
  });

  it("a freed connection goes to its own queue in order, or is closed for the other pool waiting longer; a request leaving the queue takes its place in the line with it", () => {
    const budget = new ConnectionBudget(2);
    const lane = poolOf(budget, "l");
    const fastify = poolOf(budget, "f");
    expect([lane.ask("a"), fastify.ask("b")]).toEqual(["l1", "f1"]);
    expect([lane.ask("a2"), lane.ask("a3"), fastify.ask("b2")]).toEqual(["waits", "waits", "waits"]);
    lane.pool.release("l1");
    expect(lane.calls.slice(-1)).toEqual(["hand l1 to a2"]); // the lane waited first
    lane.pool.leaveQueue("a3"); // its client gone: the next slot is the Fastify path's
    lane.pool.release("l1");
    expect(lane.calls.slice(-1)).toEqual(["retire l1"]);
    lane.pool.forget("l1");
    expect(fastify.calls.slice(-2)).toEqual(["open f2", "hand f2 to b2"]);
    expect(budget.inUse).toBe(2);
  });

  it("the gateway's close (the budget's closeQueues): every waiting request refused, later ones too when no slot is free; a free slot still serves", () => {
    const budget = new ConnectionBudget(2);
    const lane = poolOf(budget, "l");
    const fastify = poolOf(budget, "f");
    expect([lane.ask("a"), fastify.ask("b"), lane.ask("a2"), fastify.ask("b2")]).toEqual(["l1", "f1", "waits", "waits"]);
    budget.closeQueues();
    expect([lane.calls.slice(-1), fastify.calls.slice(-1)]).toEqual([["refuse a2"], ["refuse b2"]]);
    expect(budget.next).toBeUndefined();
    expect(lane.ask("a3")).toBe("refused");
    // Nothing waits: a freed connection is kept, and a request takes it.
    fastify.pool.release("f1");
    expect(fastify.ask("b3")).toBe("f1");
    lane.pool.release("l1");
    lane.pool.forget("l1");
    expect(lane.ask("a4")).toBe("l2");
  });

  it("its own close: waiting requests refused, its idle connections handed back to close, one freed after it closed, nothing given", () => {
    const budget = new ConnectionBudget(2);
    const { pool, calls, ask } = poolOf(budget, "c");
    expect([ask("r1"), ask("r2"), ask("r3")]).toEqual(["c1", "c2", "waits"]);
    expect(pool.close()).toEqual([]);
    expect(calls.slice(-1)).toEqual(["refuse r3"]);
    pool.release("c1"); // r1's, ended after the close
    expect(calls.slice(-1)).toEqual(["retire c1"]);
    expect(ask("r4")).toBe("refused");

    const idle = poolOf(new ConnectionBudget(2), "i");
    expect(idle.ask("r1")).toBe("i1");
    idle.pool.release("i1");
    expect(idle.pool.close()).toEqual(["i1"]); // for its owner to close (ServicePool awaits their destroy)
  });
});
