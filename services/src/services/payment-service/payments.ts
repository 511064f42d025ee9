/**
 * payment-service use cases: charge with an idempotency key, refund, apply a processor webhook (webhooks.ts),
 * reconcile. Order of writes for a charge: (1) our intent row is committed in `created`, (2) the
 * processor is called with the intent id as its idempotency key, (3) the answer is committed with
 * the ledger journal and the event. A crash between (2) and (3) leaves a `created` row that
 * reconciliation (or the processor's webhook) settles: the money is neither lost nor counted twice.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { accountDeleted, HttpError } from "../../kit";
import type { ChargeLock, ChargeLocks } from "./charge-locks";
import { checkRefund, type IntentOrigin, type IntentRequest, refundRequestHash, requestHash, sameRefundRequest, statusFromProcessor } from "./domain/intents";
import { reconcileOne, type ReconcileAction } from "./domain/reconcile";
import { NEVER_REACHED } from "./domain/refund-settlement";
import { reportOf } from "./domain/refund-status";
import type { PaymentMethods } from "./payment-methods";
import type { CardProcessor, ProcessorEvent, ProcessorIntent } from "./processor";
import type { RefundIssues } from "./refund-issues";
import type { RefundRepo } from "./refund-repo";
import { type IntentRow, PaymentRepo } from "./repo";
import { applyWebhook, type WebhookOutcome } from "./webhooks";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PaymentsOptions {
  /** How long a request with an in-flight idempotency key waits for the first one's outcome. */
  idempotentWaitMs: number;
  /** Age before an open intent is looked up at the processor (PAYMENT_RECONCILE_GRACE_MS). */
  reconcileGraceMs: number;
  /**
   * The in-flight bound of one processor request (domain/refund-settlement.ts inFlightBoundMs): an
   * intent unknown to the processor is closed as never_reached_processor only once older than this
   * (and the grace), and one closed so is looked up again for as long after.
   */
  inFlightMs: number;
  /** How long an intent closed as never_reached_processor is looked up again (PAYMENT_NEVER_REACHED_RECHECK_DAYS). */
  neverReachedRecheckMs: number;
}

/** The answer to a charge the processor answered with another amount or currency (Payments.heldForReview). */
const chargeMismatch = () =>
  new HttpError(502, "PROCESSOR_MISMATCH", "the card processor answered this payment with another amount or currency than asked: it is not booked and is held for review by an operator; do not pay it again with another Idempotency-Key before it is resolved");

/**
 * A retry of the key of a charge held for an operator (chargeMismatch's): 409, not a 502 the caller
 * retries (billing's cycle retried such an invoice's charge every pass). Its outcome comes as a payment
 * event once the processor's record matches or is canceled; another key would charge again.
 */
const chargeHeld = () =>
  new HttpError(409, "CHARGE_HELD_FOR_REVIEW", "this payment is held for an operator's review (the card processor answered it with another amount or currency than asked) and is not booked; its outcome comes as a payment event once resolved: do not pay it again with another Idempotency-Key", "idempotency-key");

/** How often an intent closed as never_reached_processor, or held for an operator, is looked up again once past the in-flight bound. */
const NEVER_REACHED_RECHECK_EVERY_MS = 3_600_000;

export class Payments {
  constructor(
    private readonly repo: PaymentRepo,
    private readonly processor: CardProcessor | undefined,
    private readonly log: Logger,
    private readonly opts: PaymentsOptions,
    private readonly published: () => void,
    private readonly methods: PaymentMethods,
    private readonly refunds: RefundRepo,
    private readonly chargeLocks: ChargeLocks,
    private readonly issues: RefundIssues,
  ) {}

  private requireProcessor(): CardProcessor {
    if (!this.processor) throw new HttpError(404, "PROCESSOR_NOT_CONFIGURED", "the card processor is not configured on this deployment");
    return this.processor;
  }

