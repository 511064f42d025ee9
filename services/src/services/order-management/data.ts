/**
 * order-management's data access: every SQL statement on `om_orders` and `om_order_fills`
 * (migrations in src/migrations/postgres). Functions take the pool or a transaction's client.
 */
import type { Queryable } from "../../kit";
import type { DecimalLike } from "../../trading/decimal";
import type { OrderStatus } from "../../trading/orderState";

export interface OrderRow {
  order_id: string;
  user_id: string;
  client_order_id: string;
  idempotency_key: string | null;
  request_hash: string;
  symbol: string;
  side: "buy" | "sell";
  type: "market" | "limit";
  time_in_force: "GTC" | "IOC";
  quantity: string;
  limit_price: string | null;
  status: OrderStatus;
  filled_quantity: string;
  avg_fill_price: string | null;
  fees: string;
  reject_reason: string | null;
  reject_message: string | null;
  last_price: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewOrder {
  orderId: string;
  userId: string;
  clientOrderId: string;
  idempotencyKey: string | null;
  requestHash: string;
  symbol: string;
  side: "buy" | "sell";
  type: "market" | "limit";
  timeInForce: "GTC" | "IOC";
  quantity: string;
  limitPrice: string | null;
  status: OrderStatus;
  rejectReason: string | null;
  rejectMessage: string | null;
  lastPrice: DecimalLike | null;
}

/** One order; `forUpdate` locks it for the rest of the transaction. */
export async function findOrder(db: Queryable, orderId: string, forUpdate = false): Promise<OrderRow | undefined> {
  return (await db.query<OrderRow>(`SELECT * FROM om_orders WHERE order_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [orderId])).rows[0];
}

export async function findByIdempotencyKey(db: Queryable, userId: string, key: string): Promise<OrderRow | undefined> {
  return (await db.query<OrderRow>("SELECT * FROM om_orders WHERE user_id = $1 AND idempotency_key = $2", [userId, key])).rows[0];
}

/** Inserts the order; a duplicate (user, idempotency key) raises pg error 23505. */
export async function insertOrder(db: Queryable, o: NewOrder): Promise<OrderRow> {
  const ins = await db.query<OrderRow>(
    `INSERT INTO om_orders (order_id, user_id, client_order_id, idempotency_key, request_hash, symbol, side, type, time_in_force,
                            quantity, limit_price, status, reject_reason, reject_message, last_price)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING *`,
    [o.orderId, o.userId, o.clientOrderId, o.idempotencyKey, o.requestHash, o.symbol, o.side, o.type, o.timeInForce,
      o.quantity, o.limitPrice, o.status, o.rejectReason, o.rejectMessage, o.lastPrice],
  );
  return ins.rows[0];
}

/** The user's orders, newest first, optionally of one status. */
export async function listOrders(db: Queryable, userId: string, status: OrderStatus | null, limit: number): Promise<OrderRow[]> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM om_orders WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT $3`,
    [userId, status, limit],
  );
  return rows;
}

export async function setStatus(db: Queryable, orderId: string, status: OrderStatus): Promise<OrderRow> {
  return (await db.query<OrderRow>(`UPDATE om_orders SET status = $2, updated_at = now() WHERE order_id = $1 RETURNING *`, [orderId, status])).rows[0];
}

/** Records a fill once; false when this fill id was already recorded (duplicate delivery). */
export async function insertFill(db: Queryable, f: { fillId: string; orderId: string; quantity: string; price: string; fee: string }): Promise<boolean> {
  const ins = await db.query(`INSERT INTO om_order_fills (fill_id, order_id, quantity, price, fee) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, [f.fillId, f.orderId, f.quantity, f.price, f.fee]);
  return (ins.rowCount ?? 0) > 0;
}

export async function applyFillTotals(db: Queryable, orderId: string, t: { filled: string; avgPrice: string; fee: string; status: OrderStatus }): Promise<OrderRow> {
  const upd = await db.query<OrderRow>(
    `UPDATE om_orders SET filled_quantity = $2, avg_fill_price = $3, fees = fees + $4, status = $5, updated_at = now() WHERE order_id = $1 RETURNING *`,
    [orderId, t.filled, t.avgPrice, t.fee, t.status],
  );
  return upd.rows[0];
}

/** Ends the order (expired, rejected, cancelled); the first reject reason is kept. */
export async function setTerminal(db: Queryable, orderId: string, status: OrderStatus, reason: string | null): Promise<OrderRow> {
  const upd = await db.query<OrderRow>(
    `UPDATE om_orders SET status = $2, reject_reason = coalesce(reject_reason, $3), updated_at = now() WHERE order_id = $1 RETURNING *`,
    [orderId, status, reason],
  );
  return upd.rows[0];
}
