/**
 * trading-engine's record of the live orders a batch may send to Binance (te_live_sends, migrations
 * 0200 and 0398). Binance is called inside the batch transaction, so that transaction cannot remember
 * a send: a process killed after Binance accepted (or filled) an order and before the COMMIT would
 * place the redelivered order again. The record is written in autocommit before the batch begins and
 * deleted by the batch transaction that records the orders in te_orders (or, for a batch that failed
 * for good, by the transaction that records its sent orders alone: sentOrders.ts); an order still
 * recorded may be at Binance, and is looked up there (by client order id) before it is sent. An order
 * whose te_orders row cannot be written keeps its record for good, marked with what became of it at
 * Binance (`unrecorded`, markUnrecorded): deleted, a replay of its message would place it again.
 * `sent_at` (migration 0402) is the timestamp of the last placement request signed for the order
 * (recordPlacement, right before each send), NULL while none was sent: Binance may still apply that
 * request for recvWindow after it, so a lookup's -2013 is trusted only once that has passed (live.ts).
 * `venue_order` (migration 0403) is the order itself, written with each placement and with the mark:
 * what the live poll needs to ask Binance about an order that has no te_orders row (leftSent.ts).
 * `refused_at` / `refusal` (migration 0404): Binance refused for good to answer the poll about the
 * record as it stood (markRefused); the poll skips it until a placement or a mark changes the record
 * (both clear it) or a person clears it (trading-engine's admin route, refusedSends / clearRefusal).
 */
import { isUnstorableText, type Queryable } from "../../kit";
import type { OrderRequest } from "../../trading/types";
import type { UnrecordedOutcome } from "./metrics";

/**
 * The order as te_live_sends keeps it: whole, but for a user's clientOrderId jsonb cannot hold
 * (Binance knows the order by its order id; the consumer's decoding refuses such text, so only a bug
 * gets here): the record, the trace that keeps a replay from placing the order again, must be written.
 */
const venueOrderJson = (o: OrderRequest) => JSON.stringify(o.clientOrderId !== undefined && isUnstorableText(o.clientOrderId) ? { ...o, clientOrderId: undefined } : o);

/** What an earlier attempt left of the orders a batch may send: recorded ones (may be at Binance), and the unrecorded ones' outcome. */
export interface LiveSendsBefore {
  /** Recorded by an attempt that never committed (a batch that failed in this process, or one killed since), spelled as given. */
  sent: Set<string>;
  /** Those whose te_orders row could not be written, by what became of them at Binance. */
  unrecorded: Map<string, UnrecordedOutcome>;
  /** Those of `sent` a cancel was sent for (data.ts markCancelSent): Binance's CANCELED is then the platform's cancel. */
  cancelSent: Set<string>;
  /** Those of `sent` a placement was sent for: its last one's timestamp (ms, the engine's clock, as signed). */
  lastSentAt: Map<string, number>;
}

/** sent_at of the te_live_sends row aliased `alias` as epoch milliseconds (float8: a JS number), NULL while none was sent. */
const sentAtMs = (alias: string) => `(extract(epoch FROM ${alias}.sent_at) * 1000)::float8`;

/**
 * Records that these orders may be sent now, in one autocommit statement (`db` is the pool, never
 * the batch's transaction); answers what was recorded before.
 */
export async function recordLiveSends(db: Queryable, orderIds: string[]): Promise<LiveSendsBefore> {
  if (orderIds.length === 0) return { sent: new Set(), unrecorded: new Map(), cancelSent: new Set(), lastSentAt: new Map() };
  // Every part of the statement reads the same snapshot: `before` does not see what `recorded` inserts.
  const { rows } = await db.query<{ id: string; unrecorded: UnrecordedOutcome | null; cancel_sent: boolean; sent_at_ms: number | null }>(
    `WITH ids AS (SELECT DISTINCT id FROM unnest($1::text[]) AS id),
          before AS (SELECT order_id, unrecorded, cancel_sent_at, sent_at FROM te_live_sends WHERE order_id IN (SELECT id::uuid FROM ids)),
          recorded AS (INSERT INTO te_live_sends (order_id) SELECT id::uuid FROM ids ON CONFLICT DO NOTHING)
     SELECT ids.id, before.unrecorded, before.cancel_sent_at IS NOT NULL AS cancel_sent, ${sentAtMs("before")} AS sent_at_ms
       FROM ids JOIN before ON before.order_id = ids.id::uuid`,
    [orderIds],
  );
  const unrecorded = new Map<string, UnrecordedOutcome>();
  for (const r of rows) if (r.unrecorded !== null) unrecorded.set(r.id, r.unrecorded);
  return {
    sent: new Set(rows.map((r) => r.id)), unrecorded, cancelSent: new Set(rows.filter((r) => r.cancel_sent).map((r) => r.id)),
    lastSentAt: new Map(rows.flatMap((r) => (r.sent_at_ms === null ? [] : [[r.id, r.sent_at_ms]]))),
  };
}