  /**
   * Charges once per (user, origin, idempotency key); concurrent duplicates wait for the first outcome.
   * Only a method saved to the payer (./payment-methods.ts), charged to the payer's customer.
   */
  async charge(origin: IntentOrigin, userId: string, key: string, req: IntentRequest): Promise<{ row: IntentRow; replay: boolean }> {
    const processor = this.requireProcessor();
    const hash = requestHash(userId, req);
    // A key used before is answered its first request (or a 409), whatever changed since: checked
    // first, a retry after the card was removed was a 404 PAYMENT_METHOD_NOT_FOUND for a payment made
    // (billing takes such a refusal for a failed attempt of its invoice). A new key still needs a saved card.
    if (await this.repo.byKey(userId, origin, key)) return { row: await this.awaitExisting(userId, origin, key, hash), replay: true };
    const customerId = await this.methods.customerFor(userId, req.paymentMethod);
    const intentId = randomUUID();
    // The connection the call will hold the account's lock on (./charge-locks.ts), taken first: none
    // free within the wait is a 503 with nothing inserted, the same key fit to be sent again.
    const lock = await this.chargeLocks.acquire(userId).catch(async (busy: unknown) => {
      // A duplicate of a key whose charge took a lock meanwhile waits for that charge's outcome instead.
      if (await this.repo.byKey(userId, origin, key)) return undefined;
      throw busy;
    });
    if (!lock) return { row: await this.awaitExisting(userId, origin, key, hash), replay: true };
    try {
      return await this.chargeLocked(lock, processor, { intentId, userId, origin, key, hash, req, customerId });
    } finally {
      lock.release();
    }
  }

  private async chargeLocked(lock: ChargeLock, processor: CardProcessor, p: { intentId: string; userId: string; origin: IntentOrigin; key: string; hash: string; req: IntentRequest; customerId: string }): Promise<{ row: IntentRow; replay: boolean }> {
    const { intentId, userId, origin, key, hash, req, customerId } = p;
    const created = await this.repo.insertIntent({ intentId, userId, origin, key, hash, req, processor: processor.name });
    if (created === "account_deleted") throw accountDeleted(userId, "it is charged no more");
    // Not inserted: the key was taken meanwhile (its charge has a lock connection of its own).
    if (!created) {
      lock.release();
      return { row: await this.awaitExisting(userId, origin, key, hash), replay: true };
    }
    // The account's lock again, held through the processor call: a deletion that committed after the
    // insert is seen here (nothing is sent: the intent is canceled), a later one waits for the answer.
    let remote;
    try {
      const sent = await lock.whileAccountLive(userId, (c) => this.repo.closedBeforeSend(c, intentId), () =>
        processor.createAndConfirm({ intentId, userId, customerId, amount: req.amount, currency: req.currency, paymentMethod: req.paymentMethod, description: req.description }),
      );
      lock.release();
      if (sent === "account_deleted") return await this.cancelUnsent(intentId, userId);
      // Closed by reconciliation before it was sent (never sent now): answered as it is.
      if ("closed" in sent) return { row: sent.closed, replay: false };
      remote = sent.sent;
    } catch (err) {
      lock.release();
      if (err instanceof HttpError) throw err;
      if (processor.isClientError(err)) {
        const { row } = await this.repo.settle(intentId, "failed", { id: null, fee: 0n, failureCode: processor.failureCodeOf(err), failureMessage: err.message });
        this.published();
        return { row, replay: false };
      }
      // Unknown outcome (timeout, 5xx, network): the intent stays `created`; reconciliation asks the processor.
      this.log.warn({ intentId, err: { message: (err as Error).message } }, "processor outcome unknown; left for reconciliation");
      return { row: created, replay: false };
    }
    if (remote.amount !== req.amount || remote.currency !== req.currency) return this.heldForReview(intentId, req, remote);
    const { row } = await this.repo.settle(intentId, statusFromProcessor(remote.status), { id: remote.id, fee: remote.fee, failureCode: remote.failureCode, failureMessage: remote.failureMessage });
    this.published();
    return { row, replay: false };
  }

