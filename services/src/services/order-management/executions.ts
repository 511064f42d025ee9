/**
 * Applies `trading.executions` (fills and exchange outcomes) to orders, a fetched batch at a time in
 * one transaction, in a fixed number of statements whatever the batch size: lock the batch's orders
 * (in order-id order, so concurrent transactions never deadlock) and read which of its fills are
 * recorded already (under those locks, so a concurrent duplicate is seen), apply the messages in
 * offset order in memory through the state machine (`decideExecutions`, no I/O), then record the new
 * fills, write every changed order in one UPDATE and every event in one outbox insert.
 * Idempotent: a fill id is recorded once, transitions are guarded, so a redelivered batch changes nothing.
 *
 * The consumer runs it as two round trips (`applyExecutionsBatch`): the lock and the read travel with
 * BEGIN, the writes with COMMIT (prepared statements, data.ts). It was six (BEGIN, the lock, the
 * fills' insert, the UPDATE, the outbox insert, COMMIT) for every batch: at 200 orders/s, batches of
 * a few fills each, this side path was a fifth of PostgreSQL's round trips. `applyExecutions` runs the
 * same statements one at a time in a transaction of the caller's.
 */
import type { FastifyBaseLogger } from "fastify";
import type { PostgresClient, Queryable } from "../../kit";
import { executeWith } from "../../kit/datastores/postgres";
import type { ExecutionMsg } from "../../trading/events";
import { enqueue, outboxInsert, outboxInsertStatement, type Enqueued, type OutboxEvent } from "../../trading/infra/outbox";
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

/** What a batch writes: the new fills, the orders it changed, their events, and each new fill's latency from its order's creation. */
interface ExecutionWrites {
  fills: data.FillRow[];
  orders: data.OrderRow[];
  events: OutboxEvent[];
  fillLatencySeconds: number[];
}

/**
 * The batch applied in memory to its locked orders (`orders`, as read at `now`), in offset order:
 * a fill of an unknown order is ignored (logged), one recorded already or earlier in the batch is a
 * duplicate delivery (skipped); the others are recorded, whatever the state machine says of them.
 */
export function decideExecutions(msgs: ExecutionMsg[], orders: Map<string, data.OrderRow>, recorded: Set<string>, now: Date, log: FastifyBaseLogger): ExecutionWrites {
  const fresh: data.FillRow[] = [];
  const seen = new Set(recorded);
  for (const m of msgs) {
    if (m.type !== "fill") continue;
    const f = m.fill;
    if (!orders.has(f.orderId)) log.warn({ fillId: f.fillId, orderId: f.orderId }, "fill for an unknown order ignored");
    else if (!seen.has(f.fillId)) {
      seen.add(f.fillId);
      fresh.push(f);
    }
  }
  const isFresh = new Set(fresh.map((f) => f.fillId));
  const events: OutboxEvent[] = [];
  const changed = new Set<string>();
  const latencies: number[] = [];
  for (const m of msgs) {
    const cur = orders.get(orderIdOf(m));
    if (!cur) continue;
    if (m.type === "fill") {
      const f = m.fill;
      if (!isFresh.delete(f.fillId)) continue; // duplicate delivery
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
  return { fills: fresh, orders: [...changed].map((id) => orders.get(id)!), events, fillLatencySeconds: latencies };
}

const fillIdsOf = (msgs: ExecutionMsg[]) => [...new Set(msgs.flatMap((m) => (m.type === "fill" ? [m.fill.fillId] : [])))];

/** The batch in a transaction of the caller's, a statement at a time. */
export async function applyExecutions(c: Queryable, msgs: ExecutionMsg[], log: FastifyBaseLogger): Promise<ExecutionsOutcome> {
  const { orders, now } = await data.lockOrders(c, [...new Set(msgs.map(orderIdOf))]);
  const w = decideExecutions(msgs, orders, await data.recordedFills(c, fillIdsOf(msgs)), now, log);
  await data.insertFills(c, w.fills);
  await data.updateOrders(c, w.orders);
  const enqueued = await enqueue(c, "om_outbox", w.events);
  return { changed: w.orders.length, enqueued, fillLatencySeconds: w.fillLatencySeconds };
}

/** What applyExecutionsBatch's transaction prepares on its connection. */
export const EXECUTIONS_PREPARED = [data.LOCK_ORDERS, data.RECORDED_FILLS, data.INSERT_FILLS, data.UPDATE_ORDERS, outboxInsertStatement("om_outbox")];

/** The batch in a transaction of its own, in two round trips: the lock and the read with BEGIN, the writes with COMMIT. */
export async function applyExecutionsBatch(pg: PostgresClient, msgs: ExecutionMsg[], log: FastifyBaseLogger): Promise<ExecutionsOutcome> {
  const begin = data.lockOrdersStatements([...new Set(msgs.map(orderIdOf))], fillIdsOf(msgs));
  return pg.transaction(async (_tx, _last, [lockedRows, recordedRows], commitWith) => {
    const { orders, now } = data.lockedOrders(lockedRows as (data.OrderRow & { tx_now: Date })[]);
    const w = decideExecutions(msgs, orders, new Set(recordedRows.map((r) => String(r.fill_id))), now, log);
    const insert = w.events.length ? outboxInsert("om_outbox", w.events) : undefined;
    const writes = [...data.fillWritesStatements(w.fills, w.orders), ...(insert ? [executeWith(outboxInsertStatement("om_outbox"), insert.params)] : [])];
    // Nothing to write (a redelivered batch): the kit sends COMMIT alone.
    const rows = writes.length ? await commitWith(writes.join(";\n")) : [];
    return { changed: w.orders.length, enqueued: insert?.enqueued(rows as { id: string; event_id: string }[]), fillLatencySeconds: w.fillLatencySeconds };
  }, { begin: begin.join(";\n"), prepared: EXECUTIONS_PREPARED });
}
