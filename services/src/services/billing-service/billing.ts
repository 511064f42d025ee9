/**
 * billing-service use cases. State changes and their `billing.events` commit together (outbox);
 * charges go to payment-service with an idempotency key per invoice attempt
 * (`invoice-<id>-<n>`), so a retried cycle never charges twice; the outcome comes back on
 * `payments.events` (payment.succeeded / payment.failed with reference `invoice:<id>`), which
 * marks the invoice paid or schedules the dunning retry, if it is the charge billing asked for: the
 * invoice's payer, amount and currency.
 */
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { HttpError } from "../../kit";
import { toJson } from "../../business/money";
import { INVOICE_REFERENCE_PREFIX, type PaymentEventMsg } from "../../business/events";
import { afterFailedAttempt, type DunningPolicy, statusAfterPayment } from "./domain/invoices";
import { BillingError, changePlan, type InvoiceLine, type Plan, renew, startSubscription } from "./domain/subscriptions";
import { type BillingRepo, type InvoiceRow, subscriptionOf, type SubscriptionRow } from "./repo";

export interface PaymentGateway {
  /** Asks payment-service to charge; resolves once it accepted the request (outcome comes as an event). */
  charge(p: { userId: string; amount: bigint; currency: string; paymentMethod: string; reference: string; idempotencyKey: string; description: string }): Promise<{ intentId: string; status: string }>;
}

export interface UsageSource {
  /** Metered units of `userId` in [from, to). */
  units(userId: string, metric: string, from: Date, to: Date): Promise<bigint>;
}

export class Billing {
  constructor(
    private readonly repo: BillingRepo,
    private readonly payments: PaymentGateway,
    private readonly usage: UsageSource,
    private readonly log: Logger,
    private readonly dunning: DunningPolicy,
    private readonly published: () => void,
  ) {}

