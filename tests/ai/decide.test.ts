/** ai-orchestrator's decision rule (pure): thresholds, regimes, position limit, kill switch, stop. */
import { describe, expect, it } from "vitest";
import { decide, onOrderGrid, orderQuantityText, regimeAgreement } from "../../services/src/services/ai-orchestrator/decide";
import { stricter } from "../../services/src/trading/tradingState";

const limits = { buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 3, minRegimeAgreement: 0.5 };
const base = { probabilityUp: 0.7, regimes: [], position: 0, tradingState: "active" as const, strategyStopped: false };

describe("decide", () => {
  it("buys above the threshold within the position limit, holds at the limit", () => {
    expect(decide(limits, base)).toMatchObject({ action: "buy", quantity: 1 });
    expect(decide(limits, { ...base, position: 3 })).toMatchObject({ action: "hold", reason: "position 3 at its limit 3" });
    expect(decide(limits, { ...base, probabilityUp: 0.5 })).toMatchObject({ action: "hold" });
  });
  it("counts working orders: unfilled buys take room under maxPosition, unfilled sells are not sold twice", () => {
    expect(decide(limits, { ...base, position: 1, pending: { buy: 2, sell: 0 } })).toMatchObject({ action: "hold", reason: "position 1 (+2 in working buys) at its limit 3" });
    expect(decide(limits, { ...base, position: 1, pending: { buy: 1, sell: 0 } })).toMatchObject({ action: "buy", quantity: 1 });
    expect(decide(limits, { ...base, probabilityUp: 0.3, position: 2, pending: { buy: 0, sell: 2 } })).toMatchObject({ action: "hold" });
    expect(decide(limits, { ...base, probabilityUp: 0.3, position: 2, pending: { buy: 0, sell: 1.5 } })).toMatchObject({ action: "sell", quantity: 0.5 });
  });
  it("sells only what it holds below the sell threshold", () => {
    expect(decide(limits, { ...base, probabilityUp: 0.3, position: 0.5 })).toMatchObject({ action: "sell", quantity: 0.5 });
    expect(decide(limits, { ...base, probabilityUp: 0.3, position: 0 })).toMatchObject({ action: "hold" });
  });
  it("orders only quantities order-management takes: a sell of float noise rounded down to 8 places, its text never an exponent", () => {
    const sell = decide(limits, { ...base, probabilityUp: 0.3, position: 0.1 + 0.2 });
    expect(sell).toMatchObject({ action: "sell", quantity: 0.3 });
    expect(orderQuantityText(sell.quantity)).toBe("0.3");
    expect(decide(limits, { ...base, probabilityUp: 0.3, position: 0.1 + 0.2 - 0.3 })).toMatchObject({ action: "hold" });
    expect(orderQuantityText(1e-7)).toBe("0.0000001");
    expect(orderQuantityText(123456789012.5)).toBe("123456789012.5");
    for (const q of [1e-8, 1e-7, 0.1, 0.3, 1, 2.5, 999999999999.99999999 - 0.5]) expect(onOrderGrid(q), String(q)).toBe(true);
    for (const q of [0, -1, 1e-9, 0.123456789, 1e12, 5e12, Number.NaN, Infinity]) expect(onOrderGrid(q), String(q)).toBe(false);
    for (const q of [1e-8, 0.1, 0.12345678, 42, 123456789012]) expect(orderQuantityText(q)).toMatch(/^(0|[1-9]\d{0,11})(\.\d{1,8})?$/);
    // The decimal the quantity was given as, not the binary value's digits (toFixed(8) sent "999999999999.98999023").
    for (const [q, text] of [[999999999999.99, "999999999999.99"], [999999999999.99999999 - 0.5, "999999999999.5"], [0.29, "0.29"], [1.005, "1.005"], [12345678.12345678, "12345678.12345678"], [0.00012345, "0.00012345"], [0.1 + 0.2, "0.3"], [1e-8, "0.00000001"], [5, "5"]] as const)
      expect(orderQuantityText(q), String(q)).toBe(text);
  });
  it("similar regimes that disagree veto a buy", () => {
    const regimes = [{ forwardReturn: -1 }, { forwardReturn: -1 }, { forwardReturn: 1 }];
    expect(regimeAgreement(regimes)).toBeCloseTo(1 / 3);
    expect(decide(limits, { ...base, regimes })).toMatchObject({ action: "hold", reason: "similar regimes disagree: 33% went up < 50%" });
  });
  it("halted skips everything; reduce-only allows only sells; a stopped strategy skips", () => {
    expect(decide(limits, { ...base, tradingState: "halted" })).toMatchObject({ action: "skip", reason: "trading is halted" });
    expect(decide(limits, { ...base, tradingState: "reduce_only" })).toMatchObject({ action: "hold" });
    expect(decide(limits, { ...base, tradingState: "reduce_only", probabilityUp: 0.1, position: 2 })).toMatchObject({ action: "sell" });
    expect(decide(limits, { ...base, strategyStopped: true })).toMatchObject({ action: "skip" });
  });
  it("the effective trading state is the stricter one", () => {
    expect(stricter("active", "reduce_only")).toBe("reduce_only");
    expect(stricter("halted", "reduce_only")).toBe("halted");
  });
});