/**
 * A placement of this order is about to be signed with `timestamp` (ms, the engine's clock): its
 * record says so first, in autocommit (`db` the pool), so that an attempt that never commits leaves
 * the time until which that request may still land at Binance. Upserted: the record exists for every
 * order a batch may send, but a missing one must not let a send go unrecorded.
 */
export async function recordPlacement(db: Queryable, o: OrderRequest, timestamp: number): Promise<void> {
  await db.query(
    `INSERT INTO te_live_sends (order_id, sent_at, venue_order) VALUES ($1::uuid, to_timestamp($2::float8 / 1000), $3::jsonb)
     ON CONFLICT (order_id) DO UPDATE SET sent_at = EXCLUDED.sent_at, venue_order = EXCLUDED.venue_order, refused_at = NULL, refusal = NULL`,
    [o.orderId, timestamp, venueOrderJson(o)],
  );
}

/**
 * The held orders (te_orders `held`) whose record an attempt that never committed left (a batch that
 * released and sent them, then failed or was killed), not marked unrecorded: they may be at Binance.
 * By order id, whether a cancel of it was sent (cancel_sent_at) and its last placement's timestamp
 * (sent_at, ms; undefined if none was sent). `orderIds` narrows it to those.
 */
export async function heldLeftSent(db: Queryable, orderIds?: string[]): Promise<Map<string, { cancelSent: boolean; lastSentAt?: number }>> {
  const { rows } = await db.query<{ id: string; cancel_sent: boolean; sent_at_ms: number | null }>(
    `SELECT s.order_id::text AS id, s.cancel_sent_at IS NOT NULL AS cancel_sent, ${sentAtMs("s")} AS sent_at_ms
       FROM te_live_sends s JOIN te_orders o ON o.order_id = s.order_id
      WHERE o.status = 'held' AND s.unrecorded IS NULL AND ($1::text[] IS NULL OR s.order_id = ANY($1::text[]::uuid[]))`,
    [orderIds ?? null],
  );
  return new Map(rows.map((r) => [r.id, { cancelSent: r.cancel_sent, lastSentAt: r.sent_at_ms ?? undefined }]));
}

/** An order a record left that may be open at Binance with no te_orders row to poll it by (leftSent.ts). */
export interface LeftSent {
  order: OrderRequest;
  /** Marked `cancel_failed` (sent, its row unwritable, its cancel unanswered); false: left by an attempt that never committed. */
  cancelFailed: boolean;
  cancelSent: boolean;
  /** Its last placement's timestamp (ms, the engine's clock). */
  lastSentAt?: number;
}

/**
 * The records the live poll looks up at Binance (`orderIds` narrows them): those holding their
 * order (venue_order, migration 0403) that are marked `cancel_failed`, or unmarked with a placement
 * sent and no te_orders row (a held one is adoptHeldSent's); none Binance refused for good as it
 * stands (markRefused). One statement; the table is small.
 */
export async function leftSentOrders(db: Queryable, orderIds?: string[]): Promise<LeftSent[]> {
  const { rows } = await db.query<{ venue_order: OrderRequest; cancel_failed: boolean; cancel_sent: boolean; sent_at_ms: number | null }>(
    `SELECT s.venue_order, s.unrecorded IS NOT NULL AS cancel_failed, s.cancel_sent_at IS NOT NULL AS cancel_sent, ${sentAtMs("s")} AS sent_at_ms
       FROM te_live_sends s
      WHERE s.venue_order IS NOT NULL AND s.refused_at IS NULL AND ($1::text[] IS NULL OR s.order_id = ANY($1::text[]::uuid[]))
        AND (s.unrecorded = 'cancel_failed' OR (s.unrecorded IS NULL AND s.sent_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM te_orders o WHERE o.order_id = s.order_id)))
      ORDER BY s.sent_at NULLS LAST, s.order_id`,
    [orderIds ?? null],
  );
  return rows.map((r) => ({ order: r.venue_order, cancelFailed: r.cancel_failed, cancelSent: r.cancel_sent, lastSentAt: r.sent_at_ms ?? undefined }));
}

/**
 * Binance refused for good to answer about this record (leftSent.ts): marked so, with Binance's
 * message, in autocommit (`db` the pool), unless the record changed since the poll read it (a new
 * placement, a new mark: that one is asked about).
 */
export async function markRefused(db: Queryable, l: LeftSent, refusal: string): Promise<void> {
  await db.query(
    `UPDATE te_live_sends s SET refused_at = now(), refusal = $2
      WHERE s.order_id = $1::uuid AND s.refused_at IS NULL AND ${sentAtMs("s")} IS NOT DISTINCT FROM $3::float8
        AND (CASE WHEN $4::boolean THEN s.unrecorded = 'cancel_failed' ELSE s.unrecorded IS NULL END)`,
    [l.order.orderId, refusal, l.lastSentAt ?? null, l.cancelFailed],
  );
}

