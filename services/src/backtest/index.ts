/**
 * The backtesting engine as a library (no I/O): bars as typed-array columns, an event-driven engine
 * (market/limit/stop orders, partial fills, cash and position accounting), a vectorized path for
 * signal strategies, built-in strategies and performance metrics. Executions go through the trading
 * core's `ExecutionRules`, the same rules as the paper exchange.
 */
import type { BarSeries } from "./bars";
import { EventEngine, type EngineOptions, type RunResult } from "./engine";
import { computeMetrics, type Metrics } from "./metrics";
import { resolveParameters, RuleStrategy, signalsOf, strategies, ParameterError, type Parameters } from "./strategies";
import { runSignals, SignalRun } from "./vectorized";

export * from "./bars";
export * from "./engine";
export * from "./indicators";
export * from "./ledger";
export * from "./metrics";
export * from "./strategies";
export * from "./vectorized";

export type EngineMode = "event" | "vectorized";

export interface BacktestSpec extends EngineOptions {
  strategy: string;
  parameters?: Record<string, unknown>;
  mode?: EngineMode;
  /** Units per entry or "all" (default). */
  quantity?: number | "all";
}

export interface BacktestOutcome {
  parameters: Parameters;
  run: RunResult;
  metrics: Metrics;
}

function resolve(spec: BacktestSpec) {
  const def = strategies.get(spec.strategy);
  if (!def) throw new ParameterError("strategy", `unknown strategy ${JSON.stringify(spec.strategy)} (known: ${strategies.names().join(", ")})`);
  return { def, parameters: resolveParameters(def, spec.parameters) };
}

/** Runs one built-in strategy over one symbol's bars. */
export function backtest(bars: BarSeries, spec: BacktestSpec): BacktestOutcome {
  const { def, parameters } = resolve(spec);
  const run =
    spec.mode === "vectorized"
      ? runSignals(bars, signalsOf(def, bars, parameters), spec)
      : new EventEngine(bars, spec).run(new RuleStrategy(def, parameters, spec.quantity ?? "all"));
  return { parameters, run, metrics: computeMetrics(run, bars.intervalMs, bars.time) };
}
export * from "./chart";

/**
 * `backtest` in slices of `sliceBars`, awaiting `between()` after each: a service runs a long
 * backtest on its event loop and still answers requests (and renews its job lease) while it runs.
 */
export async function backtestInSlices(bars: BarSeries, spec: BacktestSpec, sliceBars: number, between: (done: number) => Promise<void>): Promise<BacktestOutcome> {
  const { def, parameters } = resolve(spec);
  const n = bars.close.length;
  let runner: { advance(to: number): number; finish(): RunResult };
  if (spec.mode === "vectorized") {
    runner = new SignalRun(bars, signalsOf(def, bars, parameters), spec);
  } else {
    const engine = new EventEngine(bars, spec);
    engine.begin(new RuleStrategy(def, parameters, spec.quantity ?? "all"));
    runner = engine;
  }
  await between(0);
  for (let done = 0; done < n; ) {
    done = runner.advance(done + sliceBars);
    await between(done);
  }
  const run = runner.finish();
  return { parameters, run, metrics: computeMetrics(run, bars.intervalMs, bars.time) };
}
