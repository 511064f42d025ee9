/**
 * Domain: runs one job over its symbols with the library (services/src/backtest). Capital is split
 * equally across symbols; the job's equity curve is the sum of the symbols' curves on the union of
 * their bar times (each carried forward over the others' bars).
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import {
  backtestInSlices, computeMetrics, drawdownCurve, ParameterError, sliceSeries, type BarSeries, type Metrics, type Parameters,
  type RunResult, type Trade,
} from "../../backtest";
import { EXECUTION_DEFAULTS } from "../../trading/executionRules";
import { cashPerSymbol, type JobSpec } from "./plan";
import type { BacktestRequest } from "./schemas";

export interface SymbolTrade extends Trade {
  symbol: string;
  entryTime: number;
  exitTime: number;
}

export interface JobOutcome {
  parameters: Parameters;
  metrics: Metrics;
  /** The model whose scores the strategy followed (ml-model). */
  model?: { version: string };
  perSymbol: Array<{ symbol: string; metrics: Metrics }>;
  /** Walk-forward: what the in-sample search chose and how it scored there. */
  inSample?: { parameters: Parameters; sharpe: number; candidates: number };
  curve: { time: Float64Array; equity: Float64Array; drawdown: Float64Array };
  trades: SymbolTrade[];
}

/** Loads one symbol's bars with open time in [from, to]. */
export type LoadBars = (symbol: string, from: number, to: number) => Promise<BarSeries>;
export type Progress = (fraction: number) => Promise<void>;

interface Combined { run: RunResult; time: Float64Array }

/** Sorted union of sorted time columns (the common case, identical columns, costs one comparison pass). */
function unionTimes(columns: Float64Array[]): Float64Array {
  const same = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((t, i) => t === b[i]);
  if (columns.every((c) => same(c, columns[0]))) return columns[0];
  return columns.reduce((acc, c) => {
    const out = new Float64Array(acc.length + c.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < acc.length || j < c.length) {
      const t = j >= c.length || (i < acc.length && acc[i] <= c[j]) ? acc[i++] : c[j++];
      if (k === 0 || out[k - 1] !== t) out[k++] = t;
    }
    return out.slice(0, k);
  });
}

function combine(parts: Array<{ series: BarSeries; run: RunResult }>): Combined {
  if (parts.length === 1) return { time: parts[0].series.time, run: parts[0].run };
  const time = unionTimes(parts.map((p) => p.series.time));
  const equity = new Float64Array(time.length);
  let exposure = 0;
  for (const p of parts) {
    let k = 0;
    let last = p.run.initialCash;
    for (let i = 0; i < time.length; i++) {
      while (k < p.series.time.length && p.series.time[k] <= time[i]) last = p.run.equity[k++];
      equity[i] += last;
    }
    exposure += p.run.equity.length > 0 ? p.run.exposureBars / p.run.equity.length : 0;
  }
  const sum = (f: (r: RunResult) => number) => parts.reduce((a, p) => a + f(p.run), 0);
  return {
    time,
    run: {
      equity,
      trades: parts.flatMap((p) => p.run.trades),
      fills: sum((r) => r.fills),
      fees: sum((r) => r.fees),
      turnover: sum((r) => r.turnover),
      exposureBars: Math.round((exposure / Math.max(1, parts.length)) * time.length),
      initialCash: sum((r) => r.initialCash),
      finalEquity: equity.length > 0 ? equity[equity.length - 1] : sum((r) => r.initialCash),
      orders: { submitted: sum((r) => r.orders.submitted), rejected: sum((r) => r.orders.rejected) },
    },
  };
}

/**
 * What only the bars tell, refused as the submission's 400s are, the job failing with the field named
 * (worker.ts: INVALID_INPUT): a tick above the lowest price (fill prices are rounded to it, a sell at
 * that price down to 0), or, sizing "all", a lot dearer at the lowest price than the symbol's cash
 * (never bought). Each was a run that "succeeded" meaning nothing (session 65).
 */
