/**
 * Backtest parameters that were taken and gave a meaningless run (session 65): a run that "succeeded"
 * without a trade, or rounded every price to nothing. Known from the request, a 400 naming the field
 * (backtesting-engine plan.ts, the library's parameter specs): a window as long as the bars it runs
 * over, a level the indicator never passes (RSI below 0, P(up) above 1), a lot larger than a fixed
 * quantity. Known only from the bars, the job fails naming the field (executor.ts: worker.ts records
 * it INVALID_INPUT): a tick above the lowest price, a lot dearer than the cash. Pure functions, no servers.
 */
import { describe, expect, it } from "vitest";
import { allocateSeries, ParameterError, type BarSeries } from "../../services/src/backtest";
import { JobExecutor } from "../../services/src/services/backtesting-engine/executor";
import { planBacktest, type Plan } from "../../services/src/services/backtesting-engine/plan";
import type { BacktestRequest } from "../../services/src/services/backtesting-engine/schemas";

const LIMITS = { maxBars: 10_000_000, maxParameterSets: 1_000, maxJobBarSteps: 1e10 };
/** `days` daily bars from 2024-01-01. */
const request = (days: number, patch: Partial<BacktestRequest> = {}): BacktestRequest => ({
  strategy: "sma-crossover",
  symbols: ["BTCUSDT"],
  interval: "1d",
  period: { start: "2024-01-01T00:00:00Z", end: new Date(Date.UTC(2024, 0, 1 + days)).toISOString() },
  data: { source: "synthetic", seed: 1 },
  ...patch,
});
/** The field and message of the 400 planBacktest answers (a ParameterError), or the plan. */
const planned = (req: BacktestRequest): Plan | { field: string; message: string } => {
  try {
    return planBacktest(req, LIMITS);
  } catch (e) {
    if (e instanceof ParameterError) return { field: e.field, message: e.message };
    throw e;
  }
};
const refused = (req: BacktestRequest) => {
  const out = planned(req);
  return "field" in out ? out.field : undefined;
};

