import { describe, expect, it } from "vitest";
import { ComplianceMonitor, type OrderEvent } from "../../services/src/trading/compliance";
import { checkOrder, DEFAULT_LIMITS, historicalVaR, OrderRateWindow, simpleReturns, type RiskContext } from "../../services/src/trading/risk";
import type { Fill } from "../../services/src/trading/types";

const ctx = (c: Partial<RiskContext> = {}): RiskContext => ({ lastPrice: "100", position: "0", dailyPnl: "0", recentOrderTimes: [], now: 1_000_000, ...c });
const limits = { ...DEFAULT_LIMITS, maxOrderQuantity: "10", maxOrderNotional: "500", maxPosition: "8", priceCollarBps: "500", dailyLossLimit: "1000", maxOrdersPerWindow: 3, rateWindowMs: 1000 };
const mkt = (quantity: string, side: "buy" | "sell" = "buy") => ({ side, type: "market" as const, quantity });

describe("pre-trade risk checks", () => {
  it("accepts an order within every limit", () => {
    expect(checkOrder(mkt("2"), ctx(), limits)).toEqual({ ok: true, notional: "200" });
  });
  it("names each rejection", () => {
    const reason = (o: Parameters<typeof checkOrder>[0], c: Partial<RiskContext> = {}) => {
      const d = checkOrder(o, ctx(c), limits);
      return d.ok ? "OK" : d.reason;
    };
    expect(reason(mkt("0"))).toBe("INVALID_ORDER");
    expect(reason(mkt("11"))).toBe("ORDER_QUANTITY_EXCEEDED");
    expect(reason(mkt("6"))).toBe("ORDER_NOTIONAL_EXCEEDED");
    expect(reason(mkt("3"), { position: "6" })).toBe("POSITION_LIMIT_EXCEEDED");
    expect(reason(mkt("3", "sell"), { position: "-6" })).toBe("POSITION_LIMIT_EXCEEDED");
    expect(reason(mkt("3", "sell"), { position: "6" })).toBe("OK");
    expect(reason({ side: "buy", type: "limit", quantity: "1", limitPrice: "106" })).toBe("PRICE_COLLAR_BREACHED");
    expect(reason({ side: "buy", type: "limit", quantity: "1", limitPrice: "105" })).toBe("OK");
    expect(reason({ side: "sell", type: "limit", quantity: "1", limitPrice: "94.99" })).toBe("PRICE_COLLAR_BREACHED");
    expect(reason(mkt("1"), { dailyPnl: "-1000" })).toBe("DAILY_LOSS_LIMIT_REACHED");
    expect(reason(mkt("1"), { dailyPnl: "-999.99" })).toBe("OK");
    expect(reason(mkt("1"), { recentOrderTimes: [999_500, 999_600, 999_700] })).toBe("ORDER_RATE_EXCEEDED");
    expect(reason(mkt("1"), { recentOrderTimes: [998_000, 999_600, 999_700] })).toBe("OK");
  });
  it("fails closed without a last price, for market and limit orders", () => {
    const m = checkOrder(mkt("1"), ctx({ lastPrice: undefined }), limits);
    const l = checkOrder({ side: "buy", type: "limit", quantity: "1", limitPrice: "100" }, ctx({ lastPrice: undefined }), limits);
    expect(m).toMatchObject({ ok: false, reason: "NO_REFERENCE_PRICE" });
    expect(l).toMatchObject({ ok: false, reason: "NO_REFERENCE_PRICE" });
  });
  it("counts open orders of the same side as exposure", () => {
    expect(checkOrder(mkt("3"), ctx({ position: "3", openBuy: "3" }), limits)).toMatchObject({ ok: false, reason: "POSITION_LIMIT_EXCEEDED" });
    expect(checkOrder(mkt("3"), ctx({ position: "2", openBuy: "3" }), limits).ok).toBe(true); // 8: at the limit
    expect(checkOrder(mkt("3"), ctx({ position: "3", openSell: "3" }), limits).ok).toBe(true); // sells do not add to a long
    expect(checkOrder(mkt("3", "sell"), ctx({ position: "-3", openSell: "3" }), limits)).toMatchObject({ ok: false, reason: "POSITION_LIMIT_EXCEEDED" });
  });
  it("enforces the kill switch first: halted rejects everything, reduce_only what does not shrink the position", () => {
    const reason = (o: Parameters<typeof checkOrder>[0], c: Partial<RiskContext>) => {
      const d = checkOrder(o, ctx(c), limits);
      return d.ok ? "OK" : d.reason;
    };
    expect(reason(mkt("1"), { tradingState: "halted" })).toBe("TRADING_HALTED");
    expect(reason(mkt("1", "sell"), { tradingState: "halted", position: "5" })).toBe("TRADING_HALTED");
    expect(reason(mkt("1"), { tradingState: "reduce_only" })).toBe("REDUCE_ONLY"); // flat: any order opens
    expect(reason(mkt("1", "sell"), { tradingState: "reduce_only", position: "2" })).toBe("OK");
    expect(reason(mkt("2", "sell"), { tradingState: "reduce_only", position: "2" })).toBe("OK"); // to flat
    expect(reason(mkt("3", "sell"), { tradingState: "reduce_only", position: "2" })).toBe("REDUCE_ONLY"); // would flip
    expect(reason(mkt("1", "sell"), { tradingState: "reduce_only", position: "2", openSell: "1.5" })).toBe("REDUCE_ONLY");
    expect(reason(mkt("1"), { tradingState: "reduce_only", position: "2" })).toBe("REDUCE_ONLY");
    expect(reason(mkt("1"), { tradingState: "reduce_only", position: "-2" })).toBe("OK");
    expect(reason(mkt("1"), { tradingState: "active" })).toBe("OK");
  });
  it("counts orders in a sliding window", () => {
    const w = new OrderRateWindow(1000);
    w.record("u", 0);
    w.record("u", 500);
    expect(w.recent("u", 900)).toHaveLength(2);
    expect(w.recent("u", 1200)).toEqual([500]);
  });
});

