/**
 * Applies `trading.executions` (fills and exchange outcomes) to orders. Idempotent: a fill id is
 * recorded once, transitions are guarded, so a redelivered batch changes nothing.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Queryable } from "../../kit";
import type { ExecutionMsg } from "../../trading/events";
import { enqueue } from "../../trading/infra/outbox";
import { nextStatus, type OrderEvent } from "../../trading/orderState";
import * as data from "./data";
import { fillTotals, orderEvent } from "./domain";
import { fillLatencySeconds } from "./metrics";

const OUTCOME_EVENTS: Record<Exclude<ExecutionMsg["type"], "fill">, OrderEvent> = {
  "order.expired": "expire",
  "order.rejected": "exchange_reject",
  "order.cancelled": "cancel_confirm",
};

/** What applying one execution did: whether an order changed, and for a new fill how long after its order's creation. */
export interface ExecutionOutcome {
  changed: boolean;
  fillLatencySeconds?: number;
}
const UNCHANGED: ExecutionOutcome = { changed: false };

/** Applies one execution message inside the caller's transaction. */
export async function applyExecution(c: Queryable, msg: ExecutionMsg, log: FastifyBaseLogger): Promise<ExecutionOutcome> {
  if (msg.type === "fill") {
    const f = msg.fill;
    const cur = await data.findOrder(c, f.orderId, true);
    if (!cur) {
      log.warn({ fillId: f.fillId, orderId: f.orderId }, "fill for an unknown order ignored");
      return UNCHANGED;
    }
    if (!(await data.insertFill(c, f))) return UNCHANGED; // duplicate delivery
    const t = fillTotals(cur, f);
    if (!t.allowed) log.warn({ orderId: cur.order_id, from: cur.status, event: t.event, fillId: f.fillId }, "fill for an order in a state that does not allow it; quantities recorded, status kept");
    const upd = await data.applyFillTotals(c, cur.order_id, { filled: t.filled, avgPrice: t.avgPrice, fee: f.fee, status: t.status });
    // A partial fill racing a cancel request changes quantities, not the state: no order event.
    if (t.allowed && t.status !== "pending_cancel") await enqueue(c, "om_outbox", [orderEvent(upd, t.status === "partially_filled" ? `:${f.fillId}` : "")]);
    return { changed: true, fillLatencySeconds: fillLatencySeconds(upd) };
  }
  const cur = await data.findOrder(c, msg.orderId, true);
  if (!cur) return UNCHANGED;
  const next = nextStatus(cur.status, OUTCOME_EVENTS[msg.type]);
  if (next === undefined) return UNCHANGED; // already terminal (or duplicate)
  const upd = await data.setTerminal(c, cur.order_id, next, msg.type === "order.cancelled" ? null : msg.reason);
  await enqueue(c, "om_outbox", [orderEvent(upd)]);
  return { changed: true };
}
