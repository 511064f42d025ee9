/**
 * The kill switch at the trading-engine, once a change has committed:
 *   - `halted` (`user:<id>`, or `global`): no fill for an order of the owner (of anyone); a deleted
 *     account (deleted_users) is a halted user: its orders committed before the deletion rest unfilled
 *     until order-management's sweep cancels them (user-management's deletion takes the lock below too);
 *   - `reduce_only`: no fill for an order that would not shrink its owner's position in the symbol
 *     (a buy against a long or flat position, a sell against a short or flat one, or one whose whole
 *     unfilled quantity would take the position through zero), weighed as the pre-trade check weighs
 *     a new order (risk.ts reducesPosition). An order is weighed whole, never filled up to flat: the
 *     pre-trade check rejects and the sweep cancels an order that would cross zero as a whole.
 * risk-analyzer's change transaction takes KILL_SWITCH_LOCK exclusively before it writes
 * trading_states; a batch that may fill takes it shared in the round trip that carries its BEGIN and
 * then reads the halted and reduce_only scopes (READ COMMITTED: that statement's snapshot is taken
 * after the lock was granted). So a batch that read the state before a change holds the change back
 * until it commits, and every batch after the change has committed sees it.
 *
 * The position is the engine's own (te_positions, kept from te_fills by a trigger, migration 0395),
 * not order-management's om_positions, which lags by the Kafka hop. It is read (one statement, rows
 * locked) only when a reduce_only scope covers the owner of an order the batch may fill, and moved by
 * every fill the batch makes, in the order it makes them (FillGate.filled). In live mode the owner's
 * orders resting at Binance (filled there without the engine weighing them again) count as if they
 * filled on their side (FillGate.resting), those the batch sends included.
 */
import { canonicalUserId } from "../../kit";
import { executeStatement } from "../../kit/datastores/postgres";
import { D, type Decimal, type DecimalLike, ZERO } from "../../trading/decimal";
import { reducesPosition } from "../../trading/risk";
import { KILL_SWITCH_LOCK } from "../../trading/tradingState";
import type { Fill, OrderRequest } from "../../trading/types";
import type { PoolClient } from "pg";
import * as data from "./data";

/**
 * The statements sent with BEGIN (their results come first, in this order): the shared lock, then the
 * halted and reduce_only scopes and the deleted accounts among `owners` (begunEach[1]; EXECUTE of
 * data.STRICT_SCOPES, which the transaction must have prepared). Only canonical ids are written into
 * the SQL; an owner id that is no UUID names no platform account (see scopesIn).
 */
export function haltsStatements(owners: Iterable<string>): string {
  const ids = new Set<string>();
  for (const o of owners) {
    const id = canonicalUserId(o);
    if (id !== undefined) ids.add(id);
  }
  return `SELECT pg_advisory_xact_lock_shared(${KILL_SWITCH_LOCK.space}, ${KILL_SWITCH_LOCK.key}); ${executeStatement(data.STRICT_SCOPES, [`'{${[...ids].join(",")}}'::text[]`])}`;
}

/** Whether a scope in one state (halted, or reduce_only) covers an owner's orders in this batch. */
export type CoveredBy = (userId: string) => boolean;

export const NO_SCOPE: CoveredBy = () => false;

/** The scopes in `state` of the rows haltsStatements answered, as a test of an order's owner. */
export function scopesIn(rows: { scope?: unknown; state?: unknown }[], state: "halted" | "reduce_only"): CoveredBy {
  const scopes = new Set(rows.filter((r) => r.state === state).map((r) => String(r.scope)));
  if (scopes.has("global")) return () => true;
  if (scopes.size === 0) return NO_SCOPE;
  // A scope names a user by the canonical id (trading_states' CHECK); an owner spelled otherwise
  // (from a producer outside the platform) is the same user, and an id that is no UUID names no
  // platform user: only `global` covers its orders.
  return (userId) => {
    const canonical = canonicalUserId(userId);
    return canonical !== undefined && scopes.has(`user:${canonical}`);
  };
}

const pairOf = (userId: string, symbol: string) => `${userId}\u0000${symbol}`;
const sideOf = (o: Pick<OrderRequest, "userId" | "symbol" | "side">) => `${pairOf(o.userId, o.symbol)}\u0000${o.side}`;
const signed = (side: "buy" | "sell", qty: DecimalLike): Decimal => (side === "buy" ? D(qty) : D(qty).neg());

