import { bps, D, Decimal, str, ZERO } from "./decimal";
import type { Fill, Side } from "./types";

/**
 * Surveillance rules over the order and fill event streams. The monitor is pure and deterministic:
 * it keeps a bounded in-memory state per user and returns the alerts each event raises. Event time
 * (`ts`) comes from the events, never the wall clock, so replaying a stream gives the same alerts.
 * A caller that records events in a transaction evaluates first (`evaluateOrder` / `evaluateFill`)
 * and commits the evaluation once its transaction committed; `onOrder` / `onFill` do both at once.
 */
export type AlertRule = "RESTRICTED_SYMBOL" | "POSITION_LIMIT" | "WASH_TRADE" | "SPOOFING" | "LAYERING" | "EXCESSIVE_CANCEL_RATIO";

export interface ComplianceAlert {
  /** Deterministic id: rule + the triggering event id, so re-processing an event dedupes. */
  alertId: string;
  rule: AlertRule;
  userId: string;
  symbol: string;
  severity: "low" | "medium" | "high";
  message: string;
  ts: number;
  /** Ids of the orders / fills involved. */
  evidence: string[];
  /** The order the alert is about (a fill's order for the fill rules); absent on alerts raised before it was recorded. */
  orderId?: string;
}

export interface ComplianceConfig {
  restrictedSymbols: string[];
  /** Max absolute position per symbol (quantity). */
  positionLimit: string;
  washWindowMs: number;
  /** Opposite-side fills within this price distance (bps) count as "about the same price". */
  washPriceToleranceBps: string;
  /** Orders at or above this notional are "large" for spoofing / layering. */
  spoofMinNotional: string;
  /** "Away from the touch": at least this many bps from the last price, on the passive side. */
  spoofAwayBps: string;
  /** Cancelled within this time after placement. */
  spoofCancelWithinMs: number;
  /** Layering: this many large away orders live at once on the same side. */
  layeringMinOrders: number;
  cancelRatioWindowMs: number;
  cancelRatioMinOrders: number;
  /** cancels / placed at or above this ratio alerts. */
  cancelRatioThreshold: number;
}

export const DEFAULT_COMPLIANCE: ComplianceConfig = {
  restrictedSymbols: [],
  positionLimit: "1000",
  washWindowMs: 60_000,
  washPriceToleranceBps: "10",
  spoofMinNotional: "50000",
  spoofAwayBps: "50",
  spoofCancelWithinMs: 5_000,
  layeringMinOrders: 3,
  cancelRatioWindowMs: 60_000,
  cancelRatioMinOrders: 10,
  cancelRatioThreshold: 0.9,
};

export interface OrderEvent {
  eventId: string;
  kind: "placed" | "cancelled" | "filled" | "rejected" | "expired";
  orderId: string;
  userId: string;
  symbol: string;
  side: Side;
  type: "market" | "limit";
  quantity: string;
  limitPrice?: string;
  /** Last market price at the time of the event, if known. */
  lastPrice?: string;
  ts: number;
}

interface LiveOrder {
  ev: OrderEvent;
  large: boolean;
  away: boolean;
}

/**
 * One user's rule state. Never changed in place: evaluating an event builds the next state, which
 * replaces this one only when the caller commits the evaluation (after its own transaction
 * committed), so an attempt that is rolled back and delivered again is counted once. Windowed
 * entries are keyed by event / fill id, so an event applied twice still counts once.
 */
interface UserState {
  /** Orders on the book (placed, not yet cancelled, filled, rejected or expired), by order id. */
  readonly live: ReadonlyMap<string, LiveOrder>;
  /** Placements and cancels inside the cancel-ratio window, by event id. */
  readonly activity: ReadonlyMap<string, { ts: number; kind: "placed" | "cancelled" }>;
  readonly lastCancelAlert: number;
  /** Fills inside the wash window, per symbol, by fill id. */
  readonly recentFills: ReadonlyMap<string, ReadonlyMap<string, Fill>>;
  /** Running positions per symbol, kept only for fills evaluated without a book (see evaluateFill). */
  readonly positions: ReadonlyMap<string, Decimal>;
}
const EMPTY: UserState = { live: new Map(), activity: new Map(), lastCancelAlert: -Infinity, recentFills: new Map(), positions: new Map() };
const isEmpty = (s: UserState) => s.live.size === 0 && s.activity.size === 0 && s.recentFills.size === 0 && s.positions.size === 0 && s.lastCancelAlert === -Infinity;

