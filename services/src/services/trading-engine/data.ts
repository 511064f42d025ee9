/**
 * trading-engine's data access: every SQL statement on `te_orders`, `te_fills` and `te_last_bar`
 * (migrations in src/migrations/postgres). Functions take the pool or a transaction's client.
 */
import { ANY_CASE_UUID_RE, type Queryable } from "../../kit";
import { executeStatement, type PreparedStatement } from "../../kit/datastores/postgres";
import type { ExecutionReport } from "../../trading/paperExchange";
import type { Bar, Fill, OrderRequest } from "../../trading/types";

/**
 * te_orders.status: where the engine is with an order. `held`: received while the kill switch
 * forbade its fill (its owner halted, or under reduce_only and the order would not shrink the
 * position), neither executed nor sent to Binance; executed when a batch finds it may fill, or
 * cancelled like a resting order.
 */
export type EngineOrderStatus = "resting" | "held" | "filled" | "partially_filled" | "expired" | "rejected" | "cancelled";

export interface EngineOrderRow {
  order: OrderRequest;
  status: EngineOrderStatus;
  remaining: string;
  fillSeq: number;
}

export async function loadLastBars(db: Queryable): Promise<Bar[]> {
  return (await db.query<{ bar: Bar }>("SELECT bar FROM te_last_bar")).rows.map((r) => r.bar);
}

export async function loadResting(db: Queryable): Promise<{ order: OrderRequest; remaining: string; fillSeq: number }[]> {
  const { rows } = await db.query<{ payload: OrderRequest; remaining: string; fill_seq: number }>(
    "SELECT payload, remaining::text AS remaining, fill_seq FROM te_orders WHERE status = 'resting' ORDER BY created_at, order_id",
  );
  return rows.map((r) => ({ order: r.payload, remaining: r.remaining, fillSeq: r.fill_seq }));
}

/** The orders held by the kill switch (status `held`), oldest first. */
export async function loadHeld(db: Queryable): Promise<OrderRequest[]> {
  return (await db.query<{ payload: OrderRequest }>("SELECT payload FROM te_orders WHERE status = 'held' ORDER BY created_at, order_id")).rows.map((r) => r.payload);
}

/** Held orders about to be executed: their `held` rows go, the execution records them again (one statement); answers the ids of the rows that went. */
export async function deleteHeld(db: Queryable, orderIds: string[]): Promise<Set<string>> {
  if (orderIds.length === 0) return new Set();
  const { rows } = await db.query<{ order_id: string }>("DELETE FROM te_orders WHERE order_id = ANY($1::uuid[]) AND status = 'held' RETURNING order_id::text", [orderIds]);
  return new Set(rows.map((r) => r.order_id));
}

/** The ones of `orderIds` the engine has already recorded (executed, held or cancelled). */
export async function knownOrderIds(db: Queryable, orderIds: string[]): Promise<Set<string>> {
  if (orderIds.length === 0) return new Set();
  const { rows } = await db.query<{ order_id: string }>("SELECT order_id FROM te_orders WHERE order_id = ANY($1::uuid[])", [orderIds]);
  return new Set(rows.map((r) => r.order_id));
}

/**
 * The halted and reduce_only scopes (halts.ts haltsStatements), prepared on the connection; with
 * them, as halted user scopes, the deleted accounts (user-management's deleted_users tombstones)
 * among the batch's order owners ($1, canonical ids): a primary-key probe per owner in the same
 * statement, so no round trip more on the order path.
 */
export const STRICT_SCOPES: PreparedStatement = {
  name: "te_strict_scopes",
  params: ["text[]"],
  text: "SELECT scope, state FROM trading_states WHERE state IN ('halted', 'reduce_only') UNION ALL SELECT 'user:' || user_id, 'halted' FROM deleted_users WHERE user_id = ANY($1)",
};

