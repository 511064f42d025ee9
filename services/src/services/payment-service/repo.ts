/**
 * payment-service data access (PostgreSQL, migrations 0340_payments.sql, 0406_pay_intents_key_origin.sql, 0499_pay_intents_reconciled.sql).
 * State changes, ledger journals and outbox events are written in one transaction, so an event is published exactly
 * when the state it announces is committed.
 */
import type { PoolClient } from "pg";
import { deleteOlderThanDays, lockAccountForWrite, userPartitionKey, type PostgresClient, type Queryable } from "../../kit";
import { type Currency, toJson } from "../../business/money";
import { BUSINESS_TOPICS, isRefundEvent, type PaymentEventMsg } from "../../business/events";
import { enqueue } from "../../trading/infra/outbox";
import { CANCELED_AT_PROCESSOR, canSettle, type IntentOrigin, type IntentRequest, type IntentStatus } from "./domain/intents";
import { NEVER_REACHED } from "./domain/refund-settlement";
import { type Entry, journal, paymentCaptured } from "./domain/ledger";
import type { RefundView } from "./refund-view";

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
  /** When reconciliation last asked the processor about it (migration 0499). */
  reconciled_at: Date | null;
}

/** The API shape (amounts as integer minor units), with the payment's refunds when given. */
export function intentView(r: IntentRow, refunds?: Map<string, RefundView[]>) {
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
    ...(refunds ? { refunds: refunds.get(r.intent_id) ?? [] } : {}),
  };
}


/**
 * Key space of the lock an intent's create request is sent under (first half of the two-int advisory
 * lock key; "ps"): held shared by the sender through the call, tried by reconciliation before it closes
 * the intent as never_reached_processor, so it never closes one whose request is on its way.
 */
const SEND_LOCK_SPACE = 0x7073;
const SEND_LOCK = (fn: string, p: string) => `SELECT ${fn}(${SEND_LOCK_SPACE}, hashtext(${p}::text))`;

/** The processor id in parameter `p` unless another intent has it already (unique: an event naming another object), else NULL. */
const UNTAKEN_PROCESSOR_ID = (p: string) => `(SELECT ${p}::text WHERE NOT EXISTS (SELECT 1 FROM pay_intents WHERE processor_intent_id = ${p}))`;

export class PaymentRepo {
  constructor(private readonly pg: PostgresClient) {}

