import { describe, expect, it } from "vitest";
import {
  backtest, backtestInSlices, breakSmaTies, computeMetrics, drawdownCurve, EventEngine, ParameterError, priorRollingMax, rsi, sma, ema,
  strategies, syntheticSeries, allocateSeries, type BarSeries, type Broker, type Strategy,
} from "../../services/src/backtest";
import { D } from "../../services/src/trading/decimal";
import { decimalArithmetic, ExecutionRules, floatArithmetic } from "../../services/src/trading/executionRules";
import { PaperExchange } from "../../services/src/trading/paperExchange";

/** Bars from [open, high, low, close, volume] rows, one minute apart. */
function series(rows: Array<[number, number, number, number, number?]>): BarSeries {
  const s = allocateSeries("TEST", 60_000, rows.length);
  rows.forEach(([o, h, l, c, v], i) => {
    s.time[i] = i * 60_000;
    s.open[i] = o; s.high[i] = h; s.low[i] = l; s.close[i] = c; s.volume[i] = v ?? 100;
  });
  return s;
}
/** A strategy that submits given orders on given bars. */
const scripted = (plan: Record<number, Parameters<Broker["submit"]>[0][]>): Strategy => ({
  init() {},
  onBar(i, b) { for (const o of plan[i] ?? []) b.submit(o); },
});
const noCosts = { makerFeeBps: "0", takerFeeBps: "0", slippageBps: "0" };

describe("execution rules shared with the paper exchange", () => {
  it("gives the same prices and fees in decimal (paper exchange) and float64 (backtester)", () => {
    const opts = { takerFeeBps: "7.5", makerFeeBps: "2", slippageBps: "3", impactBps: "40", maxSlippageBps: "25", tickSize: "0.01" };
    const dec = new ExecutionRules(decimalArithmetic, opts);
    const flt = new ExecutionRules(floatArithmetic, opts);
    const ex = new PaperExchange(opts);
    for (const [close, vol, qty] of [["100.07", "10", "1"], ["2500.13", "3", "2.5"], ["0.31", "1000", "10"], ["64999.99", "0.5", "4"]]) {
      ex.setLastBar({ symbol: "BTCUSDT", interval: "1m", openTime: 0, closeTime: 59_999, open: close, high: close, low: close, close, volume: vol });
      for (const side of ["buy", "sell"] as const) {
        const p = ex.takerPrice("BTCUSDT", side, D(qty))!;
        expect(dec.takerPrice(D(close), D(vol), side, D(qty)).toFixed()).toBe(p.toFixed());
        expect(flt.takerPrice(Number(close), Number(vol), side, Number(qty))).toBeCloseTo(p.toNumber(), 9);
        expect(flt.fee(Number(qty) * p.toNumber(), "taker")).toBeCloseTo(dec.fee(D(qty).mul(p), "taker").toNumber(), 8);
      }
    }
  });
  it("float grid rounding keeps prices already on the tick", () => {
    expect(floatArithmetic.toStep(100.07, 0.01, "down")).toBe(100.07);
    expect(floatArithmetic.toStep(100.075, 0.01, "down")).toBeCloseTo(100.07, 12);
    expect(floatArithmetic.toStep(100.071, 0.01, "up")).toBeCloseTo(100.08, 12);
  });
});

describe("indicators", () => {
  const x = Float64Array.from([1, 2, 3, 4, 5, 6, 5, 4, 3, 2]);
  it("sma, ema, rsi and prior rolling max on known values", () => {
    expect(Array.from(sma(x, 3)).slice(2, 5)).toEqual([2, 3, 4]);
    expect(Number.isNaN(sma(x, 3)[1])).toBe(true);
    expect(ema(x, 3)[2]).toBe(2);
    expect(ema(x, 3)[3]).toBe(3);
    expect(rsi(x, 3)[3]).toBe(100);
    expect(rsi(x, 3)[9]).toBeLessThan(50);
    expect(Array.from(priorRollingMax(x, 3)).slice(3)).toEqual([3, 4, 5, 6, 6, 6, 5]);
  });
  it("compensated SMA stays on the exact window mean over a long series", () => {
    const s = syntheticSeries({ seed: 3, bars: 200_000 });
    const m = sma(s.close, 30);
    for (const i of [29, 1_000, 99_999, 199_999]) {
      let exact = 0;
      for (let k = i - 29; k <= i; k++) exact += Math.round(s.close[k] * 100);
      expect(Math.abs(m[i] - exact / 100 / 30)).toBeLessThan(1e-10);
    }
  });
  it("breakSmaTies leaves no exact tie", () => {
    const s = syntheticSeries({ seed: 11, bars: 20_000, startPrice: 1, decimals: 2 });
    expect(breakSmaTies(s, 2, [[3, 5]])).toBeGreaterThan(0);
    expect(breakSmaTies(s, 2, [[3, 5]])).toBe(0);
  });
});

