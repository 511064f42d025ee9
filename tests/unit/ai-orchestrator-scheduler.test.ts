/**
 * ai-orchestrator's scheduler as a unit (services/src/services/ai-orchestrator/scheduler.ts): the
 * due list, the recheck and the evaluation are stand-ins whose evaluations end when a test says.
 * The bound on evaluations in flight, the next one starting as a slot frees, nothing queued twice,
 * reads that never overlap, a failed evaluation freeing its slot, close. With real servers:
 * tests/ai/scheduler.test.ts.
 */
import { describe, expect, it } from "vitest";
import { evaluationFailed } from "../../services/src/services/ai-orchestrator/backoff";
import { Scheduler } from "../../services/src/services/ai-orchestrator/scheduler";

interface S {
  strategyId: string;
  userId: string;
}

const strategies = (n: number): S[] => Array.from({ length: n }, (_, i) => ({ strategyId: `s${i}`, userId: `u${i % 2}` }));
const settle = () => new Promise((r) => setImmediate(r));

/** A scheduler over `due` whose evaluations wait for `finish(id)`; counts what it sees. */
function harness(opts: { concurrency: number; due: () => S[] | Promise<S[]>; stillDue?: (s: S) => boolean; fail?: (id: string) => boolean | Error }) {
  const started: string[] = [];
  const waiting = new Map<string, () => void>();
  const errors: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let reads = 0;
  const scheduler = new Scheduler<S>({
    due: async () => {
      reads++;
      return opts.due();
    },
    recheck: async (s) => ((opts.stillDue ?? (() => true))(s) ? s : undefined),
    evaluate: (s) => {
      started.push(s.strategyId);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise<void>((resolve, reject) =>
        waiting.set(s.strategyId, () => {
          waiting.delete(s.strategyId);
          inFlight--;
          const failure = opts.fail?.(s.strategyId);
          if (failure) reject(failure instanceof Error ? failure : new Error(`evaluation of ${s.strategyId} failed`));
          else resolve();
        }),
      );
    },
    concurrency: opts.concurrency,
    batch: 100,
    log: { error: (o: { strategyId?: string }) => void errors.push(o.strategyId ?? "tick") },
  });
  const finish = async (id: string) => {
    waiting.get(id)!();
    await settle();
  };
  return { scheduler, started, waiting, errors, finish, max: () => maxInFlight, reads: () => reads };
}

describe("ai-orchestrator scheduler", () => {
  it("keeps at most `concurrency` evaluations in flight and starts the next one as a slot frees, without a tick", async () => {
    const h = harness({ concurrency: 3, due: () => strategies(10) });
    await h.scheduler.tick();
    await settle();
    expect(h.started).toEqual(["s0", "s1", "s2"]);
    await h.finish("s1");
    expect(h.started).toEqual(["s0", "s1", "s2", "s3"]);
    while (h.waiting.size > 0) await h.finish([...h.waiting.keys()][0]);
    expect(h.started).toEqual(strategies(10).map((s) => s.strategyId));
    expect(h.max()).toBe(3);
    expect(h.reads()).toBe(1);
  });

  it("a tick while evaluations run queues none of those in flight, and its list replaces the previous one", async () => {
    let due = strategies(5);
    const h = harness({ concurrency: 2, due: () => due });
    await h.scheduler.tick();
    await settle();
    expect(h.started).toEqual(["s0", "s1"]);
    // s0 and s1 still run, s2 was evaluated elsewhere meanwhile, s9 became due.
    due = [...strategies(2), { strategyId: "s9", userId: "u1" }, ...strategies(5).slice(3)];
    await h.scheduler.tick();
    await settle();
    expect(h.started).toEqual(["s0", "s1"]);
    await h.finish("s0");
    await h.finish("s1");
    while (h.waiting.size > 0) await h.finish([...h.waiting.keys()][0]);
    expect(h.started).toEqual(["s0", "s1", "s9", "s3", "s4"]);
  });

  it("a queued strategy no longer due when its turn comes is not evaluated", async () => {
    const h = harness({ concurrency: 1, due: () => strategies(3), stillDue: (s) => s.strategyId !== "s1" });
    await h.scheduler.tick();
    await settle();
    await h.finish("s0");
    await h.finish("s2");
    expect(h.started).toEqual(["s0", "s2"]);
  });

  it("reads never overlap: a tick while the previous one reads is that read", async () => {
    let answer!: (s: S[]) => void;
    const h = harness({ concurrency: 2, due: () => new Promise<S[]>((r) => (answer = r)) });
    const first = h.scheduler.tick();
    const second = h.scheduler.tick();
    await settle();
    expect(h.reads()).toBe(1);
    answer(strategies(1));
    await Promise.all([first, second]);
    await settle();
    expect(h.started).toEqual(["s0"]);
  });

  it("a failed evaluation is logged and frees its slot", async () => {
    const h = harness({ concurrency: 1, due: () => strategies(2), fail: (id) => id === "s0" });
    await h.scheduler.tick();
    await settle();
    await h.finish("s0");
    expect(h.errors).toEqual(["s0"]);
    expect(h.started).toEqual(["s0", "s1"]);
  });

  it("an EVALUATION_FAILED answer is not logged again (its cause was logged where it was made); other failures are", async () => {
    const answered = evaluationFailed(new Error("ml-predictor unreadable"), { consecutiveFailures: 1, nextAttemptAt: new Date(Date.now() + 5_000).toISOString(), lastFailedAt: null, lastErrorCode: "INTERNAL_ERROR" });
    const h = harness({ concurrency: 2, due: () => strategies(2), fail: (id) => (id === "s0" ? (answered as Error) : true) });
    await h.scheduler.tick();
    await settle();
    await h.finish("s0");
    await h.finish("s1");
    expect(h.errors).toEqual(["s1"]);
  });

  it("close waits for the evaluations in flight and starts no queued one, nor any later tick", async () => {
    const h = harness({ concurrency: 2, due: () => strategies(6) });
    await h.scheduler.tick();
    await settle();
    let closed = false;
    const closing = h.scheduler.close().then(() => (closed = true));
    await settle();
    expect(closed).toBe(false);
    await h.finish("s0");
    expect(closed).toBe(false);
    await h.finish("s1");
    await closing;
    await h.scheduler.tick();
    await settle();
    expect(h.started).toEqual(["s0", "s1"]);
    expect(h.reads()).toBe(1);
  });
});
