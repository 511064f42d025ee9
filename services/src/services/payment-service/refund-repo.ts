/**
 * payment-service's data access for refunds (pay_refunds: migrations 0340, 0428, 0432, 0472). A
 * refund's money moves (refunded total, journal, event) in the transaction that moves its status, with
 * its payment locked first and then the refund: the order refund() takes them in, so the request path,
 * the reconciler and webhooks never wait for each other crosswise.
 */
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import type { PostgresClient, Queryable } from "../../kit";
import { toJson } from "../../business/money";
import { journal, refundIssued, refundReversed } from "./domain/ledger";
import { NEVER_REACHED } from "./domain/refund-settlement";
import { mismatchOf, type ProcessorRefundReport, type ProcessorRefundStatus, type RefundStatus, type RefundStep, refundStep } from "./domain/refund-status";
import type { ProcessorRefund } from "./processor";
import type { RefundIssues } from "./refund-issues";
import type { IntentRow, PaymentRepo } from "./repo";
import { REFUND_DETAIL, type RefundDetailRow, refundView, type RefundView } from "./refund-view";

/**
 * A report applied (refundStep), or `exceeds_payment`: it would book a refund that does not fit into
 * what is left of the payment (the other refunds held or booked): not booked, recorded for an operator.
 */
export type AppliedStep = RefundStep | { kind: "exceeds_payment" };

export interface RefundRow {
  refund_id: string;
  status: RefundStatus;
  amount: string;
  failure_code: string | null;
  /** Set once the processor answered for it (then it is the processor's to settle: never sent again). */
  processor_refund_id: string | null;
  /** What its Idempotency-Key was first sent with (domain/intents.ts refundRequestHash); null: recorded before migration 0517. */
  request_hash: string | null;
}


/** The idempotency key and reason of a refund recorded from the processor's events (recordForeign). */
const FOREIGN_KEY_PREFIX = "processor/";
const FOREIGN_REASON = "made at the processor (its dashboard), not through the platform";

const ROW = "refund_id, status, amount, failure_code, processor_refund_id, request_hash";

/**
 * What a refund holds against its payment, in the payment's currency: its amount, or, booked in another
 * currency at an operator's settle (refund-issue-settle.ts), the amount we asked for (migration 0492).
 */
export const HOLDS = "CASE WHEN currency IS NULL THEN amount ELSE requested_amount END";

export class RefundRepo {
  constructor(
    private readonly pg: PostgresClient,
    private readonly payments: PaymentRepo,
    private readonly issues: RefundIssues,
  ) {}

  async byKey(intentId: string, key: string, c: Queryable = this.pg.pool): Promise<RefundRow | undefined> {
    return (await c.query<RefundRow>(`SELECT ${ROW} FROM pay_refunds WHERE intent_id = $1 AND idempotency_key = $2`, [intentId, key])).rows[0];
  }

  /** Our refund a processor's refund is: by the refund id we sent as metadata, else by its processor id. */
  async find(p: { refundId: string | null; processorRefundId: string }, c: Queryable = this.pg.pool): Promise<(RefundRow & { intent_id: string }) | undefined> {
    const { rows } = await c.query<RefundRow & { intent_id: string }>(
      `SELECT ${ROW}, intent_id FROM pay_refunds WHERE refund_id = $1::uuid OR processor_refund_id = $2 ORDER BY refund_id = $1::uuid DESC NULLS LAST LIMIT 1`,
      [p.refundId, p.processorRefundId],
    );
    return rows[0];
  }

  /** What the intent's refunds hold: the succeeded ones and the pending ones (the processor may be paying those out). */
  async held(intentId: string, c: Queryable): Promise<bigint> {
    const { rows } = await c.query<{ held: string }>(`SELECT coalesce(sum(${HOLDS}), 0)::text AS held FROM pay_refunds WHERE intent_id = $1 AND status IN ('pending', 'succeeded')`, [intentId]);
    return BigInt(rows[0].held);
  }