describe("event-driven engine", () => {
  it("fills market orders at the close with fees and slippage, and keeps the books", () => {
    const bars = series([[100, 101, 99, 100], [100, 111, 99, 110], [110, 111, 104, 105]]);
    const e = new EventEngine(bars, { initialCash: 10_000, execution: { takerFeeBps: "10", slippageBps: "10", tickSize: "0.01" } });
    const r = e.run(scripted({ 0: [{ side: "buy", kind: "market", quantity: 10 }], 2: [{ side: "sell", kind: "market", quantity: "all" }] }));
    // buy 10 @ 100.10 (10 bps), fee 1.001; sell 10 @ 104.89 (105 * 0.999 = 104.895 floors), fee 1.04895
    expect(r.trades).toHaveLength(1);
    expect(r.trades[0]).toMatchObject({ direction: "long", entryBar: 0, exitBar: 2, quantity: 10, entryPrice: 100.1, exitPrice: expect.closeTo(104.89, 10) });
    expect(r.finalEquity).toBeCloseTo(10_000 - 1001 - 1.001 + 1048.9 - 1.0489, 8);
    expect(r.trades[0].pnl).toBeCloseTo(1048.9 - 1001 - 1.001 - 1.0489, 8);
    expect(Array.from(r.equity)).toEqual([expect.closeTo(10_000 - 1.001 - 1, 8), expect.closeTo(10_000 - 1001 - 1.001 + 1100, 8), expect.closeTo(r.finalEquity, 8)]);
    expect(r.exposureBars).toBe(2);
  });
  it("fills at the next open when asked", () => {
    const bars = series([[100, 101, 99, 100], [102, 103, 101, 102], [104, 105, 103, 104]]);
    const r = new EventEngine(bars, { initialCash: 1_000, execution: noCosts, fillAt: "nextOpen" })
      .run(scripted({ 0: [{ side: "buy", kind: "market", quantity: 1 }], 1: [{ side: "sell", kind: "market", quantity: 1 }] }));
    expect(r.trades[0]).toMatchObject({ entryBar: 1, exitBar: 2, entryPrice: 102, exitPrice: 104, pnl: 2 });
  });
  it("rests a limit until a bar crosses it, fills in parts under a participation cap, as maker", () => {
    const bars = series([[100, 100, 100, 100], [100, 100, 99, 99.5, 50], [99, 99.5, 98, 98.5, 50], [98, 99, 97, 98, 1000]]);
    const r = new EventEngine(bars, { initialCash: 10_000, execution: { ...noCosts, makerFeeBps: "2", maxParticipation: "0.1", stepSize: "1" } })
      .run(scripted({ 0: [{ side: "buy", kind: "limit", quantity: 8, price: 99 }] }));
    // bar 1 only touches 99: no fill; bar 2 crosses: 5 of 8 (10 % of 50); bar 3: the remaining 3
    expect(r.fills).toBe(2);
    expect(r.fees).toBeCloseTo(8 * 99 * 0.0002, 10);
    expect(r.equity[3]).toBeCloseTo(10_000 - 8 * 99 - 8 * 99 * 0.0002 + 8 * 98, 8);
  });
  it("triggers stops (at the stop, or at the open on a gap) and expires IOC limits", () => {
    const bars = series([[100, 100, 100, 100], [100, 100, 100, 100], [99, 99.5, 97, 98], [90, 91, 89, 90]]);
    const e = new EventEngine(bars, { initialCash: 10_000, execution: noCosts });
    const orders: ReturnType<Broker["submit"]>[] = [];
    const r = e.run({
      init() {},
      onBar(i, b) {
        if (i === 0) b.submit({ side: "buy", kind: "market", quantity: 2 });
        if (i === 1) orders.push(b.submit({ side: "sell", kind: "stop", quantity: 1, price: 98.5 }), b.submit({ side: "sell", kind: "stop", quantity: 1, price: 95 }));
        if (i === 1) orders.push(b.submit({ side: "buy", kind: "limit", quantity: 1, price: 90, timeInForce: "IOC" }));
      },
    });
    expect(orders.map((o) => o.status)).toEqual(["filled", "filled", "expired"]);
    expect(r.trades[0]).toMatchObject({ exitBar: 3, exitPrice: (98.5 + 90) / 2, quantity: 2 });
  });
  it("rejects what the account cannot pay for and sells it does not hold", () => {
    const bars = series([[100, 100, 100, 100], [100, 100, 100, 100]]);
    const r = new EventEngine(bars, { initialCash: 150, execution: noCosts })
      .run(scripted({ 0: [{ side: "buy", kind: "market", quantity: 2 }, { side: "sell", kind: "market", quantity: 1 }, { side: "buy", kind: "market", quantity: -1 }] }));
    expect(r.orders).toEqual({ submitted: 3, rejected: 3 });
    expect(r.finalEquity).toBe(150);
  });
  it("runs shorts when allowed and closes them on a reversal", () => {
    const bars = series([[100, 100, 100, 100], [90, 90, 90, 90], [95, 95, 95, 95]]);
    const r = new EventEngine(bars, { initialCash: 1_000, execution: noCosts, allowShort: true })
      .run(scripted({ 0: [{ side: "sell", kind: "market", quantity: 2 }], 1: [{ side: "buy", kind: "market", quantity: 3 }] }));
    expect(r.trades[0]).toMatchObject({ direction: "short", pnl: 20, exitBar: 1 });
    expect(r.finalEquity).toBeCloseTo(1_000 + 20 + 5, 10);
  });
});

