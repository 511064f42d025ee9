/**
 * An order's limit price off the paper exchange's tick (session 65b): 99.995 against a tick of 0.01 was taken and
 * filled at 99.995 in paper mode, a price Binance refuses. checkOrderRequest refuses it with a 400 naming limitPrice
 * and the tick, through the same ExecutionRules the paper exchange fills by; a price the tick is coarse for (a
 * symbol at 0.015: the rules keep a taker's price there at 8 decimals, commit 8e82d48e) is still taken.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, HttpError } from "../../services/src/kit";
import { D } from "../../services/src/trading/decimal";
import { decimalArithmetic, ExecutionRules, floatArithmetic } from "../../services/src/trading/executionRules";
import { checkOrderRequest, orderPriceRules, type OrderBodyFields } from "../../services/src/trading/orderRequest";

const prices = orderPriceRules("order-management", { TRADING_MODE: "paper", PAPER_TICK_SIZE: "0.01" })!;
const limit = (limitPrice: string): OrderBodyFields => ({ symbol: "BTCUSDT", side: "buy", type: "limit", quantity: "1", limitPrice });
const refusal = (body: OrderBodyFields) => {
  try {
    checkOrderRequest(body, prices);
    return undefined;
  } catch (e) {
    return e as HttpError;
  }
};

describe("ExecutionRules.keepsPrice", () => {
  const opts = { tickSize: "0.01", maxSlippageBps: "100" };
  const rules = { decimal: new ExecutionRules(decimalArithmetic, opts), float: new ExecutionRules(floatArithmetic, opts) };
  const keeps = (kind: "decimal" | "float", p: string) => (kind === "decimal" ? rules.decimal.keepsPrice(D(p)) : rules.float.keepsPrice(Number(p)));
  it.each(["decimal", "float"] as const)("%s: on the tick kept, between ticks refused, a coarse tick's price kept", (kind) => {
    for (const p of ["100", "99.99", "100.07", "0.01", "12345.67"]) expect(keeps(kind, p), p).toBe(true);
    for (const p of ["99.995", "100.001", "1.234", "5.005"]) expect(keeps(kind, p), p).toBe(false);
    // The tick is coarse for these (rounding moves them beyond the 1 % cap): the rules fill at such prices.
    for (const p of ["0.015", "0.005", "0.12345", "0.00000001", "0.50000001"]) expect(keeps(kind, p), p).toBe(true);
  });
  it("a coarser tick: 0.5 against 100.25 refused, 100.5 kept", () => {
    const coarse = new ExecutionRules(decimalArithmetic, { tickSize: "0.5" });
    expect(coarse.keepsPrice(D("100.25"))).toBe(false);
    expect(coarse.keepsPrice(D("100.5"))).toBe(true);
  });
});

describe("checkOrderRequest with the paper exchange's rules", () => {
  it("a limit between ticks: 400 naming limitPrice and the tick", () => {
    const e = refusal(limit("99.995"));
    expect(e).toBeInstanceOf(HttpError);
    expect(e!.statusCode).toBe(400);
    expect(e!.field).toBe("limitPrice");
    expect(e!.message).toContain("tick 0.01");
    expect(e!.message).toContain("99.99 or 100");
  });
  it("a limit on the tick, a market order and a cheap symbol's limit are taken", () => {
    expect(refusal(limit("99.99"))).toBeUndefined();
    expect(refusal(limit("0.015"))).toBeUndefined();
    expect(refusal({ symbol: "BTCUSDT", side: "sell", type: "market", quantity: "0.5" })).toBeUndefined();
  });
  it("live mode checks no tick (Binance's own filters decide); a tick of 0 is a ConfigError naming PAPER_TICK_SIZE", () => {
    expect(orderPriceRules("order-management", { TRADING_MODE: "live", PAPER_TICK_SIZE: "0.01" })).toBeUndefined();
    expect(() => orderPriceRules("risk-analyzer", { TRADING_MODE: "paper", PAPER_TICK_SIZE: "0" })).toThrow(ConfigError);
    expect(() => orderPriceRules("risk-analyzer", { TRADING_MODE: "paper", PAPER_TICK_SIZE: "0" })).toThrow(/PAPER_TICK_SIZE/);
  });
});