function pricesIssue(req: BacktestRequest, symbol: string, series: BarSeries): ParameterError | undefined {
  let lowest = Infinity;
  for (const low of series.low) if (low < lowest) lowest = low;
  const tick = Number(req.execution?.tickSize ?? EXECUTION_DEFAULTS.tickSize);
  if (tick > lowest)
    return new ParameterError("execution.tickSize", `is ${tick}${req.execution?.tickSize === undefined ? " (the default)" : ""}, above ${symbol}'s lowest price in the period (${lowest}): fill prices are rounded to it`);
  const lot = req.quantityStep ?? 1e-8;
  if ((req.quantity ?? "all") === "all" && lot * lowest > cashPerSymbol(req))
    return new ParameterError("quantityStep", `is ${lot} units, dearer at ${symbol}'s lowest price in the period (${lowest}) than its cash (${cashPerSymbol(req)}): nothing would be bought`);
  return undefined;
}

/** Bars per synchronous slice: ~50 ms of CPU, so requests and lease renewals are served between slices. */
const SLICE_BARS = 100_000;

export class JobExecutor {
  constructor(private readonly req: BacktestRequest, private readonly load: LoadBars) {}

  /** One parameter set over every symbol; `progress` gets the fraction of this pass's bars done. */
  private async runOnce(data: Array<{ symbol: string; series: BarSeries }>, parameters: Parameters, progress: (f: number) => Promise<void>) {
    const cash = cashPerSymbol(this.req);
    const total = data.reduce((a, d) => a + d.series.close.length, 0) || 1;
    let before = 0;
    const parts: Array<{ series: BarSeries; run: RunResult }> = [];
    for (const { series } of data) {
      const { run } = await backtestInSlices(series, {
        strategy: this.req.strategy, parameters, mode: this.req.mode ?? "event", initialCash: cash, fillAt: this.req.fillAt ?? "close",
        quantity: this.req.quantity ?? "all", quantityStep: this.req.quantityStep ?? 1e-8, execution: this.req.execution,
      }, SLICE_BARS, async (done) => {
        await yieldToLoop();
        await progress((before + done) / total);
      });
      before += series.close.length;
      parts.push({ series, run });
    }
    const all = combine(parts);
    const intervalMs = data[0].series.intervalMs;
    return { parts, all, metrics: computeMetrics(all.run, intervalMs, all.time), intervalMs };
  }

  async execute(job: JobSpec, progress: Progress): Promise<JobOutcome> {
    const from = job.train?.from ?? job.from;
    const data: Array<{ symbol: string; series: BarSeries }> = [];
    for (const symbol of this.req.symbols) {
      const series = await this.load(symbol, from, job.to);
      if (series.close.length === 0) throw new ParameterError("symbols", `no ${this.req.interval} bars for ${symbol} in the period`);
      const issue = pricesIssue(this.req, symbol, series);
      if (issue) throw issue;
      data.push({ symbol, series });
    }
    let parameters = job.parameters!;
    let inSample: JobOutcome["inSample"];
    if (job.kind === "walk-forward") {
      const train = data.map((d) => ({ symbol: d.symbol, series: sliceSeries(d.series, job.train!.from, job.train!.to) }));
      let best = { sharpe: -Infinity, parameters: job.grid![0] };
      const passes = job.grid!.length + 1;
      for (let k = 0; k < job.grid!.length; k++) {
        const { metrics } = await this.runOnce(train, job.grid![k], (f) => progress((k + f) / passes));
        if (metrics.sharpe > best.sharpe) best = { sharpe: metrics.sharpe, parameters: job.grid![k] };
      }
      parameters = best.parameters;
      inSample = { ...best, candidates: job.grid!.length };
    }
    const test = data.map((d) => ({ symbol: d.symbol, series: sliceSeries(d.series, job.from, job.to) }));
    const passes = job.kind === "walk-forward" ? job.grid!.length + 1 : 1;
    const { parts, all, metrics, intervalMs } = await this.runOnce(test, parameters, (f) => progress((passes - 1 + f) / passes));
    const model = data[0].series.model;
    return {
      parameters,
      metrics,
      ...(model ? { model: { version: model.version } } : {}),
      inSample,
      perSymbol: parts.map((p, k) => ({ symbol: test[k].symbol, metrics: computeMetrics(p.run, intervalMs, p.series.time) })),
      curve: { time: all.time, equity: all.run.equity, drawdown: drawdownCurve(all.run.equity, all.run.initialCash) },
      trades: parts.flatMap((p, k) =>
        p.run.trades.map((t) => ({ ...t, symbol: test[k].symbol, entryTime: p.series.time[t.entryBar], exitTime: p.series.time[t.exitBar] })),
      ),
    };
  }
}