  /**
   * Inserts the intent unless this idempotency key of the user's was used (by the same origin): null
   * then; "account_deleted" when the account was deleted (its tombstone, read under the account's lock
   * in the inserting transaction: kit lockAccountForWrite, so a deletion either waits for this insert
   * or is seen by it).
   */
  async insertIntent(p: { intentId: string; userId: string; origin: IntentOrigin; key: string; hash: string; req: IntentRequest; processor: string }): Promise<IntentRow | null | "account_deleted"> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, p.userId)) === "deleted") return "account_deleted";
      const { rows } = await c.query<IntentRow>(
        `INSERT INTO pay_intents (intent_id, user_id, origin, idempotency_key, request_hash, amount, currency, payment_method, description, reference, status, processor)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'created',$11)
         ON CONFLICT (user_id, origin, idempotency_key) DO NOTHING RETURNING *`,
        [p.intentId, p.userId, p.origin, p.key, p.hash, p.req.amount.toString(), p.req.currency, p.req.paymentMethod, p.req.description, p.req.reference, p.processor],
      );
      return rows[0] ?? null;
    });
  }

  /**
   * On a charge's lock connection (./charge-locks.ts), in the transaction that holds the account's lock
   * through the processor call: takes the intent's send lock (SEND_LOCK_SPACE, shared) and answers the
   * intent when reconciliation closed it meanwhile (it is not to be sent: a create sent after that could
   * charge a closed intent), else undefined. Reconciliation does not close it while the lock is held.
   */
  async closedBeforeSend(c: Queryable, intentId: string): Promise<IntentRow | undefined> {
    await c.query(SEND_LOCK("pg_advisory_xact_lock_shared", "$1"), [intentId]);
    const cur = await this.byId(intentId, c);
    return cur && cur.status !== "created" ? cur : undefined;
  }

  async byKey(userId: string, origin: IntentOrigin, key: string): Promise<IntentRow | undefined> {
    return (await this.pg.query<IntentRow>("SELECT * FROM pay_intents WHERE user_id = $1 AND origin = $2 AND idempotency_key = $3", [userId, origin, key])).rows[0];
  }

  async byId(intentId: string, c: Queryable = this.pg.pool, forUpdate = false): Promise<IntentRow | undefined> {
    return (await c.query<IntentRow>(`SELECT * FROM pay_intents WHERE intent_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [intentId])).rows[0];
  }

  async byProcessorId(processorIntentId: string, c: Queryable = this.pg.pool): Promise<IntentRow | undefined> {
    return (await c.query<IntentRow>("SELECT * FROM pay_intents WHERE processor_intent_id = $1", [processorIntentId])).rows[0];
  }

  async listForUser(userId: string, limit: number): Promise<IntentRow[]> {
    return (await this.pg.query<IntentRow>("SELECT * FROM pay_intents WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2", [userId, limit])).rows;
  }

  /**
   * Reconciliation's work list, each part least recently looked up first (reconciled_at, migration
   * 0499: intents that stay open, a mismatch or a long `processing`, no longer take every pass): intents
   * still open after `olderThanMs`, and those it failed as never_reached_processor within `recheck.withinMs`
   * (looked up again: a request the processor received just before our client gave up may still be
   * charged, its webhook lost; intents.ts canSettle books it), on every pass for `recheck.inFlightMs`
   * after the close, then at most once every `recheck.everyMs`. An open intent held for an operator (its
   * charge answered with another amount or currency: a `charge_mismatch` issue, payments.ts heldForReview)
   * is looked up once, then again only once that issue was resolved since its last lookup, or once every
   * `recheck.everyMs` (before session 54, on every pass, its mismatch logged each time).
   */
  async staleOpen(olderThanMs: number, limit: number, recheck: { inFlightMs: number; withinMs: number; everyMs: number }): Promise<IntentRow[]> {
    const ago = (p: string) => `now() - make_interval(secs => ${p}::double precision / 1000)`;
    return (
      await this.pg.query<IntentRow>(
        `(SELECT i.* FROM pay_intents i LEFT JOIN pay_refund_issues held ON held.issue_key = 'charge_mismatch:' || i.intent_id::text
           WHERE i.status IN ('created','processing') AND i.created_at < ${ago("$1")}
             AND (held.issue_key IS NULL OR i.reconciled_at IS NULL OR i.reconciled_at < held.resolved_at OR i.reconciled_at < ${ago("$5")})
           ORDER BY coalesce(i.reconciled_at, i.created_at) LIMIT $2)
         UNION ALL
         (SELECT * FROM pay_intents WHERE status = 'failed' AND failure_code = '${NEVER_REACHED}' AND updated_at > ${ago("$4")}
            AND (updated_at > ${ago("$3")} OR reconciled_at IS NULL OR reconciled_at < ${ago("$5")})
          ORDER BY coalesce(reconciled_at, updated_at) LIMIT $2)`,
        [olderThanMs, limit, recheck.inFlightMs, Math.max(recheck.withinMs, recheck.inFlightMs), recheck.everyMs],
      )
    ).rows;
  }

  /** Records the processor's id of an intent not settled (a charge answered with another amount or currency: payments.ts heldForReview). */
  async recordProcessorId(c: Queryable, intentId: string, processorIntentId: string): Promise<void> {
    if (processorIntentId) await c.query(`UPDATE pay_intents SET processor_intent_id = coalesce(processor_intent_id, ${UNTAKEN_PROCESSOR_ID("$2")}), updated_at = now() WHERE intent_id = $1`, [intentId, processorIntentId]);
  }

  /** Whether the processor answered the intent's charge with another amount or currency (an operator's charge_mismatch issue, migration 0500). */
  async chargeMismatched(intentId: string): Promise<boolean> {
    return (await this.pg.query("SELECT 1 FROM pay_refund_issues WHERE kind = 'charge_mismatch' AND intent_id = $1", [intentId])).rowCount === 1;
  }

  /** Records that reconciliation is asking the processor about the intent now (staleOpen's order). */
  async markReconciled(intentId: string): Promise<void> {
    await this.pg.query("UPDATE pay_intents SET reconciled_at = now() WHERE intent_id = $1", [intentId]);
  }

  /**
   * Moves an intent to `to` with the processor's answer, posting the payment journal and the event
   * in the same transaction. Idempotent: a transition already made (webhook after reconciliation,
   * a retried request) changes nothing. `inferred` (reconciliation's never_reached_processor, our
   * inference, not the processor's word): applied only to an intent still `created`, and not while its
   * create request is being sent (whileAccountLive holds its send lock): then nothing done, `sending`.
   * `canceled` is announced as `payment.failed` (its failure code the processor's, else
   * canceled_at_processor): the processor cancelled it (its dashboard, an expired authentication), no
   * money was taken, and billing takes it as any failed attempt of its invoice; before, nothing was
   * announced and the invoice waited for an outcome for ever. `quiet`: not announced (a charge never
   * sent, answered to its caller: payments.ts cancelUnsent). In `o.c` when given (a webhook's transaction).
   */
  async settle(intentId: string, to: IntentStatus, remote: { id: string | null; fee: bigint; failureCode: string | null; failureMessage: string | null }, o: { inferred?: boolean; quiet?: boolean; c?: PoolClient } = {}): Promise<{ row: IntentRow; changed: boolean; sending?: true }> {
    const inferred = o.inferred ?? false;
    const run = async (c: PoolClient): Promise<{ row: IntentRow; changed: boolean; sending?: true }> => {
      const free = !inferred || (await c.query<{ free: boolean }>(`${SEND_LOCK("pg_try_advisory_xact_lock", "$1")} AS free`, [intentId])).rows[0].free;
      const cur = await this.byId(intentId, c, true);
      if (!cur) throw new Error(`intent ${intentId} not found`);
      if (!free) return { row: cur, changed: false, sending: true };
      if (inferred && cur.status !== "created") return { row: cur, changed: false };
      if (cur.status === to || !canSettle({ status: cur.status, failureCode: cur.failure_code }, to)) {
        // Still record the processor id we may have missed (e.g. a crash before the first commit).
        if (remote.id && !cur.processor_intent_id) await c.query(`UPDATE pay_intents SET processor_intent_id = ${UNTAKEN_PROCESSOR_ID("$2")} WHERE intent_id = $1`, [intentId, remote.id]);
        return { row: cur, changed: false };
      }
      const failureCode = to === "canceled" && !o.quiet ? (remote.failureCode ?? CANCELED_AT_PROCESSOR) : remote.failureCode;
      const { rows } = await c.query<IntentRow>(
        `UPDATE pay_intents SET status = $2, processor_intent_id = coalesce(processor_intent_id, ${UNTAKEN_PROCESSOR_ID("$3")}), failure_code = $4, failure_message = $5, updated_at = now()
         WHERE intent_id = $1 RETURNING *`,
        [intentId, to, remote.id, failureCode, remote.failureMessage],
      );
      const row = rows[0];
      if (to === "succeeded") {
        await this.post(c, `payment:${intentId}`, "payment", journal(paymentCaptured({ processor: row.processor, userId: row.user_id, amount: BigInt(row.amount), currency: row.currency, fee: remote.fee, intentId })));
        await this.emit(c, row, "payment.succeeded");
      } else if (to === "failed" || (to === "canceled" && !o.quiet)) await this.emit(c, row, "payment.failed");
      return { row, changed: true };
    };
    return o.c ? run(o.c) : this.pg.transaction(run);
  }

  /**
   * Runs `fn` in one transaction with the intent row locked (FOR UPDATE, undefined when there is no
   * such intent): refunds of one payment are checked and reserved one at a time, so two at once cannot
   * both fit into what is left of it.
   */
  lockedIntent<T>(intentId: string, fn: (c: PoolClient, intent: IntentRow | undefined) => Promise<T>): Promise<T> {
    return this.pg.transaction(async (c) => fn(c, await this.byId(intentId, c, true)));
  }

  /**
   * Records a processed webhook event id, in `c` when given; false when it was already processed (a
   * replay). In the transaction that applies the event (payments.ts applyWebhook): the id is committed
   * with the change or not at all, and a second delivery of it at the same time waits here for the
   * first's commit (the primary key), then is a replay.
   */
  async markWebhookEvent(eventId: string, type: string, c: Queryable = this.pg.pool): Promise<boolean> {
    const r = await c.query("INSERT INTO pay_webhook_events (event_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING", [eventId, type]);
    return r.rowCount === 1;
  }

  /** Whether a webhook event id was processed (a replay is answered without a transaction). */
  async webhookEventSeen(eventId: string): Promise<boolean> {
    return (await this.pg.query("SELECT 1 FROM pay_webhook_events WHERE event_id = $1", [eventId])).rowCount === 1;
  }

  /** Runs `fn` in one transaction (a webhook's: its event id and its change commit together). */
  transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.pg.transaction(fn);
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

  /** Posts a journal once (its id is the primary key: a second post of it does nothing). */
  async post(c: PoolClient, journalId: string, kind: string, entries: Entry[]): Promise<void> {
    const j = await c.query("INSERT INTO pay_journals (journal_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING", [journalId, kind]);
    if (j.rowCount === 0) return; // already posted
    await c.query(
      `INSERT INTO pay_ledger_entries (journal_id, account, currency, amount, memo)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[])`,
      [journalId, entries.map((e) => e.account), entries.map((e) => e.currency), entries.map((e) => e.amount.toString()), entries.map((e) => e.memo)],
    );
  }

  /** Enqueues a payments.events message about the payment in `c` (the outbox: published once committed). */
  async emit(c: PoolClient, row: IntentRow, type: PaymentEventMsg["type"], extra: Partial<PaymentEventMsg> = {}): Promise<void> {
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
      // (a refund's `currency` is the refund's: the payment's told apart, for billing to compare with its invoice's)
      ...(isRefundEvent(type) ? { paymentCurrency: row.currency } : {}),
      ...extra,
    };
    await enqueue(c, OUTBOX, [{ eventId: msg.eventId, topic: BUSINESS_TOPICS.payments, key: userPartitionKey(row.user_id), payload: { ...msg } }]);
  }
}
