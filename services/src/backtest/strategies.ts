import type { BarSeries } from "./bars";
import type { Broker, Strategy } from "./engine";
import { ema, priorRollingMax, priorRollingMin, rsi, sma } from "./indicators";
import type { Signals } from "./vectorized";

/** A rejected strategy parameter; `field` names it (e.g. "parameters.fast"). */
export class ParameterError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** One numeric parameter of a strategy. */
export interface ParameterSpec {
  description: string;
  integer: boolean;
  min: number;
  max: number;
  /** `min` or `max` itself is refused: a level the indicator never passes (RSI below 0, P(up) above 1) never enters. */
  aboveMin?: boolean;
  belowMax?: boolean;
  /** A window in bars: one as long as the bars it runs over never has a value to signal on (backtesting-engine plan.ts). */
  bars?: boolean;
  default: number;
}
export type Parameters = Record<string, number>;

/**
 * Long-only rules over indicator columns: `entry(i)` when flat, `exit(i)` when long. Written once;
 * the event-driven strategy asks them bar by bar, the vectorized path materialises them as arrays.
 */
export interface Rules {
  entry(i: number): boolean;
  exit(i: number): boolean;
}

export interface StrategyDefinition {
  name: string;
  description: string;
  parameters: Record<string, ParameterSpec>;
  /** Columns beyond OHLCV the bars must carry: `model` (a model's per-bar score, BarSeries.model). */
  needs?: ReadonlyArray<"model">;
  /** Cross-parameter checks (e.g. fast < slow); throw ParameterError. */
  check?(p: Parameters): void;
  /** Indicator columns and the entry/exit rules over them. */
  rules(bars: BarSeries, p: Parameters): Rules;
}

/** Validates and completes parameters: unknown names, non-numbers, bounds, integers; errors name the field. */
export function resolveParameters(def: StrategyDefinition, given: Record<string, unknown> = {}, prefix = "parameters"): Parameters {
  const out: Parameters = {};
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(def.parameters, key)) throw new ParameterError(`${prefix}.${key}`, `unknown parameter of ${def.name} (known: ${Object.keys(def.parameters).join(", ")})`);
  }
  for (const [key, spec] of Object.entries(def.parameters)) {
    const v = given[key] ?? spec.default;
    const field = `${prefix}.${key}`;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ParameterError(field, "must be a finite number");
    if (spec.integer && !Number.isInteger(v)) throw new ParameterError(field, "must be an integer");
    if (spec.aboveMin || spec.belowMax) {
      // "under", not "below": a grid's set refused "must be below" is taken for a cross-parameter rule and dropped (plan.ts).
      if (spec.aboveMin ? v <= spec.min : v < spec.min) throw new ParameterError(field, `must be ${spec.aboveMin ? "above" : "at least"} ${spec.min}, got ${v}`);
      if (spec.belowMax ? v >= spec.max : v > spec.max) throw new ParameterError(field, `must be ${spec.belowMax ? "under" : "at most"} ${spec.max}, got ${v}`);
    } else if (v < spec.min || v > spec.max) throw new ParameterError(field, `must be between ${spec.min} and ${spec.max}, got ${v}`);
    out[key] = v;
  }
  def.check?.(out);
  return out;
}

const crossUp = (a: Float64Array, b: Float64Array, i: number) => i > 0 && a[i] > b[i] && a[i - 1] <= b[i - 1];
const crossDown = (a: Float64Array, b: Float64Array, i: number) => i > 0 && a[i] < b[i] && a[i - 1] >= b[i - 1];
const window = (description: string, def: number, max = 100_000): ParameterSpec => ({ description, integer: true, min: 1, max, default: def, bars: true });
const fastBelowSlow = (p: Parameters) => {
  if (p.fast >= p.slow) throw new ParameterError("parameters.fast", `must be smaller than parameters.slow (${p.slow}), got ${p.fast}`);
};

function crossover(name: string, average: typeof sma, label: string): StrategyDefinition {
  return {
    name,
    description: `Long when the fast ${label} crosses above the slow one, flat when it crosses below`,
    parameters: { fast: window(`fast ${label} window (bars)`, 10), slow: window(`slow ${label} window (bars)`, 30) },
    check: fastBelowSlow,
    rules(bars, p) {
      const fast = average(bars.close, p.fast);
      const slow = average(bars.close, p.slow);
      return { entry: (i) => crossUp(fast, slow, i), exit: (i) => crossDown(fast, slow, i) };
    },
  };
}