  /** Reserves a refund (pending); called under lockedIntent after byKey found none with this key. */
  async insert(c: Queryable, p: { refundId: string; intentId: string; key: string; requestHash: string; amount: bigint; reason: string | null }): Promise<RefundRow> {
    const { rows } = await c.query<RefundRow>(
      `INSERT INTO pay_refunds (refund_id, intent_id, idempotency_key, request_hash, amount, reason, status) VALUES ($1,$2,$3,$4,$5,$6,'pending') RETURNING ${ROW}`,
      [p.refundId, p.intentId, p.key, p.requestHash, p.amount.toString(), p.reason],
    );
    return rows[0];
  }

  /**
   * A pending refund's request is sent again (a retry of its key): recorded under the payment's lock
   * before the send, so the sweep does not take it for one the processor can no longer receive; a
   * sweep's claim on it is cleared, so a lookup made before this send settles nothing (refund-claims.ts).
   */
  async resent(c: Queryable, refundId: string): Promise<void> {
    await c.query("UPDATE pay_refunds SET sent_at = now(), reconcile_claim = NULL, reconcile_claimed_until = NULL WHERE refund_id = $1 AND status = 'pending'", [refundId]);
  }

  /** A refund failed as never received by the processor, reserved again for a retry of its key (under the payment's lock). */
  async revive(c: Queryable, refundId: string): Promise<RefundRow> {
    const { rows } = await c.query<RefundRow>(
      `UPDATE pay_refunds SET status = 'pending', failure_code = NULL, processor_status = NULL, processor_status_at = NULL, sent_at = now(), updated_at = now(),
              reconcile_claim = NULL, reconcile_claimed_until = NULL WHERE refund_id = $1 RETURNING ${ROW}`,
      [refundId],
    );
    return rows[0];
  }

  /**
   * A pending refund settled by an operator at the processor's amount and currency (refund-issue-settle.ts),
   * under its payment's lock, before its success is applied: `amount` becomes the processor's, the amount
   * asked for kept as `requested_amount`; `currency` set only when it is not the payment's (migration 0492).
   */
  async rebook(c: Queryable, refundId: string, amount: bigint, currency: string | null): Promise<void> {
    await c.query("UPDATE pay_refunds SET requested_amount = coalesce(requested_amount, amount), amount = $2, currency = $3, updated_at = now() WHERE refund_id = $1 AND status = 'pending'", [refundId, amount.toString(), currency]);
  }

  /**
   * A pending refund the processor never made (it refused the request, or never received it): failed,
   * its amount no longer held against the payment. Nothing was announced for it, so nothing is.
   */
  async fail(refundId: string, failureCode: string, c: Queryable = this.pg.pool): Promise<void> {
    await c.query("UPDATE pay_refunds SET status = 'failed', failure_code = $2, updated_at = now() WHERE refund_id = $1 AND status = 'pending'", [refundId, failureCode]);
  }

  /**
   * Applies the processor's report of a refund (its answer, a list lookup, a webhook event) when it
   * moves the refund forward (domain/refund-status.ts refundStep), with its money in the same
   * transaction: booked when it succeeds (journal `refund:<id>`, refunded total, `payment.refunded`),
   * released when a pending one fails (`payment.refund_failed`), reversed when a succeeded one fails
   * (journal `refund-reversal:<id>`, refunded total back, `payment.refund_reversed`). In `c` when given.
   */
  apply(refundId: string, report: ProcessorRefundReport, c?: PoolClient): Promise<{ step: AppliedStep; intent: IntentRow }> {
    return c ? this.applyIn(c, refundId, report) : this.pg.transaction((t) => this.applyIn(t, refundId, report));
  }

