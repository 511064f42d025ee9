/**
 * Applies `trading.executions` (fills and exchange outcomes) to orders, a fetched batch at a time in
 * the caller's transaction, in a fixed number of statements whatever the batch size: lock the batch's
 * orders (in order-id order, so concurrent transactions never deadlock), record the fills (the ones
 * recorded before come back as duplicates), apply the messages in offset order in memory through the
 * state machine, write every changed order in one UPDATE and every event in one outbox insert (those
 * two in one round trip, with COMMIT: applyExecutionsInTransaction).
 * Idempotent: a fill id is recorded once, transitions are guarded, so a redelivered batch changes nothing.
 */
import type { FastifyBaseLogger } from "fastify";
import type { PostgresClient, Queryable } from "../../kit";
import { lastResult, type CommitWith } from "../../kit/datastores/postgres";
import type { ExecutionMsg } from "../../trading/events";
import { outboxInsertLiteral, type Enqueued, type OutboxEvent } from "../../trading/infra/outbox";
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
/** The batch's orders, each once. */
const orderIdsOf = (msgs: ExecutionMsg[]) => [...new Set(msgs.map(orderIdOf))];

/**
 * Applies `msgs` in the transaction `c` is in. `begun`: the transaction began with
 * lockOrdersStatement(orderIdsOf(msgs)) (its rows `locked`) and its writes go with COMMIT
 * (applyExecutionsInTransaction); without it, the caller's transaction commits.
 */
export async function applyExecutions(c: Queryable, msgs: ExecutionMsg[], log: FastifyBaseLogger, begun?: { locked: unknown[]; commitWith: CommitWith }): Promise<ExecutionsOutcome> {
  const { orders, now } = begun ? data.lockedOrdersOf(begun.locked) : await data.lockOrders(c, orderIdsOf(msgs));
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
  // The orders' UPDATE and the outbox insert in one round trip (with COMMIT when begun here).
  const insert = events.length > 0 ? outboxInsertLiteral("om_outbox", events) : undefined;
  const writes = [...(changed.size > 0 ? [data.updateOrdersStatement([...changed].map((id) => orders.get(id)!))] : []), ...(insert ? [insert.sql] : [])].join(";\n");
  let enqueued: Enqueued | undefined;
  if (writes !== "") {
    const rows = begun ? await begun.commitWith(writes) : lastResult(await c.query(writes));
    enqueued = insert?.enqueued(rows as { id: string; event_id: string }[]);
  }
  return { changed: changed.size, enqueued, fillLatencySeconds: latencies };
}

/**
 * applyExecutions in a transaction of its own, in three round trips whatever the batch: BEGIN with
 * the orders' lock, the fills' insert (which of them are new decides the rest), then the orders'
 * UPDATE and the outbox insert with COMMIT. It was six (BEGIN, four statements one at a time, COMMIT).
 */
export function applyExecutionsInTransaction(pg: PostgresClient, msgs: ExecutionMsg[], log: FastifyBaseLogger): Promise<ExecutionsOutcome> {
  return pg.transaction((c, locked, _each, commitWith) => applyExecutions(c, msgs, log, { locked, commitWith }), { begin: data.lockOrdersStatement(orderIdsOf(msgs)) });
}