describe("historical VaR", () => {
  it("takes the empirical lower-tail quantile", () => {
    const returns = Array.from({ length: 100 }, (_, i) => (i - 50) / 1000); // -0.05 .. 0.049
    const r = historicalVaR(returns, 0.95, "10000");
    expect(r.quantileReturn).toBeCloseTo(-0.045, 12);
    expect(r.var).toBe("450");
    expect(historicalVaR(returns, 0.99, "10000").var).toBe("490");
    expect(historicalVaR([0.01, 0.02], 0.95, "100").var).toBe("0");
    expect(() => historicalVaR([], 0.95)).toThrow();
  });
  it("computes returns from prices exactly", () => {
    expect(simpleReturns(["100", "110", "99"])).toEqual([0.1, -0.1]);
  });
});

const fill = (f: Partial<Fill>): Fill => ({ fillId: "f", orderId: "o", userId: "u1", symbol: "BTCUSDT", side: "buy", quantity: "1", price: "100", fee: "0", liquidity: "taker", ts: 0, ...f });
const ev = (e: Partial<OrderEvent>): OrderEvent => ({ eventId: "e", kind: "placed", orderId: "o", userId: "u1", symbol: "BTCUSDT", side: "buy", type: "limit", quantity: "1", limitPrice: "100", lastPrice: "100", ts: 0, ...e });

