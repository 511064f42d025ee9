/**
 * payment-service data access (PostgreSQL, migrations 0340_payments.sql, 0406_pay_intents_key_origin.sql).
 * State changes, ledger journals and outbox events are written in one transaction, so an event is published exactly
 * when the state it announces is committed.
 */
import type { PoolClient } from "pg";
import { deleteOlderThanDays, userPartitionKey, type PostgresClient } from "../../kit";
import { type Currency, toJson } from "../../business/money";
import { BUSINESS_TOPICS, type PaymentEventMsg } from "../../business/events";
import { enqueue } from "../../trading/infra/outbox";
import { canTransition, type IntentOrigin, type IntentRequest, type IntentStatus } from "./domain/intents";
import { type Entry, journal, paymentCaptured, refundIssued } from "./domain/ledger";

export const OUTBOX = "pay_outbox";

export interface IntentRow {
  intent_id: string;
  user_id: string;
  origin: IntentOrigin;
  idempotency_key: string;
  request_hash: string;
  amount: string;
  currency: Currency;
  payment_method: string;
  description: string | null;
  reference: string | null;
  status: IntentStatus;
  processor: string;
  processor_intent_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  refunded: string;
  created_at: Date;
  updated_at: Date;
}

/** The API shape (amounts as integer minor units). */
export function intentView(r: IntentRow) {
  return {
    id: r.intent_id,
    userId: r.user_id,
    status: r.status,
    amount: toJson(BigInt(r.amount)),
    currency: r.currency,
    refunded: toJson(BigInt(r.refunded)),
    paymentMethod: r.payment_method,
    description: r.description,
    reference: r.reference,
    processorIntentId: r.processor_intent_id,
    failureCode: r.failure_code,
    failureMessage: r.failure_message,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

type Queryable = Pick<PoolClient, "query">;

export interface RefundRow {
  refund_id: string;
  status: "pending" | "succeeded" | "failed";
  amount: string;
  failure_code: string | null;
}

export class PaymentRepo {
  constructor(private readonly pg: PostgresClient) {}

  /** Inserts the intent unless this idempotency key of the user's was used (by the same origin); null when taken. */
  async insertIntent(p: { intentId: string; userId: string; origin: IntentOrigin; key: string; hash: string; req: IntentRequest; processor: string }): Promise<IntentRow | null> {
    const { rows } = await this.pg.query<IntentRow>(
      `INSERT INTO pay_intents (intent_id, user_id, origin, idempotency_key, request_hash, amount, currency, payment_method, description, reference, status, processor)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'created',$11) ON CONFLICT (user_id, origin, idempotency_key) DO NOTHING RETURNING *`,
      [p.intentId, p.userId, p.origin, p.key, p.hash, p.req.amount.toString(), p.req.currency, p.req.paymentMethod, p.req.description, p.req.reference, p.processor],
    );
    return rows[0] ?? null;
  }

  async byKey(userId: string, origin: IntentOrigin, key: string): Promise<IntentRow | undefined> {
    return (await this.pg.query<IntentRow>("SELECT * FROM pay_intents WHERE user_id = $1 AND origin = $2 AND idempotency_key = $3", [userId, origin, key])).rows[0];
  }

  async byId(intentId: string, c: Queryable = this.pg.pool, forUpdate = false): Promise<IntentRow | undefined> {
    return (await c.query<IntentRow>(`SELECT * FROM pay_intents WHERE intent_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [intentId])).rows[0];
  }

  async byProcessorId(processorIntentId: string): Promise<IntentRow | undefined> {
    return (await this.pg.query<IntentRow>("SELECT * FROM pay_intents WHERE processor_intent_id = $1", [processorIntentId])).rows[0];
  }

  async listForUser(userId: string, limit: number): Promise<IntentRow[]> {
    return (await this.pg.query<IntentRow>("SELECT * FROM pay_intents WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2", [userId, limit])).rows;
  }

  /** Intents still open after `olderThanMs` (reconciliation's work list). */
  async staleOpen(olderThanMs: number, limit: number): Promise<IntentRow[]> {
    return (
      await this.pg.query<IntentRow>(
        `SELECT * FROM pay_intents WHERE status IN ('created','processing') AND created_at < now() - make_interval(secs => $1::double precision / 1000)
         ORDER BY created_at LIMIT $2`,
        [olderThanMs, limit],
      )
    ).rows;
  }

  /**
   * Moves an intent to `to` with the processor's answer, posting the payment journal and the event
   * in the same transaction. Idempotent: a transition already made (webhook after reconciliation,
   * a retried request) changes nothing.
   */
  async settle(intentId: string, to: IntentStatus, remote: { id: string | null; fee: bigint; failureCode: string | null; failureMessage: string | null }): Promise<{ row: IntentRow; changed: boolean }> {
    return this.pg.transaction(async (c) => {
      const cur = await this.byId(intentId, c, true);
      if (!cur) throw new Error(`intent ${intentId} not found`);
      if (cur.status === to || !canTransition(cur.status, to)) {
        // Still record the processor id we may have missed (e.g. a crash before the first commit).
        if (remote.id && !cur.processor_intent_id) await c.query("UPDATE pay_intents SET processor_intent_id = $2 WHERE intent_id = $1", [intentId, remote.id]);
        return { row: cur, changed: false };
      }
      const { rows } = await c.query<IntentRow>(
        `UPDATE pay_intents SET status = $2, processor_intent_id = coalesce(processor_intent_id, $3), failure_code = $4, failure_message = $5, updated_at = now()
         WHERE intent_id = $1 RETURNING *`,
        [intentId, to, remote.id, remote.failureCode, remote.failureMessage],
      );
      const row = rows[0];
      if (to === "succeeded") {
        await this.post(c, `payment:${intentId}`, "payment", journal(paymentCaptured({ processor: row.processor, userId: row.user_id, amount: BigInt(row.amount), currency: row.currency, fee: remote.fee, intentId })));
        await this.event(c, row, "payment.succeeded");
      } else if (to === "failed") await this.event(c, row, "payment.failed");
      return { row, changed: true };
    });
  }

  /**
   * Runs `fn` in one transaction with the intent row locked (FOR UPDATE, undefined when there is no
   * such intent): refunds of one payment are checked and reserved one at a time, so two at once cannot
   * both fit into what is left of it.
   */
  lockedIntent<T>(intentId: string, fn: (c: PoolClient, intent: IntentRow | undefined) => Promise<T>): Promise<T> {
    return this.pg.transaction(async (c) => fn(c, await this.byId(intentId, c, true)));
  }

  async refundByKey(intentId: string, key: string, c: Queryable = this.pg.pool) {
    return (await c.query<RefundRow>("SELECT refund_id, status, amount, failure_code FROM pay_refunds WHERE intent_id = $1 AND idempotency_key = $2", [intentId, key])).rows[0];
  }

  /** What the intent's refunds hold: the succeeded ones and the pending ones (the processor may be paying those out). */
  async refundsHeld(intentId: string, c: Queryable): Promise<bigint> {
    const { rows } = await c.query<{ held: string }>("SELECT coalesce(sum(amount), 0)::text AS held FROM pay_refunds WHERE intent_id = $1 AND status IN ('pending', 'succeeded')", [intentId]);
    return BigInt(rows[0].held);
  }

  /** Reserves a refund (pending); called under lockedIntent after refundByKey found none with this key. */
  async insertRefund(c: Queryable, p: { refundId: string; intentId: string; key: string; amount: bigint; reason: string | null }): Promise<RefundRow> {
    const { rows } = await c.query<RefundRow>(
      "INSERT INTO pay_refunds (refund_id, intent_id, idempotency_key, amount, reason, status) VALUES ($1,$2,$3,$4,$5,'pending') RETURNING refund_id, status, amount, failure_code",
      [p.refundId, p.intentId, p.key, p.amount.toString(), p.reason],
    );
    return rows[0];
  }

  /**
   * A pending refund's request is sent again (a retry of its key): recorded under the payment's lock
   * before the send, so the sweep does not take it for one the processor can no longer receive; a
   * sweep's claim on it is cleared, so a lookup made before this send settles nothing (refund-claims.ts).
   */
  async refundResent(c: Queryable, refundId: string): Promise<void> {
    await c.query("UPDATE pay_refunds SET sent_at = now(), reconcile_claim = NULL, reconcile_claimed_until = NULL WHERE refund_id = $1 AND status = 'pending'", [refundId]);
  }

  /** A refund failed as never received by the processor, reserved again for a retry of its key (under the payment's lock). */
  async reviveRefund(c: Queryable, refundId: string): Promise<RefundRow> {
    const { rows } = await c.query<RefundRow>("UPDATE pay_refunds SET status = 'pending', failure_code = NULL, sent_at = now(), reconcile_claim = NULL, reconcile_claimed_until = NULL WHERE refund_id = $1 RETURNING refund_id, status, amount, failure_code", [refundId]);
    return rows[0];
  }

  /**
   * The processor refunded: mark it, add to the intent's refunded total, post the journal, emit.
   * In `c` when given (the sweep's settling transaction). Locks the payment, then the refund: the order
   * refund() takes them in, so the two never wait for each other crosswise.
   */
  completeRefund(refundId: string, processorRefundId: string, c?: PoolClient): Promise<IntentRow> {
    return c ? this.completeRefundIn(c, refundId, processorRefundId) : this.pg.transaction((t) => this.completeRefundIn(t, refundId, processorRefundId));
  }

  private async completeRefundIn(c: PoolClient, refundId: string, processorRefundId: string): Promise<IntentRow> {
    const intentId = (await c.query<{ intent_id: string }>("SELECT intent_id FROM pay_refunds WHERE refund_id = $1", [refundId])).rows[0].intent_id;
    const intent = await this.byId(intentId, c, true);
    if (!intent) throw new Error(`intent of refund ${refundId} not found`);
    const r = (await c.query<{ amount: string; status: string }>("SELECT amount, status FROM pay_refunds WHERE refund_id = $1 FOR UPDATE", [refundId])).rows[0];
    if (r.status === "succeeded") return intent;
    await c.query("UPDATE pay_refunds SET status = 'succeeded', processor_refund_id = $2 WHERE refund_id = $1", [refundId, processorRefundId]);
    const { rows } = await c.query<IntentRow>("UPDATE pay_intents SET refunded = refunded + $2, updated_at = now() WHERE intent_id = $1 RETURNING *", [intent.intent_id, r.amount]);
    await this.post(c, `refund:${refundId}`, "refund", journal(refundIssued({ processor: intent.processor, userId: intent.user_id, amount: BigInt(r.amount), currency: intent.currency, refundId })));
    await this.event(c, rows[0], "payment.refunded", { refundedAmount: toJson(BigInt(r.amount)), eventId: `refund:${refundId}` });
    return rows[0];
  }

  /** The refund was not made: its amount is no longer held against the payment. */
  async failRefund(refundId: string, failureCode: string, c: Queryable = this.pg.pool, processorRefundId: string | null = null): Promise<void> {
    await c.query("UPDATE pay_refunds SET status = 'failed', failure_code = $2, processor_refund_id = coalesce(processor_refund_id, $3) WHERE refund_id = $1 AND status = 'pending'", [refundId, failureCode, processorRefundId]);
  }

  /** Records a processed webhook event id; false when it was already processed (a replay). */
  async markWebhookEvent(eventId: string, type: string): Promise<boolean> {
    const r = await this.pg.query("INSERT INTO pay_webhook_events (event_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING", [eventId, type]);
    return r.rowCount === 1;
  }

  async forgetWebhookEvent(eventId: string): Promise<void> {
    await this.pg.query("DELETE FROM pay_webhook_events WHERE event_id = $1", [eventId]);
  }

  /** Up to `batch` event ids received longer ago than `days`, oldest first (index of migration 0469); how many went. */
  async deleteWebhookEventsPastRetention(days: number, batch: number): Promise<number> {
    return deleteOlderThanDays(this.pg, { table: "pay_webhook_events", key: "event_id", at: "received_at" }, days, batch);
  }

  /** Derived balances per account and currency, and the ledger total per currency (always 0). */
  async balances(accountPrefix?: string): Promise<{ accounts: { account: string; currency: string; balance: number }[]; totals: Record<string, number> }> {
    const { rows } = await this.pg.query<{ account: string; currency: string; balance: string }>(
      `SELECT account, currency, sum(amount)::text AS balance FROM pay_ledger_entries WHERE ($1::text IS NULL OR account LIKE $1 || '%') GROUP BY account, currency ORDER BY account, currency`,
      [accountPrefix ?? null],
    );
    const totals = await this.pg.query<{ currency: string; total: string }>("SELECT currency, sum(amount)::text AS total FROM pay_ledger_entries GROUP BY currency");
    return {
      accounts: rows.map((r) => ({ account: r.account, currency: r.currency, balance: toJson(BigInt(r.balance)) })),
      totals: Object.fromEntries(totals.rows.map((t) => [t.currency, toJson(BigInt(t.total))])),
    };
  }

  private async post(c: PoolClient, journalId: string, kind: string, entries: Entry[]): Promise<void> {
    const j = await c.query("INSERT INTO pay_journals (journal_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING", [journalId, kind]);
    if (j.rowCount === 0) return; // already posted
    await c.query(
      `INSERT INTO pay_ledger_entries (journal_id, account, currency, amount, memo)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[])`,
      [journalId, entries.map((e) => e.account), entries.map((e) => e.currency), entries.map((e) => e.amount.toString()), entries.map((e) => e.memo)],
    );
  }

  private async event(c: PoolClient, row: IntentRow, type: PaymentEventMsg["type"], extra: Partial<PaymentEventMsg> = {}): Promise<void> {
    const msg: PaymentEventMsg = {
      eventId: extra.eventId ?? `${row.intent_id}:${type}`,
      type,
      intentId: row.intent_id,
      userId: row.user_id,
      amount: toJson(BigInt(row.amount)),
      currency: row.currency,
      reference: row.reference,
      failureCode: row.failure_code,
      ts: Date.now(),
      ...extra,
    };
    await enqueue(c, OUTBOX, [{ eventId: msg.eventId, topic: BUSINESS_TOPICS.payments, key: userPartitionKey(row.user_id), payload: { ...msg } }]);
  }
}