describe("event-driven and vectorized paths agree", () => {
  const bars = syntheticSeries({ seed: 5, bars: 30_000, volatility: 0.003 });
  const cases: Array<[string, Record<string, number>]> = [
    ["sma-crossover", { fast: 5, slow: 20 }], ["ema-crossover", { fast: 8, slow: 21 }],
    ["rsi-mean-reversion", { window: 14, lower: 25, upper: 70 }], ["breakout", { entryWindow: 30, exitWindow: 15 }],
  ];
  for (const [strategy, parameters] of cases)
    for (const fillAt of ["close", "nextOpen"] as const)
      it(`${strategy}, fills at ${fillAt}`, () => {
        const spec = { strategy, parameters, initialCash: 50_000, fillAt, quantityStep: 0.001, execution: { takerFeeBps: "7.5", slippageBps: "2" } };
        const ev = backtest(bars, { ...spec, mode: "event" });
        const vec = backtest(bars, { ...spec, mode: "vectorized" });
        expect(ev.metrics.trades).toBeGreaterThan(10);
        expect(vec.run.trades).toEqual(ev.run.trades);
        expect(vec.run.finalEquity).toBe(ev.run.finalEquity);
        expect(vec.metrics).toEqual(ev.metrics);
      });
  it("a quantity step too fine to count in (1e12 of cash in steps of 1e-300) sizes as the finest step does: it traded nothing (session 64b)", () => {
    const daily = syntheticSeries({ seed: 7, symbol: "BTCUSDT", bars: 500, intervalMs: 86_400_000 });
    for (const mode of ["event", "vectorized"] as const) {
      const fine = backtest(daily, { strategy: "sma-crossover", initialCash: 1e12, quantityStep: 1e-290, mode });
      expect(fine.run.trades.length).toBeGreaterThan(0);
      for (const quantityStep of [1e-300, 5e-324]) {
        const finer = backtest(daily, { strategy: "sma-crossover", initialCash: 1e12, quantityStep, mode });
        expect(finer.run.trades.length, `${mode} ${quantityStep}`).toBe(fine.run.trades.length);
        expect(finer.run.finalEquity / fine.run.finalEquity).toBeCloseTo(1, 9);
      }
    }
  });
  it("running in slices gives the same result as one pass (both engines)", async () => {
    for (const mode of ["event", "vectorized"] as const) {
      const spec = { strategy: "sma-crossover", initialCash: 10_000, mode, fillAt: "nextOpen" as const };
      const slices: number[] = [];
      const sliced = await backtestInSlices(bars, spec, 7_000, async (done) => { slices.push(done); });
      expect(slices).toEqual([0, 7_000, 14_000, 21_000, 28_000, 30_000]);
      expect(sliced.run).toEqual(backtest(bars, spec).run);
    }
  });
});