describe("compliance rules", () => {
  it("flags restricted symbols", () => {
    const m = new ComplianceMonitor({ restrictedSymbols: ["LUNAUSDT"] });
    expect(m.onOrder(ev({ symbol: "LUNAUSDT" })).map((a) => a.rule)).toEqual(["RESTRICTED_SYMBOL"]);
    expect(m.onOrder(ev({ eventId: "e2" }))).toEqual([]);
  });
  it("flags a position beyond the limit", () => {
    const m = new ComplianceMonitor({ positionLimit: "5" });
    expect(m.onFill(fill({ fillId: "a", quantity: "5" }))).toEqual([]);
    expect(m.onFill(fill({ fillId: "b", orderId: "o2", quantity: "0.1", price: "200" })).map((a) => a.rule)).toEqual(["POSITION_LIMIT"]);
  });
  it("detects wash trades: same user, opposite side, about the same price, inside the window", () => {
    const m = new ComplianceMonitor({ washWindowMs: 60_000, washPriceToleranceBps: "10" });
    expect(m.onFill(fill({ fillId: "b1", orderId: "o1", side: "buy", price: "100", ts: 0 }))).toEqual([]);
    const a = m.onFill(fill({ fillId: "s1", orderId: "o2", side: "sell", price: "100.05", ts: 30_000 }));
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ rule: "WASH_TRADE", alertId: "WASH_TRADE:s1", evidence: ["b1", "s1"] });
    // Far price, other user, or outside the window: no alert.
    expect(m.onFill(fill({ fillId: "s2", orderId: "o3", side: "sell", price: "101", ts: 31_000 }))).toEqual([]);
    expect(m.onFill(fill({ fillId: "s3", orderId: "o4", userId: "u2", side: "sell", price: "100", ts: 31_000 }))).toEqual([]);
    expect(m.onFill(fill({ fillId: "s4", orderId: "o5", side: "sell", price: "100", ts: 200_000 }))).toEqual([]);
  });
  it("detects spoofing (large, away, cancelled quickly) but not slow or near-touch cancels", () => {
    const m = new ComplianceMonitor({ spoofMinNotional: "10000", spoofAwayBps: "50", spoofCancelWithinMs: 5000 });
    m.onOrder(ev({ eventId: "p1", orderId: "big", quantity: "200", limitPrice: "99", ts: 0 }));
    expect(m.onOrder(ev({ eventId: "c1", kind: "cancelled", orderId: "big", quantity: "200", ts: 2000 })).map((a) => a.rule)).toEqual(["SPOOFING"]);
    m.onOrder(ev({ eventId: "p2", orderId: "slow", quantity: "200", limitPrice: "99", ts: 10_000 }));
    expect(m.onOrder(ev({ eventId: "c2", kind: "cancelled", orderId: "slow", ts: 20_000 }))).toEqual([]);
    m.onOrder(ev({ eventId: "p3", orderId: "near", quantity: "200", limitPrice: "99.9", ts: 30_000 }));
    expect(m.onOrder(ev({ eventId: "c3", kind: "cancelled", orderId: "near", ts: 30_500 }))).toEqual([]);
  });
  it("detects layering", () => {
    const m = new ComplianceMonitor({ spoofMinNotional: "10000", spoofAwayBps: "50", layeringMinOrders: 3 });
    expect(m.onOrder(ev({ eventId: "1", orderId: "l1", side: "sell", quantity: "200", limitPrice: "101", ts: 0 }))).toEqual([]);
    expect(m.onOrder(ev({ eventId: "2", orderId: "l2", side: "sell", quantity: "200", limitPrice: "101.5", ts: 1 }))).toEqual([]);
    const a = m.onOrder(ev({ eventId: "3", orderId: "l3", side: "sell", quantity: "200", limitPrice: "102", ts: 2 }));
    expect(a.map((x) => x.rule)).toEqual(["LAYERING"]);
    expect(a[0].evidence).toEqual(["l1", "l2", "l3"]);
  });
  it("flags an excessive cancel ratio once per window", () => {
    const m = new ComplianceMonitor({ cancelRatioMinOrders: 10, cancelRatioThreshold: 0.9, cancelRatioWindowMs: 60_000, spoofMinNotional: "1e12" });
    const alerts: string[] = [];
    for (let i = 0; i < 12; i++) {
      m.onOrder(ev({ eventId: `p${i}`, orderId: `o${i}`, ts: i * 100 }));
      alerts.push(...m.onOrder(ev({ eventId: `c${i}`, kind: "cancelled", orderId: `o${i}`, ts: i * 100 + 50 })).map((a) => a.rule));
    }
    expect(alerts).toEqual(["EXCESSIVE_CANCEL_RATIO"]);
  });
});
