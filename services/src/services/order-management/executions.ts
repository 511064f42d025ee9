/**
 * Applies `trading.executions` (fills and exchange outcomes) to orders, a fetched batch at a time in
 * the caller's transaction, in a fixed number of statements whatever the batch size: lock the batch's
 * orders (in order-id order, so concurrent transactions never deadlock), record the fills (the ones
 * recorded before come back as duplicates), apply the messages in offset order in memory through the
 * state machine, write every changed order in one UPDATE and every event in one outbox insert.
 * Idempotent: a fill id is recorded once, transitions are guarded, so a redelivered batch changes nothing.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Queryable } from "../../kit";
import type { ExecutionMsg } from "../../trading/events";
import { enqueue, type Enqueued, type OutboxEvent } from "../../trading/infra/outbox";
import { nextStatus, type OrderEvent } from "../../trading/orderState";
import * as data from "./data";
import { fillTotals, orderEvent } from "./domain";
import { fillLatencySeconds } from "./metrics";

const OUTCOME_EVENTS: Record<Exclude<ExecutionMsg["type"], "fill">, OrderEvent> = {
  "order.expired": "expire",
  "order.rejected": "exchange_reject",
  "order.cancelled": "cancel_confirm",
};

/** What applying a batch did: how many orders changed, and for each new fill how long after its order's creation. */
export interface ExecutionsOutcome {
  changed: number;
  /** The om_outbox rows the batch enqueued (for the relay once committed), if any. */
  enqueued?: Enqueued;
  fillLatencySeconds: number[];
}

const orderIdOf = (m: ExecutionMsg) => (m.type === "fill" ? m.fill.orderId : m.orderId);

export async function applyExecutions(c: Queryable, msgs: ExecutionMsg[], log: FastifyBaseLogger): Promise<ExecutionsOutcome> {
  const { orders, now } = await data.lockOrders(c, [...new Set(msgs.map(orderIdOf))]);
  const fills = msgs.flatMap((m) => (m.type === "fill" ? [m.fill] : []));
  for (const f of fills) if (!orders.has(f.orderId)) log.warn({ fillId: f.fillId, orderId: f.orderId }, "fill for an unknown order ignored");
  const fresh = await data.insertFills(c, fills.filter((f) => orders.has(f.orderId)));
  const events: OutboxEvent[] = [];
  const changed = new Set<string>();
  const latencies: number[] = [];
  for (const m of msgs) {
    const cur = orders.get(orderIdOf(m));
    if (!cur) continue;
    if (m.type === "fill") {
      const f = m.fill;
      if (!fresh.delete(f.fillId)) continue; // duplicate delivery
      const t = fillTotals(cur, f);
      if (!t.allowed) log.warn({ orderId: cur.order_id, from: cur.status, event: t.event, fillId: f.fillId }, "fill for an order in a state that does not allow it; quantities recorded, status kept");
      const upd: data.OrderRow = { ...cur, filled_quantity: t.filled, avg_fill_price: t.avgPrice, fees: t.fees, status: t.status, updated_at: now };
      orders.set(cur.order_id, upd);
      changed.add(cur.order_id);
      latencies.push(fillLatencySeconds(upd));
      // A partial fill racing a cancel request changes quantities, not the state: no order event.
      if (t.allowed && t.status !== "pending_cancel") events.push(orderEvent(upd, t.status === "partially_filled" ? `:${f.fillId}` : ""));
      continue;
    }
    const next = nextStatus(cur.status, OUTCOME_EVENTS[m.type]);
    if (next === undefined) continue; // already terminal (or duplicate)
    // The first reject reason is kept; a confirmed cancel carries none.
    const reason = cur.reject_reason ?? (m.type === "order.cancelled" ? null : m.reason);
    const upd: data.OrderRow = { ...cur, status: next, reject_reason: reason, updated_at: now };
    orders.set(cur.order_id, upd);
    changed.add(cur.order_id);
    events.push(orderEvent(upd));
  }
  await data.updateOrders(c, [...changed].map((id) => orders.get(id)!));
  const enqueued = await enqueue(c, "om_outbox", events);
  return { changed: changed.size, enqueued, fillLatencySeconds: latencies };
}