  /**
   * The processor answered our charge with a PaymentIntent of another amount or currency than asked:
   * whatever its status, nothing is booked (before, its status was: a charge of 10.00 answered for our
   * 50.00 was booked succeeded at 50.00, billing's invoice paid). The payment stays `created` with the
   * processor's id recorded (reconciliation and the webhooks compare it too and book nothing), an
   * operator's issue is recorded once (refund-issues.ts `charge_mismatch`), and the caller is answered
   * 502, as is a retry of the key (awaitExisting).
   */
  private async heldForReview(intentId: string, req: IntentRequest, remote: ProcessorIntent): Promise<never> {
    await this.repo.transaction(async (c) => {
      await this.repo.recordProcessorId(c, intentId, remote.id);
      await this.issues.record(c, { kind: "charge_mismatch", intentId, refundId: null, processorRefundId: null, processorIntentId: remote.id || null, amount: req.amount, processorStatus: remote.status.slice(0, 32) || null, processorAmount: remote.amount, processorCurrency: remote.currency });
    });
    throw chargeMismatch();
  }

  /** An intent never sent: its account was deleted after the insert. Canceled (no charge, no payment event), answered 403 ACCOUNT_DELETED. */
  private async cancelUnsent(intentId: string, userId: string): Promise<never> {
    await this.repo.settle(intentId, "canceled", { id: null, fee: 0n, failureCode: "account_deleted", failureMessage: "the account was deleted before the charge was sent" }, { quiet: true });
    throw accountDeleted(userId, "it is charged no more");
  }

  private async awaitExisting(userId: string, origin: IntentOrigin, key: string, hash: string): Promise<IntentRow> {
    const deadline = Date.now() + this.opts.idempotentWaitMs;
    for (;;) {
      const row = await this.repo.byKey(userId, origin, key);
      if (!row) throw new Error("idempotency key vanished");
      if (row.request_hash !== hash) throw new HttpError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request", "idempotency-key");
      if (row.status !== "created") return row;
      if (await this.repo.chargeMismatched(row.intent_id)) throw chargeHeld();
      if (Date.now() >= deadline) throw new HttpError(409, "IDEMPOTENCY_KEY_IN_USE", "a request with this Idempotency-Key is still in progress; retry later", "idempotency-key");
      await sleep(50);
    }
  }

