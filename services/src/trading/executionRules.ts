import { D, Decimal, QUOTE_DP } from "./decimal";
import type { Liquidity, Side } from "./types";

/**
 * The execution model of the platform: fees, slippage, size impact, tick rounding, when a resting
 * limit or a stop is hit and how much a bar can fill. The paper exchange (decimal strings, exact)
 * and the backtester (float64 over typed arrays, fast) both execute through `ExecutionRules`, so a
 * strategy backtested and then run in paper mode sees the same rules. The rules are written once,
 * over an `Arithmetic<T>`; each engine picks its number type.
 */
export interface Arithmetic<T> {
  of(value: string | number): T;
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  min(a: T, b: T): T;
  max(a: T, b: T): T;
  lt(a: T, b: T): boolean;
  lte(a: T, b: T): boolean;
  gt(a: T, b: T): boolean;
  /** Rounds `value` to a multiple of `step`, up or down; a value already on the grid stays as it is. */
  toStep(value: T, step: T, direction: "up" | "down"): T;
  /** Rounds a quote-currency amount to its storage precision (8 decimals, half-even). */
  quote(value: T): T;
}

export const decimalArithmetic: Arithmetic<Decimal> = {
  of: (v) => D(v),
  add: (a, b) => a.plus(b),
  sub: (a, b) => a.minus(b),
  mul: (a, b) => a.mul(b),
  div: (a, b) => a.div(b),
  min: (a, b) => Decimal.min(a, b),
  max: (a, b) => Decimal.max(a, b),
  lt: (a, b) => a.lt(b),
  lte: (a, b) => a.lte(b),
  gt: (a, b) => a.gt(b),
  toStep: (v, step, dir) => {
    const n = v.div(step);
    return (dir === "up" ? n.ceil() : n.floor()).mul(step);
  },
  quote: (v) => v.toDecimalPlaces(QUOTE_DP, Decimal.ROUND_HALF_EVEN),
};

const QUOTE_SCALE = 10 ** QUOTE_DP;
/**
 * float64 arithmetic. Grid rounding treats a value within float error (1e-13 relative) of a grid point as on it,
 * so 100.07 / 0.01 = 10006.999999999998 is not floored to 100.06, and returns the value unchanged in
 * that case (no re-multiplication drift).
 */
export const floatArithmetic: Arithmetic<number> = {
  of: (v) => Number(v),
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  min: (a, b) => (a < b ? a : b),
  max: (a, b) => (a > b ? a : b),
  lt: (a, b) => a < b,
  lte: (a, b) => a <= b,
  gt: (a, b) => a > b,
  toStep: (v, step, dir) => {
    const n = v / step;
    const nearest = Math.round(n);
    if (Math.abs(n - nearest) <= Math.max(1e-9, Math.abs(n) * 1e-13)) return v;
    const k = dir === "up" ? Math.ceil(n) : Math.floor(n);
    // k / 100 is the correctly rounded 0.01 * k (k * 0.01 is not): divide when the step is 1/integer.
    const inverse = Math.round(1 / step);
    return Math.abs(inverse * step - 1) < 1e-12 ? k / inverse : k * step;
  },
  quote: (v) => Math.round(v * QUOTE_SCALE) / QUOTE_SCALE,
};

/** Execution parameters as decimal strings (the form they have in configuration and APIs). */
export interface ExecutionOptions {
  makerFeeBps?: string;
  takerFeeBps?: string;
  slippageBps?: string;
  impactBps?: string;
  maxSlippageBps?: string;
  tickSize?: string;
  /** Quantity step for partial fills (default 0.00000001). */
  stepSize?: string;
  /** Resting limits fill when a bar touches the limit (default: only when it crosses it). */
  fillOnTouch?: boolean;
  /** Fraction of a bar's volume that resting orders may fill (unset: no cap). */
  maxParticipation?: string;
}

export const EXECUTION_DEFAULTS = {
  makerFeeBps: "10",
  takerFeeBps: "10",
  slippageBps: "5",
  impactBps: "0",
  maxSlippageBps: "100",
  tickSize: "0.01",
  stepSize: "0.00000001",
} as const;

