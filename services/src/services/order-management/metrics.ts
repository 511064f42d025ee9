/**
 * order-management's metrics, on the service's registry:
 *   om_orders_submitted_total{outcome}   every answered submission: accepted, rejected, replayed
 *   om_order_rejections_total{reason}    orders refused by the pre-trade risk check, by named reason
 *                                        (every reason starts at 0, so the first refusal shows in rate())
 *   om_fill_latency_seconds              order created to each of its fills applied here (through risk,
 *                                        the outbox, Kafka and the trading engine), both times from
 *                                        PostgreSQL's clock
 *   om_kill_switch_cancels_total{state}  cancels of open orders requested by the kill switch (halted,
 *                                        reduce_only; kill-switch.ts)
 */
import { Counter, Histogram, type Registry } from "prom-client";
import { RISK_REJECTIONS } from "../../trading/risk";
import type { OrderRow } from "./data";

export function createOrderMetrics(registry: Registry) {
  const rejections = new Counter({ name: "om_order_rejections_total", help: "orders refused by the pre-trade risk check, by reason", labelNames: ["reason"], registers: [registry] });
  for (const reason of RISK_REJECTIONS) rejections.inc({ reason }, 0);
  return {
    submitted: new Counter({ name: "om_orders_submitted_total", help: "orders submitted by outcome", labelNames: ["outcome"], registers: [registry] }),
    rejections,
    killSwitchCancels: new Counter({ name: "om_kill_switch_cancels_total", help: "cancels of open orders requested by the kill switch, by trading state", labelNames: ["state"], registers: [registry] }),
    fillLatency: new Histogram({
      name: "om_fill_latency_seconds",
      help: "order created to each of its fills applied (through risk, the outbox, Kafka and the trading engine)",
      // Market orders fill within a second or two; resting limit orders may wait minutes or hours.
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
      registers: [registry],
    }),
  };
}
export type OrderMetrics = ReturnType<typeof createOrderMetrics>;

/** Counts a decided submission: its outcome and, when pre-trade risk refused it, the reason. */
export function countDecision(m: OrderMetrics, row: Pick<OrderRow, "status" | "reject_reason">): void {
  m.submitted.inc({ outcome: row.status });
  if (row.status === "rejected" && row.reject_reason) m.rejections.inc({ reason: row.reject_reason });
}

/** Seconds from the order's creation to a fill applied to it (the row as the fill left it). */
export function fillLatencySeconds(row: Pick<OrderRow, "created_at" | "updated_at">): number {
  return Math.max(0, (row.updated_at.getTime() - row.created_at.getTime()) / 1000);
}
