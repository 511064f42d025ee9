/**
 * Applies `trading.executions` (fills and exchange outcomes) to orders. Idempotent: a fill id is
 * recorded once, transitions are guarded, so a redelivered batch changes nothing.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Queryable } from "../../kit";
import type { ExecutionMsg } from "../../trading/events";
import { enqueue } from "../../trading/infra/outbox";
import { canTransition, type OrderStatus } from "../../trading/orderState";
import * as data from "./data";
import { fillTotals, orderEvent } from "./domain";

/** Applies one execution message inside the caller's transaction; true when an order changed. */
export async function applyExecution(c: Queryable, msg: ExecutionMsg, log: FastifyBaseLogger): Promise<boolean> {
  if (msg.type === "fill") {
    const f = msg.fill;
    const cur = await data.findOrder(c, f.orderId, true);
    if (!cur) {
      log.warn({ fillId: f.fillId, orderId: f.orderId }, "fill for an unknown order ignored");
      return false;
    }
    if (!(await data.insertFill(c, f))) return false; // duplicate delivery
    const t = fillTotals(cur, f);
    if (t.statusKept) log.warn({ orderId: cur.order_id, from: cur.status, to: t.next, fillId: f.fillId }, "fill for an order in a state that does not allow it; quantities recorded, status kept");
    const upd = await data.applyFillTotals(c, cur.order_id, { filled: t.filled, avgPrice: t.avgPrice, fee: f.fee, status: t.status });
    if (!t.statusKept) await enqueue(c, "om_outbox", [orderEvent(upd, t.next === "partially_filled" ? `:${f.fillId}` : "")]);
    return true;
  }
  const cur = await data.findOrder(c, msg.orderId, true);
  if (!cur) return false;
  const next: OrderStatus = msg.type === "order.expired" ? "expired" : "rejected";
  if (!canTransition(cur.status, next)) return false; // already terminal (or duplicate)
  const upd = await data.setTerminal(c, cur.order_id, next, msg.reason);
  await enqueue(c, "om_outbox", [orderEvent(upd)]);
  return true;
}
