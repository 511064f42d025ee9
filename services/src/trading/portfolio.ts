import { cents, D, Decimal, quote, str, ZERO, type DecimalLike } from "./decimal";
import type { Fill } from "./types";

/**
 * Portfolio accounting per user: cash, positions with average price, realized PnL (gross of fees),
 * fees, unrealized PnL against marks. Applying a fill is idempotent per fill id.
 *
 * Average-cost method: adding to a position moves the average price; reducing realizes
 * (price - avg) * qty for a long (reversed for a short) and leaves the average unchanged; crossing
 * through zero realizes the closed part and opens the rest at the fill price.
 * Cash: a buy pays qty*price + fee, a sell receives qty*price - fee. Quote amounts are kept at 8
 * decimals; reports round to cents (half-even) only at the edge.
 */
export interface Position {
  symbol: string;
  quantity: Decimal;
  avgPrice: Decimal;
  realizedPnl: Decimal;
  fees: Decimal;
}

export interface PositionView {
  symbol: string;
  quantity: string;
  avgPrice: string;
  marketPrice: string | null;
  marketValue: string | null;
  realizedPnl: string;
  unrealizedPnl: string | null;
  fees: string;
}

export interface PortfolioView {
  userId: string;
  cash: string;
  positions: PositionView[];
  realizedPnl: string;
  unrealizedPnl: string;
  fees: string;
  /** realized + unrealized - fees */
  netPnl: string;
  equity: string;
}

/** Pure position update shared by the in-memory portfolio and the SQL-backed portfolio manager. */
export function applyFillToPosition(
  pos: { quantity: Decimal; avgPrice: Decimal; realizedPnl: Decimal; fees: Decimal },
  fill: Pick<Fill, "side" | "quantity" | "price" | "fee">,
): { quantity: Decimal; avgPrice: Decimal; realizedPnl: Decimal; fees: Decimal; cashDelta: Decimal; realizedDelta: Decimal } {
  const qty = D(fill.quantity);
  const px = D(fill.price);
  const fee = D(fill.fee);
  const signed = fill.side === "buy" ? qty : qty.neg();
  const q0 = pos.quantity;
  let avg = pos.avgPrice;
  let realizedDelta = ZERO;
  const q1 = q0.plus(signed);
  if (q0.isZero() || q0.isNeg() === signed.isNeg()) {
    // opening or adding
    avg = q0.abs().mul(avg).plus(qty.mul(px)).div(q1.abs());
  } else {
    // reducing, closing or flipping
    const closed = Decimal.min(qty, q0.abs());
    realizedDelta = q0.isPos() ? px.minus(avg).mul(closed) : avg.minus(px).mul(closed);
    if (q1.isZero()) avg = ZERO;
    else if (q1.isNeg() !== q0.isNeg()) avg = px; // flipped: the remainder opens at the fill price
  }
  const notional = qty.mul(px);
  const cashDelta = fill.side === "buy" ? notional.plus(fee).neg() : notional.minus(fee);
  return {
    quantity: q1,
    avgPrice: q1.isZero() ? ZERO : avg,
    realizedPnl: quote(pos.realizedPnl.plus(realizedDelta)),
    fees: pos.fees.plus(fee),
    cashDelta: quote(cashDelta),
    realizedDelta: quote(realizedDelta),
  };
}

export class Portfolio {
  cash: Decimal;
  readonly positions = new Map<string, Position>();
  private readonly applied = new Set<string>();
  constructor(
    readonly userId: string,
    initialCash: DecimalLike = 0,
  ) {
    this.cash = D(initialCash);
  }

  hasFill(fillId: string): boolean {
    return this.applied.has(fillId);
  }

  /** Applies a fill once; returns false (no change) when its id was already applied. */
  applyFill(fill: Fill): boolean {
    if (fill.userId !== this.userId) throw new Error(`fill ${fill.fillId} belongs to ${fill.userId}, not ${this.userId}`);
    if (this.applied.has(fill.fillId)) return false;
    const p = this.positions.get(fill.symbol) ?? { symbol: fill.symbol, quantity: ZERO, avgPrice: ZERO, realizedPnl: ZERO, fees: ZERO };
    const r = applyFillToPosition(p, fill);
    this.positions.set(fill.symbol, { symbol: fill.symbol, quantity: r.quantity, avgPrice: r.avgPrice, realizedPnl: r.realizedPnl, fees: r.fees });
    this.cash = this.cash.plus(r.cashDelta);
    this.applied.add(fill.fillId);
    return true;
  }

  view(marks: Record<string, DecimalLike | undefined> = {}): PortfolioView {
    return portfolioView(this.userId, this.cash, [...this.positions.values()], marks);
  }
}

export function portfolioView(userId: string, cash: Decimal, positions: Position[], marks: Record<string, DecimalLike | undefined>): PortfolioView {
  let realized = ZERO;
  let unrealized = ZERO;
  let fees = ZERO;
  let equity = cash;
  const views: PositionView[] = [];
  for (const p of [...positions].sort((a, b) => a.symbol.localeCompare(b.symbol))) {
    const mark = marks[p.symbol] !== undefined ? D(marks[p.symbol]!) : undefined;
    const u = mark ? mark.minus(p.avgPrice).mul(p.quantity) : undefined;
    realized = realized.plus(p.realizedPnl);
    fees = fees.plus(p.fees);
    if (u) unrealized = unrealized.plus(u);
    if (mark) equity = equity.plus(mark.mul(p.quantity));
    else equity = equity.plus(p.avgPrice.mul(p.quantity));
    views.push({
      symbol: p.symbol,
      quantity: str(p.quantity),
      avgPrice: str(p.avgPrice.toDecimalPlaces(8, Decimal.ROUND_HALF_EVEN)),
      marketPrice: mark ? str(mark) : null,
      marketValue: mark ? cents(mark.mul(p.quantity)) : null,
      realizedPnl: cents(p.realizedPnl),
      unrealizedPnl: u ? cents(u) : null,
      fees: cents(p.fees),
    });
  }
  return {
    userId,
    cash: cents(cash),
    positions: views,
    realizedPnl: cents(realized),
    unrealizedPnl: cents(unrealized),
    fees: cents(fees),
    netPnl: cents(realized.plus(unrealized).minus(fees)),
    equity: cents(equity),
  };
}