  /**
   * Refunds `amount` (all that is left when undefined). The check and the reservation (a pending
   * refund) are one transaction with the intent locked, counting pending refunds as well as
   * succeeded ones: two refunds at once (two admins, or an admin and billing's automatic refund)
   * cannot both fit into what is left, and the loser is refused before any processor call.
   */
  async refund(intentId: string, key: string, amount: bigint | undefined, reason: string | null): Promise<{ intent: IntentRow; refundId: string }> {
    const processor = this.requireProcessor();
    const hash = refundRequestHash(amount, reason);
    const { intent, refund } = await this.repo.lockedIntent(intentId, async (c, intent) => {
      if (!intent) throw new HttpError(404, "NOT_FOUND", "payment not found");
      // A retry with the key of a refund already made answers as the first time did; the checks below
      // would otherwise see the money already refunded and refuse it.
      const earlier = await this.refunds.byKey(intentId, key, c);
      if (earlier) {
        if (!sameRefundRequest(earlier.request_hash, BigInt(earlier.amount), amount, reason))
          throw new HttpError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a refund of another amount or reason", "idempotency-key");
        if (earlier.status === "failed" && earlier.failure_code === NEVER_REACHED) {
          // The processor never received it (refund-reconciler.ts): sent again as if for the first
          // time (billing's automatic refund retries its key), if it still fits into what is left.
          const check = checkRefund({ status: intent.status, amount: BigInt(intent.amount), refunded: await this.refunds.held(intentId, c) }, BigInt(earlier.amount));
          if (!check.ok) throw new HttpError(409, check.code, check.message, "amount");
          return { intent, refund: await this.refunds.revive(c, earlier.refund_id) };
        }
        if (earlier.status === "failed") throw new HttpError(409, "REFUND_REJECTED", "the processor rejected this refund", "amount");
        // succeeded, or pending at the processor (it answered: its webhook or reconciliation settles it):
        // answered below; pending with no answer (the first call's outcome is unknown): asked again with
        // the same refund id, which is the processor's idempotency key, the send recorded first
        // (refund-reconciler.ts fails a pending refund only once no request for it can be on its way).
        if (earlier.status === "pending" && earlier.processor_refund_id === null) await this.refunds.resent(c, earlier.refund_id);
        return { intent, refund: earlier };
      }
      const held = await this.refunds.held(intentId, c);
      const want = amount ?? BigInt(intent.amount) - held;
      if (want <= 0n) throw new HttpError(409, "REFUND_EXCEEDS_PAYMENT", "nothing left to refund", "amount");
      const check = checkRefund({ status: intent.status, amount: BigInt(intent.amount), refunded: held }, want);
      if (!check.ok) throw new HttpError(409, check.code, check.message, "amount");
      return { intent, refund: await this.refunds.insert(c, { refundId: randomUUID(), intentId, key, requestHash: hash, amount: want, reason }) };
    });
    const answer = async () => ({ intent: (await this.repo.byId(intentId))!, refundId: refund.refund_id });
    if (refund.status === "succeeded" || refund.processor_refund_id !== null) return answer();
    let r;
    try {
      r = await processor.refund({ processorIntentId: intent.processor_intent_id!, amount: BigInt(refund.amount), refundId: refund.refund_id });
    } catch (err) {
      if (processor.isClientError(err)) {
        await this.refunds.fail(refund.refund_id, processor.failureCodeOf(err));
        throw new HttpError(409, "REFUND_REJECTED", `the processor rejected the refund: ${err.message}`, "amount");
      }
      // Unknown outcome (timeout, 5xx, network): the refund stays pending, held against the payment,
      // and refund-reconciler.ts settles it from the processor's record.
      this.log.warn({ refundId: refund.refund_id, intentId, err: { message: (err as Error).message } }, "processor refund outcome unknown; left for reconciliation");
      throw new HttpError(502, "PROCESSOR_UNAVAILABLE", "the processor did not answer; the refund is pending and is settled by reconciliation (retry with the same Idempotency-Key)");
    }
    // Of another amount or currency than asked: nothing applied, the refund stays pending and held (an
    // operator's issue, recorded and logged once: refund-repo.ts matchesProcessor); answered as pending.
    if (!(await this.refunds.matchesProcessor(refund.refund_id, r))) return answer();
    // Booked only when the processor says it succeeded; `pending` (or requires_action) stays held until
    // its webhook (refund-events.ts) or reconciliation settles it. The answer has no time: it moves the
    // refund forward only (an idempotent replay answers the first, maybe older, status).
    const report = reportOf(r, null);
    if (!report) this.log.warn({ refundId: refund.refund_id, status: r.status }, "processor answered a refund status it does not define; left pending for reconciliation");
    const step = report && (await this.refunds.apply(refund.refund_id, report)).step;
    this.published();
    // Failed or canceled in its answer: a refusal, as one the processor answers with an error.
    if (step?.kind === "move" && step.to === "failed") throw new HttpError(409, "REFUND_REJECTED", `the processor ${report!.status} the refund (${report!.failureCode})`, "amount");
    return answer();
  }

  /** Applies a verified processor event once, its event id recorded with its change (webhooks.ts). */
  async applyWebhook(ev: ProcessorEvent): Promise<WebhookOutcome> {
    return applyWebhook({ repo: this.repo, refunds: this.refunds, issues: this.issues, log: this.log }, ev, this.published);
  }

