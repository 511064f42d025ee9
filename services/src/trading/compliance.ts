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
  /**
   * A user with no event committed for this long (the monitor's clock) is forgotten by `prune`: what a
   * restart would leave of them too, as the replay on start covers that long. At least every window.
   */
  stateIdleMs: number;
  /** At most this many users' state; one more drops the least recently active user's (see `commit`). */
  maxTrackedUsers: number;
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
  stateIdleMs: 3_600_000,
  maxTrackedUsers: 50_000,
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
  /** By user, least recently committed first (a commit moves its user to the end): `prune` stops at the first recent one. */
  private readonly users = new Map<string, { state: UserState; touchedAt: number }>();
  /** States dropped by `prune` or the cap: an evaluation started from one may still commit (nothing else did since). */
  private readonly dropped = new WeakSet<UserState>();
  /** Users forgotten so far: idle (`prune`), and dropped at the cap while active. */
  readonly forgotten = { idle: 0, atCap: 0 };
  constructor(
    cfg: Partial<ComplianceConfig> = {},
    /** Wall clock of `prune` and the cap (not of the rules: they go by event time). */
    private readonly now: () => number = Date.now,
  ) {
    this.cfg = { ...DEFAULT_COMPLIANCE, ...cfg };
  }

  /** How many users' state is held. */
  get trackedUsers(): number { return this.users.size; }

  /** Forgets users with no event committed for `stateIdleMs` (a window is trimmed only by its own user's next event); answers how many. */
  prune(): number {
    const before = this.now() - this.cfg.stateIdleMs;
    let n = 0;
    for (const [userId, u] of this.users) {
      if (u.touchedAt > before) break;
      this.forget(userId, u.state);
      n++;
    }
    this.forgotten.idle += n;
    return n;
  }

  private forget(userId: string, state: UserState): void {
    this.dropped.add(state);
    this.users.delete(userId);
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
    const stored = this.users.get(ev.userId)?.state;
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
      // Only large orders away from the touch are read again (spoofing, layering): the others are not kept.
      if (large && away) {
        live.set(ev.orderId, { ev, large, away });
        // The placed order last: the evidence ends with the order the alert is about.
        const layered = [...live.values()].filter((o) => o.ev.symbol === ev.symbol && o.ev.side === ev.side && o.ev.orderId !== ev.orderId);
        if (layered.length + 1 >= c.layeringMinOrders)
          alerts.push(this.alert("LAYERING", ev.eventId, ev, "high", `${layered.length + 1} large ${ev.side} orders layered away from the touch`, [...layered.map((o) => o.ev.orderId), ev.orderId]));
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
    const stored = this.users.get(fill.userId)?.state;
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
        const current = this.users.get(userId)?.state;
        // A state dropped since (idle, or at the cap) with nothing committed after: this commit lost no event.
        const droppedSince = from !== undefined && current === undefined && this.dropped.has(from);
        if (current !== from && !droppedSince) throw new Error(`compliance state of user ${userId} changed since this evaluation: evaluations of a user must be committed in order`);
        done = true;
        this.users.delete(userId);
        if (isEmpty(next)) return;
        if (this.users.size >= this.cfg.maxTrackedUsers && this.prune() === 0) {
          // Still full of users active within stateIdleMs: the least recently active one is forgotten, as
          // a restart would forget them all; its windows start again at its next event. Not the newcomer:
          // refusing to track new users would leave every account opened now unwatched.
          const [oldest] = this.users;
          this.forget(oldest[0], oldest[1].state);
          this.forgotten.atCap++;
        }
        this.users.set(userId, { state: next, touchedAt: this.now() });
      },
    };
  }

  private alert(rule: AlertRule, eventId: string, e: { userId: string; symbol: string; ts: number; orderId: string }, severity: ComplianceAlert["severity"], message: string, evidence: string[]): ComplianceAlert {
    return { alertId: `${rule}:${eventId}`, rule, userId: e.userId, symbol: e.symbol, severity, message, ts: e.ts, evidence, orderId: e.orderId };
  }
}
