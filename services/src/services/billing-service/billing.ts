/**
 * billing-service use cases: subscribe, change plan, cancel, the billing cycle. State changes and
 * their `billing.events` commit together (outbox); invoices, their charges and the payment
 * outcomes are invoicing.ts's.
 */
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { HttpError } from "../../kit";
import { toJson } from "../../business/money";
import type { PaymentEventMsg } from "../../business/events";
import type { DunningPolicy } from "./domain/invoices";
import { BillingError, changePlan, checkPlanChange, type InvoiceLine, type Plan, renew, startSubscription } from "./domain/subscriptions";
import { Invoicing, type PaymentGateway } from "./invoicing";
import { type BillingRepo, type InvoiceRow, subscriptionOf, type SubscriptionRow } from "./repo";

export type { PaymentGateway } from "./invoicing";

export interface UsageSource {
  /** Metered units of `userId` in [from, to). */
  units(userId: string, metric: string, from: Date, to: Date): Promise<bigint>;
}

export class Billing {
  private readonly invoicing: Invoicing;

  constructor(
    private readonly repo: BillingRepo,
    payments: PaymentGateway,
    private readonly usage: UsageSource,
    log: Logger,
    dunning: DunningPolicy,
    private readonly published: () => void,
  ) {
    this.invoicing = new Invoicing(repo, payments, log, dunning, published);
  }

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
        checkPlanChange(subscriptionOf(cur), from, to, (await this.repo.openInvoiceOf(c, cur.subscription_id))?.invoice_id ?? null);
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
  onPaymentEvent(c: PoolClient, ev: PaymentEventMsg): Promise<boolean> {
    return this.invoicing.onPaymentEvent(c, ev);
  }

  private async owned(c: PoolClient, userId: string, subscriptionId: string, allow: { unpaid?: boolean } = {}): Promise<SubscriptionRow> {
    const cur = await this.repo.subscription(subscriptionId, c, true);
    if (!cur || cur.user_id !== userId) throw new HttpError(404, "NOT_FOUND", "subscription not found");
    if (cur.status === "unpaid" && !allow.unpaid) throw new HttpError(409, "SUBSCRIPTION_UNPAID", "the subscription is unpaid; subscribe again (or cancel it)");
    return cur;
  }

  private invoice(c: PoolClient, sub: SubscriptionRow, plan: Plan, lines: InvoiceLine[]): Promise<InvoiceRow> {
    return this.invoicing.create(c, sub, plan, lines);
  }

  private charge(inv: InvoiceRow): Promise<void> {
    return this.invoicing.charge(inv);
  }
}
