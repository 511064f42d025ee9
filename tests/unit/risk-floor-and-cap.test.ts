/**
 * The pre-trade check's floor on an order's size and cap on a user's open orders (risk.ts
 * minOrderNotional, maxOpenOrders), without servers. Before, nothing refused an order of 0.00000001
 * (its fee rounds to 0) and nothing bounded how many a trader kept resting: the rate window bounds
 * only the pace, maxPosition the summed quantity, so one trader could grow the engine's in-memory
 * books without bound. order-management's batch decision counts the orders before each one in the
 * batch, so one batch cannot pass the cap either.
 */
import { describe, expect, it } from "vitest";
import { decideSubmissions, type Submission } from "../../services/src/services/order-management/domain";
import { riskLimitsFrom, type RiskFacts } from "../../services/src/trading/infra/riskContext";
import { ConfigError } from "../../services/src/kit";
import { checkOrder, DEFAULT_LIMITS, RISK_REJECTIONS, type RiskContext } from "../../services/src/trading/risk";

const ctx = (c: Partial<RiskContext> = {}): RiskContext => ({ lastPrice: "100", position: "0", dailyPnl: "0", recentOrderTimes: [], now: 1_000_000, ...c });
const mkt = (quantity: string, side: "buy" | "sell" = "buy") => ({ side, type: "market" as const, quantity });
const lmt = (quantity: string, limitPrice: string, side: "buy" | "sell" = "buy") => ({ side, type: "limit" as const, quantity, limitPrice });
const outcome = (d: ReturnType<typeof checkOrder>) => (d.ok ? "OK" : d.reason);

describe("minimum order notional", () => {
  it("defaults to 1 in quote currency, and both reasons are named rejections (metrics start each at 0)", () => {
    expect(DEFAULT_LIMITS.minOrderNotional).toBe("1");
    expect(DEFAULT_LIMITS.maxOpenOrders).toBe(200);
    expect(RISK_REJECTIONS).toContain("ORDER_NOTIONAL_TOO_SMALL");
    expect(RISK_REJECTIONS).toContain("OPEN_ORDERS_EXCEEDED");
  });

  it("passes exactly the minimum and refuses just under it: a limit order at its limit price", () => {
    expect(checkOrder(lmt("0.01", "100"), ctx())).toEqual({ ok: true, notional: "1" });
    expect(checkOrder(lmt("0.00999999", "100"), ctx())).toEqual({ ok: false, reason: "ORDER_NOTIONAL_TOO_SMALL", message: "notional 0.999999 is below the minimum 1" });
    // The limit price, not the last one: 0.01 at 99.99 is under 1 although 0.01 x 100 is not.
    expect(outcome(checkOrder(lmt("0.01", "99.99"), ctx()))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    expect(outcome(checkOrder(lmt("0.01", "100.01", "sell"), ctx()))).toBe("OK");
  });

  it("weighs a market order at the last price", () => {
    expect(outcome(checkOrder(mkt("0.01"), ctx()))).toBe("OK");
    expect(outcome(checkOrder(mkt("0.00999999"), ctx()))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    expect(outcome(checkOrder(mkt("0.01"), ctx({ lastPrice: "99.99999999" })))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    expect(outcome(checkOrder(mkt("1", "sell"), ctx({ lastPrice: "1" })))).toBe("OK");
  });

  it("refuses dust, and follows the configured floor (0 turns it off)", () => {
    const dust = checkOrder(mkt("0.00000001"), ctx());
    expect(dust).toMatchObject({ ok: false, reason: "ORDER_NOTIONAL_TOO_SMALL" });
    expect(!dust.ok && dust.message).toBe("notional 0.000001 is below the minimum 1");
    expect(outcome(checkOrder(mkt("0.00000001"), ctx(), { ...DEFAULT_LIMITS, minOrderNotional: "0" }))).toBe("OK");
    expect(outcome(checkOrder(mkt("0.1"), ctx(), { ...DEFAULT_LIMITS, minOrderNotional: "10" }))).toBe("OK");
    expect(outcome(checkOrder(mkt("0.09999999"), ctx(), { ...DEFAULT_LIMITS, minOrderNotional: "10" }))).toBe("ORDER_NOTIONAL_TOO_SMALL");
  });

  it("comes after the checks that say more: no price still fails closed, a collar breach is named as such", () => {
    expect(outcome(checkOrder(mkt("0.00000001"), ctx({ lastPrice: undefined })))).toBe("NO_REFERENCE_PRICE");
    expect(outcome(checkOrder(lmt("0.00000001", "200"), ctx()))).toBe("PRICE_COLLAR_BREACHED");
    expect(outcome(checkOrder(mkt("0.00000001"), ctx({ tradingState: "halted" })))).toBe("TRADING_HALTED");
  });
});

describe("the floor and what closes a position", () => {
  it("lets an order under the floor close (part of) a position, never open or cross one: a dust position can be closed", () => {
    // Long 0.005 at 100 (worth 0.5): selling it whole, or part, is allowed; selling beyond it, or
    // with open sells that already cover it, is not; a buy under the floor is refused as before.
    expect(outcome(checkOrder(mkt("0.005", "sell"), ctx({ position: "0.005" })))).toBe("OK");
    expect(outcome(checkOrder(lmt("0.002", "100", "sell"), ctx({ position: "0.005" })))).toBe("OK");
    expect(outcome(checkOrder(mkt("0.006", "sell"), ctx({ position: "0.005" })))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    expect(outcome(checkOrder(mkt("0.005", "sell"), ctx({ position: "0.005", openSell: "0.001" })))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    expect(outcome(checkOrder(mkt("0.005"), ctx({ position: "0.005" })))).toBe("ORDER_NOTIONAL_TOO_SMALL");
    // Short 0.005: a buy of it closes it.
    expect(outcome(checkOrder(mkt("0.005"), ctx({ position: "-0.005" })))).toBe("OK");
    expect(outcome(checkOrder(mkt("0.005", "sell"), ctx({ position: "-0.005" })))).toBe("ORDER_NOTIONAL_TOO_SMALL");
  });

  it("refuses a configuration whose floor is above the ceiling (every order refused), naming both variables", () => {
    const env = { RISK_MAX_ORDER_QUANTITY: "100", RISK_MAX_ORDER_NOTIONAL: "1000", RISK_MAX_POSITION: "500", RISK_PRICE_COLLAR_BPS: "500", RISK_DAILY_LOSS_LIMIT: "50000", RISK_MAX_ORDERS_PER_WINDOW: 100, RISK_RATE_WINDOW_MS: 1000, RISK_MIN_ORDER_NOTIONAL: "1000", RISK_MAX_OPEN_ORDERS: 200 };
    expect(riskLimitsFrom("order-management", env).minOrderNotional).toBe("1000");
    expect(() => riskLimitsFrom("order-management", { ...env, RISK_MIN_ORDER_NOTIONAL: "1000.5" })).toThrow(ConfigError);
    expect(() => riskLimitsFrom("risk-analyzer", { ...env, RISK_MIN_ORDER_NOTIONAL: "1000.5" })).toThrow(/RISK_MIN_ORDER_NOTIONAL \(1000\.5\) must not exceed RISK_MAX_ORDER_NOTIONAL \(1000\)/);
  });
});

describe("maximum open orders per user", () => {
  const limits = { ...DEFAULT_LIMITS, maxOpenOrders: 3 };
  it("passes the cap-th order and refuses the next, whatever its side or type", () => {
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 0 }), limits))).toBe("OK");
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 2 }), limits))).toBe("OK"); // the 3rd
    const over = checkOrder(lmt("1", "100", "sell"), ctx({ openOrders: 3 }), limits);
    expect(over).toEqual({ ok: false, reason: "OPEN_ORDERS_EXCEEDED", message: "3 open orders (max 3): cancel one, or wait for a fill, before placing another" });
    expect(outcome(checkOrder(mkt("1", "sell"), ctx({ openOrders: 3, position: "5" }), limits))).toBe("OPEN_ORDERS_EXCEEDED");
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 4 }), limits))).toBe("OPEN_ORDERS_EXCEEDED");
    // A cancel or a fill that takes an order off the book frees its slot.
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 2 }), limits))).toBe("OK");
  });

  it("is 200 by default; absent, a context has no open order", () => {
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 199 })))).toBe("OK");
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 200 })))).toBe("OPEN_ORDERS_EXCEEDED");
    expect(outcome(checkOrder(mkt("1"), ctx()))).toBe("OK");
  });

  it("leaves the kill switch first", () => {
    expect(outcome(checkOrder(mkt("1"), ctx({ openOrders: 3, tradingState: "halted" }), limits))).toBe("TRADING_HALTED");
  });
});

