import { bps, D, Decimal, str, ZERO } from "./decimal";
import type { Fill, Side } from "./types";

/**
 * Surveillance rules over the order and fill event streams. The monitor is pure and deterministic:
 * it keeps a bounded in-memory state and returns the alerts each event raises. Event time (`ts`)
 * comes from the events, never the wall clock, so replaying a stream gives the same alerts.
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

export class ComplianceMonitor {
  private readonly cfg: ComplianceConfig;
  private readonly positions = new Map<string, Decimal>();
  private readonly recentFills = new Map<string, Fill[]>(); // user|symbol
  private readonly live = new Map<string, LiveOrder>();
  private readonly activity = new Map<string, { ts: number; kind: "placed" | "cancelled" }[]>(); // user
  private readonly lastCancelAlert = new Map<string, number>();
  constructor(cfg: Partial<ComplianceConfig> = {}) {
    this.cfg = { ...DEFAULT_COMPLIANCE, ...cfg };
  }

  onOrder(ev: OrderEvent): ComplianceAlert[] {
    const alerts: ComplianceAlert[] = [];
    const c = this.cfg;
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
      this.live.set(ev.orderId, { ev, large, away });
      if (large && away) {
        const layered = [...this.live.values()].filter((o) => o.ev.userId === ev.userId && o.ev.symbol === ev.symbol && o.ev.side === ev.side && o.large && o.away);
        if (layered.length >= c.layeringMinOrders)
          alerts.push(this.alert("LAYERING", ev.eventId, ev, "high", `${layered.length} large ${ev.side} orders layered away from the touch`, layered.map((o) => o.ev.orderId)));
      }
      this.pushActivity(ev.userId, ev.ts, "placed");
    } else if (ev.kind === "cancelled") {
      const placed = this.live.get(ev.orderId);
      this.live.delete(ev.orderId);
      if (placed && placed.large && placed.away && ev.ts - placed.ev.ts <= c.spoofCancelWithinMs)
        alerts.push(this.alert("SPOOFING", ev.eventId, ev, "high", `large order away from the touch cancelled after ${ev.ts - placed.ev.ts} ms`, [ev.orderId]));
      this.pushActivity(ev.userId, ev.ts, "cancelled");
      const acts = this.activity.get(ev.userId)!;
      const placedN = acts.filter((a) => a.kind === "placed").length;
      const cancelN = acts.filter((a) => a.kind === "cancelled").length;
      const lastAlert = this.lastCancelAlert.get(ev.userId) ?? -Infinity;
      if (placedN >= c.cancelRatioMinOrders && cancelN / placedN >= c.cancelRatioThreshold && ev.ts - lastAlert > c.cancelRatioWindowMs) {
        this.lastCancelAlert.set(ev.userId, ev.ts);
        alerts.push(this.alert("EXCESSIVE_CANCEL_RATIO", ev.eventId, ev, "medium", `${cancelN} cancels for ${placedN} orders in ${c.cancelRatioWindowMs} ms`, [ev.orderId]));
      }
    } else {
      this.live.delete(ev.orderId);
    }
    return alerts;
  }

  private pushActivity(userId: string, ts: number, kind: "placed" | "cancelled") {
    const arr = (this.activity.get(userId) ?? []).filter((a) => a.ts > ts - this.cfg.cancelRatioWindowMs);
    arr.push({ ts, kind });
    this.activity.set(userId, arr);
  }

  onFill(fill: Fill): ComplianceAlert[] {
    const alerts: ComplianceAlert[] = [];
    const c = this.cfg;
    const key = `${fill.userId}|${fill.symbol}`;
    const pos = (this.positions.get(key) ?? ZERO).plus(fill.side === "buy" ? D(fill.quantity) : D(fill.quantity).neg());
    this.positions.set(key, pos);
    if (pos.abs().gt(c.positionLimit))
      alerts.push(this.alert("POSITION_LIMIT", fill.fillId, fill, "high", `position ${str(pos)} beyond the limit ${c.positionLimit}`, [fill.fillId]));
    if (c.restrictedSymbols.includes(fill.symbol))
      alerts.push(this.alert("RESTRICTED_SYMBOL", fill.fillId, fill, "high", `fill on restricted symbol ${fill.symbol}`, [fill.fillId]));

    const recent = (this.recentFills.get(key) ?? []).filter((f) => f.ts >= fill.ts - c.washWindowMs);
    const tol = D(fill.price).mul(bps(c.washPriceToleranceBps));
    const matches = recent.filter((f) => f.side !== fill.side && f.orderId !== fill.orderId && D(f.price).minus(fill.price).abs().lte(tol));
    if (matches.length > 0)
      alerts.push(
        this.alert("WASH_TRADE", fill.fillId, fill, "high", `${fill.side} at ${fill.price} offsets ${matches.length} opposite fill(s) at about the same price within ${c.washWindowMs} ms`, [
          ...matches.map((m) => m.fillId),
          fill.fillId,
        ]),
      );
    recent.push(fill);
    this.recentFills.set(key, recent);
    return alerts;
  }

  private alert(rule: AlertRule, eventId: string, e: { userId: string; symbol: string; ts: number }, severity: ComplianceAlert["severity"], message: string, evidence: string[]): ComplianceAlert {
    return { alertId: `${rule}:${eventId}`, rule, userId: e.userId, symbol: e.symbol, severity, message, ts: e.ts, evidence };
  }
}
