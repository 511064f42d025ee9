import type { Liquidity, Side } from "../trading/types";
import type { ExecutionRules } from "../trading/executionRules";

/** A round trip: from flat to flat (a reversal closes one trade and opens the next). */
export interface Trade {
  direction: "long" | "short";
  entryBar: number;
  exitBar: number;
  quantity: number;
  /** Average entry and exit prices. */
  entryPrice: number;
  exitPrice: number;
  /** Net of every fee of the trade, in quote currency. */
  pnl: number;
  fees: number;
}

/**
 * Cash, position and trade accounting shared by both engines: every fill of either engine goes
 * through `apply`, so the event-driven and vectorized paths cannot disagree on the books.
 */
export class Ledger {
  cash: number;
  position = 0;
  fees = 0;
  /** Traded notional (sum of |qty| * price). */
  turnover = 0;
  fills = 0;
  readonly trades: Trade[] = [];
  private open: { direction: "long" | "short"; entryBar: number; qty: number; cost: number; flow: number; fees: number; exitQty: number; exitValue: number } | undefined;

  constructor(readonly initialCash: number, readonly rules: ExecutionRules<number>) {
    this.cash = initialCash;
  }

  /**
   * Largest quantity (multiple of `step`) a buy at `price` can pay for, fee included. A step so fine
   * that the count of steps is past a double's range (1e12 of cash in steps of 1e-300) divides every
   * quantity a double can hold: the quantity itself. Counted, it was Infinity, every buy refused as
   * unaffordable, and the run "succeeded" without a trade (session 64b).
   */
  affordable(price: number, step: number): number {
    if (!(price > 0) || this.cash <= 0) return 0;
    const units = this.cash / (price * (1 + this.rules.feeRate("taker")));
    const steps = Math.floor(units / step);
    return Number.isFinite(steps) ? steps * step : units;
  }

  /** Whether a fill is allowed: buys need the cash (fee included), sells need the position unless shorting is allowed. */
  canFill(side: Side, qty: number, price: number, liquidity: Liquidity, allowShort: boolean): boolean {
    if (side === "buy") {
      const cost = qty * price + this.rules.fee(qty * price, liquidity);
      return cost <= this.cash + 1e-9 * Math.max(1, Math.abs(this.cash)) || allowShort;
    }
    return allowShort || qty <= this.position + 1e-12;
  }

  apply(bar: number, side: Side, qty: number, price: number, liquidity: Liquidity): void {
    const notional = qty * price;
    const fee = this.rules.fee(notional, liquidity);
    const signed = side === "buy" ? qty : -qty;
    this.cash -= signed * price + fee;
    this.fees += fee;
    this.turnover += notional;
    this.fills++;
    const before = this.position;
    this.position = before + signed;
    if (Math.abs(this.position) < 1e-12) this.position = 0;
    const flow = -(signed * price) - fee;
    if (before === 0 || Math.sign(before) === Math.sign(signed)) {
      this.addToOpen(bar, signed, qty, price, flow, fee);
      return;
    }
    // Reducing (or reversing) the open trade: the part up to |before| closes it.
    const closing = Math.min(qty, Math.abs(before));
    const share = closing / qty;
    const t = this.open!;
    t.flow += flow * share;
    t.fees += fee * share;
    t.exitQty += closing;
    t.exitValue += closing * price;
    if (this.position === 0 || Math.sign(this.position) !== Math.sign(before)) {
      this.trades.push({
        direction: t.direction,
        entryBar: t.entryBar,
        exitBar: bar,
        quantity: t.qty,
        entryPrice: t.cost / t.qty,
        exitPrice: t.exitValue / t.exitQty,
        pnl: t.flow,
        fees: t.fees,
      });
      this.open = undefined;
      const rest = qty - closing;
      if (rest > 1e-12) this.addToOpen(bar, Math.sign(signed) * rest, rest, price, flow * (1 - share), fee * (1 - share));
    }
  }

  private addToOpen(bar: number, signed: number, qty: number, price: number, flow: number, fee: number): void {
    if (!this.open) {
      this.open = { direction: signed > 0 ? "long" : "short", entryBar: bar, qty: 0, cost: 0, flow: 0, fees: 0, exitQty: 0, exitValue: 0 };
    }
    this.open.qty += qty;
    this.open.cost += qty * price;
    this.open.flow += flow;
    this.open.fees += fee;
  }

  equity(price: number): number {
    return this.cash + this.position * price;
  }
}