  /**
   * Whether `amount` more fits into what is left of the payment beside its other refunds held or booked
   * (and its refunded total, unless the refund does not move it: `inRefunded` false, another currency).
   */
  private async fits(c: Queryable, intent: IntentRow, refundId: string | null, amount: bigint, inRefunded = true): Promise<boolean> {
    const { rows } = await c.query<{ others: string }>(
      `SELECT coalesce(sum(${HOLDS}), 0)::text AS others FROM pay_refunds WHERE intent_id = $1 AND status IN ('pending', 'succeeded') AND refund_id IS DISTINCT FROM $2::uuid`,
      [intent.intent_id, refundId],
    );
    return BigInt(rows[0].others) + amount <= BigInt(intent.amount) && (!inRefunded || BigInt(intent.refunded) + amount <= BigInt(intent.amount));
  }

  private async applyIn(c: PoolClient, refundId: string, report: ProcessorRefundReport): Promise<{ step: AppliedStep; intent: IntentRow }> {
    const intentId = (await c.query<{ intent_id: string }>("SELECT intent_id FROM pay_refunds WHERE refund_id = $1", [refundId])).rows[0].intent_id;
    const intent = await this.payments.byId(intentId, c, true);
    if (!intent) throw new Error(`intent of refund ${refundId} not found`);
    const r = (
      await c.query<{ amount: string; holds: string; currency: string | null; status: RefundStatus; processor_status: ProcessorRefundStatus | null; at_ms: number | null; failure_code: string | null; processor_refund_id: string | null }>(
        `SELECT amount, ${HOLDS} AS holds, currency, status, processor_status, (extract(epoch FROM processor_status_at) * 1000)::float8 AS at_ms, failure_code, processor_refund_id FROM pay_refunds WHERE refund_id = $1 FOR UPDATE`,
        [refundId],
      )
    ).rows[0];
    const failedHere = r.status === "failed" && r.failure_code === NEVER_REACHED;
    const step = refundStep({ status: r.status, processorStatus: r.processor_status, processorStatusAtMs: r.at_ms, failedHere }, report);
    if (step.kind !== "move") return { step, intent };
    // Decided here, under the payment's lock, before any write: booking a refund past the payment broke
    // pay_intents' CHECK (refunded <= amount) into a 500 (a webhook's: retried by the processor for days).
    if (step.effect === "complete" && !(await this.fits(c, intent, refundId, BigInt(r.holds), r.currency === null))) {
      const issue = { kind: "exceeds_payment", intentId: intent.intent_id, refundId, processorRefundId: r.processor_refund_id ?? report.processorRefundId, amount: BigInt(r.amount), processorStatus: report.status } as const;
      await this.issues.record(c, issue);
      return { step: { kind: "exceeds_payment" }, intent };
    }
    // (its processor id once known; never one another refund of ours has: an event naming another object)
    await c.query(
      `UPDATE pay_refunds SET status = $2, processor_status = $3, processor_status_at = greatest(processor_status_at, $4),
              processor_refund_id = coalesce(processor_refund_id, (SELECT $5::text WHERE NOT EXISTS (SELECT 1 FROM pay_refunds WHERE processor_refund_id = $5))),
              failure_code = CASE WHEN $2 = 'failed' THEN coalesce($6, failure_code) ELSE failure_code END, updated_at = now(),
              succeeded_at = CASE WHEN $2 = 'succeeded' THEN now() ELSE succeeded_at END
        WHERE refund_id = $1`,
      [refundId, step.to, report.status, report.atMs === null ? null : new Date(report.atMs), report.processorRefundId, report.failureCode],
    );
    // Failed at the processor: a success of it that did not fit (an operator's issue) moved no money after all.
    if (step.to === "failed") await this.issues.resolve(c, "exceeds_payment", { refundId, processorRefundId: null });
    if (step.effect === "none") return { step, intent };
    // (booked in another currency at an operator's settle: its journal and events in it, the payment's refunded total not moved)
    const amount = BigInt(r.amount);
    const currency = (r.currency ?? intent.currency) as IntentRow["currency"];
    const m = { processor: intent.processor, userId: intent.user_id, amount, currency, refundId };
    const fields = { refundedAmount: toJson(amount), refundId, failureCode: report.failureCode, currency };
    if (step.effect === "release") {
      await this.payments.emit(c, intent, "payment.refund_failed", { ...fields, eventId: `refund:${refundId}:failed` });
      return { step, intent };
    }
    const sign = step.effect === "complete" ? "+" : "-";
    const moved = r.currency === null ? r.amount : "0";
    const { rows } = await c.query<IntentRow>(`UPDATE pay_intents SET refunded = refunded ${sign} $2, updated_at = now() WHERE intent_id = $1 RETURNING *`, [intent.intent_id, moved]);
    if (step.effect === "complete") {
      await this.payments.post(c, `refund:${refundId}`, "refund", journal(refundIssued(m)));
      await this.payments.emit(c, rows[0], "payment.refunded", { refundedAmount: toJson(amount), refundId, currency, eventId: `refund:${refundId}` });
    } else {
      await this.payments.post(c, `refund-reversal:${refundId}`, "refund_reversal", journal(refundReversed(m)));
      await this.payments.emit(c, rows[0], "payment.refund_reversed", { ...fields, eventId: `refund:${refundId}:reversed` });
    }
    return { step, intent: rows[0] };
  }

