/**
 * billing-service's parked payment events (migration 0516): SQL only. A payment event naming an invoice
 * billing does not have (yet) is parked by the consumer (payment-events.ts), applied by the invoice's creation
 * (invoicing.ts) or by the periodic pass (parked-payment-events.ts), which also sets aside those parked too long.
 */
import type { Queryable } from "../../kit";
import type { PaymentEventMsg } from "../../business/events";
import type { DeadLetter, DeadLetterHeader } from "../../trading/infra/deadLetters";

type Q = Queryable;

/** A parked event: what is applied, and the message as received (what its dead letter keeps). */
export interface ParkedEvent {
  eventId: string;
  invoiceId: string;
  event: PaymentEventMsg;
  message: Omit<DeadLetter, "reason">;
}

interface ParkedRow {
  event_id: string;
  invoice_id: string;
  event: PaymentEventMsg;
  consumer_group: string;
  topic: string;
  msg_partition: number;
  msg_offset: string;
  msg_key: Buffer | null;
  msg_value: Buffer | null;
  msg_headers: DeadLetterHeader[];
  /** How long it has been parked, ms (PostgreSQL's clock). */
  parked_ms: number;
}

const parkedOf = (r: ParkedRow): ParkedEvent & { parkedMs: number } => ({
  eventId: r.event_id,
  invoiceId: r.invoice_id,
  event: r.event,
  message: { groupId: r.consumer_group, topic: r.topic, partition: r.msg_partition, offset: r.msg_offset, key: r.msg_key, value: r.msg_value, headers: r.msg_headers },
  parkedMs: Number(r.parked_ms),
});

/** Parks the event (once: parked again, say by a replayed batch, it keeps its first parked_at); whether it is new. */
export async function parkEvent(c: Q, p: ParkedEvent): Promise<boolean> {
  const m = p.message;
  const r = await c.query(
    `INSERT INTO bil_parked_payment_events (event_id, invoice_id, event, consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10::jsonb) ON CONFLICT (event_id) DO NOTHING`,
    [p.eventId, p.invoiceId, JSON.stringify(p.event), m.groupId, m.topic, m.partition, m.offset, m.key, m.value, JSON.stringify(m.headers)],
  );
  return r.rowCount === 1;
}

/** The ids of the events parked for `invoiceId`, in the order they were parked. */
export async function parkedIdsOf(c: Q, invoiceId: string): Promise<string[]> {
  const { rows } = await c.query<{ event_id: string }>("SELECT event_id FROM bil_parked_payment_events WHERE invoice_id = $1 ORDER BY parked_at, event_id", [invoiceId]);
  return rows.map((r) => r.event_id);
}

/**
 * Up to `limit` parked events the pass has to settle, oldest first: those whose invoice exists, and those
 * parked `waitMs` or longer.
 */
export async function dueParkedIds(c: Q, waitMs: number, limit: number): Promise<string[]> {
  const { rows } = await c.query<{ event_id: string }>(
    `SELECT p.event_id FROM bil_parked_payment_events p
      WHERE p.parked_at <= now() - $1 * interval '1 millisecond' OR EXISTS (SELECT 1 FROM bil_invoices i WHERE i.invoice_id = p.invoice_id)
      ORDER BY p.parked_at, p.event_id LIMIT $2`,
    [waitMs, limit],
  );
  return rows.map((r) => r.event_id);
}

/** The parked event, locked for this transaction, or undefined: gone, or locked by another (skipped, not waited for). */
export async function lockParked(c: Q, eventId: string): Promise<(ParkedEvent & { parkedMs: number }) | undefined> {
  const { rows } = await c.query<ParkedRow>(
    `SELECT *, (extract(epoch FROM now() - parked_at) * 1000)::float8 AS parked_ms FROM bil_parked_payment_events WHERE event_id = $1 FOR UPDATE SKIP LOCKED`,
    [eventId],
  );
  return rows[0] && parkedOf(rows[0]);
}

/** Takes the parked event out (whoever took it applies it or sets it aside in the same transaction); undefined: gone. */
export async function takeParked(c: Q, eventId: string): Promise<PaymentEventMsg | undefined> {
  return (await c.query<{ event: PaymentEventMsg }>("DELETE FROM bil_parked_payment_events WHERE event_id = $1 RETURNING event", [eventId])).rows[0]?.event;
}

/** Forgets that the event was applied (bil_processed_events), within the transaction that marked it: it is parked instead. */
export async function unmarkProcessed(c: Q, eventId: string): Promise<void> {
  await c.query("DELETE FROM bil_processed_events WHERE event_id = $1", [eventId]);
}