const below100Percent = (v: number) => v >= 0 && v < 10_000;
/**
 * What each execution parameter must be, whichever engine runs it: a fee or slippage of 10,000 bps
 * (100 %) or more fills a sell at a negative price or takes more fee than its proceeds; a tick or
 * step of 0 makes every price or quantity NaN; a participation of 0 fills nothing and one above 1
 * fills more than the bar traded (it was taken: a fraction of a bar's volume).
 */
const EXECUTION_BOUNDS: ReadonlyArray<[keyof ExecutionOptions, (v: number) => boolean, string]> = [
  ["makerFeeBps", below100Percent, "must be at least 0 and below 10000 (100 %)"],
  ["takerFeeBps", below100Percent, "must be at least 0 and below 10000 (100 %)"],
  ["slippageBps", below100Percent, "must be at least 0 and below 10000 (100 %)"],
  ["maxSlippageBps", below100Percent, "must be at least 0 and below 10000 (100 %)"],
  ["impactBps", (v) => v >= 0, "must be at least 0"],
  ["tickSize", (v) => v > 0, "must be > 0 (fill prices are rounded to it)"],
  ["stepSize", (v) => v > 0, "must be > 0 (partial fills are rounded to it)"],
  ["maxParticipation", (v) => v > 0 && v <= 1, "must be above 0 and at most 1 (a fraction of a bar's volume)"],
];

/** The first execution parameter out of its bounds (EXECUTION_BOUNDS) and what it must be, or undefined. */
export function executionOptionIssue(opts: ExecutionOptions): { option: keyof ExecutionOptions; message: string } | undefined {
  for (const [option, holds, message] of EXECUTION_BOUNDS) {
    const v = opts[option];
    if (v !== undefined && !holds(Number(v))) return { option, message };
  }
  return undefined;
}

export class ExecutionRules<T> {
  private readonly makerFee: T;
  private readonly takerFee: T;
  private readonly slippage: T;
  private readonly impact: T;
  private readonly maxSlippage: T;
  private readonly one: T;
  private readonly zero: T;
  readonly tick: T;
  readonly step: T;
  /** The quote currency's smallest step (8 decimals): a taker's price where the tick is too coarse for it. */
  private readonly quoteStep: T;
  /** maxSlippageBps as a fraction of the price (100 bps -> 0.01). */
  private readonly maxSlippageFraction: T;
  readonly fillOnTouch: boolean;
  readonly maxParticipation: T | undefined;

  constructor(private readonly n: Arithmetic<T>, opts: ExecutionOptions = {}) {
    const issue = executionOptionIssue(opts);
    if (issue) throw new RangeError(`execution option ${issue.option} ${issue.message} (got ${JSON.stringify(opts[issue.option])})`);
    const bps = (s: string) => n.div(n.of(s), n.of(10_000));
    this.makerFee = bps(opts.makerFeeBps ?? EXECUTION_DEFAULTS.makerFeeBps);
    this.takerFee = bps(opts.takerFeeBps ?? EXECUTION_DEFAULTS.takerFeeBps);
    this.slippage = n.of(opts.slippageBps ?? EXECUTION_DEFAULTS.slippageBps);
    this.impact = n.of(opts.impactBps ?? EXECUTION_DEFAULTS.impactBps);
    this.maxSlippage = n.of(opts.maxSlippageBps ?? EXECUTION_DEFAULTS.maxSlippageBps);
    this.tick = n.of(opts.tickSize ?? EXECUTION_DEFAULTS.tickSize);
    this.step = n.of(opts.stepSize ?? EXECUTION_DEFAULTS.stepSize);
    this.quoteStep = n.of(`1e-${QUOTE_DP}`);
    this.maxSlippageFraction = bps(opts.maxSlippageBps ?? EXECUTION_DEFAULTS.maxSlippageBps);
    this.fillOnTouch = opts.fillOnTouch ?? false;
    this.maxParticipation = opts.maxParticipation === undefined ? undefined : n.of(opts.maxParticipation);
    this.one = n.of(1);
    this.zero = n.of(0);
  }

  /** Fee of a fill in the quote currency, rounded to 8 decimals. */
  fee(notional: T, liquidity: Liquidity): T {
    return this.n.quote(this.n.mul(notional, liquidity === "maker" ? this.makerFee : this.takerFee));
  }
  /** Fee rate of a liquidity side as a fraction (10 bps -> 0.001), for sizing. */
  feeRate(liquidity: Liquidity): T {
    return liquidity === "maker" ? this.makerFee : this.takerFee;
  }

