import { ExecutionRules, floatArithmetic } from "../trading/executionRules";
import type { BarSeries } from "./bars";
import type { EngineOptions, RunResult } from "./engine";
import { Ledger } from "./ledger";
import { ParameterError } from "./strategies";

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
  const run = new SignalRun(bars, signals, opts);
  run.advance(bars.close.length);
  return run.finish();
}

/** `runSignals` in slices (advance(to) repeatedly, then finish), for callers that must yield. */
export class SignalRun {
  private readonly rules: ExecutionRules<number>;
  private readonly ledger: Ledger;
  private readonly equity: Float64Array;
  private readonly nextOpen: boolean;
  private readonly step: number;
  private readonly fixed: number;
  private next = 0;
  /** A signal acts at its bar's close, or at the next bar's open: `want` carries it over (1 enter, -1 exit). */
  private want = 0;
  private exposure = 0;
  private submitted = 0;
  private rejected = 0;

  constructor(private readonly bars: BarSeries, private readonly signals: Signals, private readonly opts: SignalRunOptions) {
    // The caller's input, named (a job given it fails at once as INVALID_INPUT, not as a platform error retried).
    if (!(opts.initialCash > 0)) throw new ParameterError("initialCash", "must be positive");
    this.rules = new ExecutionRules(floatArithmetic, opts.execution);
    this.ledger = new Ledger(opts.initialCash, this.rules);
    this.equity = new Float64Array(bars.close.length);
    this.nextOpen = opts.fillAt === "nextOpen";
    this.step = opts.quantityStep ?? 1e-8;
    this.fixed = opts.quantity === undefined || opts.quantity === "all" ? 0 : opts.quantity;
  }

  advance(to: number): number {
    const { open, close } = this.bars;
    const { entries, exits } = this.signals;
    const equity = this.equity;
    const ledger = this.ledger;
    const end = Math.min(to, close.length);
    let want = this.want;
    let exposure = this.exposure;
    let cash = ledger.cash;
    let pos = ledger.position;
    for (let i = this.next; i < end; i++) {
      if (want !== 0) {
        if (this.act(want, i, open[i])) { cash = ledger.cash; pos = ledger.position; }
        want = 0;
      }
      const signal = pos === 0 ? (entries[i] ? 1 : 0) : exits[i] ? -1 : 0;
      if (signal !== 0) {
        if (this.nextOpen) want = signal;
        else if (this.act(signal, i, close[i])) { cash = ledger.cash; pos = ledger.position; }
      }
      equity[i] = cash + pos * close[i];
      if (pos !== 0) exposure++;
    }
    this.want = want;
    this.exposure = exposure;
    this.next = Math.max(this.next, end);
    return this.next;
  }

  finish(): RunResult {
    const n = this.equity.length;
    return {
      equity: this.equity,
      trades: this.ledger.trades,
      fills: this.ledger.fills,
      fees: this.ledger.fees,
      turnover: this.ledger.turnover,
      exposureBars: this.exposure,
      initialCash: this.opts.initialCash,
      finalEquity: n > 0 ? this.equity[n - 1] : this.ledger.cash,
      orders: { submitted: this.submitted, rejected: this.rejected },
    };
  }

  private act(signal: number, i: number, reference: number): boolean {
    const { rules, ledger } = this;
    const volume = this.bars.volume[i];
    this.submitted++;
    const side = signal > 0 ? "buy" : "sell";
    const qty = side === "sell" ? ledger.position : this.fixed > 0 ? this.fixed : ledger.affordable(rules.takerPrice(reference, volume, "buy", 0), this.step);
    if (!(qty > 0)) { this.rejected++; return false; }
    const price = rules.takerPrice(reference, volume, side, qty);
    if (!ledger.canFill(side, qty, price, "taker", false)) { this.rejected++; return false; }
    ledger.apply(i, side, qty, price, "taker");
    return true;
  }
}