describe("order-management's batch decision", () => {
  const none: RiskFacts = { position: "0", openBuy: "0", openSell: "0", dailyPnl: "0", recentOrderTimes: [], openOrders: 0, recordedTradingState: "active" };
  const sub = (userId: string, symbol: string, quantity = "1", type: "market" | "limit" = "limit"): Submission => ({
    orderId: `${userId}-${Math.random()}`, userId, idempotencyKey: null, requestHash: `${symbol}${quantity}`,
    body: { symbol, side: "buy", type, quantity, ...(type === "limit" ? { limitPrice: "100" } : {}) },
  });
  const decide = (subs: Submission[], facts: (u: string, s: string) => RiskFacts, maxOpenOrders = 3) =>
    decideSubmissions(subs, {
      facts,
      market: subs.map(() => ({ lastPrice: "100", tradingState: "active" as const })),
      priors: [],
      limits: { ...DEFAULT_LIMITS, maxOpenOrders },
      now: 1_000_000,
    }).map((d) => (d.kind === "new" ? (d.risk.ok ? "accepted" : d.risk.reason) : d.kind));

  it("counts the accepted orders before each one, in every symbol of the user, from the stored count", () => {
    // The user has 1 open order (each pair's facts count the user's orders in every symbol).
    const facts = (u: string) => ({ ...none, openOrders: u === "a" ? 1 : 0 });
    expect(decide([sub("a", "BTCUSDT"), sub("b", "BTCUSDT"), sub("a", "ETHUSDT"), sub("a", "BTCUSDT"), sub("a", "ETHUSDT"), sub("b", "ETHUSDT")], facts)).toEqual([
      "accepted", "accepted", "accepted", "OPEN_ORDERS_EXCEEDED", "OPEN_ORDERS_EXCEEDED", "accepted",
    ]);
  });

  it("a rejected order takes no slot; a batch of 10 against a cap of 3 accepts 3", () => {
    const d = decide([sub("a", "BTCUSDT", "0.00000001"), ...Array.from({ length: 10 }, () => sub("a", "BTCUSDT"))], () => none);
    expect(d).toEqual(["ORDER_NOTIONAL_TOO_SMALL", "accepted", "accepted", "accepted", ...Array(7).fill("OPEN_ORDERS_EXCEEDED")]);
  });
});