const BUILT_IN: StrategyDefinition[] = [
  crossover("sma-crossover", sma, "SMA"),
  crossover("ema-crossover", ema, "EMA"),
  {
    name: "rsi-mean-reversion",
    description: "Buy when Wilder's RSI falls below `lower`, sell when it rises above `upper`",
    parameters: {
      window: window("RSI window (bars)", 14),
      // Wilder's RSI is never below 0: a lower level of 0 never entered, and the run "succeeded" without a trade (session 65).
      lower: { description: "oversold level, above 0", integer: false, min: 0, max: 100, aboveMin: true, default: 30 },
      upper: { description: "overbought level", integer: false, min: 0, max: 100, default: 70 },
    },
    check(p) {
      if (p.lower >= p.upper) throw new ParameterError("parameters.lower", `must be below parameters.upper (${p.upper}), got ${p.lower}`);
    },
    rules(bars, p) {
      const r = rsi(bars.close, p.window);
      return { entry: (i) => r[i] < p.lower, exit: (i) => r[i] > p.upper };
    },
  },
  {
    name: "breakout",
    description: "Donchian breakout: buy when the close exceeds the highest high of the previous `entryWindow` bars, sell below the lowest low of the previous `exitWindow`",
    parameters: { entryWindow: window("entry channel (bars)", 20), exitWindow: window("exit channel (bars)", 10) },
    rules(bars, p) {
      const upper = priorRollingMax(bars.high, p.entryWindow);
      const lower = priorRollingMin(bars.low, p.exitWindow);
      const close = bars.close;
      return { entry: (i) => close[i] > upper[i], exit: (i) => close[i] < lower[i] };
    },
  },
  {
    name: "ml-model",
    description:
      "Follow the ml-predictor model: long when the promoted model's P(up over its horizon) exceeds `enterAbove`, flat when it falls below `exitBelow` (scores computed on the same features before the run)",
    parameters: {
      // A probability is never above 1: enterAbove 1 never entered, a run without a trade (session 65).
      enterAbove: { description: "enter when P(up) is above this, below 1", integer: false, min: 0, max: 1, belowMax: true, default: 0.55 },
      exitBelow: { description: "exit when P(up) is below this", integer: false, min: 0, max: 1, default: 0.5 },
    },
    needs: ["model"],
    check(p) {
      if (p.exitBelow > p.enterAbove) throw new ParameterError("parameters.exitBelow", `must not exceed parameters.enterAbove (${p.enterAbove}), got ${p.exitBelow}`);
    },
    rules(bars, p) {
      const score = bars.model?.score;
      if (!score || score.length !== bars.close.length) throw new ParameterError("strategy", `ml-model needs the model's score for every bar of ${bars.symbol} (BarSeries.model)`);
      // NaN (no score: the first bars before the features' lookback) compares false: no entry, no exit.
      return { entry: (i) => score[i] > p.enterAbove, exit: (i) => score[i] < p.exitBelow };
    },
  },
];

/** The strategies a backtest may name. */
export class StrategyRegistry {
  private readonly defs = new Map<string, StrategyDefinition>();
  constructor(defs: StrategyDefinition[] = BUILT_IN) {
    defs.forEach((d) => this.register(d));
  }
  register(def: StrategyDefinition): void {
    if (this.defs.has(def.name)) throw new Error(`strategy ${def.name} is already registered`);
    this.defs.set(def.name, def);
  }
  get(name: string): StrategyDefinition | undefined {
    return this.defs.get(name);
  }
  names(): string[] {
    return [...this.defs.keys()];
  }
}

export const strategies = new StrategyRegistry();

/** Sizing of the built-in long-only strategies: every affordable unit in, the whole position out. */
export class RuleStrategy implements Strategy {
  private rules!: Rules;
  constructor(private readonly def: StrategyDefinition, private readonly params: Parameters, private readonly quantity: number | "all" = "all") {}
  init(bars: BarSeries): void {
    this.rules = this.def.rules(bars, this.params);
  }
  onBar(i: number, broker: Broker): void {
    if (broker.position === 0) {
      if (broker.openOrders().length === 0 && this.rules.entry(i)) broker.submit({ side: "buy", kind: "market", quantity: this.quantity });
    } else if (broker.position > 0 && this.rules.exit(i)) {
      broker.submit({ side: "sell", kind: "market", quantity: "all" });
    }
  }
}

/** The same rules as signal arrays, for the vectorized path. */
export function signalsOf(def: StrategyDefinition, bars: BarSeries, params: Parameters): Signals {
  const rules = def.rules(bars, params);
  const n = bars.close.length;
  const entries = new Uint8Array(n);
  const exits = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (rules.entry(i)) entries[i] = 1;
    if (rules.exit(i)) exits[i] = 1;
  }
  return { entries, exits };
}