  /**
   * A refund of our payment that we never asked for (made on the processor's dashboard, or by another
   * integration: its `refund_id` metadata is none of ours), recorded once by its processor refund id
   * (unique) and then moved as any refund by `report` (apply: booked with its journal, the payment's
   * refunded total and `payment.refunded`). Under the payment's lock, as refund() reserves: a second
   * event of it, concurrently or later, finds the row and changes nothing more. One that does not fit
   * into what is left of the payment here is not recorded as a refund but as an operator's issue
   * (refund-issues.ts, `exceeds_payment`, once): refundId null.
   */
  recordForeign(intentId: string, p: { amount: bigint; report: ProcessorRefundReport }, inTx?: PoolClient): Promise<{ refundId: string | null; step: AppliedStep }> {
    const run = async (c: PoolClient): Promise<{ refundId: string | null; step: AppliedStep }> => {
      const intent = (await this.payments.byId(intentId, c, true))!;
      const known = (await c.query<{ refund_id: string }>("SELECT refund_id FROM pay_refunds WHERE processor_refund_id = $1", [p.report.processorRefundId])).rows[0];
      if (known) return { refundId: known.refund_id, step: (await this.applyIn(c, known.refund_id, p.report)).step };
      const { status, atMs, processorRefundId, failureCode } = p.report;
      // Failed there already: recorded as failed, nothing held, booked nor announced (no money moved), so
      // an older event of it arriving late (its success) is stale instead of booking it.
      const failed = status === "failed" || status === "canceled";
      if (!failed && !(await this.fits(c, intent, null, p.amount))) {
        await this.issues.record(c, { kind: "exceeds_payment", intentId, refundId: null, processorRefundId, amount: p.amount, processorStatus: status });
        return { refundId: null, step: { kind: "exceeds_payment" } };
      }
      const refundId = randomUUID();
      // The key holds a `/`, which no client's Idempotency-Key may (kit idempotencyKeyOf): no request can claim it.
      await c.query(
        `INSERT INTO pay_refunds (refund_id, intent_id, idempotency_key, amount, reason, processor_refund_id, status, processor_status, processor_status_at, failure_code)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
        [refundId, intentId, `${FOREIGN_KEY_PREFIX}${processorRefundId}`, p.amount.toString(), FOREIGN_REASON, processorRefundId, failed ? "failed" : "pending", failed ? status : null, failed && atMs !== null ? new Date(atMs) : null, failed ? failureCode : null],
      );
      if (failed) {
        await this.issues.resolve(c, "exceeds_payment", { refundId: null, processorRefundId });
        return { refundId, step: { kind: "move", to: "failed", effect: "none" } };
      }
      return { refundId, step: (await this.applyIn(c, refundId, p.report)).step };
    };
    return inTx ? run(inTx) : this.pg.transaction(run);
  }

  /**
   * Whether the processor's record of our refund (its answer, a lookup, a webhook's object) is of the
   * refund's amount and currency (domain/refund-status.ts mismatchOf), in `c` when given: its status is
   * applied only then. One that is not is recorded once for an operator (refund-issues.ts
   * `amount_mismatch` / `currency_mismatch`: logged and counted the first time) and changes nothing
   * else (a pending refund stays held, a succeeded one booked); one that is resolves such an issue.
   */
  async matchesProcessor(refundId: string, remote: ProcessorRefund, c: Queryable = this.pg.pool): Promise<boolean> {
    const { rows } = await c.query<{ intent_id: string; amount: string; currency: string; processor_refund_id: string | null }>(
      "SELECT r.intent_id, r.amount, coalesce(r.currency, i.currency) AS currency, r.processor_refund_id FROM pay_refunds r JOIN pay_intents i USING (intent_id) WHERE r.refund_id = $1",
      [refundId],
    );
    const r = rows[0];
    const kind = mismatchOf({ amount: BigInt(r.amount), currency: r.currency }, remote);
    if (!kind) {
      await this.issues.resolve(c, ["amount_mismatch", "currency_mismatch"], { refundId, processorRefundId: null });
      return true;
    }
    const { amount, currency, status } = remote;
    await this.issues.record(c, { kind, intentId: r.intent_id, refundId, processorRefundId: r.processor_refund_id ?? remote.id, amount: BigInt(r.amount), processorStatus: status.slice(0, 32), processorAmount: amount, processorCurrency: currency });
    return false;
  }

  /**
   * A refund made at the processor (none of ours) in another currency than its payment, or of no amount
   * a refund can have: never booked, recorded once for an operator (refund-issues.ts `kind`, refundId
   * null, `amount` the processor's, 0 when it has none); true the first time (then logged and counted).
   */
  recordForeignMismatch(intentId: string, remote: ProcessorRefund, kind: "amount_mismatch" | "currency_mismatch", c: Queryable = this.pg.pool): Promise<boolean> {
    const { id, amount, currency, status } = remote;
    // (its `amount` 0 when it has none a refund can have: the processor's, as it sent it, is `processorAmount`, null if none)
    return this.issues.record(c, { kind, intentId, refundId: null, processorRefundId: id, amount: amount > 0n ? amount : 0n, processorStatus: status.slice(0, 32), processorAmount: amount, processorCurrency: currency });
  }

  /**
   * A re-check's finding of a succeeded refund (refund-reconciler.ts recheck), in its transaction: not
   * listed at the processor is recorded for an operator once (refund-issues.ts `not_found`: logged and
   * counted the first time only, re-checked on as before); listed again resolves that.
   */
  async listedAtProcessor(c: Queryable, refundId: string, listed: boolean): Promise<void> {
    if (listed) return this.issues.resolve(c, "not_found", { refundId, processorRefundId: null });
    const r = (await c.query<{ intent_id: string; amount: string; processor_refund_id: string | null }>("SELECT intent_id, amount, processor_refund_id FROM pay_refunds WHERE refund_id = $1", [refundId])).rows[0];
    await this.issues.record(c, { kind: "not_found", intentId: r.intent_id, refundId, processorRefundId: r.processor_refund_id, amount: BigInt(r.amount), processorStatus: null });
  }

  /** The refunds of these payments, oldest first, by payment id. */
  async ofIntents(intentIds: string[]): Promise<Map<string, RefundView[]>> {
    const out = new Map<string, RefundView[]>(intentIds.map((id) => [id, []]));
    if (!intentIds.length) return out;
    const { rows } = await this.pg.query<RefundDetailRow>(
      `SELECT ${REFUND_DETAIL} FROM pay_refunds WHERE intent_id = ANY($1::uuid[]) ORDER BY created_at, refund_id`,
      [intentIds],
    );
    for (const r of rows) out.get(r.intent_id)?.push(refundView(r));
    return out;
  }
}
