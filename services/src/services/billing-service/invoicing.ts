/**
 * billing-service invoices and their collection: creating an invoice (credit applied), charging it
 * through payment-service with an idempotency key per attempt (`invoice-<id>-<n>`, so a retried
 * cycle never charges twice), and applying the outcome from `payments.events` (payment.succeeded /
 * payment.failed with reference `invoice:<id>`): the invoice is paid, or the dunning retry is
 * scheduled, if it is the charge billing asked for (the invoice's payer, amount and currency). A
 * payment of an invoice dunning gave up (uncollectible) pays it too; one of an invoice void or paid
 * already is refunded, pending until `payment.refunded`, and when that refund does not go out
 * (`payment.refund_failed` / `payment.refund_reversed`) its amount is credit on the subscription
 * (give-backs.ts). Each payment's failure counts as one failed attempt, once (bil_failed_attempts), as does
 * a charge payment-service refuses (`refused:<key>`); a
 * payment that succeeds after its failure counted (closed by payment-service's reconciler, then paid)
 * pays the invoice without counting its attempt again. An event naming an invoice billing does not
 * have is parked (payment-events.ts; migration 0516) and applied by the invoice's creation (`create`), in its
 * transaction, or by the periodic pass (parked-payment-events.ts), which sets it aside past the wait.
 */
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { HttpError } from "../../kit";
import { MAX_AMOUNT, sum, toJson } from "../../business/money";
import { INVOICE_REFERENCE_PREFIX, isRefundEvent, type PaymentEventMsg } from "../../business/events";
import { afterFailedAttempt, type DunningPolicy, statusAfterPayment } from "./domain/invoices";
import { ownerActive } from "./cycle-queries";
import { GiveBacks } from "./give-backs";
import { ChargeHeldError, ChargeRefusedError, type PaymentGateway } from "./payment-gateway";
import { carriedLine, type InvoiceLine, type Plan } from "./domain/subscriptions";
import { parkedIdsOf, takeParked, unmarkProcessed } from "./parking-data";
import { type BillingRepo, type InvoiceRow, subscriptionOf, type SubscriptionRow } from "./repo";

export { ChargeHeldError, ChargeRefusedError, HELD_CHARGE_CODES, type PaymentGateway } from "./payment-gateway";

/**
 * A payment event names an invoice billing does not have, and nobody parks it (onPaymentEvent without
 * `park`): its transaction is rolled back, nothing of it recorded. Its message is the dead letter's reason.
 */
export class UnknownInvoiceError extends Error {
  constructor(
    readonly invoiceId: string,
    readonly event: PaymentEventMsg,
  ) {
    super(`payments.events message: reference: names invoice ${invoiceId}, which billing does not have`);
    this.name = "UnknownInvoiceError";
  }
}

/** The invoice a payment event's `reference` names (`invoice:<id>`), or "" (not billing's). */
export function invoiceIdOf(ev: Pick<PaymentEventMsg, "reference">): string {
  return ev.reference?.startsWith(INVOICE_REFERENCE_PREFIX) ? ev.reference.slice(INVOICE_REFERENCE_PREFIX.length) : "";
}

/** bil_failed_attempts' `intent_id` of a charge payment-service refused (no payment made): this and the attempt's key. */
export const REFUSED_ATTEMPT_PREFIX = "refused:";

export class Invoicing {
  private readonly giveBacks: GiveBacks;
  constructor(
    private readonly repo: BillingRepo,
    private readonly payments: PaymentGateway,
    private readonly log: Logger,
    private readonly dunning: DunningPolicy,
    private readonly published: () => void,
  ) {
    this.giveBacks = new GiveBacks(payments, log);
  }

  private async planOrThrow(id: string, c: PoolClient): Promise<Plan> {
    const p = await this.repo.plan(id, c);
    if (!p) throw new HttpError(404, "PLAN_NOT_FOUND", `plan ${id} does not exist`, "planId");
    return p;
  }

