/**
 * order-management's data access: every SQL statement on `om_orders` and `om_order_fills`
 * (migrations in src/migrations/postgres). Functions take the pool or a transaction's client.
 */
import { cursorPage, type Queryable } from "../../kit";
import { executeStatement, executeWith, parameterLiteral, textArrayLiteral, type CommitWith, type PreparedStatement } from "../../kit/datastores/postgres";
import { enqueueAndCommit, outboxInsert, type Enqueued, type OutboxEvent } from "../../trading/infra/outbox";
import type { OrderStatus } from "../../trading/orderState";
import { pairKey } from "./domain";

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
  lastPrice: string | null;
}

/** One order; `forUpdate` locks it for the rest of the transaction. */
export async function findOrder(db: Queryable, orderId: string, forUpdate = false): Promise<OrderRow | undefined> {
  return (await db.query<OrderRow>(`SELECT * FROM om_orders WHERE order_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [orderId])).rows[0];
}

const BY_IDEMPOTENCY_KEYS = "SELECT o.* FROM om_orders o JOIN unnest($1::text[], $2::text[]) AS k(u, key) ON o.user_id = k.u AND o.idempotency_key = k.key";

/** idempotencyKeysStatement's statement, prepared on the connection (`PostgresClient.transaction`'s `prepared`). */
export const ORDERS_BY_IDEMPOTENCY_KEYS: PreparedStatement = { name: "om_orders_by_idempotency_keys", params: ["text[]", "text[]"], text: BY_IDEMPOTENCY_KEYS };

/**
 * findByIdempotencyKeys as a statement of literals (quoted with escapeLiteral; EXECUTE of
 * ORDERS_BY_IDEMPOTENCY_KEYS, which the transaction must have prepared), to send in the round trip
 * of BEGIN; undefined when there are no keys. Its rows are om_orders rows as findByIdempotencyKeys
 * answers them.
 */
export function idempotencyKeysStatement(keys: { userId: string; key: string }[]): string | undefined {
  if (keys.length === 0) return undefined;
  return executeStatement(ORDERS_BY_IDEMPOTENCY_KEYS, [textArrayLiteral(keys.map((k) => k.userId)), textArrayLiteral(keys.map((k) => k.key))]);
}

/** The orders already stored under these (user, Idempotency-Key) pairs. */
export async function findByIdempotencyKeys(db: Queryable, keys: { userId: string; key: string }[]): Promise<OrderRow[]> {
  if (keys.length === 0) return [];
  const { rows } = await db.query<OrderRow>(BY_IDEMPOTENCY_KEYS, [keys.map((k) => k.userId), keys.map((k) => k.key)]);
  return rows;
}

/**
 * The rows insertOrders stores, as om_orders will hold them: nothing filled yet, created and updated
 * at `txNow`, the inserting transaction's now() (the columns' default). Decimals are kept as given
 * (snapshot() writes every decimal in canonical form, as it does those read back from the table).
 */
export function newOrderRows(orders: NewOrder[], txNow: Date): OrderRow[] {
  return orders.map((o) => ({
    order_id: o.orderId, user_id: o.userId, client_order_id: o.clientOrderId, idempotency_key: o.idempotencyKey, request_hash: o.requestHash,
    symbol: o.symbol, side: o.side, type: o.type, time_in_force: o.timeInForce, quantity: o.quantity, limit_price: o.limitPrice, status: o.status,
    filled_quantity: "0", avg_fill_price: null, fees: "0", reject_reason: o.rejectReason, reject_message: o.rejectMessage, last_price: o.lastPrice,
    created_at: txNow, updated_at: txNow,
  }));
}

/**
 * The insert of orders and their events in om_outbox in one statement (the events are built from
 * newOrderRows, not read back); a duplicate (user, idempotency key) raises pg error 23505 and inserts
 * nothing. insertOrdersAndCommit's, prepared on the connection (`PostgresClient.transaction`'s `prepared`).
 */
export const INSERT_ORDERS: PreparedStatement = {
  name: "om_insert_orders",
  params: ["uuid[]", ...Array<string>(8).fill("text[]"), "numeric[]", "numeric[]", "text[]", "text[]", "text[]", "numeric[]", "text[]", "text[]", "text[]", "jsonb[]"],
  text: `WITH inserted AS (
       INSERT INTO om_orders (order_id, user_id, client_order_id, idempotency_key, request_hash, symbol, side, type, time_in_force,
                              quantity, limit_price, status, reject_reason, reject_message, last_price)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                            $10::numeric[], $11::numeric[], $12::text[], $13::text[], $14::text[], $15::numeric[]))
     ${outboxInsert("om_outbox", [], 16).sql}`,
};

/**
 * Inserts the orders and enqueues `events` (INSERT_ORDERS) as the transaction's last statement, sent
 * with `before` (statements without parameters, if any) and COMMIT in one round trip (the kit's `commitWith`;
 * INSERT_ORDERS and the om_outbox insert among the transaction's `prepared`). Answers the om_outbox
 * rows inserted (for the relay). With nothing to write nothing is sent: the helper commits.
 */
export async function insertOrdersAndCommit(commitWith: CommitWith, orders: NewOrder[], events: OutboxEvent[], before?: string): Promise<Enqueued | undefined> {
  if (orders.length === 0) return enqueueAndCommit(commitWith, "om_outbox", events);
  const col = <K extends keyof NewOrder>(k: K) => orders.map((o) => o[k]);
  const outbox = outboxInsert("om_outbox", events, 16);
  const params = [col("orderId"), col("userId"), col("clientOrderId"), col("idempotencyKey"), col("requestHash"), col("symbol"), col("side"), col("type"), col("timeInForce"),
    col("quantity"), col("limitPrice"), col("status"), col("rejectReason"), col("rejectMessage"), col("lastPrice"), ...outbox.params];
  const insert = executeWith(INSERT_ORDERS, params);
  const rows = await commitWith(before === undefined ? insert : `${before};\n${insert}`);
  return outbox.enqueued(rows as { id: string; event_id: string }[]);
}

/**
 * The user's orders, newest first, optionally of one status and/or the one stored under an
 * Idempotency-Key, at most `limit`, older than the user's order `before` when given. Ordered by
 * (created_at, order_id), both descending: the orders of one group-committed batch share a
 * created_at, so the order id keeps a page boundary among them from repeating or skipping one.
 * Compared in SQL (created_at keeps microseconds a JavaScript Date would lose). Read by
 * om_orders_user_created_id, or om_orders_user_status_created_id with a status (migration 0466).
 */
export async function listOrders(
  db: Queryable,
  userId: string,
  filter: { status: OrderStatus | null; idempotencyKey: string | null; before: string | null },
  limit: number,
): Promise<OrderRow[] | undefined> {
  return cursorPage<OrderRow>(db, {
    cursor: "SELECT c.created_at, c.order_id FROM om_orders c WHERE c.order_id = $4 AND c.user_id = $1",
    page: `SELECT * FROM om_orders WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR idempotency_key = $3)
              AND ($4::uuid IS NULL OR (created_at, order_id) < (SELECT * FROM before_row))`,
    order: "created_at DESC, order_id DESC",
    limit,
    values: [userId, filter.status, filter.idempotencyKey, filter.before],
    given: filter.before !== null,
  });
}

export async function setStatus(db: Queryable, orderId: string, status: OrderStatus): Promise<OrderRow> {
  return (await db.query<OrderRow>(`UPDATE om_orders SET status = $2, updated_at = now() WHERE order_id = $1 RETURNING *`, [orderId, status])).rows[0];
}

/** The batch's orders locked in order-id order, with the transaction's now() (lockOrdersStatement's text, parameterised). */
const LOCK_ORDERS = (ids: string) => `SELECT *, now() AS tx_now FROM om_orders WHERE order_id = ANY(${ids}::uuid[]) ORDER BY order_id FOR UPDATE`;

/** lockOrders as a statement of literals (the array as its parameter's text: parameterLiteral), to travel with BEGIN (`transaction`'s `begin`); its rows: lockedOrdersOf. */
export const lockOrdersStatement = (orderIds: string[]): string => LOCK_ORDERS(parameterLiteral(orderIds));

/** The rows of lockOrders' statement (or lockOrdersStatement's) by order id, and the transaction's now(). */
export function lockedOrdersOf(rows: unknown[]): { orders: Map<string, OrderRow>; now: Date } {
  const locked = rows as (OrderRow & { tx_now: Date })[];
  return { orders: new Map(locked.map(({ tx_now: _, ...r }) => [r.order_id, r])), now: locked[0]?.tx_now ?? new Date() };
}

/** Locks the orders (in order-id order: concurrent lockers never deadlock) and reads them, with the transaction's timestamp. */
export async function lockOrders(db: Queryable, orderIds: string[]): Promise<{ orders: Map<string, OrderRow>; now: Date }> {
  return lockedOrdersOf((await db.query(LOCK_ORDERS("$1"), [orderIds])).rows);
}

/** Records fills once, in one statement; returns the ids not recorded before (a duplicate delivery is left out). */
export async function insertFills(db: Queryable, fills: { fillId: string; orderId: string; quantity: string; price: string; fee: string }[]): Promise<Set<string>> {
  if (fills.length === 0) return new Set();
  const ins = await db.query<{ fill_id: string }>(
    `INSERT INTO om_order_fills (fill_id, order_id, quantity, price, fee)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::numeric[], $4::numeric[], $5::numeric[]) ON CONFLICT DO NOTHING RETURNING fill_id`,
    [fills.map((f) => f.fillId), fills.map((f) => f.orderId), fills.map((f) => f.quantity), fills.map((f) => f.price), fills.map((f) => f.fee)],
  );
  return new Set(ins.rows.map((r) => r.fill_id));
}

/**
 * The UPDATE writing the orders' fill totals, status and reject reason in one statement (updated_at:
 * the transaction's now()), written with literals (kit parameterLiteral) so that it can share a round
 * trip (applyExecutions: with the outbox insert and COMMIT).
 */
export function updateOrdersStatement(rows: OrderRow[]): string {
  const [ids, filled, avg, fees, status, reason] = [rows.map((r) => r.order_id), rows.map((r) => r.filled_quantity), rows.map((r) => r.avg_fill_price), rows.map((r) => r.fees), rows.map((r) => r.status), rows.map((r) => r.reject_reason)].map(parameterLiteral);
  return `UPDATE om_orders o SET filled_quantity = r.filled, avg_fill_price = r.avg, fees = r.fees, status = r.status, reject_reason = r.reason, updated_at = now()
       FROM unnest(${ids}::uuid[], ${filled}::numeric[], ${avg}::numeric[], ${fees}::numeric[], ${status}::text[], ${reason}::text[]) AS r(order_id, filled, avg, fees, status, reason)
      WHERE o.order_id = r.order_id`;
}

/**
 * A scope of the kill switch that is not `active`, as recorded (risk-analyzer's trading_states), with
 * the reason of its last change; or a deleted account (`deleted`: user-management's tombstone), whose
 * user scope is halted for good.
 */
export interface RestrictedScope {
  scope: string;
  state: "reduce_only" | "halted";
  reason: string | null;
  deleted?: boolean;
}

/**
 * The recorded scopes whose state is not `active` (a handful of rows; none in normal operation), then
 * the deleted accounts that still have open orders (the tombstones are kept, so only those with open
 * orders are read: one probe of om_orders_open per tombstone).
 */
export async function restrictedScopes(db: Queryable): Promise<RestrictedScope[]> {
  const { rows } = await db.query<{ scope: string; state: string; reason: string | null; deleted: boolean }>(
    `SELECT * FROM (SELECT s.scope, s.state, (SELECT c.reason FROM trading_state_changes c WHERE c.scope = s.scope ORDER BY c.id DESC LIMIT 1) AS reason, false AS deleted
       FROM trading_states s WHERE s.state <> 'active' ORDER BY s.scope) AS recorded
     UNION ALL
     SELECT 'user:' || d.user_id, 'halted', 'account deleted', true FROM deleted_users d
      WHERE EXISTS (SELECT 1 FROM om_orders o WHERE o.user_id = d.user_id AND o.status IN ('accepted', 'partially_filled', 'pending_cancel'))`,
  );
  // Anything but the two restrictive states would not be here; an unknown value is read as halted (tradingState.ts).
  return rows.map((r) => ({ scope: r.scope, state: r.state === "reduce_only" ? "reduce_only" : "halted", reason: r.reason, ...(r.deleted ? { deleted: true } : {}) }));
}

/**
 * The open orders (accepted, partially filled, pending cancel) of these users, or of every user
 * (`null`), oldest first per user and symbol; `lock` locks them (in order-id order, as lockOrders).
 */
export async function openOrdersOf(db: Queryable, userIds: string[] | null, lock: boolean): Promise<OrderRow[]> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM om_orders WHERE status IN ('accepted', 'partially_filled', 'pending_cancel') AND ($1::text[] IS NULL OR user_id = ANY($1::text[]))
      ORDER BY ${lock ? "order_id FOR UPDATE" : "created_at, order_id"}`,
    [userIds],
  );
  return lock ? rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.order_id < b.order_id ? -1 : 1)) : rows;
}

