/**
 * A taker's price where the paper exchange's one tick size is coarse for the symbol's price (session 65,
 * tests/hostile/session-65.test.ts): rounding to the tick in the adverse direction moved a market buy at
 * 0.015 to 0.02 and a sell to 0.01 (a third of the price, the slippage cap is 1 %), and a sell at 0.005 to
 * 0: such a price is kept at the quote precision. Where the tick is fine for the price (every test of the
 * backtester and the paper exchange before), the price is rounded to the tick as before, a slippage at its
 * cap included. Both number types the rules run on (decimal: the paper exchange; float: the backtester).
 */
import { describe, expect, it } from "vitest";
import { decimalArithmetic, ExecutionRules, floatArithmetic } from "../../services/src/trading/executionRules";

const opts = { slippageBps: "5", maxSlippageBps: "100", tickSize: "0.01" };
const rules = { decimal: new ExecutionRules(decimalArithmetic, opts), float: new ExecutionRules(floatArithmetic, opts) };
const price = (kind: keyof typeof rules, reference: string, side: "buy" | "sell", o = rules[kind]) =>
  Number(kind === "decimal" ? (o as ExecutionRules<any>).takerPrice(decimalArithmetic.of(reference), decimalArithmetic.of("1000"), side, decimalArithmetic.of("1")) : (o as ExecutionRules<any>).takerPrice(Number(reference), 1000, side, 1)).toFixed(8);

describe.each(["decimal", "float"] as const)("takerPrice on %s", (kind) => {
  it("a tick coarse for the price: the slipped price at 8 decimals, never 0, never beyond the cap", () => {
    expect(price(kind, "0.015", "buy")).toBe("0.01500750");
    expect(price(kind, "0.015", "sell")).toBe("0.01499250");
    expect(price(kind, "0.005", "sell")).toBe("0.00499750");
    expect(price(kind, "0.005", "buy")).toBe("0.00500250");
    // 0.99: the tick's rounding (0.0095) is within the cap (0.0099): on the tick.
    expect(price(kind, "0.99", "sell")).toBe("0.98000000");
  });
  it("a tick fine for the price: rounded to it as before, adversely", () => {
    expect(price(kind, "100", "buy")).toBe("100.05000000");
    expect(price(kind, "100", "sell")).toBe("99.95000000");
    expect(price(kind, "2", "buy")).toBe("2.01000000");
    expect(price(kind, "2", "sell")).toBe("1.99000000");
    // Slippage at its cap: the tick's rounding beyond the cap is kept (it is a tick, not the cap's size).
    const capped = kind === "decimal" ? new ExecutionRules(decimalArithmetic, { ...opts, slippageBps: "30", maxSlippageBps: "25" }) : new ExecutionRules(floatArithmetic, { ...opts, slippageBps: "30", maxSlippageBps: "25" });
    expect(price(kind, "100.01", "buy", capped as never)).toBe("100.27000000");
    expect(price(kind, "100.01", "sell", capped as never)).toBe("99.75000000");
  });
});