/** What may fill in one batch: the owners halted, those under reduce_only and their positions (moved by the batch's fills). */
export class FillGate {
  constructor(
    readonly halted: CoveredBy = NO_SCOPE,
    private readonly reduceOnly: CoveredBy = NO_SCOPE,
    /** Signed position per owner and symbol under reduce_only (pairOf), as this batch has moved it so far. */
    private readonly positions = new Map<string, Decimal>(),
    /**
     * Live: the signed unfilled quantity of the reduce_only owners' orders resting at Binance, per owner,
     * symbol and side (sideOf). Binance fills them without the engine weighing them again, so an order
     * is weighed as if those on its side filled, as the pre-trade check weighs a new order with the open ones.
     */
    private readonly atVenue = new Map<string, Decimal>(),
  ) {}

  /** Whether `qty` of `o` may fill now (for an order not filled at all yet: its quantity; a resting one: what is left). */
  mayFill(o: OrderRequest, qty: DecimalLike): boolean {
    if (this.halted(o.userId)) return false;
    if (!this.reduceOnly(o.userId)) return true;
    const pos = this.positions.get(pairOf(o.userId, o.symbol));
    // A pair the batch did not read cannot be weighed: not filled (fail closed; gateFor reads every pair it may fill).
    const pending = this.atVenue.get(sideOf(o)) ?? ZERO;
    return pos !== undefined && reducesPosition(o.side, pos, pos.plus(pending).plus(signed(o.side, qty)));
  }

  /**
   * Live: `o` rests at Binance with `remaining` unfilled (sent by this batch): weighed with the later
   * orders on its side until a batch finds it no longer there. Its fills moving the position too only
   * holds back more (never lets more through) until then.
   */
  resting(o: OrderRequest, remaining: DecimalLike): void {
    if (!this.reduceOnly(o.userId)) return;
    const key = sideOf(o);
    this.atVenue.set(key, (this.atVenue.get(key) ?? ZERO).plus(signed(o.side, remaining)));
  }

  /** Fills the batch makes (or has made) move the positions its later decisions weigh. */
  filled(fills: Pick<Fill, "userId" | "symbol" | "side" | "quantity">[]): void {
    for (const f of fills) {
      const key = pairOf(f.userId, f.symbol);
      const pos = this.positions.get(key);
      if (pos !== undefined) this.positions.set(key, pos.plus(signed(f.side, f.quantity)));
    }
  }

  /** Whether `o` may fill whole now; if so it is counted as filled (a decision taken before its execution, on a copy). */
  admit(o: OrderRequest): boolean {
    if (!this.mayFill(o, o.quantity)) return false;
    this.filled([o]);
    return true;
  }

  /** A scratch copy: decisions weighed ahead of their execution leave this gate's positions as they are. */
  copy(): FillGate {
    return new FillGate(this.halted, this.reduceOnly, new Map(this.positions), new Map(this.atVenue));
  }
}

export const OPEN_GATE = new FillGate();

/**
 * The gate of a batch from the scopes haltsStatements answered. Only when a reduce_only scope covers
 * the owner of one of `candidates` (the orders the batch may fill: arriving, held, resting in a symbol
 * it brings bars of; listed only then) does it read their positions: one statement more, never on a
 * batch without reduce_only.
 */
export async function gateFor(
  tx: PoolClient,
  rows: { scope?: unknown; state?: unknown }[],
  candidates: () => OrderRequest[],
  /** Live: the orders resting at Binance (LiveVenue.resting), weighed as if they filled. */
  atVenue: () => { order: OrderRequest; remaining: string }[] = () => [],
): Promise<FillGate> {
  const halted = scopesIn(rows, "halted");
  const reduceOnly = scopesIn(rows, "reduce_only");
  if (reduceOnly === NO_SCOPE) return new FillGate(halted);
  const pairs = new Map<string, { userId: string; symbol: string }>();
  for (const o of candidates()) if (reduceOnly(o.userId) && !halted(o.userId)) pairs.set(pairOf(o.userId, o.symbol), { userId: o.userId, symbol: o.symbol });
  if (pairs.size === 0) return new FillGate(halted, reduceOnly);
  const read = await data.positionsFor(tx, [...pairs.values()]);
  const positions = new Map([...pairs.keys()].map((k) => [k, ZERO]));
  for (const p of read) positions.set(pairOf(p.userId, p.symbol), D(p.quantity));
  const gate = new FillGate(halted, reduceOnly, positions);
  for (const r of atVenue()) if (pairs.has(pairOf(r.order.userId, r.order.symbol))) gate.resting(r.order, r.remaining);
  return gate;
}