/** knownOrderIdsStatement's statement, prepared on the connection (the kit's `transaction(fn, { prepared })`). */
export const KNOWN_ORDER_IDS: PreparedStatement = { name: "te_known_order_ids", params: ["uuid[]"], text: "SELECT order_id FROM te_orders WHERE order_id = ANY($1)" };

/**
 * knownOrderIds as a statement of literals (EXECUTE of KNOWN_ORDER_IDS, which the transaction must
 * have prepared), to travel with the batch's BEGIN (one round trip less on the order path: the kit's
 * `transaction(fn, { begin })`); undefined when there is nothing to ask or an id is not a plain UUID
 * (only those are written into SQL; the caller then asks with a parameter, and PostgreSQL refuses
 * what is not a UUID as before).
 */
export function knownOrderIdsStatement(orderIds: string[]): string | undefined {
  if (orderIds.length === 0 || !orderIds.every((id) => ANY_CASE_UUID_RE.test(id))) return undefined;
  return executeStatement(KNOWN_ORDER_IDS, [`'{${orderIds.join(",")}}'::uuid[]`]);
}

export async function orderStatus(db: Queryable, orderId: string): Promise<EngineOrderStatus | undefined> {
  return (await db.query<{ status: EngineOrderStatus }>("SELECT status FROM te_orders WHERE order_id = $1 FOR UPDATE", [orderId])).rows[0]?.status;
}

/** The te_orders insert of insertOrders, insertNewOrders and insertOrdersAndFills: parameters $1-$5 (orderColumns); a known order id is left as it is. */
const INSERT_ORDERS = `INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq)
     SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::numeric[], $5::int[]) ON CONFLICT DO NOTHING`;
export const orderColumns = (rows: EngineOrderRow[]) => [rows.map((r) => r.order.orderId), rows.map((r) => JSON.stringify(r.order)), rows.map((r) => r.status), rows.map((r) => r.remaining), rows.map((r) => r.fillSeq)];

/** Records executed (or cancelled-before-execution) orders in one statement; a known order id is left as it is. */
export async function insertOrders(db: Queryable, rows: EngineOrderRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(INSERT_ORDERS, orderColumns(rows));
}

/** insertOrders answering the ids it inserted: a claim (an order a batch recorded first is not among them; the same lock as that batch's insert). */
export async function insertNewOrders(db: Queryable, rows: EngineOrderRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const r = await db.query<{ order_id: string }>(`${INSERT_ORDERS} RETURNING order_id::text`, orderColumns(rows));
  return new Set(r.rows.map((x) => x.order_id));
}

/** te_fills' columns as parameters (fill_id, order_id, payload). */
export const fillColumns = (fills: Fill[]) => [fills.map((f) => f.fillId), fills.map((f) => f.orderId), fills.map((f) => JSON.stringify(f))];

/**
 * insertOrders and insertFills as one statement (one round trip less on the order path); returns
 * the ids of the fills that were not recorded before.
 */
export async function insertOrdersAndFills(db: Queryable, rows: EngineOrderRow[], fills: Fill[]): Promise<Set<string>> {
  if (rows.length === 0) return insertFills(db, fills);
  if (fills.length === 0) return insertOrders(db, rows).then(() => new Set());
  const ins = await db.query<{ fill_id: string }>(
    `WITH orders AS (${INSERT_ORDERS})
     INSERT INTO te_fills (fill_id, order_id, payload) SELECT * FROM unnest($6::text[], $7::uuid[], $8::jsonb[]) ON CONFLICT DO NOTHING RETURNING fill_id`,
    [...orderColumns(rows), ...fillColumns(fills)],
  );
  return new Set(ins.rows.map((r) => r.fill_id));
}

/**
 * A batch's last writes, sent with its COMMIT (BatchWork.commit; a round trip less on the order
 * path than insertOrdersAndFills and then the outbox insert with COMMIT): the orders and fills not
 * yet written, and the events, a fill's only when its fill is new (a redelivery's fills, already
 * recorded, produce no event), in the order given. Parameters: orderColumns ($1-$5), fillColumns
 * ($6-$8), outboxInsert's for te_outbox ($9-$12), and each event's fill id or NULL ($13).
 */
