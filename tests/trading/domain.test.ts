import { describe, expect, it } from "vitest";
import { cents, D, quote, roundToTick, str } from "../../services/src/trading/decimal";
import { applyEvent, InvalidTransitionError, isTerminal, nextStatus, ORDER_EVENTS, ORDER_STATUSES } from "../../services/src/trading/orderState";
import { PaperExchange } from "../../services/src/trading/paperExchange";
import { ExecutionRules, executionOptionIssue, floatArithmetic } from "../../services/src/trading/executionRules";
import { createService } from "../../services/src/kit";
import tradingEngine from "../../services/src/services/trading-engine";
import { Portfolio } from "../../services/src/trading/portfolio";
import type { Bar, Fill, OrderRequest } from "../../services/src/trading/types";

const bar = (close: string, extra: Partial<Bar> = {}, t = 0): Bar => ({
  symbol: "BTCUSDT",
  interval: "1m",
  openTime: 60_000 * t,
  closeTime: 60_000 * t + 59_999,
  open: close,
  high: close,
  low: close,
  close,
  volume: "100",
  ...extra,
});
const order = (o: Partial<OrderRequest>): OrderRequest => ({
  orderId: "o1",
  userId: "u1",
  symbol: "BTCUSDT",
  side: "buy",
  type: "market",
  quantity: "1",
  ...o,
});

describe("decimal arithmetic", () => {
  it("has no float drift", () => {
    expect(D(0.1).plus(0.2).eq(0.3)).toBe(true);
    expect(0.1 + 0.2).not.toBe(0.3);
    let sum = D(0);
    for (let i = 0; i < 1000; i++) sum = sum.plus("0.01");
    expect(str(sum)).toBe("10");
    expect(str(D("42283.58").mul("0.00012345"))).toBe("5.219907951");
  });
  it("rounds half-even only where asked", () => {
    expect(cents("0.125")).toBe("0.12");
    expect(cents("0.135")).toBe("0.14");
    expect(cents("-1.005")).toBe("-1.00");
    expect(str(quote("1.123456785"))).toBe("1.12345678");
    expect(str(roundToTick("100.126", "0.01"))).toBe("100.13");
    expect(str(roundToTick("100.125", "0.05"))).toBe("100.1"); // 2002.5 ticks -> 2002 (half-even);
  });
  it("rejects non-finite input", () => {
    expect(() => D(Number.NaN)).toThrow();
    expect(() => D("abc")).toThrow();
  });
});

describe("order state machine", () => {
  it("allows the documented (state, event) pairs only", () => {
    expect(applyEvent("new", "accept")).toBe("accepted");
    expect(applyEvent("new", "risk_reject")).toBe("rejected");
    expect(nextStatus("accepted", "partial_fill")).toBe("partially_filled");
    expect(nextStatus("partially_filled", "partial_fill")).toBe("partially_filled");
    expect(nextStatus("partially_filled", "fill")).toBe("filled");
    expect(nextStatus("new", "fill")).toBeUndefined();
    expect(nextStatus("partially_filled", "exchange_reject")).toBeUndefined();
    expect(() => applyEvent("rejected", "accept")).toThrow(InvalidTransitionError);
  });
  it("a cancel is a request until the engine confirms it", () => {
    expect(nextStatus("accepted", "cancel_request")).toBe("pending_cancel");
    expect(nextStatus("partially_filled", "cancel_request")).toBe("pending_cancel");
    expect(nextStatus("accepted", "cancel_confirm")).toBeUndefined(); // no confirmation without a request
    expect(nextStatus("pending_cancel", "cancel_confirm")).toBe("cancelled");
    // A racing fill is applied: a full one ends the order filled, a partial one leaves the request standing.
    expect(nextStatus("pending_cancel", "fill")).toBe("filled");
    expect(nextStatus("pending_cancel", "partial_fill")).toBe("pending_cancel");
    expect(nextStatus("pending_cancel", "expire")).toBe("expired");
  });
  it("terminal states have no way out", () => {
    for (const t of ["filled", "cancelled", "rejected", "expired"] as const) {
      expect(isTerminal(t)).toBe(true);
      for (const e of ORDER_EVENTS) expect(nextStatus(t, e)).toBeUndefined();
    }
    expect(ORDER_STATUSES.filter((s) => !isTerminal(s))).toEqual(["new", "accepted", "partially_filled", "pending_cancel"]);
  });
});