describe("windows longer than the data: a 400 naming the window", () => {
  it("a run: a window of as many bars as the period has is refused, one bar fewer taken; a default named so", () => {
    expect(planned(request(20, { parameters: { fast: 5, slow: 20 } }))).toMatchObject({ field: "parameters.slow", message: expect.stringMatching(/a window of 20 bars, and the period has 20: it would never signal/) });
    expect(refused(request(20, { parameters: { fast: 5, slow: 19 } }))).toBeUndefined();
    expect(planned(request(20))).toMatchObject({ field: "parameters.slow", message: expect.stringContaining("a window of 30 bars (its default)") });
    expect(refused(request(31))).toBeUndefined();
    for (const [strategy, parameters, field] of [["ema-crossover", { fast: 5, slow: 25 }, "parameters.slow"], ["rsi-mean-reversion", { window: 20 }, "parameters.window"], ["breakout", { entryWindow: 20 }, "parameters.entryWindow"], ["breakout", { entryWindow: 5, exitWindow: 99 }, "parameters.exitWindow"]] as const)
      expect(refused(request(20, { strategy, parameters })), `${strategy} ${JSON.stringify(parameters)}`).toBe(field);
    expect(refused(request(20, { strategy: "breakout", parameters: { entryWindow: 19, exitWindow: 19 } }))).toBeUndefined();
  });

  it("a sweep: its longest value, or a default beside the grid, names the grid's parameter", () => {
    expect(refused(request(20, { sweep: { parameters: { fast: [5], slow: [10, 25] } } }))).toBe("sweep.parameters.slow");
    expect(planned(request(20, { sweep: { parameters: { fast: [5, 8] } } }))).toMatchObject({ field: "sweep.parameters.slow", message: expect.stringContaining("(its default)") });
    expect(refused(request(20, { sweep: { parameters: { fast: [5, 8], slow: [12, 19] } } }))).toBeUndefined();
  });

  it("a walk-forward: over a fold's segment, the shortest stretch a set runs over (40 bars, 1 fold: 20)", () => {
    expect(planned(request(40, { walkForward: { folds: 1, parameters: { fast: [5], slow: [15, 20] } } }))).toMatchObject({ field: "walkForward.parameters.slow", message: expect.stringMatching(/a fold's segment \(40 bars in 2\) has 20/) });
    expect(refused(request(40, { walkForward: { folds: 1, parameters: { fast: [5], slow: [15, 19] } } }))).toBeUndefined();
  });
});

describe("levels the indicator never passes: a 400 naming the level", () => {
  it("an RSI entry level of 0 (RSI is never below 0); above 0 taken", () => {
    expect(planned(request(60, { strategy: "rsi-mean-reversion", parameters: { lower: 0 } }))).toMatchObject({ field: "parameters.lower", message: expect.stringContaining("must be above 0, got 0") });
    expect(refused(request(60, { strategy: "rsi-mean-reversion", parameters: { lower: 0.5 } }))).toBeUndefined();
    expect(refused(request(60, { strategy: "rsi-mean-reversion", parameters: { lower: -1 } }))).toBe("parameters.lower");
  });

  it("a model entry of P(up) above 1 (a probability never is), in a run or a sweep (refused, not dropped as a cross-parameter rule is)", () => {
    expect(planned(request(60, { strategy: "ml-model", parameters: { enterAbove: 1 } }))).toMatchObject({ field: "parameters.enterAbove", message: expect.stringContaining("must be under 1, got 1") });
    expect(refused(request(60, { strategy: "ml-model", parameters: { enterAbove: 0.99 } }))).toBeUndefined();
    expect(refused(request(60, { strategy: "ml-model", sweep: { parameters: { enterAbove: [0.9, 1] } } }))).toBe("sweep.parameters.enterAbove");
  });
});

describe("a lot larger than a fixed quantity: a 400 naming quantityStep", () => {
  it("refused above the quantity, taken at or below it, and with 'all' (the bars decide)", () => {
    expect(planned(request(60, { quantity: 1, quantityStep: 2 }))).toMatchObject({ field: "quantityStep", message: expect.stringContaining("larger than quantity (1)") });
    expect(refused(request(60, { quantity: 1, quantityStep: 1 }))).toBeUndefined();
    expect(refused(request(60, { quantity: 0.5, quantityStep: 0.1 }))).toBeUndefined();
    expect(refused(request(60, { quantity: "all", quantityStep: 1_000 }))).toBeUndefined();
  });
});

describe("what only the bars tell: the job fails naming the field", () => {
  /** `n` daily bars at `price`, rising by `step` a bar. */
  const flat = (price: number, n = 60, step = 0): BarSeries => {
    const s = allocateSeries("BTCUSDT", 86_400_000, n);
    for (let i = 0; i < n; i++) {
      const p = price + i * step;
      s.time[i] = Date.UTC(2024, 0, 1) + i * 86_400_000;
      [s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]] = [p, p, p, p, 1_000];
    }
    return s;
  };
  const run = async (req: BacktestRequest, series: BarSeries) => {
    const plan = planBacktest(req, LIMITS);
    try {
      await new JobExecutor(req, async () => series).execute(plan.jobs[0], async () => undefined);
      return undefined;
    } catch (e) {
      if (e instanceof ParameterError) return { field: e.field, message: e.message };
      throw e;
    }
  };

  it("a tick above the lowest price: execution.tickSize, the default named so; a tick at the price runs", async () => {
    expect(await run(request(60, { execution: { tickSize: "1" } }), flat(0.5))).toMatchObject({ field: "execution.tickSize", message: expect.stringContaining("is 1, above BTCUSDT's lowest price in the period (0.5)") });
    expect(await run(request(60), flat(0.005))).toMatchObject({ field: "execution.tickSize", message: expect.stringContaining("is 0.01 (the default)") });
    expect(await run(request(60, { execution: { tickSize: "0.5" } }), flat(0.5, 60, 0.5))).toBeUndefined();
    expect(await run(request(60), flat(100, 60, 1))).toBeUndefined();
  });

  it("sizing 'all', a lot dearer at the lowest price than the symbol's cash: quantityStep; one it affords runs", async () => {
    expect(await run(request(60, { initialCash: 100_000, quantityStep: 1_000 }), flat(200))).toMatchObject({ field: "quantityStep", message: expect.stringContaining("nothing would be bought") });
    expect(await run(request(60, { initialCash: 100_000, quantityStep: 100 }), flat(200))).toBeUndefined();
    // A fixed quantity is not sized by the lot: no such refusal.
    expect(await run(request(60, { initialCash: 100_000, quantity: 1, quantityStep: 1 }), flat(200))).toBeUndefined();
  });
});