/** A record Binance refused for good to answer about (markRefused), as a person reviews it. */
export interface RefusedSend {
  orderId: string;
  /** From the order the record holds (venue_order; null where it holds none). */
  userId: string | null;
  symbol: string | null;
  side: string | null;
  /** Marked `cancel_failed` (its cancel is what Binance refused to retry); false: a placement left by an attempt that never committed. */
  cancelFailed: boolean;
  /** Its last placement's time (ISO 8601), null if none was sent. */
  sentAt: string | null;
  refusedAt: string;
  /** Binance's message. */
  refusal: string;
}

/** The records Binance refused for good to answer about, oldest refusal first, at most `limit`. */
export async function refusedSends(db: Queryable, limit: number): Promise<RefusedSend[]> {
  const { rows } = await db.query<{ order_id: string; user_id: string | null; symbol: string | null; side: string | null; cancel_failed: boolean; sent_at: Date | null; refused_at: Date; refusal: string }>(
    `SELECT order_id::text, venue_order->>'userId' AS user_id, venue_order->>'symbol' AS symbol, venue_order->>'side' AS side,
            unrecorded IS NOT DISTINCT FROM 'cancel_failed' AS cancel_failed, sent_at, refused_at, coalesce(refusal, '') AS refusal
       FROM te_live_sends WHERE refused_at IS NOT NULL ORDER BY refused_at, order_id LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    orderId: r.order_id, userId: r.user_id, symbol: r.symbol, side: r.side, cancelFailed: r.cancel_failed,
    sentAt: r.sent_at?.toISOString() ?? null, refusedAt: r.refused_at.toISOString(), refusal: r.refusal,
  }));
}

/** A person has fixed what Binance refused (the key's permissions, say): the record is asked about again. Answers whether it held a refusal. */
export async function clearRefusal(db: Queryable, orderId: string): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE te_live_sends SET refused_at = NULL, refusal = NULL WHERE order_id = $1::uuid AND refused_at IS NOT NULL", [orderId]);
  return rowCount === 1;
}

/** How many records Binance refused for good to answer about (markRefused): each waits for a person. */
export async function refusedCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM te_live_sends WHERE refused_at IS NOT NULL");
  return rows[0].n;
}

/**
 * The batch transaction recorded these orders in te_orders: a redelivery is recognised there now. A
 * cancel sent for one (markCancelSent, migration 0401) moves to its te_orders row in the same
 * statement: a poll that later finds it CANCELED at Binance reports it `cancelled`.
 */
export async function forgetLiveSends(tx: Queryable, orderIds: string[]): Promise<void> {
  if (orderIds.length === 0) return;
  await tx.query(
    `WITH gone AS (DELETE FROM te_live_sends WHERE order_id = ANY($1::text[]::uuid[]) RETURNING order_id, cancel_sent_at)
     UPDATE te_orders o SET cancel_sent_at = gone.cancel_sent_at FROM gone
      WHERE o.order_id = gone.order_id AND gone.cancel_sent_at IS NOT NULL AND o.cancel_sent_at IS NULL`,
    [orderIds],
  );
}

/**
 * An order whose te_orders row cannot be written: its record says for good what became of it at
 * Binance (autocommit, `db` the pool), the order kept with it (the poll retries a `cancel_failed`
 * one's cancel: leftSent.ts). Answers the outcome marked before, if any (it was counted then).
 * `from`: changed only if marked so now (the poll's retry: a redelivery may have marked it since).
 */
export async function markUnrecorded(db: Queryable, o: OrderRequest, outcome: UnrecordedOutcome, from?: UnrecordedOutcome): Promise<UnrecordedOutcome | undefined> {
  // `before` reads the snapshot the upsert does not change.
  const { rows } = await db.query<{ before: UnrecordedOutcome | null }>(
    `WITH before AS (SELECT unrecorded FROM te_live_sends WHERE order_id = $1::uuid),
          marked AS (INSERT INTO te_live_sends (order_id, unrecorded, unrecorded_at, venue_order) SELECT $1::uuid, $2::text, now(), $3::jsonb WHERE $4::text IS NULL
                     ON CONFLICT (order_id) DO UPDATE SET unrecorded = EXCLUDED.unrecorded, unrecorded_at = EXCLUDED.unrecorded_at,
                       venue_order = coalesce(te_live_sends.venue_order, EXCLUDED.venue_order), refused_at = NULL, refusal = NULL),
          changed AS (UPDATE te_live_sends SET unrecorded = $2::text, unrecorded_at = now(), refused_at = NULL, refusal = NULL
                       WHERE $4::text IS NOT NULL AND order_id = $1::uuid AND unrecorded = $4::text)
     SELECT (SELECT unrecorded FROM before) AS before`,
    [o.orderId, outcome, venueOrderJson(o), from ?? null],
  );
  return rows[0]?.before ?? undefined;
}