  /**
   * A new invoice of `sub` for `lines`, the subscription's credit applied (and consumed). One with
   * nothing left to pay (a zero amount, or all of it from credit) is paid as it is created, and the
   * subscription moves as after a payment: before, only a payment event moved it, so a free plan or
   * an invoice paid from credit left it incomplete for ever. What earlier invoices carried is a line
   * of this one; one owing less than the processor charges is `carried` in turn (not charged: the
   * processor refused it every time, and dunning made the subscription unpaid for a few cents), and
   * the subscription moves as after a payment too. A line or total beyond MAX_AMOUNT (far below
   * 2^53: an invoice's amounts are JSON numbers) is refused, 409 INVOICE_TOO_LARGE: the usage billed
   * is metered, not bounded, and such an invoice could not be sent, let alone charged. An HttpError,
   * as a user's own request (a plan change, a cancel's final invoice) can build it: a 500 before;
   * the cycle sets the subscription aside (isolation.ts) as for any row that fails.
   */
  async create(c: PoolClient, sub: SubscriptionRow, plan: Plan, lines: InvoiceLine[], invoiceId = randomUUID()): Promise<InvoiceRow> {
    const carried = BigInt(sub.carried);
    const all = carried > 0n ? [...lines, carriedLine(carried, new Date())] : lines;
    const total = sum(all.map((l) => l.amount));
    if (total > MAX_AMOUNT || all.some((l) => l.amount > MAX_AMOUNT || -l.amount > MAX_AMOUNT))
      throw new HttpError(409, "INVOICE_TOO_LARGE", `an invoice of subscription ${sub.subscription_id} would total ${total} minor units, above ${MAX_AMOUNT}: not created`);
    const { invoice, creditBalanceAfter } = await this.repo.createInvoice(c, invoiceId, sub, plan.currency, all);
    const carriedAfter = invoice.status === "carried" ? BigInt(invoice.amount_due) : 0n;
    if (creditBalanceAfter !== BigInt(sub.credit_balance) || carriedAfter !== carried)
      await c.query("UPDATE bil_subscriptions SET credit_balance = $2, carried = $3 WHERE subscription_id = $1", [sub.subscription_id, creditBalanceAfter.toString(), carriedAfter.toString()]);
    await this.repo.emit(c, "invoice.created", sub, plan, { eventId: `${invoice.invoice_id}:created`, invoiceId: invoice.invoice_id, amountDue: toJson(BigInt(invoice.amount_due)) });
    if (invoice.status === "paid" || invoice.status === "carried") await this.paid(c, invoice, plan, {});
    return (await this.applyParked(c, invoice.invoice_id)) > 0 ? ((await this.repo.invoice(invoice.invoice_id, c)) ?? invoice) : invoice;
  }

  /**
   * The payment events parked for the invoice before it existed (payment-events.ts), applied in the transaction creating it, each
   * under a savepoint: one that fails stays parked (the periodic pass sets it aside) and the invoice is created all the same; how many.
   */
  private async applyParked(c: PoolClient, invoiceId: string): Promise<number> {
    const ids = await parkedIdsOf(c, invoiceId);
    for (const eventId of ids) {
      await c.query("SAVEPOINT parked_payment_event");
      try {
        const ev = await takeParked(c, eventId);
        if (ev) await this.onPaymentEvent(c, ev);
        await c.query("RELEASE SAVEPOINT parked_payment_event");
      } catch (err) {
        await c.query("ROLLBACK TO SAVEPOINT parked_payment_event");
        this.log.warn({ eventId, invoiceId, err: { message: (err as Error).message } }, "a parked payment event failed with its invoice's creation: left to the periodic pass");
      }
    }
    return ids.length;
  }