describe("paper exchange", () => {
  it("rejects a market order without a price", () => {
    const ex = new PaperExchange();
    expect(ex.submit(order({})).reason).toBe("NO_MARKET_PRICE");
  });
  it("fills market orders with slippage and taker fee, deterministically", () => {
    const run = () => {
      const ex = new PaperExchange({ takerFeeBps: "10", slippageBps: "5" });
      ex.onBar(bar("100"));
      return [ex.submit(order({ quantity: "2" })), ex.submit(order({ orderId: "o2", side: "sell", quantity: "0.5" }))];
    };
    const [buy, sell] = run();
    expect(buy.status).toBe("filled");
    expect(buy.fills[0]).toMatchObject({ fillId: "o1:1", price: "100.05", quantity: "2", fee: "0.2001", liquidity: "taker", ts: 59_999 });
    expect(sell.fills[0]).toMatchObject({ price: "99.95", fee: "0.049975" });
    expect(run()).toEqual([buy, sell]);
  });
  it("adds size impact to slippage, capped, rounding adversely to the tick", () => {
    const ex = new PaperExchange({ slippageBps: "0", impactBps: "100", maxSlippageBps: "30" });
    ex.onBar(bar("100.00", { volume: "10" }));
    expect(ex.takerPrice("BTCUSDT", "buy", D("1"))!.toFixed()).toBe("100.1"); // 10 bps
    expect(ex.takerPrice("BTCUSDT", "buy", D("100"))!.toFixed()).toBe("100.3"); // capped at 30 bps
    expect(ex.takerPrice("BTCUSDT", "sell", D("0.1"))!.toFixed()).toBe("99.99"); // 99.99 exactly
    expect(ex.takerPrice("BTCUSDT", "sell", D("0.15"))!.toFixed()).toBe("99.98"); // 99.985 floors
  });
  it("rests a limit until a bar crosses, then fills at the limit as maker", () => {
    const ex = new PaperExchange({ makerFeeBps: "2", takerFeeBps: "10" });
    ex.onBar(bar("100"));
    const r = ex.submit(order({ type: "limit", limitPrice: "99", quantity: "3" }));
    expect(r.status).toBe("resting");
    expect(ex.onBar(bar("99.5", { low: "99", high: "100" }, 1))).toEqual([]); // touch only: no cross
    const [rep] = ex.onBar(bar("98.7", { low: "98.5", high: "99.6" }, 2));
    expect(rep.status).toBe("filled");
    expect(rep.fills[0]).toMatchObject({ fillId: "o1:1", price: "99", quantity: "3", fee: "0.0594", liquidity: "maker", ts: 2 * 60_000 + 59_999 });
    expect(ex.restingOrders()).toEqual([]);
  });
  it("fills a marketable limit at once, never worse than the limit", () => {
    const ex = new PaperExchange({ slippageBps: "50" });
    ex.onBar(bar("100"));
    expect(ex.submit(order({ type: "limit", limitPrice: "100.2" })).fills[0].price).toBe("100.2");
    expect(ex.submit(order({ orderId: "o2", type: "limit", limitPrice: "101" })).fills[0].price).toBe("100.5");
    expect(ex.submit(order({ orderId: "o3", type: "limit", side: "sell", limitPrice: "99", timeInForce: "IOC" })).fills[0].price).toBe("99.5");
    expect(ex.submit(order({ orderId: "o4", type: "limit", side: "sell", limitPrice: "101", timeInForce: "IOC" })).status).toBe("expired");
  });
  it("fills partially with a participation cap and keeps fill ids sequential", () => {
    const ex = new PaperExchange({ maxParticipation: "0.1" });
    ex.onBar(bar("100"));
    ex.submit(order({ type: "limit", side: "sell", limitPrice: "101", quantity: "15" }));
    const [a] = ex.onBar(bar("101.5", { high: "102", volume: "100" }, 1));
    expect(a).toMatchObject({ status: "partially_filled", remaining: "5" });
    expect(a.fills[0]).toMatchObject({ fillId: "o1:1", quantity: "10" });
    const [b] = ex.onBar(bar("101.5", { high: "102", volume: "100" }, 2));
    expect(b).toMatchObject({ status: "filled", remaining: "0" });
    expect(b.fills[0].fillId).toBe("o1:2");
  });
  it("execution parameters out of the rules' bounds are refused by every engine, and the paper exchange's by configuration key", async () => {
    // A participation above 1 filled more than the bar traded; 0 filled nothing.
    for (const [opts, option] of [
      [{ maxParticipation: "1.5" }, "maxParticipation"],
      [{ maxParticipation: "0" }, "maxParticipation"],
      [{ maxParticipation: "0.00000000" }, "maxParticipation"],
      [{ takerFeeBps: "10000" }, "takerFeeBps"],
      [{ maxSlippageBps: "20000" }, "maxSlippageBps"],
      [{ slippageBps: "-1" }, "slippageBps"],
      [{ impactBps: "-0.5" }, "impactBps"],
      [{ tickSize: "0" }, "tickSize"],
      [{ stepSize: "0" }, "stepSize"],
      [{ makerFeeBps: "abc" }, "makerFeeBps"],
    ] as const) {
      expect(executionOptionIssue(opts)?.option, JSON.stringify(opts)).toBe(option);
      expect(() => new PaperExchange(opts), JSON.stringify(opts)).toThrow(new RegExp(`^execution option ${option} must be`));
      expect(() => new ExecutionRules(floatArithmetic, opts), JSON.stringify(opts)).toThrow(RangeError);
    }
    for (const opts of [{ maxParticipation: "1" }, { maxParticipation: "1.00000000" }, { maxParticipation: "0.00000001" }, { takerFeeBps: "9999.99999999", slippageBps: "0", impactBps: "1000" }, {}]) {
      expect(executionOptionIssue(opts), JSON.stringify(opts)).toBeUndefined();
      expect(() => new PaperExchange(opts)).not.toThrow();
    }
    const env = { LOG_LEVEL: "silent", POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/db", KAFKA_BROKERS: "127.0.0.1:1" };
    await expect(createService(tradingEngine, { env: { ...env, PAPER_TAKER_FEE_BPS: "10000" }, defaultMetrics: false })).rejects.toThrow(
      'Invalid configuration of trading-engine: PAPER_TAKER_FEE_BPS must be at least 0 and below 10000 (100 %) (got "10000")',
    );
    await expect(createService(tradingEngine, { env: { ...env, PAPER_TICK_SIZE: "0.000" }, defaultMetrics: false })).rejects.toThrow(/PAPER_TICK_SIZE must be > 0/);
  });
  it("cancels and restores resting orders", () => {
    const ex = new PaperExchange();
    ex.onBar(bar("100"));
    ex.submit(order({ type: "limit", limitPrice: "90" }));
    const saved = ex.restingOrders();
    expect(ex.cancel("o1")?.status).toBe("cancelled");
    expect(ex.cancel("o1")).toBeUndefined();
    const ex2 = new PaperExchange();
    saved.forEach((r) => ex2.restore(r));
    expect(ex2.onBar(bar("89", { low: "88" }, 1))[0].fills[0].fillId).toBe("o1:1");
  });
  it("knows which symbols have resting orders through rests, fills, cancels and restores; a bar of a symbol with none only becomes its last", () => {
    const ex = new PaperExchange();
    ex.onBar(bar("100"));
    ex.onBar(bar("50", { symbol: "ETHUSDT" }));
    expect(ex.submit(order({ type: "limit", limitPrice: "90" })).status).toBe("resting");
    expect(ex.submit(order({ orderId: "o2", type: "limit", limitPrice: "80" })).status).toBe("resting");
    expect([ex.hasResting("BTCUSDT"), ex.hasResting("ETHUSDT")]).toEqual([true, false]);
    // ETHUSDT crosses nothing of BTCUSDT's: its bar is only its last, whatever its prices.
    expect(ex.onBar(bar("40", { symbol: "ETHUSDT", low: "1", high: "1000" }, 1))).toEqual([]);
    expect(ex.lastBar("ETHUSDT")).toMatchObject({ close: "40", openTime: 60_000 });
    expect(ex.cancel("o2")?.status).toBe("cancelled");
    expect(ex.hasResting("BTCUSDT")).toBe(true);
    // A restore of an order already resting replaces it: it is counted once.
    ex.restore(ex.restingOrders()[0]);
    expect(ex.onBar(bar("89", { low: "88" }, 1)).map((r) => r.status)).toEqual(["filled"]);
    expect(ex.hasResting("BTCUSDT")).toBe(false);
    expect(ex.onBar(bar("70", { low: "1" }, 2))).toEqual([]);
    expect(ex.lastPrice("BTCUSDT")).toBe("70");
    ex.restore({ order: order({ orderId: "o3", symbol: "ETHUSDT", type: "limit", side: "sell", limitPrice: "60" }), remaining: "1", fillSeq: 0 });
    expect([ex.hasResting("BTCUSDT"), ex.hasResting("ETHUSDT")]).toEqual([false, true]);
    expect(ex.onBar(bar("61", { symbol: "ETHUSDT", high: "61" }, 2)).map((r) => r.orderId)).toEqual(["o3"]);
    expect(ex.hasResting("ETHUSDT")).toBe(false);
  });

  it("lists and fills a bar's symbol's resting orders alone, in submission order, with orders of other symbols between them", () => {
    const ex = new PaperExchange();
    ex.onBar(bar("100"));
    ex.onBar(bar("100", { symbol: "ETHUSDT" }));
    const ids = ["b1", "e1", "b2", "e2", "b3"];
    for (const id of ids) ex.submit(order({ orderId: id, userId: `u-${id}`, symbol: id.startsWith("b") ? "BTCUSDT" : "ETHUSDT", type: "limit", limitPrice: "90" }));
    expect(ex.restingOrdersIn(["ETHUSDT"]).map((o) => o.orderId)).toEqual(["e1", "e2"]);
    expect(ex.restingOrdersIn(["BTCUSDT", "BTCUSDT"]).map((o) => o.userId)).toEqual(["u-b1", "u-b2", "u-b3"]);
    expect(ex.restingOrdersIn([])).toEqual([]);
    // b2 cancelled and restored: it goes to the end of its symbol's queue, as of the whole book before.
    ex.cancel("b2");
    ex.restore({ order: order({ orderId: "b2", userId: "u-b2", type: "limit", limitPrice: "90" }), remaining: "1", fillSeq: 0 });
    expect(ex.onBar(bar("85", { low: "85" }, 1)).map((r) => r.orderId)).toEqual(["b1", "b3", "b2"]);
    expect(ex.restingOrdersIn(["BTCUSDT", "ETHUSDT"]).map((o) => o.orderId)).toEqual(["e1", "e2"]);
    expect(ex.restingOrders().map((r) => r.order.orderId)).toEqual(["e1", "e2"]);
  });
});

const fill = (f: Partial<Fill>): Fill => ({
  fillId: "f1",
  orderId: "o1",
  userId: "u1",
  symbol: "BTCUSDT",
  side: "buy",
  quantity: "1",
  price: "100",
  fee: "0",
  liquidity: "taker",
  ts: 0,
  ...f,
});

describe("portfolio accounting", () => {
  it("tracks cash, average price, realized and unrealized PnL and fees to the cent", () => {
    const p = new Portfolio("u1", "10000");
    expect(p.applyFill(fill({ fillId: "a", quantity: "2", price: "100.10", fee: "0.2002" }))).toBe(true);
    expect(p.applyFill(fill({ fillId: "b", quantity: "1", price: "103.33", fee: "0.10333" }))).toBe(true);
    // avg = (200.20 + 103.33) / 3 = 101.17666...
    expect(p.applyFill(fill({ fillId: "c", side: "sell", quantity: "1.5", price: "105.01", fee: "0.157515" }))).toBe(true);
    const v = p.view({ BTCUSDT: "99.99" });
    // cash = 10000 - 200.4002 - 103.43333 + (157.515 - 0.157515) = 9853.523955
    expect(v.cash).toBe("9853.52");
    expect(v.positions[0]).toMatchObject({ quantity: "1.5", avgPrice: "101.17666667" });
    // realized = (105.01 - 101.176666...) * 1.5 = 5.75
    expect(v.realizedPnl).toBe("5.75");
    // unrealized = (99.99 - 101.17666..) * 1.5 = -1.78
    expect(v.unrealizedPnl).toBe("-1.78");
    expect(v.fees).toBe("0.46");
    expect(v.netPnl).toBe("3.51"); // 5.75 - 1.78 - 0.461345 = 3.508655
    expect(v.equity).toBe("10003.51"); // cash + 1.5 * 99.99
  });
  it("is idempotent per fill id", () => {
    const p = new Portfolio("u1", "1000");
    const f = fill({ fillId: "x", quantity: "3", price: "10", fee: "0.03" });
    expect(p.applyFill(f)).toBe(true);
    expect(p.applyFill(f)).toBe(false);
    expect(p.view().cash).toBe("969.97");
    expect(p.positions.get("BTCUSDT")!.quantity.toFixed()).toBe("3");
  });
  it("handles closing, flipping and shorts", () => {
    const p = new Portfolio("u1", "0");
    p.applyFill(fill({ fillId: "1", quantity: "2", price: "50" }));
    p.applyFill(fill({ fillId: "2", side: "sell", quantity: "3", price: "60" })); // close 2 (+20), open short 1 @60
    let pos = p.positions.get("BTCUSDT")!;
    expect(pos.quantity.toFixed()).toBe("-1");
    expect(pos.avgPrice.toFixed()).toBe("60");
    expect(pos.realizedPnl.toFixed()).toBe("20");
    p.applyFill(fill({ fillId: "3", quantity: "1", price: "55" })); // cover short +5
    pos = p.positions.get("BTCUSDT")!;
    expect(pos.quantity.isZero()).toBe(true);
    expect(pos.realizedPnl.toFixed()).toBe("25");
    expect(p.cash.toFixed()).toBe("25");
  });
  it("refuses another user's fill", () => {
    expect(() => new Portfolio("u1").applyFill(fill({ userId: "u2" }))).toThrow();
  });
});