  /**
   * Price a taker of `qty` gets against a reference price (the last close, or the next open):
   * moved against the taker by `slippageBps + impactBps * qty / volume`, capped at
   * `maxSlippageBps`, rounded to the tick in the adverse direction. Where the tick is coarse for the
   * price (the one tick size applies to every symbol: a symbol at 0.015 against a tick of 0.01), the
   * rounding alone would move the price by more than the cap allows, and a sell at 0.005 by all of it:
   * filled at 0.01 and at 0 (session 65). Such a price is rounded to the quote precision instead.
   */
  takerPrice(reference: T, volume: T, side: Side, qty: T): T {
    const n = this.n;
    let slip = this.slippage;
    if (n.gt(volume, this.zero)) slip = n.add(slip, n.div(n.mul(this.impact, qty), volume));
    slip = n.min(slip, this.maxSlippage);
    const frac = n.div(slip, n.of(10_000));
    const raw = n.mul(reference, side === "buy" ? n.add(this.one, frac) : n.sub(this.one, frac));
    const direction = side === "buy" ? "up" : "down";
    const onTick = n.toStep(raw, this.tick, direction);
    const moved = side === "buy" ? n.sub(onTick, raw) : n.sub(raw, onTick);
    if (n.gt(moved, n.mul(reference, this.maxSlippageFraction))) return n.toStep(raw, this.quoteStep, direction);
    return onTick;
  }

  /**
   * Whether the rules would fill at `price` as it is: a whole number of ticks, or a price the tick is coarse for
   * (rounding it to the tick, up or down, would move it by more than maxSlippageBps: takerPrice keeps such a price
   * at the quote precision, session 65) at the quote precision. An order's limit off this grid fills in paper mode
   * at a price a real exchange refuses (99.995 against a tick of 0.01).
   */
  keepsPrice(price: T): boolean {
    const n = this.n;
    const down = n.toStep(price, this.tick, "down");
    if (!n.lt(down, price)) return true;
    const up = n.toStep(price, this.tick, "up");
    const cap = n.mul(price, this.maxSlippageFraction);
    const tickCoarse = n.gt(n.sub(up, price), cap) || n.gt(n.sub(price, down), cap);
    return tickCoarse && !n.lt(n.toStep(price, this.quoteStep, "down"), price);
  }

  /** A limit order is marketable on arrival when it is at or through the reference price. */
  limitMarketable(side: Side, limit: T, reference: T): boolean {
    return side === "buy" ? this.n.lte(reference, limit) : this.n.lte(limit, reference);
  }
  /** A marketable limit fills as taker at the slipped price, never worse than its limit. */
  marketableLimitPrice(side: Side, limit: T, reference: T, volume: T, qty: T): T {
    const slipped = this.takerPrice(reference, volume, side, qty);
    return side === "buy" ? this.n.min(slipped, limit) : this.n.max(slipped, limit);
  }

  /** A resting limit fills (at its limit, as maker) when a bar crosses it; `fillOnTouch` accepts a touch. */
  limitHit(side: Side, limit: T, low: T, high: T): boolean {
    const n = this.n;
    if (side === "buy") return this.fillOnTouch ? n.lte(low, limit) : n.lt(low, limit);
    return this.fillOnTouch ? n.lte(limit, high) : n.lt(limit, high);
  }

  /** A stop triggers when a bar trades at or through it (buy stop: high >= stop; sell stop: low <= stop). */
  stopHit(side: Side, stop: T, low: T, high: T): boolean {
    return side === "buy" ? this.n.lte(stop, high) : this.n.lte(low, stop);
  }
  /** A triggered stop becomes a market order referenced at the stop, or at the open when the bar gapped through it. */
  stopReference(side: Side, stop: T, open: T): T {
    return side === "buy" ? this.n.max(stop, open) : this.n.min(stop, open);
  }

  /** Volume resting orders may fill on one bar (undefined: no participation cap). */
  participationBudget(volume: T): T | undefined {
    return this.maxParticipation === undefined ? undefined : this.n.mul(volume, this.maxParticipation);
  }
  /** Quantity of a fill under a remaining budget: the remaining order, or the budget rounded down to the step. */
  cappedQuantity(remaining: T, budget: T | undefined): T {
    if (budget === undefined) return remaining;
    return this.n.min(remaining, this.n.toStep(budget, this.step, "down"));
  }
}