  /**
   * The invoice (marked paid) was paid: the subscription's status after a payment, unless another of
   * its invoices is still open (it stays past_due, say, until that one is paid too), or, for an
   * unpaid one, another is uncollectible (it is unpaid for that one too), and the events. An unpaid
   * subscription is not renewed: brought back after its period ended, it is paused, and the next
   * cycle renews it from then (domain renew), not for the periods it was stopped.
   */
  private async paid(c: PoolClient, inv: InvoiceRow, plan: Plan, extra: { attempts?: number }): Promise<void> {
    const cur = (await this.repo.subscription(inv.subscription_id, c, true))!;
    const owed = await this.repo.openInvoiceOf(c, cur.subscription_id, cur.status === "unpaid");
    const status = owed ? cur.status : statusAfterPayment(cur.status, "paid");
    const now = new Date();
    const pausedAt = cur.status === "unpaid" && cur.period_end <= now ? now : cur.paused_at;
    const sub = status === cur.status ? cur : await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status, pausedAt });
    // A carried invoice was not paid: no "paid" notice (its amount is on the next invoice).
    if (inv.status !== "carried") await this.repo.emit(c, "invoice.paid", sub, plan, { eventId: `${inv.invoice_id}:paid`, invoiceId: inv.invoice_id, amountPaid: toJson(BigInt(inv.amount_due)), ...extra });
    if (sub.status !== cur.status) await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:${sub.status}:${inv.invoice_id}` });
  }

  /**
   * One charge attempt, to the user's current payment method; the outcome arrives on payments.events.
   * Only while the user's account exists and is not disabled (Billing.runCycle), read here: the
   * cycle's list was read earlier, and a request of the user's passed the gateway before an admin may
   * have deleted the account (a subscribe charged a deleted account's card when only the cycle's
   * charges asked). An invoice left open so is voided by the cycle (deleted) or charged after the enable.
   */
  async charge(attempted: InvoiceRow): Promise<void> {
    // `attempted` was read earlier (the cycle charges its list one HTTP call after another): an
    // invoice voided since (its user cancelled) or attempted since is not charged from that copy.
    // Before, the card was charged for a void invoice and the payment only logged.
    const inv = await this.repo.invoice(attempted.invoice_id);
    if (!inv || inv.status !== "open" || inv.attempts !== attempted.attempts) return;
    if (!(await ownerActive(this.repo.pg.pool, inv.user_id))) return;
    // The invoice's subscription exists (a foreign key): so does a payment method of its user.
    const paymentMethod = (await this.repo.currentPaymentMethod(inv.user_id))!;
    const idempotencyKey = `invoice-${inv.invoice_id}-${inv.attempts + 1}`;
    try {
      const r = await this.payments.charge({
        userId: inv.user_id,
        amount: BigInt(inv.amount_due),
        currency: inv.currency,
        paymentMethod,
        reference: `${INVOICE_REFERENCE_PREFIX}${inv.invoice_id}`,
        idempotencyKey,
        description: `Invoice ${inv.invoice_id}`,
      });
      // No retry is due while this attempt's outcome is on its way, unless the outcome already came:
      // payments.events can overtake the answer to this request (a decline recorded first, then a
      // NULL here, left the invoice open with no next attempt: dunning stopped).
      await this.repo.pg.query(
        "UPDATE bil_invoices SET last_payment_id = $2, next_attempt_at = CASE WHEN attempts = $3 THEN NULL ELSE next_attempt_at END WHERE invoice_id = $1 AND status = 'open'",
        [inv.invoice_id, r.intentId, inv.attempts],
      );
    } catch (err) {
      if (err instanceof ChargeHeldError) {
        // Not failed, and not to be sent again (another key would charge the card twice): held until the
        // payment's outcome event (migration 0508); logged once, when the hold is recorded.
        const held = await this.repo.pg.query("UPDATE bil_invoices SET charge_held_at = now(), next_attempt_at = NULL, updated_at = now() WHERE invoice_id = $1 AND status = 'open' AND attempts = $2 AND charge_held_at IS NULL", [inv.invoice_id, inv.attempts]);
        if (held.rowCount) this.log.warn({ invoiceId: inv.invoice_id, code: err.code }, "charge held for an operator's review by payment-service: not charged again until its outcome comes");
        return;
      }
      if (err instanceof ChargeRefusedError) {
        // The same request would be refused again (a user holding this attempt's key had dunning
        // retry it for ever): a failed attempt, the next one is scheduled with its own key.
        this.log.warn({ invoiceId: inv.invoice_id, code: err.code, err: { message: err.message } }, "charge refused by payment-service; counted as a failed attempt");
        if (await this.repo.pg.transaction((c) => this.refused(c, inv, idempotencyKey))) this.published();
        return;
      }
      // Not charged (or unknown): the next cycle retries with the same key, which cannot charge twice.
      this.log.warn({ invoiceId: inv.invoice_id, err: { message: (err as Error).message } }, "charge request failed; retried next cycle");
    }
  }

  /**
   * Records the refused attempt, unless the invoice moved on meanwhile (an outcome came, another
   * replica). Counted in bil_failed_attempts as a payment's failure is (under `refused:<its key>`: no
   * payment was made), once: before, only failed payments were, so the table missed the attempts a
   * refusal had counted.
   */
  private async refused(c: PoolClient, attempted: InvoiceRow, idempotencyKey: string): Promise<boolean> {
    const inv = await this.repo.invoice(attempted.invoice_id, c, true);
    if (!inv || inv.status !== "open" || inv.attempts !== attempted.attempts) return false;
    if (!(await this.recordFailure(c, inv, `${REFUSED_ATTEMPT_PREFIX}${idempotencyKey}`))) return false;
    await this.failedAttempt(c, inv, new Date());
    return true;
  }

  /**
   * Applies one payments.events message (deduped by event id). One naming an invoice billing does not have is
   * handed to `park` (kept until the invoice appears), its event id not marked processed; without `park`, it
   * throws UnknownInvoiceError.
   */
  async onPaymentEvent(c: PoolClient, ev: PaymentEventMsg, park?: (c: PoolClient) => Promise<void>): Promise<boolean> {
    const invoiceId = invoiceIdOf(ev);
    const aboutRefund = isRefundEvent(ev.type);
    if (!/^[0-9a-f-]{36}$/.test(invoiceId) || (ev.type !== "payment.succeeded" && ev.type !== "payment.failed" && !aboutRefund)) return false;
    if (!(await this.repo.markProcessed(c, ev.eventId))) return false;
    const inv = await this.repo.invoice(invoiceId, c, true);
    // Not acknowledged as done: parked, applied once the invoice appears, else set aside (before session 57: marked processed, a log line).
    if (!inv) {
      if (!park) throw new UnknownInvoiceError(invoiceId, ev);
      await unmarkProcessed(c, ev.eventId);
      await park(c);
      return false;
    }
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id };
    // (a refund event's currency is the refund's: one an operator settled in the processor's other
    // currency is still this payment's, told in that currency; give-backs.ts compares what it can. The
    // payment's is `paymentCurrency`, compared with the invoice's; a message without it, from before, is taken as in the invoice's)
    if (!isChargeOf(inv, aboutRefund ? { ...ev, currency: ev.paymentCurrency ?? inv.currency } : ev)) {
      this.log.warn(fields, "payment event names an invoice but is not its charge (payer, amount or currency differ): ignored");
      return false;
    }
    if (ev.type === "payment.refund_adjusted") return this.giveBacks.adjusted(c, inv, ev);
    if (aboutRefund) return ev.type === "payment.refunded" ? this.giveBacks.refunded(c, inv, ev) : this.giveBacks.givenBackNot(c, inv, ev);
    if (ev.type === "payment.succeeded" && (inv.status === "open" || inv.status === "uncollectible")) {
      // A late payment of an uncollectible invoice is that invoice's payment: the debt was real and
      // is now paid (before, it was logged and left to an operator, the money in limbo). Its attempt
      // was counted when it failed; an open invoice's attempt is counted now, unless this payment's
      // failure was counted already: closed by payment-service's reconciler (never_reached_processor)
      // and then paid, it counts as paid only (before, as a failed attempt and a paid one).
      const counted = inv.status === "uncollectible" || (await this.failureCounted(c, inv.invoice_id, ev.intentId));
      const attempts = counted ? inv.attempts : inv.attempts + 1;
      await c.query(
        "UPDATE bil_invoices SET status = 'paid', attempts = $2, paid_at = now(), next_attempt_at = NULL, last_payment_id = $3, updated_at = now() WHERE invoice_id = $1",
        [inv.invoice_id, attempts, ev.intentId],
      );
      const { plan_id } = (await this.repo.subscription(inv.subscription_id, c, true))!;
      await this.paid(c, inv, await this.planOrThrow(plan_id, c), { attempts });
      return true;
    }
    if (inv.status !== "open") {
      if (ev.type === "payment.succeeded") await this.giveBacks.giveBack(c, inv, ev);
      return false;
    }
    // (a payment whose failure counted already, told again under another event id: counts nothing more)
    if (!(await this.recordFailure(c, inv, ev.intentId))) {
      this.log.info(fields, "payment failure of an invoice counted already: nothing more to count");
      return false;
    }
    await this.failedAttempt(c, inv, new Date(ev.ts));
    return true;
  }

  /** Records that payment `intentId` failed as attempt `inv.attempts + 1` of the invoice (migration 0487): false when its failure counted already. */
  private async recordFailure(c: PoolClient, inv: InvoiceRow, intentId: string): Promise<boolean> {
    const r = await c.query("INSERT INTO bil_failed_attempts (invoice_id, intent_id, attempt) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [inv.invoice_id, intentId, inv.attempts + 1]);
    return r.rowCount === 1;
  }

  /** Whether payment `intentId`'s failure counted as an attempt of the invoice (recordFailure). */
  private async failureCounted(c: PoolClient, invoiceId: string, intentId: string): Promise<boolean> {
    return (await c.query("SELECT 1 FROM bil_failed_attempts WHERE invoice_id = $1 AND intent_id = $2", [invoiceId, intentId])).rowCount === 1;
  }

  /** Attempt `inv.attempts + 1` of the invoice (locked, open) failed at `at`: dunning's next step. */
  private async failedAttempt(c: PoolClient, inv: InvoiceRow, at: Date): Promise<void> {
    const cur = (await this.repo.subscription(inv.subscription_id, c, true))!;
    const plan = await this.planOrThrow(cur.plan_id, c);
    const attempts = inv.attempts + 1;
    const decision = afterFailedAttempt(attempts, at, this.dunning);
    const giveUp = decision.action === "give_up";
    await c.query("UPDATE bil_invoices SET status = $2, attempts = $3, next_attempt_at = $4, charge_held_at = NULL, updated_at = now() WHERE invoice_id = $1", [inv.invoice_id, giveUp ? "uncollectible" : "open", attempts, giveUp ? null : decision.at]);
    const sub = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status: statusAfterPayment(cur.status, giveUp ? "gave_up" : "failed") });
    await this.repo.emit(c, giveUp ? "invoice.uncollectible" : "invoice.payment_failed", sub, plan, {
      eventId: `${inv.invoice_id}:failed:${attempts}`,
      invoiceId: inv.invoice_id,
      amountDue: toJson(BigInt(inv.amount_due)),
      attempts,
      nextAttemptAt: giveUp ? null : decision.at.toISOString(),
    });
    if (sub.status !== cur.status) await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:${sub.status}:${inv.invoice_id}:${attempts}` });
  }
}

/** Whether a payment event is the charge of this invoice: billing charges its payer, amount and currency. */
export function isChargeOf(inv: Pick<InvoiceRow, "user_id" | "amount_due" | "currency">, ev: Pick<PaymentEventMsg, "userId" | "amount" | "currency">): boolean {
  return ev.userId === inv.user_id && ev.currency === inv.currency && Number.isSafeInteger(ev.amount) && BigInt(ev.amount) === BigInt(inv.amount_due);
}
