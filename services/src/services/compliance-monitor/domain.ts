/**
 * compliance-monitor's rules, without I/O (the surveillance rules themselves are shared:
 * src/trading/compliance.ts): which events are audited, in what form, and the alert ids an event
 * can have raised.
 */
import type { ComplianceAlert, OrderEvent } from "../../trading/compliance";
import type { OrderEventMsg } from "../../trading/events";
import type { Fill } from "../../trading/types";
import { redeliveryFloorDays, type TopicLifetime } from "../../migrations/kafka";

/** What the audit trail stores per event (and replays on start). */
export type Audited = { source: "order"; ev: OrderEvent } | { source: "fill"; fill: Fill };

const ORDER_KINDS = { "order.accepted": "placed", "order.cancelled": "cancelled", "order.filled": "filled", "order.rejected": "rejected", "order.expired": "expired" } as const;

/** The surveillance view of an order event; undefined for states the rules ignore (new, partially filled). */
export function fromOrderMsg(m: OrderEventMsg): OrderEvent | undefined {
  const kind = (ORDER_KINDS as Record<string, OrderEvent["kind"] | undefined>)[m.type];
  if (!kind) return undefined;
  const o = m.order;
  return { eventId: m.eventId, kind, orderId: o.orderId, userId: o.userId, symbol: o.symbol, side: o.side, type: o.type, quantity: o.quantity, limitPrice: o.limitPrice, lastPrice: o.lastPrice ?? undefined, ts: m.ts };
}

/** Who, what and which kind an audited event is about. */
export function auditSubject(a: Audited): { userId: string; symbol: string; kind: string } {
  return a.source === "order" ? { userId: a.ev.userId, symbol: a.ev.symbol, kind: a.ev.kind } : { userId: a.fill.userId, symbol: a.fill.symbol, kind: "fill" };
}

const RULES: ComplianceAlert["rule"][] = ["RESTRICTED_SYMBOL", "POSITION_LIMIT", "WASH_TRADE", "SPOOFING", "LAYERING", "EXCESSIVE_CANCEL_RATIO"];

/** Every alert id an event could have raised (alert ids are `<rule>:<eventId>`, deterministic). */
export const possibleAlertIds = (eventId: string) => RULES.map((r) => `${r}:${eventId}`);

/**
 * How long after a fill was applied it can still reach compliance-monitor again, so how long its
 * cm_position_fills row must stay for the fill to move the position once: `trading.executions`'
 * lifetime (migrations/kafka.ts redeliveryFloorDays) plus the replay on start, which re-reads the audit
 * trail's last `replayWindowMs` into memory only and moves no position but is counted anyway.
 */
export function positionFillRetentionFloorDays(executions: TopicLifetime, replayWindowMs: number): number {
  return redeliveryFloorDays(executions, replayWindowMs);
}
