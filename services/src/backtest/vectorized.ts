import { ExecutionRules, floatArithmetic } from "../trading/executionRules";
import type { BarSeries } from "./bars";
import type { EngineOptions, RunResult } from "./engine";
import { Ledger } from "./ledger";

/** Entry and exit signals per bar (1 = signal), computed column-wise by a strategy. */
export interface Signals {
  entries: Uint8Array;
  exits: Uint8Array;
}

export interface SignalRunOptions extends EngineOptions {
  /** Units per entry, or "all" (every affordable unit, in multiples of `quantityStep`). */
  quantity?: number | "all";
}

/**
 * The fast path for strategies expressible as signal arrays (long-only: enter when flat on an
 * entry, leave the whole position on an exit), the equivalent of vectorbt's `from_signals`. One
 * pass over the columns with no per-bar calls; fills go through the same `ExecutionRules` and
 * `Ledger` as the event-driven engine, which gives the same trades and equity for the same
 * signals (tests/backtest asserts it).
 */
export function runSignals(bars: BarSeries, signals: Signals, opts: SignalRunOptions): RunResult {
  if (!(opts.initialCash > 0)) throw new RangeError("initialCash must be positive");
  const rules = new ExecutionRules(floatArithmetic, opts.execution);
  const ledger = new Ledger(opts.initialCash, rules);
  const { open, close, volume } = bars;
  const { entries, exits } = signals;
  const n = close.length;
  const equity = new Float64Array(n);
  const nextOpen = opts.fillAt === "nextOpen";
  const step = opts.quantityStep ?? 1e-8;
  const fixed = opts.quantity === undefined || opts.quantity === "all" ? 0 : opts.quantity;
  let rejected = 0;
  let submitted = 0;
  // A signal on bar i acts at i's close, or at i+1's open; `want` carries it to the next bar.
  let want = 0; // 1 enter, -1 exit
  let exposure = 0;
  let cash = ledger.cash;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (want !== 0) {
      if (act(want, i, open[i])) { cash = ledger.cash; pos = ledger.position; }
      want = 0;
    }
    const signal = pos === 0 ? (entries[i] ? 1 : 0) : exits[i] ? -1 : 0;
    if (signal !== 0) {
      if (nextOpen) want = signal;
      else if (act(signal, i, close[i])) { cash = ledger.cash; pos = ledger.position; }
    }
    equity[i] = cash + pos * close[i];
    if (pos !== 0) exposure++;
  }
  return {
    equity,
    trades: ledger.trades,
    fills: ledger.fills,
    fees: ledger.fees,
    turnover: ledger.turnover,
    exposureBars: exposure,
    initialCash: opts.initialCash,
    finalEquity: n > 0 ? equity[n - 1] : ledger.cash,
    orders: { submitted, rejected },
  };

  function act(signal: number, i: number, reference: number): boolean {
    submitted++;
    const side = signal > 0 ? "buy" : "sell";
    const qty = side === "sell" ? ledger.position : fixed > 0 ? fixed : ledger.affordable(rules.takerPrice(reference, volume[i], "buy", 0), step);
    if (!(qty > 0)) { rejected++; return false; }
    const price = rules.takerPrice(reference, volume[i], side, qty);
    if (!ledger.canFill(side, qty, price, "taker", false)) { rejected++; return false; }
    ledger.apply(i, side, qty, price, "taker");
    return true;
  }
}