export const FINAL_WRITES: PreparedStatement = {
  name: "te_final_writes",
  params: ["uuid[]", "jsonb[]", "text[]", "numeric[]", "int[]", "text[]", "uuid[]", "jsonb[]", "text[]", "text[]", "text[]", "jsonb[]", "text[]"],
  text: `WITH orders AS (${INSERT_ORDERS}),
     fills AS (INSERT INTO te_fills (fill_id, order_id, payload) SELECT * FROM unnest($6::text[], $7::uuid[], $8::jsonb[]) ON CONFLICT DO NOTHING RETURNING fill_id)
     INSERT INTO te_outbox (event_id, topic, msg_key, payload)
     SELECT e.event_id, e.topic, e.msg_key, e.payload
       FROM unnest($9::text[], $10::text[], $11::text[], $12::jsonb[], $13::text[]) WITH ORDINALITY AS e(event_id, topic, msg_key, payload, fill_id, n)
      WHERE e.fill_id IS NULL OR e.fill_id IN (SELECT fill_id FROM fills) ORDER BY e.n
     ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id`,
};

/** What a batch transaction prepares (the kit's `transaction(fn, { prepared })`): its BEGIN's statements and the last writes sent with COMMIT. */
export const BATCH_PREPARED = [STRICT_SCOPES, KNOWN_ORDER_IDS, FINAL_WRITES];

/** Inserts fills in one statement; returns the ids that were not recorded before. */
export async function insertFills(db: Queryable, fills: Fill[]): Promise<Set<string>> {
  if (fills.length === 0) return new Set();
  const ins = await db.query<{ fill_id: string }>(
    "INSERT INTO te_fills (fill_id, order_id, payload) SELECT * FROM unnest($1::text[], $2::uuid[], $3::jsonb[]) ON CONFLICT DO NOTHING RETURNING fill_id",
    [fills.map((f) => f.fillId), fills.map((f) => f.orderId), fills.map((f) => JSON.stringify(f))],
  );
  return new Set(ins.rows.map((r) => r.fill_id));
}

/** A resting (or held) order leaves the book; undefined when it was neither (filled, expired, already cancelled). */
export async function cancelResting(db: Queryable, orderId: string): Promise<{ remaining: string } | undefined> {
  const r = await db.query<{ remaining: string }>(
    "UPDATE te_orders SET status = 'cancelled', updated_at = now() WHERE order_id = $1 AND status IN ('resting', 'held') RETURNING remaining::text AS remaining",
    [orderId],
  );
  return r.rows[0];
}

/** The state of resting orders after a bar filled them (in one statement). */
export async function applyBarReports(db: Queryable, reports: ExecutionReport[]): Promise<void> {
  if (reports.length === 0) return;
  await db.query(
    `UPDATE te_orders o SET status = r.status, remaining = r.remaining, fill_seq = o.fill_seq + r.n, updated_at = now()
       FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::int[]) AS r(order_id, status, remaining, n)
      WHERE o.order_id = r.order_id`,
    [reports.map((r) => r.orderId), reports.map((r) => (r.status === "filled" ? "filled" : "resting")), reports.map((r) => r.remaining), reports.map((r) => r.fills.length)],
  );
}

/**
 * Live: cancel requests about to be sent to Binance for these orders, recorded in autocommit before
 * the batch begins (`db` the pool), in one statement: on a resting order's row (migration 0399), so
 * a poll after a process killed before the batch's COMMIT still knows the cancel was the platform's;
 * and on the te_live_sends record of one an uncommitted attempt may have sent, or this batch may
 * send before its cancel (migration 0401), so the attempt that looks it up at Binance and finds it
 * CANCELED knows it too (liveSends.ts recordLiveSends `cancelSent`).
 */