describe("metrics and validation", () => {
  it("computes drawdown, its duration, win rate and profit factor", () => {
    const run = {
      equity: Float64Array.from([100, 110, 99, 104.5, 121, 115]), trades: [{ pnl: 10 }, { pnl: -5 }, { pnl: 20 }] as never,
      fills: 6, fees: 1.5, turnover: 300, exposureBars: 3, initialCash: 100, finalEquity: 115, orders: { submitted: 6, rejected: 0 },
    };
    const m = computeMetrics(run, 86_400_000);
    expect(m.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(m.maxDrawdownBars).toBe(2);
    expect(m.winRate).toBeCloseTo(2 / 3, 12);
    expect(m.profitFactor).toBe(6);
    expect(m.totalReturn).toBeCloseTo(0.15, 12);
    expect(m.exposure).toBe(0.5);
    expect(m.turnover).toBe(3);
    expect(Array.from(drawdownCurve(run.equity, 100))).toEqual([0, 0, 0.1, expect.closeTo(0.05, 12), 0, expect.closeTo(6 / 121, 12)]);
  });
  it("CAGR and drawdown duration follow the bars' calendar span across gaps, not their count", () => {
    const DAY = 86_400_000;
    const run = {
      equity: Float64Array.from([100, 90, 95, 200]), trades: [] as never,
      fills: 0, fees: 0, turnover: 0, exposureBars: 4, initialCash: 100, finalEquity: 200, orders: { submitted: 0, rejected: 0 },
    };
    // Daily bars on days 0, 1, 2 and 364: the feed stopped for most of the year.
    const m = computeMetrics(run, DAY, Float64Array.from([0, 1, 2, 364].map((d) => d * DAY)));
    expect(m.cagr).toBeCloseTo(1, 12); // doubled in one year (365 days including the last bar)
    expect(m.maxDrawdownBars).toBe(2);
    expect(m.maxDrawdownDurationMs).toBe(363 * DAY); // under the peak from day 1 to day 364
    // Without gaps the figures are the bar-count ones.
    const even = computeMetrics(run, DAY, Float64Array.from([0, 1, 2, 3].map((d) => d * DAY)));
    expect(even.cagr / (Math.pow(2, 365 / 4) - 1)).toBeCloseTo(1, 9);
    expect(even.maxDrawdownDurationMs).toBe(2 * DAY);
  });
  it("names the field of a bad strategy or parameter", () => {
    const bars = syntheticSeries({ seed: 1, bars: 100 });
    const err = (f: () => unknown) => { try { f(); } catch (e) { return e instanceof ParameterError ? e.field : String(e); } return "no error"; };
    expect(err(() => backtest(bars, { strategy: "nope", initialCash: 1 }))).toBe("strategy");
    expect(err(() => backtest(bars, { strategy: "sma-crossover", parameters: { fast: -3 }, initialCash: 1 }))).toBe("parameters.fast");
    expect(err(() => backtest(bars, { strategy: "sma-crossover", parameters: { fast: 40, slow: 30 }, initialCash: 1 }))).toBe("parameters.fast");
    expect(err(() => backtest(bars, { strategy: "breakout", parameters: { window: 3 }, initialCash: 1 }))).toBe("parameters.window");
    expect(err(() => backtest(bars, { strategy: "rsi-mean-reversion", parameters: { window: 2.5 }, initialCash: 1 }))).toBe("parameters.window");
    expect(strategies.names()).toEqual(["sma-crossover", "ema-crossover", "rsi-mean-reversion", "breakout", "ml-model"]);
    // The caller's cash, named: a RangeError was taken for a platform error by the backtesting worker (retried, then "submit it again later").
    for (const mode of ["event", "vectorized"] as const)
      for (const initialCash of [0, -1, Number.NaN]) expect(err(() => backtest(bars, { strategy: "sma-crossover", mode, initialCash })), `${mode} ${initialCash}`).toBe("initialCash");
  });
});