  /**
   * One reconciliation pass over intents open longer than the grace period, and those it closed as
   * never_reached_processor (repo.ts staleOpen: a charge the processor made of one after all is booked,
   * whenever it reports it: `settle` from failed, domain/intents.ts canSettle). Each is marked looked up
   * before the processor is asked, so one whose lookup fails goes behind the others; one the processor
   * refuses to look up (a client error) is logged and left to a later pass (`lookup_refused`), the
   * others still looked up; any other failure (the processor unreachable) ends the pass.
   */
  async reconcile(limit = 200): Promise<ReconcileAction[]> {
    const processor = this.requireProcessor();
    const actions: ReconcileAction[] = [];
    const { inFlightMs, reconcileGraceMs } = this.opts;
    const closeAfterMs = Math.max(reconcileGraceMs, inFlightMs);
    for (const row of await this.repo.staleOpen(reconcileGraceMs, limit, { inFlightMs, withinMs: this.opts.neverReachedRecheckMs, everyMs: NEVER_REACHED_RECHECK_EVERY_MS })) {
      await this.repo.markReconciled(row.intent_id);
      const customerId = await this.methods.customerOf(row.user_id);
      let remote;
      try {
        remote = await processor.findByIntentId(row.intent_id, customerId === undefined ? undefined : { customerId, createdAtMs: row.created_at.getTime() }, row.processor_intent_id);
      } catch (err) {
        if (!processor.isClientError(err)) throw err;
        this.log.warn({ intentId: row.intent_id, code: processor.failureCodeOf(err) }, "the processor refused to look up an intent; a later pass asks again");
        actions.push({ kind: "lookup_refused", intentId: row.intent_id });
        continue;
      }
      const local = { id: row.intent_id, status: row.status, amount: BigInt(row.amount), currency: row.currency, createdAtMs: row.created_at.getTime(), failureCode: row.failure_code };
      let action = reconcileOne(local, remote, Date.now(), closeAfterMs);
      if (action.kind === "settle") {
        await this.repo.settle(row.intent_id, action.to, { id: action.remote.id, fee: action.remote.fee, failureCode: remote?.failureCode ?? null, failureMessage: remote?.failureMessage ?? null });
        if (row.status === "failed") this.log.warn({ intentId: row.intent_id, to: action.to }, "the processor reports a payment closed as never_reached_processor: its report applied");
        // (a charge held for a mismatch: its issue is over, the processor's record matching ours now or canceled)
        await this.repo.transaction((c) => this.issues.resolve(c, "charge_mismatch", { intentId: row.intent_id, refundId: null, processorRefundId: null }));
      } else if (action.kind === "never_reached_processor") {
        const closed = await this.repo.settle(row.intent_id, "failed", { id: null, fee: 0n, failureCode: NEVER_REACHED, failureMessage: "the processor has no record of this payment" }, { inferred: true });
        if (closed.sending) action = { kind: "in_flight", intentId: row.intent_id };
      } else if (action.kind === "mismatch" && remote && (remote.amount !== local.amount || remote.currency !== local.currency)) {
        // Held for an operator: recorded (and logged) once, then only counted at its hourly lookup (repo.ts staleOpen).
        const issue = { kind: "charge_mismatch", intentId: row.intent_id, refundId: null, processorRefundId: null, processorIntentId: remote.id || null, amount: local.amount } as const;
        await this.repo.transaction((c) => this.issues.record(c, { ...issue, processorStatus: remote.status.slice(0, 32) || null, processorAmount: remote.amount, processorCurrency: remote.currency }));
      } else if (action.kind === "mismatch") this.log.error({ intentId: row.intent_id, reason: action.reason }, "reconciliation mismatch: needs an operator");
      actions.push(action);
    }
    if (actions.some((a) => a.kind === "settle" || a.kind === "never_reached_processor")) this.published();
    return actions;
  }
}
