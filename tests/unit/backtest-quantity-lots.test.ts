/**
 * A backtest's fixed quantity and its lot (session 65b): both engines size only "all" in whole lots of
 * quantityStep and take a fixed quantity as given, so 1.5 with a lot of 1 ran, trading half a lot no exchange with
 * that lot takes. planBacktest refuses it with a 400 naming quantity (and the whole lots around it); a quantity of
 * whole lots, float spellings included (0.3 is 3 lots of 0.1), and a quantity without a quantityStep run as before.
 */
import { describe, expect, it } from "vitest";
import { ParameterError } from "../../services/src/backtest";
import { planBacktest, wholeLots } from "../../services/src/services/backtesting-engine/plan";
import type { BacktestRequest } from "../../services/src/services/backtesting-engine/schemas";

const LIMITS = { maxBars: 10_000_000, maxParameterSets: 1_000, maxJobBarSteps: 1e10 };
const request = (patch: Partial<BacktestRequest>): BacktestRequest => ({
  strategy: "sma-crossover",
  symbols: ["BTCUSDT"],
  interval: "1d",
  period: { start: "2024-01-01T00:00:00Z", end: "2024-06-01T00:00:00Z" },
  data: { source: "synthetic", seed: 1 },
  ...patch,
});
const refusal = (patch: Partial<BacktestRequest>) => {
  try {
    planBacktest(request(patch), LIMITS);
    return undefined;
  } catch (e) {
    if (e instanceof ParameterError) return { field: e.field, message: e.message };
    throw e;
  }
};

describe("wholeLots", () => {
  it("whole lots within float error taken, a part of a lot refused", () => {
    for (const [q, lot] of [[2, 1], [0.3, 0.1], [0.7, 0.1], [1e9, 1e-8], [1.00000001, 1e-8], [7.5, 2.5]]) expect(wholeLots(q, lot), `${q}/${lot}`).toBe(true);
    for (const [q, lot] of [[1.5, 1], [0.15, 0.1], [1.000000015, 1e-8], [5, 2]]) expect(wholeLots(q, lot), `${q}/${lot}`).toBe(false);
  });
});

describe("planBacktest: a fixed quantity off its lot", () => {
  it("1.5 with a lot of 1: a 400 naming quantity, the lots around it named", () => {
    expect(refusal({ quantity: 1.5, quantityStep: 1 })).toEqual({ field: "quantity", message: expect.stringContaining("no whole number of lots of 1 (quantityStep): 1 or 2") });
    expect(refusal({ quantity: 0.15, quantityStep: 0.1 })).toMatchObject({ field: "quantity" });
  });
  it("whole lots, no lot given, and sizing all run", () => {
    expect(refusal({ quantity: 3, quantityStep: 1 })).toBeUndefined();
    expect(refusal({ quantity: 0.3, quantityStep: 0.1 })).toBeUndefined();
    expect(refusal({ quantity: 1.5 })).toBeUndefined();
    expect(refusal({ quantity: "all", quantityStep: 0.3 })).toBeUndefined();
  });
  it("a lot above the quantity still names quantityStep", () => {
    expect(refusal({ quantity: 1, quantityStep: 2 })).toMatchObject({ field: "quantityStep" });
  });
});