/** The alerts an event raises, and the state it leads to, applied by `commit` (once; later calls do nothing). */
export interface Evaluation {
  readonly alerts: ComplianceAlert[];
  commit(): void;
}

/** Where a fill's position comes from when the caller keeps the book of record (compliance-monitor: cm_positions). */
export interface FillBook {
  /** The user's position in the symbol after this fill; null when unknown (a replay): POSITION_LIMIT is not evaluated. */
  positionAfter: string | null;
}

export class ComplianceMonitor {
  private readonly cfg: ComplianceConfig;
  private readonly users = new Map<string, UserState>();
  constructor(cfg: Partial<ComplianceConfig> = {}) {
    this.cfg = { ...DEFAULT_COMPLIANCE, ...cfg };
  }

  /** Evaluates and applies at once (nothing to wait for: unit use, replays). */
  onOrder(ev: OrderEvent): ComplianceAlert[] {
    const e = this.evaluateOrder(ev);
    e.commit();
    return e.alerts;
  }

  onFill(fill: Fill, book?: FillBook): ComplianceAlert[] {
    const e = this.evaluateFill(fill, book);
    e.commit();
    return e.alerts;
  }

  /** The alerts of an order event; the state changes only on `commit`. Evaluations of a user are committed in order. */
  evaluateOrder(ev: OrderEvent): Evaluation {
    const alerts: ComplianceAlert[] = [];
    const c = this.cfg;
    const stored = this.users.get(ev.userId);
    const cur = stored ?? EMPTY;
    const live = new Map(cur.live);
    let next: UserState;
    if (ev.kind === "placed") {
      if (c.restrictedSymbols.includes(ev.symbol))
        alerts.push(this.alert("RESTRICTED_SYMBOL", ev.eventId, ev, "high", `order on restricted symbol ${ev.symbol}`, [ev.orderId]));
      const px = ev.limitPrice ?? ev.lastPrice;
      const large = px !== undefined && D(ev.quantity).mul(px).gte(c.spoofMinNotional);
      let away = false;
      if (ev.type === "limit" && ev.limitPrice && ev.lastPrice) {
        const dist = ev.side === "buy" ? D(ev.lastPrice).minus(ev.limitPrice) : D(ev.limitPrice).minus(ev.lastPrice);
        away = dist.gte(D(ev.lastPrice).mul(bps(c.spoofAwayBps)));
      }
      live.set(ev.orderId, { ev, large, away });
      if (large && away) {
        const layered = [...live.values()].filter((o) => o.ev.symbol === ev.symbol && o.ev.side === ev.side && o.large && o.away);
        if (layered.length >= c.layeringMinOrders)
          alerts.push(this.alert("LAYERING", ev.eventId, ev, "high", `${layered.length} large ${ev.side} orders layered away from the touch`, layered.map((o) => o.ev.orderId)));
      }
      next = { ...cur, live, activity: this.withActivity(cur.activity, ev.eventId, ev.ts, "placed") };
    } else if (ev.kind === "cancelled") {
      const placed = live.get(ev.orderId);
      live.delete(ev.orderId);
      if (placed && placed.large && placed.away && ev.ts - placed.ev.ts <= c.spoofCancelWithinMs)
        alerts.push(this.alert("SPOOFING", ev.eventId, ev, "high", `large order away from the touch cancelled after ${ev.ts - placed.ev.ts} ms`, [ev.orderId]));
      const activity = this.withActivity(cur.activity, ev.eventId, ev.ts, "cancelled");
      const acts = [...activity.values()];
      const placedN = acts.filter((a) => a.kind === "placed").length;
      const cancelN = acts.length - placedN;
      let lastCancelAlert = cur.lastCancelAlert;
      if (placedN >= c.cancelRatioMinOrders && cancelN / placedN >= c.cancelRatioThreshold && ev.ts - lastCancelAlert > c.cancelRatioWindowMs) {
        lastCancelAlert = ev.ts;
        alerts.push(this.alert("EXCESSIVE_CANCEL_RATIO", ev.eventId, ev, "medium", `${cancelN} cancels for ${placedN} orders in ${c.cancelRatioWindowMs} ms`, [ev.orderId]));
      }
      next = { ...cur, live, activity, lastCancelAlert };
    } else {
      live.delete(ev.orderId);
      next = { ...cur, live };
    }
    return this.evaluation(ev.userId, stored, next, alerts);
  }