  private tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.repo.pg.transaction(fn);
  }

  private async planOrThrow(id: string, c?: PoolClient): Promise<Plan> {
    const p = await this.repo.plan(id, c);
    if (!p) throw new HttpError(404, "PLAN_NOT_FOUND", `plan ${id} does not exist`, "planId");
    return p;
  }

  async subscribe(userId: string, planId: string, paymentMethod: string): Promise<SubscriptionRow> {
    const { sub, invoice } = await this.tx(async (c) => {
      const plan = await this.planOrThrow(planId, c);
      // Subscribing again is the way out of an unpaid subscription: it ends in this transaction.
      const live = await this.repo.liveSubscriptionOf(c, userId);
      const { subscription, firstLines } = startSubscription(plan, new Date(), await this.repo.hadTrial(c, userId));
      if (live?.status === "unpaid") await this.end(c, live, await this.planOrThrow(live.plan_id, c));
      let sub: SubscriptionRow;
      try {
        sub = await this.repo.insertSubscription(c, randomUUID(), userId, subscription, paymentMethod);
      } catch (err) {
        if ((err as { code?: string }).code === "23505") throw new HttpError(409, "ALREADY_SUBSCRIBED", "you already have a live subscription; change its plan instead");
        throw err;
      }
      await this.repo.emit(c, "subscription.created", sub, plan, { eventId: `${sub.subscription_id}:created` });
      const invoice = firstLines.length ? await this.invoice(c, sub, plan, firstLines) : undefined;
      return { sub, invoice };
    });
    this.published();
    if (invoice?.status === "open") await this.charge(invoice);
    return (await this.repo.subscription(sub.subscription_id))!;
  }

  async changePlan(userId: string, subscriptionId: string, planId: string): Promise<SubscriptionRow> {
    const { sub, invoice } = await this.tx(async (c) => {
      const cur = await this.owned(c, userId, subscriptionId);
      const [from, to] = [await this.planOrThrow(cur.plan_id, c), await this.planOrThrow(planId, c)];
      let changed;
      try {
        changed = changePlan(subscriptionOf(cur), from, to, new Date());
      } catch (err) {
        if (err instanceof BillingError) throw new HttpError(409, err.code, err.message, "planId");
        throw err;
      }
      let sub = await this.repo.updateSubscription(c, cur.subscription_id, changed.subscription);
      const invoice = changed.lines.length ? await this.invoice(c, sub, to, changed.lines) : undefined;
      sub = (await this.repo.subscription(sub.subscription_id, c))!;
      await this.repo.emit(c, "subscription.updated", sub, to, { eventId: `${sub.subscription_id}:plan:${randomUUID()}` });
      return { sub, invoice };
    });
    this.published();
    if (invoice?.status === "open") await this.charge(invoice);
    return (await this.repo.subscription(sub.subscription_id))!;
  }

  async cancel(userId: string, subscriptionId: string, atPeriodEnd: boolean): Promise<SubscriptionRow> {
    const sub = await this.tx(async (c) => {
      const cur = await this.owned(c, userId, subscriptionId, { unpaid: true });
      if (cur.status === "canceled") return cur;
      const plan = await this.planOrThrow(cur.plan_id, c);
      // An unpaid subscription's service has stopped already: it ends now, whatever was asked.
      if (!atPeriodEnd || cur.status === "unpaid") return this.end(c, cur, plan);
      const row = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), cancelAtPeriodEnd: true });
      await this.repo.emit(c, "subscription.updated", row, plan, { eventId: `${row.subscription_id}:cancel-at-period-end` });
      return row;
    });
    this.published();
    return sub;
  }

  /**
   * Cancels now. Its open invoices are voided: the service ends before they were paid, and a retry
   * would charge the card of a subscription the user left (twice, if they subscribed again).
   */
  private async end(c: PoolClient, cur: SubscriptionRow, plan: Plan): Promise<SubscriptionRow> {
    const row = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status: "canceled" }, true);
    await this.repo.emit(c, "subscription.canceled", row, plan, { eventId: `${row.subscription_id}:canceled` });
    for (const inv of await this.repo.voidOpenInvoices(c, row.subscription_id)) {
      await this.repo.emit(c, "invoice.voided", row, plan, { eventId: `${inv.invoice_id}:voided`, invoiceId: inv.invoice_id, amountDue: toJson(BigInt(inv.amount_due)) });
    }
    return row;
  }

  /** The billing cycle: renews subscriptions whose period ended, then charges invoices that are due. */
  async runCycle(limit = 100): Promise<{ renewed: number; charged: number }> {
    const renewed = await this.tx(async (c) => {
      const due = await this.repo.lockDue(c, limit);
      for (const cur of due) {
        const plan = await this.planOrThrow(cur.plan_id, c);
        const units = plan.usage && cur.status !== "trialing" ? await this.usage.units(cur.user_id, plan.usage.metric, cur.period_start, cur.period_end) : 0n;
        const r = renew(subscriptionOf(cur), plan, units);
        const sub = await this.repo.updateSubscription(c, cur.subscription_id, r.subscription, r.subscription.status === "canceled");
        if (sub.status === "canceled") await this.repo.emit(c, "subscription.canceled", sub, plan, { eventId: `${sub.subscription_id}:canceled` });
        else if (r.lines.length) await this.invoice(c, sub, plan, r.lines);
      }
      return due.length;
    });
    if (renewed) this.published();
    let charged = 0;
    for (const inv of await this.repo.dueInvoices(limit)) {
      await this.charge(inv);
      charged++;
    }
    return { renewed, charged };
  }

  /** Applies one payments.events message (deduped by event id). */
  async onPaymentEvent(c: PoolClient, ev: PaymentEventMsg): Promise<boolean> {
    const invoiceId = ev.reference?.startsWith(INVOICE_REFERENCE_PREFIX) ? ev.reference.slice(INVOICE_REFERENCE_PREFIX.length) : "";
    if (!/^[0-9a-f-]{36}$/.test(invoiceId) || (ev.type !== "payment.succeeded" && ev.type !== "payment.failed")) return false;
    if (!(await this.repo.markProcessed(c, ev.eventId))) return false;
    const inv = await this.repo.invoice(invoiceId, c, true);
    if (!inv) return false;
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id };
    if (!isChargeOf(inv, ev)) {
      this.log.warn(fields, "payment event names an invoice but is not its charge (payer, amount or currency differ): ignored");
      return false;
    }
    if (inv.status !== "open") {
      if (ev.type === "payment.succeeded") this.log.warn({ ...fields, invoiceStatus: inv.status }, "payment for an invoice that is no longer open: refund it");
      return false;
    }
    const cur = (await this.repo.subscription(inv.subscription_id, c, true))!;
    const plan = await this.planOrThrow(cur.plan_id, c);
    const attempts = inv.attempts + 1;
    if (ev.type === "payment.succeeded") {
      await c.query("UPDATE bil_invoices SET status = 'paid', attempts = $2, paid_at = now(), next_attempt_at = NULL, updated_at = now() WHERE invoice_id = $1", [inv.invoice_id, attempts]);
      const sub = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status: statusAfterPayment(cur.status, "paid") });
      await this.repo.emit(c, "invoice.paid", sub, plan, { eventId: `${inv.invoice_id}:paid`, invoiceId: inv.invoice_id, amountPaid: toJson(BigInt(inv.amount_due)), attempts });
      if (sub.status !== cur.status) await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:${sub.status}:${inv.invoice_id}` });
      return true;
    }
    const decision = afterFailedAttempt(attempts, new Date(ev.ts), this.dunning);
    const giveUp = decision.action === "give_up";
    await c.query("UPDATE bil_invoices SET status = $2, attempts = $3, next_attempt_at = $4, updated_at = now() WHERE invoice_id = $1", [inv.invoice_id, giveUp ? "uncollectible" : "open", attempts, giveUp ? null : decision.at]);
    const sub = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status: statusAfterPayment(cur.status, giveUp ? "gave_up" : "failed") });
    await this.repo.emit(c, giveUp ? "invoice.uncollectible" : "invoice.payment_failed", sub, plan, {
      eventId: `${inv.invoice_id}:failed:${attempts}`,
      invoiceId: inv.invoice_id,
      amountDue: toJson(BigInt(inv.amount_due)),
      attempts,
      nextAttemptAt: giveUp ? null : decision.at.toISOString(),
    });
    if (sub.status !== cur.status) await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:${sub.status}:${inv.invoice_id}:${attempts}` });
    return true;
  }

  private async owned(c: PoolClient, userId: string, subscriptionId: string, allow: { unpaid?: boolean } = {}): Promise<SubscriptionRow> {
    const cur = await this.repo.subscription(subscriptionId, c, true);
    if (!cur || cur.user_id !== userId) throw new HttpError(404, "NOT_FOUND", "subscription not found");
    if (cur.status === "unpaid" && !allow.unpaid) throw new HttpError(409, "SUBSCRIPTION_UNPAID", "the subscription is unpaid; subscribe again (or cancel it)");
    return cur;
  }

  private async invoice(c: PoolClient, sub: SubscriptionRow, plan: Plan, lines: InvoiceLine[]): Promise<InvoiceRow> {
    const { invoice, creditBalanceAfter } = await this.repo.createInvoice(c, randomUUID(), sub, plan.currency, lines);
    if (creditBalanceAfter !== BigInt(sub.credit_balance)) await c.query("UPDATE bil_subscriptions SET credit_balance = $2 WHERE subscription_id = $1", [sub.subscription_id, creditBalanceAfter.toString()]);
    await this.repo.emit(c, "invoice.created", sub, plan, { eventId: `${invoice.invoice_id}:created`, invoiceId: invoice.invoice_id, amountDue: toJson(BigInt(invoice.amount_due)) });
    if (invoice.status === "paid") await this.repo.emit(c, "invoice.paid", sub, plan, { eventId: `${invoice.invoice_id}:paid`, invoiceId: invoice.invoice_id, amountPaid: 0 });
    return invoice;
  }

  /** One charge attempt; the outcome arrives on payments.events. */
  private async charge(inv: InvoiceRow): Promise<void> {
    const sub = (await this.repo.subscription(inv.subscription_id))!;
    try {
      const r = await this.payments.charge({
        userId: inv.user_id,
        amount: BigInt(inv.amount_due),
        currency: inv.currency,
        paymentMethod: sub.payment_method,
        reference: `invoice:${inv.invoice_id}`,
        idempotencyKey: `invoice-${inv.invoice_id}-${inv.attempts + 1}`,
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
      // Not charged (or unknown): the next cycle retries with the same key, which cannot charge twice.
      this.log.warn({ invoiceId: inv.invoice_id, err: { message: (err as Error).message } }, "charge request failed; retried next cycle");
    }
  }
}

/** Whether a payment event is the charge of this invoice: billing charges its payer, amount and currency. */
export function isChargeOf(inv: Pick<InvoiceRow, "user_id" | "amount_due" | "currency">, ev: Pick<PaymentEventMsg, "userId" | "amount" | "currency">): boolean {
  return ev.userId === inv.user_id && ev.currency === inv.currency && Number.isSafeInteger(ev.amount) && BigInt(ev.amount) === BigInt(inv.amount_due);
}