export async function markCancelSent(db: Queryable, orderIds: string[]): Promise<void> {
  if (orderIds.length === 0) return;
  await db.query(
    `WITH resting AS (UPDATE te_orders SET cancel_sent_at = coalesce(cancel_sent_at, now()) WHERE order_id = ANY($1::uuid[]) AND status = 'resting')
     UPDATE te_live_sends SET cancel_sent_at = coalesce(cancel_sent_at, now()) WHERE order_id = ANY($1::uuid[])`,
    [orderIds],
  );
}

/**
 * What Binance says of resting live orders (in one statement): their status, what is left, and how
 * many fills were recorded for them now. Only a resting order changes (one already finished stays);
 * returns the status written, by order id, of the orders changed. `polled`: Binance's CANCELED is
 * written `cancelled` only for an order whose cancel was sent (markCancelSent), else `expired` (it
 * ended at Binance without a request of ours); a cancel's own answer is written as given.
 */
export async function updateLiveOrders(
  db: Queryable,
  rows: { orderId: string; status: EngineOrderStatus; remaining: string; newFills: number }[],
  { polled }: { polled: boolean },
): Promise<Map<string, EngineOrderStatus>> {
  if (rows.length === 0) return new Map();
  const r = await db.query<{ order_id: string; status: EngineOrderStatus }>(
    `UPDATE te_orders o SET status = CASE WHEN $5 AND r.status = 'cancelled' AND o.cancel_sent_at IS NULL THEN 'expired' ELSE r.status END,
            remaining = r.remaining, fill_seq = o.fill_seq + r.n, updated_at = now()
       FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::int[]) AS r(order_id, status, remaining, n)
      WHERE o.order_id = r.order_id AND o.status IN ('resting', 'held') RETURNING o.order_id, o.status`,
    [rows.map((x) => x.orderId), rows.map((x) => x.status), rows.map((x) => x.remaining), rows.map((x) => x.newFills), polled],
  );
  return new Map(r.rows.map((x) => [x.order_id, x.status]));
}

/**
 * The positions (te_positions: signed quantity the engine's fills made) of these owners in these
 * symbols, their rows locked for the transaction in key order (a pair with no row is flat: no fill yet).
 */
export async function positionsFor(db: Queryable, pairs: { userId: string; symbol: string }[]): Promise<{ userId: string; symbol: string; quantity: string }[]> {
  if (pairs.length === 0) return [];
  const r = await db.query<{ user_id: string; symbol: string; quantity: string }>(
    `SELECT p.user_id, p.symbol, p.quantity::text AS quantity FROM te_positions p
       JOIN unnest($1::text[], $2::text[]) AS k(user_id, symbol) ON p.user_id = k.user_id AND p.symbol = k.symbol
      ORDER BY p.user_id, p.symbol FOR UPDATE OF p`,
    [pairs.map((x) => x.userId), pairs.map((x) => x.symbol)],
  );
  return r.rows.map((x) => ({ userId: x.user_id, symbol: x.symbol, quantity: x.quantity }));
}

/** Open time of the last bar processed per symbol, for the symbols that have one (locked for the transaction, in symbol order). */
export async function lastBarOpenTimes(db: Queryable, symbols: string[]): Promise<Map<string, number>> {
  if (symbols.length === 0) return new Map();
  const r = await db.query<{ symbol: string; open_time: string }>("SELECT symbol, open_time FROM te_last_bar WHERE symbol = ANY($1::text[]) ORDER BY symbol FOR UPDATE", [symbols]);
  return new Map(r.rows.map((x) => [x.symbol, Number(x.open_time)]));
}

/** The newest bar per symbol, in one statement. */
export async function saveLastBars(db: Queryable, bars: Bar[]): Promise<void> {
  if (bars.length === 0) return;
  await db.query(
    `INSERT INTO te_last_bar (symbol, open_time, bar) SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[])
     ON CONFLICT (symbol) DO UPDATE SET open_time = EXCLUDED.open_time, bar = EXCLUDED.bar`,
    [bars.map((b) => b.symbol), bars.map((b) => b.openTime), bars.map((b) => JSON.stringify(b))],
  );
}