/** The positions (om_positions: signed filled quantity) of these users, or of every user (`null`), keyed by pairKey(user, symbol). */
export async function positionsOf(db: Queryable, userIds: string[] | null): Promise<Map<string, string>> {
  const { rows } = await db.query<{ user_id: string; symbol: string; quantity: string }>(
    "SELECT user_id, symbol, quantity::text AS quantity FROM om_positions WHERE $1::text[] IS NULL OR user_id = ANY($1::text[])",
    [userIds],
  );
  return new Map(rows.map((r) => [pairKey(r.user_id, r.symbol), r.quantity]));
}

/**
 * Requests the cancel of these orders (locked by the caller, their transition checked) with the
 * reason recorded on the order (reject_reason / reject_message, kept once the engine confirms).
 */
export async function requestCancels(db: Queryable, cancels: { orderId: string; reason: string; message: string }[]): Promise<OrderRow[]> {
  if (cancels.length === 0) return [];
  const { rows } = await db.query<OrderRow>(
    `UPDATE om_orders o SET status = 'pending_cancel', reject_reason = c.reason, reject_message = c.message, updated_at = now()
       FROM unnest($1::uuid[], $2::text[], $3::text[]) AS c(order_id, reason, message)
      WHERE o.order_id = c.order_id AND o.status IN ('accepted', 'partially_filled') RETURNING o.*`,
    [cancels.map((c) => c.orderId), cancels.map((c) => c.reason), cancels.map((c) => c.message)],
  );
  return rows;
}
