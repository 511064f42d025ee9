/**
 * The order path's batching, without servers: the group commit (one run per batch of waiting items,
 * a failed batch retried item by item, an outage failing all) and the batch decision of
 * order-management (each order of a batch sees the exposure, rate window and Idempotency-Keys of
 * the ones before it, as if it had been checked alone under its user's lock).
 */
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../services/src/trading/infra/groupCommit";
import type { OrderRow } from "../../services/src/services/order-management/data";
import { decideSubmissions, type Submission } from "../../services/src/services/order-management/domain";
import type { RiskFacts } from "../../services/src/trading/infra/riskContext";
import { DEFAULT_LIMITS } from "../../services/src/trading/risk";
import type { TradingState } from "../../services/src/trading/tradingState";

describe("GroupCommit", () => {
  it("runs the items waiting together as one batch and answers each its own result", async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, string>(async (xs) => (batches.push(xs), xs.map((x) => `r${x}`)), { maxBatch: 3, concurrency: 1, isOutage: () => false });
    const out = await Promise.all([1, 2, 3, 4, 5].map((x) => gc.submit(x)));
    expect(out).toEqual(["r1", "r2", "r3", "r4", "r5"]);
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
  });

  it("rejects an item answered with an Error and resolves the others", async () => {
    const gc = new GroupCommit<number, number>(async (xs) => xs.map((x) => (x === 2 ? new Error("two") : x)), { maxBatch: 10, concurrency: 1, isOutage: () => false });
    const out = await Promise.allSettled([1, 2, 3].map((x) => gc.submit(x)));
    expect(out.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("retries a failed batch item by item so only the culprit fails", async () => {
    const runs: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (xs) => {
        runs.push(xs);
        if (xs.includes(2)) throw new Error("constraint");
        return xs;
      },
      { maxBatch: 10, concurrency: 1, isOutage: () => false },
    );
    const out = await Promise.allSettled([1, 2, 3].map((x) => gc.submit(x)));
    expect(out.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(runs).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("fails every item of a batch on an outage without retrying them one by one", async () => {
    let runs = 0;
    const gc = new GroupCommit<number, number>(async () => (runs++, Promise.reject(new Error("ECONNREFUSED"))), { maxBatch: 10, concurrency: 1, isOutage: () => true });
    const out = await Promise.allSettled([1, 2, 3].map((x) => gc.submit(x)));
    expect(out.every((o) => o.status === "rejected")).toBe(true);
    expect(runs).toBe(1);
  });

  it("runs at most `concurrency` batches at once", async () => {
    let inFlight = 0;
    let peak = 0;
    const gc = new GroupCommit<number, number>(
      async (xs) => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return xs;
      },
      { maxBatch: 1, concurrency: 2, isOutage: () => false },
    );
    await Promise.all(Array.from({ length: 8 }, (_, i) => gc.submit(i)));
    expect(peak).toBe(2);
  });
});

describe("decideSubmissions", () => {
  const none: RiskFacts = { position: "0", openBuy: "0", openSell: "0", dailyPnl: "0", recentOrderTimes: [], openOrders: 0, recordedTradingState: "active" };
  const sub = (userId: string, side: "buy" | "sell", quantity: string, key: string | null = null, hash = `${side}${quantity}`): Submission => ({
    orderId: `${userId}-${Math.random()}`, userId, body: { symbol: "BTCUSDT", side, type: "market", quantity }, idempotencyKey: key, requestHash: hash,
  });
  const decide = (subs: Submission[], opts: { facts?: RiskFacts; priors?: OrderRow[]; limits?: Partial<typeof DEFAULT_LIMITS>; copy?: TradingState } = {}) =>
    decideSubmissions(subs, {
      facts: () => opts.facts ?? none,
      market: subs.map(() => ({ lastPrice: "100", tradingState: opts.copy ?? "active" })),
      priors: opts.priors ?? [],
      limits: { ...DEFAULT_LIMITS, maxPosition: "5", ...opts.limits },
      now: 1_000_000,
    });
  const outcome = (d: ReturnType<typeof decide>[number]) => (d.kind === "new" ? (d.risk.ok ? "accepted" : d.risk.reason) : d.kind);

  it("counts the accepted orders before each one as open exposure, per user and side", () => {
    const d = decide([sub("a", "buy", "3"), sub("b", "buy", "3"), sub("a", "buy", "3"), sub("a", "sell", "3"), sub("a", "buy", "2")]);
    expect(d.map(outcome)).toEqual(["accepted", "accepted", "POSITION_LIMIT_EXCEEDED", "accepted", "accepted"]);
  });

  it("enforces the stricter of the recorded trading state and Dragonfly's copy (a restarted Dragonfly lifts no halt)", () => {
    const buy = [sub("a", "buy", "1")];
    expect(decide(buy, { facts: { ...none, recordedTradingState: "halted" }, copy: "active" }).map(outcome)).toEqual(["TRADING_HALTED"]);
    expect(decide(buy, { facts: { ...none, recordedTradingState: "active" }, copy: "halted" }).map(outcome)).toEqual(["TRADING_HALTED"]);
    expect(decide(buy, { facts: { ...none, recordedTradingState: "reduce_only" }, copy: "active" }).map(outcome)).toEqual(["REDUCE_ONLY"]);
    expect(decide(buy, { facts: { ...none, recordedTradingState: "active" }, copy: "active" }).map(outcome)).toEqual(["accepted"]);
  });

  it("starts from the stored exposure", () => {
    const d = decide([sub("a", "buy", "1"), sub("a", "buy", "1")], { facts: { ...none, position: "3", openBuy: "1" } });
    expect(d.map(outcome)).toEqual(["accepted", "POSITION_LIMIT_EXCEEDED"]);
  });

  it("counts every order of the batch, accepted or rejected, in the user's rate window", () => {
    const d = decide([sub("a", "buy", "9"), sub("a", "buy", "1"), sub("a", "buy", "1"), sub("b", "buy", "1")], { limits: { maxOrdersPerWindow: 2 } });
    expect(d.map(outcome)).toEqual(["POSITION_LIMIT_EXCEEDED", "accepted", "ORDER_RATE_EXCEEDED", "accepted"]);
  });

  it("replays a repeated Idempotency-Key (stored or earlier in the batch) and refuses it with another body", () => {
    const stored = { user_id: "a", idempotency_key: "k1", request_hash: "buy1" } as OrderRow;
    const d = decide([sub("a", "buy", "1", "k1"), sub("a", "buy", "2", "k1"), sub("a", "buy", "1", "k2"), sub("a", "buy", "1", "k2"), sub("a", "sell", "1", "k2"), sub("b", "buy", "1", "k1")], { priors: [stored] });
    expect(d.map((x) => x.kind)).toEqual(["replay", "conflict", "new", "replay", "conflict", "new"]);
    expect(d[0]).toEqual({ kind: "replay", prior: stored });
    expect(d[3]).toEqual({ kind: "replay", sameAs: 2 });
  });
});