  /** The activity window ending at `ts`, with this event (by id: an event already there counts once). */
  private withActivity(prev: UserState["activity"], eventId: string, ts: number, kind: "placed" | "cancelled"): UserState["activity"] {
    const next = new Map([...prev].filter(([, a]) => a.ts > ts - this.cfg.cancelRatioWindowMs));
    next.set(eventId, { ts, kind });
    return next;
  }

  /**
   * The alerts of a fill; the state changes only on `commit`. With a `book` the position is the
   * caller's (its book of record, applied once per fill id); without one the monitor sums fills itself.
   */
  evaluateFill(fill: Fill, book?: FillBook): Evaluation {
    const alerts: ComplianceAlert[] = [];
    const c = this.cfg;
    const stored = this.users.get(fill.userId);
    const cur = stored ?? EMPTY;
    const inWindow = cur.recentFills.get(fill.symbol) ?? new Map<string, Fill>();
    let positions = cur.positions;
    let pos: Decimal | null;
    if (book) pos = book.positionAfter === null ? null : D(book.positionAfter);
    else {
      const before = cur.positions.get(fill.symbol) ?? ZERO;
      pos = inWindow.has(fill.fillId) ? before : before.plus(fill.side === "buy" ? D(fill.quantity) : D(fill.quantity).neg());
      positions = new Map(cur.positions).set(fill.symbol, pos);
    }
    if (pos !== null && pos.abs().gt(c.positionLimit))
      alerts.push(this.alert("POSITION_LIMIT", fill.fillId, fill, "high", `position ${str(pos)} beyond the limit ${c.positionLimit}`, [fill.fillId]));
    if (c.restrictedSymbols.includes(fill.symbol))
      alerts.push(this.alert("RESTRICTED_SYMBOL", fill.fillId, fill, "high", `fill on restricted symbol ${fill.symbol}`, [fill.fillId]));

    const recent = [...inWindow.values()].filter((f) => f.ts >= fill.ts - c.washWindowMs && f.fillId !== fill.fillId);
    const tol = D(fill.price).mul(bps(c.washPriceToleranceBps));
    const matches = recent.filter((f) => f.side !== fill.side && f.orderId !== fill.orderId && D(f.price).minus(fill.price).abs().lte(tol));
    if (matches.length > 0)
      alerts.push(
        this.alert("WASH_TRADE", fill.fillId, fill, "high", `${fill.side} at ${fill.price} offsets ${matches.length} opposite fill(s) at about the same price within ${c.washWindowMs} ms`, [
          ...matches.map((m) => m.fillId),
          fill.fillId,
        ]),
      );
    const window = new Map(recent.map((f) => [f.fillId, f])).set(fill.fillId, fill);
    return this.evaluation(fill.userId, stored, { ...cur, positions, recentFills: new Map(cur.recentFills).set(fill.symbol, window) }, alerts);
  }

  /** `from`: the user's state the evaluation started from; committing over a later one would lose an event. */
  private evaluation(userId: string, from: UserState | undefined, next: UserState, alerts: ComplianceAlert[]): Evaluation {
    let done = false;
    return {
      alerts,
      commit: () => {
        if (done) return;
        if (this.users.get(userId) !== from) throw new Error(`compliance state of user ${userId} changed since this evaluation: evaluations of a user must be committed in order`);
        done = true;
        if (isEmpty(next)) this.users.delete(userId);
        else this.users.set(userId, next);
      },
    };
  }

  private alert(rule: AlertRule, eventId: string, e: { userId: string; symbol: string; ts: number; orderId: string }, severity: ComplianceAlert["severity"], message: string, evidence: string[]): ComplianceAlert {
    return { alertId: `${rule}:${eventId}`, rule, userId: e.userId, symbol: e.symbol, severity, message, ts: e.ts, evidence, orderId: e.orderId };
  }
}
