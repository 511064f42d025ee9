/**
 * billing-service use cases: subscribe, change plan, cancel, the billing cycle. State changes and
 * their `billing.events` commit together (outbox); invoices, their charges and the payment
 * outcomes are invoicing.ts's.
 */
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { accountDeleted, HttpError, lockAccountForWrite } from "../../kit";
import { toJson } from "../../business/money";
import type { PaymentEventMsg } from "../../business/events";
import type { DunningPolicy } from "./domain/invoices";
import { BillingError, changePlan, checkPlanChange, finalLines, type InvoiceLine, type Plan, renew, startSubscription, unbilledUsage } from "./domain/subscriptions";
import { Invoicing, type PaymentGateway } from "./invoicing";
import { dueInvoices, type DueSubscription, lockDue, lockOfDeletedOwners } from "./cycle-queries";
import { inSavepoint, isolated } from "./isolation";
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
    private readonly payments: PaymentGateway,
    private readonly usage: UsageSource,
    private readonly log: Logger,
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

  /**
   * A plan a user may take now (subscribe, change to): one still offered. `bil_plans.active` false hides a
   * plan from GET /plans, but subscribing and changing plan took it by id (a retired or mispriced plan
   * stayed open to anyone who knew its id); subscriptions already on it keep it.
   */
  private async offeredPlanOrThrow(id: string, c: PoolClient): Promise<Plan> {
    const p = await this.planOrThrow(id, c);
    if (!(await this.repo.planOffered(id, c))) throw new HttpError(409, "PLAN_NOT_OFFERED", `plan ${id} is no longer offered (GET /plans lists those that are)`, "planId");
    return p;
  }

  // Refused here, not at the first charge: a token of someone else's is never stored for this user.
  private async requireSaved(userId: string, paymentMethod: string): Promise<void> {
    if (!(await this.payments.isSaved(userId, paymentMethod))) {
      throw new HttpError(404, "PAYMENT_METHOD_NOT_FOUND", "no saved payment method of yours has this id: save it first (POST /api/payments/payment-methods)", "paymentMethod");
    }
  }

  async subscribe(userId: string, planId: string, paymentMethod: string): Promise<SubscriptionRow> {
    await this.requireSaved(userId, paymentMethod);
    const { sub, invoice, final } = await this.tx(async (c) => {
      // An account deleted while this was under way: nothing is made (its deletion otherwise waits for this commit, and the cycle ends what it made).
      if ((await lockAccountForWrite(c, userId)) === "deleted") throw accountDeleted(userId, "it subscribes to nothing");
      const plan = await this.offeredPlanOrThrow(planId, c);
      // Subscribing again is the way out of an unpaid subscription: it ends in this transaction.
      const live = await this.repo.liveSubscriptionOf(c, userId);
      const { subscription, firstLines } = startSubscription(plan, new Date(), await this.repo.hadTrial(c, userId));
      const ended = live?.status === "unpaid" ? await this.end(c, live, await this.planOrThrow(live.plan_id, c)) : undefined;
      // The credit the user's ended subscriptions were left with is theirs: the new one starts with it;
      // what they carried (below the minimum charge) goes on its next invoice (repo takeEnded).
      const { credit: creditBalance, carried } = await this.repo.takeEnded(c, userId, plan.currency);
      let sub: SubscriptionRow;
      try {
        sub = await this.repo.insertSubscription(c, randomUUID(), userId, { ...subscription, creditBalance }, paymentMethod, carried);
      } catch (err) {
        if ((err as { code?: string }).code === "23505") throw new HttpError(409, "ALREADY_SUBSCRIBED", "you already have a live subscription; change its plan instead");
        throw err;
      }
      await this.repo.emit(c, "subscription.created", sub, plan, { eventId: `${sub.subscription_id}:created` });
      const invoice = firstLines.length ? await this.invoice(c, sub, plan, firstLines) : undefined;
      return { sub, invoice, final: ended?.final };
    });
    this.published();
    for (const inv of [final, invoice]) if (inv?.status === "open") await this.charge(inv);
    return (await this.repo.subscription(sub.subscription_id))!;
  }

  async changePlan(userId: string, subscriptionId: string, planId: string): Promise<SubscriptionRow> {
    const { sub, invoice } = await this.tx(async (c) => {
      const cur = await this.owned(c, userId, subscriptionId);
      const [from, to] = [await this.planOrThrow(cur.plan_id, c), await this.offeredPlanOrThrow(planId, c)];
      const now = new Date();
      let changed;
      try {
        checkPlanChange(subscriptionOf(cur), from, to, (await this.repo.openInvoiceOf(c, cur.subscription_id))?.invoice_id ?? null);
        changed = changePlan(subscriptionOf(cur), from, to, now, await this.unbilledUnits(cur, from, now));
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

  /**
   * Cancels now, or at the period's end. As the platform answers a repeated transition (an order's
   * cancel, a refund): asked again while the first is pending (already set to end at the period's
   * end), the first request stands, 200 with the subscription unchanged; asked of one that has ended,
   * a 409 SUBSCRIPTION_CANCELED naming `id`, as its plan and card changes answer (a 200 until session
   * 65, as if it had done something).
   */
  async cancel(userId: string, subscriptionId: string, atPeriodEnd: boolean): Promise<SubscriptionRow> {
    const { row, final } = await this.tx(async (c): Promise<{ row: SubscriptionRow; final?: InvoiceRow }> => {
      const cur = await this.owned(c, userId, subscriptionId, { unpaid: true });
      if (cur.status === "canceled") throw new HttpError(409, "SUBSCRIPTION_CANCELED", `the subscription has ended${cur.canceled_at ? ` (canceled at ${cur.canceled_at.toISOString()})` : ""}: nothing left to cancel`, "id");
      // An unpaid subscription's service has stopped already: it ends now, whatever was asked.
      if (atPeriodEnd && cur.cancel_at_period_end && cur.status !== "unpaid") return { row: cur };
      const plan = await this.planOrThrow(cur.plan_id, c);
      if (!atPeriodEnd || cur.status === "unpaid") return this.end(c, cur, plan);
      const row = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), cancelAtPeriodEnd: true });
      await this.repo.emit(c, "subscription.updated", row, plan, { eventId: `${row.subscription_id}:cancel-at-period-end` });
      return { row };
    });
    this.published();
    if (final?.status === "open") await this.charge(final);
    return row;
  }

  /**
   * Charges the subscription to another saved card of the user's from now on. A declined card is why
   * one changes it: the invoices waiting for a dunning retry are retried on the new card at once,
   * not days later.
   */
  async changePaymentMethod(userId: string, subscriptionId: string, paymentMethod: string): Promise<SubscriptionRow> {
    await this.requireSaved(userId, paymentMethod);
    const retry = await this.tx(async (c) => {
      const cur = await this.owned(c, userId, subscriptionId);
      if (cur.status === "canceled") throw new HttpError(409, "SUBSCRIPTION_CANCELED", "the subscription has ended; subscribe again with this card", "paymentMethod");
      return this.repo.setPaymentMethod(c, cur.subscription_id, paymentMethod);
    });
    for (const inv of retry) await this.charge(inv);
    return (await this.repo.subscription(subscriptionId))!;
  }

  /**
   * Cancels now. Its open invoices are voided: the service ends before they were paid, and a retry
   * would charge the card of a subscription the user left (twice, if they subscribed again); the
   * credit they consumed goes back to the balance. Usage is another matter, it was consumed: the
   * usage lines of the voided invoices (and what they carried from earlier invoices) and the
   * period's usage so far go on a final invoice (`final`, charged once this transaction is
   * committed), unless `noFinal` (the account is deleted: never charged again). An ended
   * subscription (`cur` canceled) has its open invoices voided only.
   */
  private async end(c: PoolClient, cur: SubscriptionRow, plan: Plan, noFinal = false): Promise<{ row: SubscriptionRow; final?: InvoiceRow }> {
    const now = new Date();
    const units = noFinal ? 0n : await this.unbilledUnits(cur, plan, now);
    let row = cur;
    if (cur.status !== "canceled") {
      row = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), status: "canceled" }, true);
      await this.repo.emit(c, "subscription.canceled", row, plan, { eventId: `${row.subscription_id}:canceled` });
    }
    const voided = await this.repo.voidOpenInvoices(c, row.subscription_id);
    // Voiding gave back the credit the invoices consumed: the final invoice spends it first.
    if (voided.length) row = (await this.repo.subscription(row.subscription_id, c))!;
    for (const inv of voided) {
      await this.repo.emit(c, "invoice.voided", row, plan, { eventId: `${inv.invoice_id}:voided`, invoiceId: inv.invoice_id, amountDue: toJson(BigInt(inv.amount_due)) });
    }
    const voidedUsage = (await this.repo.lines(voided.map((i) => i.invoice_id), c))
      .filter((l) => l.kind === "usage" || l.kind === "carried")
      .map((l): InvoiceLine => ({ kind: l.kind === "usage" ? "usage" : "carried", description: l.description, quantity: BigInt(l.quantity), amount: BigInt(l.amount), periodStart: l.period_start, periodEnd: l.period_end }));
    const lines = [...voidedUsage, ...finalLines(subscriptionOf(cur), plan, units, now)];
    return { row, final: lines.length && !noFinal ? await this.invoice(c, row, plan, lines) : undefined };
  }

  /** Metered units of the subscription's usage not invoiced yet, up to `until` (none in a trial: free). */
  private async unbilledUnits(cur: SubscriptionRow, plan: Plan, until: Date): Promise<bigint> {
    if (!plan.usage || cur.status === "trialing") return 0n;
    const w = unbilledUsage(subscriptionOf(cur), until);
    return w.end > w.start ? this.usage.units(cur.user_id, plan.usage.metric, w.start, w.end) : 0n;
  }

  /**
   * The billing cycle: ends the subscriptions of deleted accounts, renews subscriptions whose period
   * ended, then charges invoices that are due. A deleted account (its users row gone: an admin
   * deleted it, and only the gateway heard) is never charged again: its live subscription ends as
   * "cancel now" ends it, its open invoices void, with no final invoice (it could not be charged);
   * it is not renewed, and no invoice of it is charged, a dunning retry or a plan change's included.
   * A disabled account (reversible) is not charged while disabled: its due invoices stay open, their
   * dunning clock as it was, and are charged at the first cycle after it is enabled again (the debt
   * was real). Its subscription is paused at its period's end, not renewed, and resumes from the
   * first cycle after the enable, a new period starting then: before, it renewed as usual, and every
   * period of a long disable was invoiced and charged at once on the enable. Charging it while its
   * service is stopped was wrong; ending it would make a disable final.
   * Requests of the user (subscribe, change plan, cancel, change card) passed the gateway, which
   * refuses a deleted or disabled account, and take the account's lock (subscribe, owned). Each subscription's step and each charge is isolated
   * (isolation.ts): one that fails is logged and set aside for a while, the others go on.
   */
  async runCycle(limit = 100): Promise<{ renewed: number; charged: number }> {
    const ended = await this.tx(async (c) => {
      const gone = await lockOfDeletedOwners(c, limit);
      let n = 0;
      for (const cur of gone) if (await inSavepoint(c, this.log, "ending a deleted account's subscription", { table: "bil_subscriptions", id: cur.subscription_id }, async () => void (await this.end(c, cur, await this.planOrThrow(cur.plan_id, c), true)))) n++;
      return n;
    });
    if (ended) this.published();
    const renewed = await this.tx(async (c) => {
      const due = await lockDue(c, limit);
      let n = 0;
      for (const cur of due) {
        const paused = !cur.owner_active && !cur.cancel_at_period_end;
        const step = paused ? () => this.pause(c, cur) : () => this.renewOne(c, cur);
        if ((await inSavepoint(c, this.log, paused ? "pause" : "renewal", { table: "bil_subscriptions", id: cur.subscription_id }, step)) && !paused) n++;
      }
      return n;
    });
    if (renewed) this.published();
    let charged = 0;
    for (const inv of await dueInvoices(this.repo.pg.pool, limit)) {
      if (await isolated(this.repo.pg.pool, this.log, "charge", { table: "bil_invoices", id: inv.invoice_id }, () => this.invoicing.charge(inv))) charged++;
    }
    return { renewed, charged };
  }

  /**
   * Renews one subscription whose period ended (locked by the cycle's transaction `c`); a paused one
   * resumes, its new period starting now (domain renew).
   */
  private async renewOne(c: PoolClient, cur: SubscriptionRow): Promise<void> {
    const plan = await this.planOrThrow(cur.plan_id, c);
    const r = renew(subscriptionOf(cur), plan, await this.unbilledUnits(cur, plan, cur.period_end), new Date());
    const sub = await this.repo.updateSubscription(c, cur.subscription_id, r.subscription, r.subscription.status === "canceled");
    if (sub.status === "canceled") await this.repo.emit(c, "subscription.canceled", sub, plan, { eventId: `${sub.subscription_id}:canceled` });
    else if (cur.paused_at) await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:resumed:${sub.period_start.toISOString()}` });
    // Ended at period end, the lines are the final invoice: the period's usage, in arrears.
    if (r.lines.length) await this.invoice(c, sub, plan, r.lines);
  }

  /**
   * The period of a disabled account's subscription ended: it is paused, not renewed (no invoice for
   * time its owner cannot use the service), and resumes at the first cycle after the account is
   * enabled again (renewOne). Its MRR is 0 while paused (the event's figure); its open invoices keep
   * their place, charged once the account is enabled (dueInvoices).
   */
  private async pause(c: PoolClient, cur: DueSubscription): Promise<void> {
    const plan = await this.planOrThrow(cur.plan_id, c);
    const sub = await this.repo.updateSubscription(c, cur.subscription_id, { ...subscriptionOf(cur), pausedAt: new Date() });
    await this.repo.emit(c, "subscription.updated", sub, plan, { eventId: `${sub.subscription_id}:paused:${sub.period_end.toISOString()}` });
  }

  /** Applies one payments.events message (deduped by event id). */
  onPaymentEvent(c: PoolClient, ev: PaymentEventMsg, park?: (c: PoolClient) => Promise<void>): Promise<boolean> {
    return this.invoicing.onPaymentEvent(c, ev, park);
  }

  /**
   * The user's subscription, locked for a change of theirs (plan, card, cancel), after the account's
   * lock (kit lockAccountForWrite): a deletion waits for a change that passed, and one after it
   * changes nothing (403 ACCOUNT_DELETED). Before, a change committed after the deletion had answered:
   * a plan change's invoice and `subscription.updated` (revenue-analytics' MRR of a deleted account), a
   * cancel's final invoice and events, left for the next cycle to void.
   */
  private async owned(c: PoolClient, userId: string, subscriptionId: string, allow: { unpaid?: boolean } = {}): Promise<SubscriptionRow> {
    if ((await lockAccountForWrite(c, userId)) === "deleted") throw accountDeleted(userId, "its subscriptions change no more");
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
