/**
 * trading-engine's record of the live orders a batch may send to Binance (te_live_sends, migration
 * 0200). Binance is called inside the batch transaction, so that transaction cannot remember a send:
 * a process killed after Binance accepted (or filled) an order and before the COMMIT would place the
 * redelivered order again. The record is written in autocommit before the batch begins and deleted
 * by the batch transaction that records the orders in te_orders (or, for a batch that failed for
 * good, by the transaction that records its sent orders alone: sentOrders.ts); an order still
 * recorded may be at Binance, and is looked up there (by client order id) before it is sent.
 */
import type { Queryable } from "../../kit";

/**
 * Records that these orders may be sent now, in one autocommit statement (`db` is the pool, never
 * the batch's transaction); answers the ones recorded before, by an attempt that never committed
 * (a batch that failed in this process, or one killed since), spelled as given.
 */
export async function recordLiveSends(db: Queryable, orderIds: string[]): Promise<Set<string>> {
  if (orderIds.length === 0) return new Set();
  // Every part of the statement reads the same snapshot: `before` does not see what `recorded` inserts.
  const { rows } = await db.query<{ id: string }>(
    `WITH ids AS (SELECT DISTINCT id FROM unnest($1::text[]) AS id),
          before AS (SELECT order_id FROM te_live_sends WHERE order_id IN (SELECT id::uuid FROM ids)),
          recorded AS (INSERT INTO te_live_sends (order_id) SELECT id::uuid FROM ids ON CONFLICT DO NOTHING)
     SELECT id FROM ids WHERE id::uuid IN (SELECT order_id FROM before)`,
    [orderIds],
  );
  return new Set(rows.map((r) => r.id));
}

/** The batch transaction recorded these orders in te_orders: a redelivery is recognised there now. */
export async function forgetLiveSends(tx: Queryable, orderIds: string[]): Promise<void> {
  if (orderIds.length === 0) return;
  await tx.query("DELETE FROM te_live_sends WHERE order_id = ANY($1::text[]::uuid[])", [orderIds]);
}
