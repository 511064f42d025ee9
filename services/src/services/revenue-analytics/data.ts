/** revenue-analytics data access (PostgreSQL ra_*): consumed events in, MRR snapshots and cash out. */
import type { Queryable } from "../../kit/datastores/postgres";
import type { CustomerMrr, MrrChange, PaymentFact } from "./domain";

/** Inserts the snapshots; a redelivered event id is ignored. Returns how many were new. */
export async function insertMrrChanges(db: Queryable, rows: MrrChange[]): Promise<number> {
  if (!rows.length) return 0;
  const r = await db.query(
    `INSERT INTO ra_mrr_changes (event_id, subscription_id, user_id, plan_id, status, currency, mrr, at)
     SELECT e, s, u, p, st, c, m, to_timestamp(t / 1000.0)
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[]) AS x(e, s, u, p, st, c, m, t)
     ON CONFLICT (event_id) DO NOTHING`,
    [rows.map((x) => x.eventId), rows.map((x) => x.subscriptionId), rows.map((x) => x.userId), rows.map((x) => x.planId), rows.map((x) => x.status), rows.map((x) => x.currency), rows.map((x) => String(x.mrr)), rows.map((x) => String(x.ts))],
  );
  return r.rowCount ?? 0;
}

export async function insertPayments(db: Queryable, rows: PaymentFact[]): Promise<number> {
  if (!rows.length) return 0;
  const r = await db.query(
    `INSERT INTO ra_payments (event_id, type, intent_id, user_id, currency, amount, previous_amount, at)
     SELECT e, ty, i, u, c, a, pa, to_timestamp(t / 1000.0)
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[]) AS x(e, ty, i, u, c, a, pa, t)
     ON CONFLICT (event_id) DO NOTHING`,
    [
      rows.map((x) => x.eventId),
      rows.map((x) => x.type),
      rows.map((x) => x.intentId),
      rows.map((x) => x.userId),
      rows.map((x) => x.currency),
      rows.map((x) => String(x.amount)),
      rows.map((x) => (x.previousAmount === undefined ? null : String(x.previousAmount))),
      rows.map((x) => String(x.ts)),
    ],
  );
  return r.rowCount ?? 0;
}

/** Per currency, each user's MRR (sum over their subscriptions' latest snapshot) at an instant. */
export async function customerMrrAt(db: Queryable, at: Date): Promise<Map<string, CustomerMrr>> {
  const { rows } = await db.query<{ currency: string; user_id: string; mrr: string }>(
    `SELECT currency, user_id, sum(mrr)::text AS mrr FROM (
       SELECT DISTINCT ON (subscription_id) currency, user_id, mrr FROM ra_mrr_changes
       WHERE at <= $1 ORDER BY subscription_id, at DESC, seq DESC) latest
     GROUP BY currency, user_id`,
    [at],
  );
  const out = new Map<string, CustomerMrr>();
  for (const r of rows) {
    if (!out.has(r.currency)) out.set(r.currency, new Map());
    out.get(r.currency)!.set(r.user_id, BigInt(r.mrr));
  }
  return out;
}

/**
 * Cash in a period [from, to): collected (succeeded) and refunded, per currency. Refunded is net of
 * refunds reversed in the period (they failed after succeeding: the money came back); a refund that
 * failed before succeeding was never counted (payment.refund_failed moves no cash). A refund booked
 * again at the processor's amount (payment.refund_adjusted) moves it by the difference, in the period
 * of the adjustment and in the refund's currency, as the refund itself counted (a later reversal of
 * it is at the new amount, so refunded + adjusted - reversed is 0).
 */
export async function cashBetween(db: Queryable, from: Date, to: Date): Promise<Map<string, { collected: bigint; refunded: bigint }>> {
  const { rows } = await db.query<{ currency: string; collected: string; refunded: string }>(
    `SELECT currency,
            coalesce(sum(amount) FILTER (WHERE type = 'payment.succeeded'), 0)::text AS collected,
            (coalesce(sum(amount) FILTER (WHERE type = 'payment.refunded'), 0)
             - coalesce(sum(amount) FILTER (WHERE type = 'payment.refund_reversed'), 0)
             + coalesce(sum(amount - previous_amount) FILTER (WHERE type = 'payment.refund_adjusted'), 0))::text AS refunded
     FROM ra_payments WHERE at >= $1 AND at < $2 GROUP BY currency`,
    [from, to],
  );
  return new Map(rows.map((r) => [r.currency, { collected: BigInt(r.collected), refunded: BigInt(r.refunded) }]));
}
