/**
 * billing-service data access (PostgreSQL, migrations 0350_billing.sql, 0407_bil_usage_billed_until.sql, 0416_bil_carried.sql, 0417_bil_cycle_backoff.sql,
 * 0413_bil_subscriptions_user.sql, 0418_bil_paused.sql). Row <-> domain mapping, invoice creation with its lines, and
 * events through the transactional outbox (bil_outbox); the HTTP views of the rows are views.ts's, the
 * cycle's selections (which rows are due, whose account is active) cycle-queries.ts's.
 */
import type { PoolClient } from "pg";
import { deleteOlderThanDays, userPartitionKey, type PostgresClient } from "../../kit";
import { type Currency, MIN_CHARGE, toJson } from "../../business/money";
import { BUSINESS_TOPICS, type BillingEventMsg } from "../../business/events";
import { enqueue } from "../../trading/infra/outbox";
import { invoiceTotals, type InvoiceStatus, newInvoiceStatus } from "./domain/invoices";
import { type InvoiceLine, monthlyAmount, type Plan, shownStatus, type Subscription, type SubscriptionStatus } from "./domain/subscriptions";

export const OUTBOX = "bil_outbox";
type Q = Pick<PoolClient, "query">;

interface PlanRow {
  plan_id: string;
  name: string;
  currency: Currency;
  amount: string;
  billing_interval: "month" | "year";
  trial_days: number;
  usage_metric: "api_requests" | null;
  usage_included: string | null;
  usage_block_size: string | null;
  usage_block_amount: string | null;
  active: boolean;
}

export interface SubscriptionRow {
  subscription_id: string;
  user_id: string;
  plan_id: string;
  status: SubscriptionStatus;
  anchor: Date;
  period_start: Date;
  period_end: Date;
  trial_end: Date | null;
  cancel_at_period_end: boolean;
  credit_balance: string;
  /** Owed from earlier invoices below the processor's minimum charge: goes on the next invoice (migration 0416). */
  carried: string;
  usage_billed_until: Date | null;
  /** Billing paused since (migration 0418; Subscription.pausedAt). */
  paused_at: Date | null;
  payment_method: string;
  canceled_at: Date | null;
  created_at: Date;
}

export interface InvoiceRow {
  invoice_id: string;
  subscription_id: string;
  user_id: string;
  currency: Currency;
  status: InvoiceStatus;
  subtotal: string;
  credit_applied: string;
  amount_due: string;
  attempts: number;
  next_attempt_at: Date | null;
  last_payment_id: string | null;
  paid_at: Date | null;
  /** Its charge held by payment-service for an operator since (migration 0508; invoiceView chargeHeldAt). */
  charge_held_at: Date | null;
  created_at: Date;
}

export function planOf(r: PlanRow): Plan {
  return {
    id: r.plan_id,
    name: r.name,
    currency: r.currency,
    amount: BigInt(r.amount),
    interval: r.billing_interval,
    trialDays: r.trial_days,
    usage: r.usage_metric ? { metric: r.usage_metric, included: BigInt(r.usage_included!), blockSize: BigInt(r.usage_block_size!), blockAmount: BigInt(r.usage_block_amount!) } : null,
  };
}

export function subscriptionOf(r: SubscriptionRow): Subscription {
  return { planId: r.plan_id, status: r.status, anchor: r.anchor, periodStart: r.period_start, periodEnd: r.period_end, trialEnd: r.trial_end, cancelAtPeriodEnd: r.cancel_at_period_end, creditBalance: BigInt(r.credit_balance), usageBilledUntil: r.usage_billed_until, pausedAt: r.paused_at };
}

export class BillingRepo {
  constructor(readonly pg: PostgresClient) {}

  async createPlan(p: Plan): Promise<boolean> {
    const r = await this.pg.query(
      `INSERT INTO bil_plans (plan_id, name, currency, amount, billing_interval, trial_days, usage_metric, usage_included, usage_block_size, usage_block_amount)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING`,
      [p.id, p.name, p.currency, p.amount.toString(), p.interval, p.trialDays, p.usage?.metric ?? null, p.usage?.included.toString() ?? null, p.usage?.blockSize.toString() ?? null, p.usage?.blockAmount.toString() ?? null],
    );
    return r.rowCount === 1;
  }

  async plans(): Promise<Plan[]> {
    return (await this.pg.query<PlanRow>("SELECT * FROM bil_plans WHERE active ORDER BY amount, plan_id")).rows.map(planOf);
  }

  async plan(id: string, c: Q = this.pg.pool): Promise<Plan | undefined> {
    const r = (await c.query<PlanRow>("SELECT * FROM bil_plans WHERE plan_id = $1", [id])).rows[0];
    return r && planOf(r);
  }

  /** Whether the plan is still offered (`active`): only such a plan is taken by a new subscription or a plan change. */
  async planOffered(id: string, c: Q = this.pg.pool): Promise<boolean> {
    return ((await c.query("SELECT 1 FROM bil_plans WHERE plan_id = $1 AND active", [id])).rowCount ?? 0) > 0;
  }

  async subscription(id: string, c: Q = this.pg.pool, forUpdate = false): Promise<SubscriptionRow | undefined> {
    return (await c.query<SubscriptionRow>(`SELECT * FROM bil_subscriptions WHERE subscription_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [id])).rows[0];
  }

  /** Has the user had a trial, on any subscription, ended or not? */
  async hadTrial(c: Q, userId: string): Promise<boolean> {
    return (await c.query<{ had: boolean }>("SELECT EXISTS (SELECT 1 FROM bil_subscriptions WHERE user_id = $1 AND trial_end IS NOT NULL) AS had", [userId])).rows[0].had;
  }

  /** The user's subscription that is not canceled (at most one: bil_subscriptions_one_live), locked. */
  async liveSubscriptionOf(c: Q, userId: string): Promise<SubscriptionRow | undefined> {
    return (await c.query<SubscriptionRow>("SELECT * FROM bil_subscriptions WHERE user_id = $1 AND status <> 'canceled' FOR UPDATE", [userId])).rows[0];
  }

  /**
   * Stops collecting a subscription's open invoices (they become `void`) and gives the credit they
   * consumed back to its balance (it was lost); returns them. One statement: only the UPDATE that
   * turns an invoice from open to void returns it and credits it (a concurrent one waits for the
   * row, then finds it void), so a retried or raced void credits once.
   */
  async voidOpenInvoices(c: Q, subscriptionId: string): Promise<InvoiceRow[]> {
    return (
      await c.query<InvoiceRow>(
        `WITH voided AS (
           UPDATE bil_invoices SET status = 'void', next_attempt_at = NULL, updated_at = now() WHERE subscription_id = $1 AND status = 'open' RETURNING *
         ), given_back AS (
           UPDATE bil_subscriptions s SET credit_balance = s.credit_balance + v.credit, updated_at = now()
             FROM (SELECT sum(credit_applied) AS credit FROM voided) v WHERE s.subscription_id = $1 AND v.credit > 0
         )
         SELECT * FROM voided`,
        [subscriptionId],
      )
    ).rows;
  }

  /**
   * Takes the credit left on the user's ended subscriptions in `currency`, and what they `carried`
   * (owed below the processor's minimum charge), both zeroed (a concurrent taker waits for the rows,
   * then finds none left), for their new subscription: credit is owed to the user, and a canceled
   * subscription cannot spend it; what was carried is owed by the user, and a canceled subscription
   * has no next invoice to put it on (it was dropped when one ended with nothing else to invoice, or
   * its final invoice was carried in turn). Either in another currency stays for a subscription in
   * that one (taken as a number, 900 yen of credit paid 9.00 of a dollar plan).
   */
  async takeEnded(c: Q, userId: string, currency: Currency): Promise<{ credit: bigint; carried: bigint }> {
    const { rows } = await c.query<{ credit: string | null; carried: string | null }>(
      `WITH taken AS (SELECT s.subscription_id, s.credit_balance, s.carried FROM bil_subscriptions s JOIN bil_plans p USING (plan_id)
                       WHERE s.user_id = $1 AND s.status = 'canceled' AND (s.credit_balance > 0 OR s.carried > 0) AND p.currency = $2 FOR UPDATE OF s),
            zeroed AS (UPDATE bil_subscriptions s SET credit_balance = 0, carried = 0, updated_at = now() FROM taken t WHERE s.subscription_id = t.subscription_id)
       SELECT sum(credit_balance)::text AS credit, sum(carried)::text AS carried FROM taken`,
      [userId, currency],
    );
    return { credit: BigInt(rows[0]?.credit ?? "0"), carried: BigInt(rows[0]?.carried ?? "0") };
  }

  /** The subscription's oldest invoice still to be paid (open; or `uncollectible` too, when asked), if any. */
  async openInvoiceOf(c: Q, subscriptionId: string, orUncollectible = false): Promise<InvoiceRow | undefined> {
    const statuses = orUncollectible ? ["open", "uncollectible"] : ["open"];
    return (await c.query<InvoiceRow>("SELECT * FROM bil_invoices WHERE subscription_id = $1 AND status = ANY($2::text[]) ORDER BY created_at LIMIT 1", [subscriptionId, statuses])).rows[0];
  }

  /**
   * The payment method the user's charges go to: the one they gave last, that of their newest
   * subscription (the live one, when there is one). Not that of the invoice's subscription: after
   * resubscribing with a new card, the old subscription's final invoice went to the old one.
   */
  async currentPaymentMethod(userId: string): Promise<string | undefined> {
    const { rows } = await this.pg.query<{ payment_method: string }>(
      "SELECT payment_method FROM bil_subscriptions WHERE user_id = $1 ORDER BY status <> 'canceled' DESC, created_at DESC LIMIT 1",
      [userId],
    );
    return rows[0]?.payment_method;
  }

  /**
   * Puts the subscription's charges on `paymentMethod`; returns its open invoices that were waiting
   * for a dunning retry, now due (the caller retries them on the new card). One whose attempt is in
   * flight (no retry time) or is due already is left to that attempt or to the cycle: charged twice
   * with one attempt's key, the second request would differ from the first by its card.
   */
  async setPaymentMethod(c: Q, subscriptionId: string, paymentMethod: string): Promise<InvoiceRow[]> {
    await c.query("UPDATE bil_subscriptions SET payment_method = $2, updated_at = now() WHERE subscription_id = $1", [subscriptionId, paymentMethod]);
    const sql = "UPDATE bil_invoices SET next_attempt_at = now(), updated_at = now() WHERE subscription_id = $1 AND status = 'open' AND next_attempt_at > now() RETURNING *";
    return (await c.query<InvoiceRow>(sql, [subscriptionId])).rows;
  }

  async subscriptionsOf(userId: string): Promise<SubscriptionRow[]> {
    return (await this.pg.query<SubscriptionRow>("SELECT * FROM bil_subscriptions WHERE user_id = $1 ORDER BY created_at DESC", [userId])).rows;
  }

  /** A new subscription; `carried` (what the user's ended ones carried, takeEnded) goes on its next invoice. */
  async insertSubscription(c: Q, id: string, userId: string, s: Subscription, paymentMethod: string, carried = 0n): Promise<SubscriptionRow> {
    const { rows } = await c.query<SubscriptionRow>(
      `INSERT INTO bil_subscriptions (subscription_id, user_id, plan_id, status, anchor, period_start, period_end, trial_end, cancel_at_period_end, credit_balance, payment_method, usage_billed_until, carried)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING *`,
      [id, userId, s.planId, s.status, s.anchor, s.periodStart, s.periodEnd, s.trialEnd, s.cancelAtPeriodEnd, s.creditBalance.toString(), paymentMethod, s.usageBilledUntil, carried.toString()],
    );
    return rows[0];
  }

  async updateSubscription(c: Q, id: string, s: Subscription, canceled = false): Promise<SubscriptionRow> {
    const { rows } = await c.query<SubscriptionRow>(
      `UPDATE bil_subscriptions SET plan_id = $2, status = $3, period_start = $4, period_end = $5, cancel_at_period_end = $6, credit_balance = $7,
              canceled_at = CASE WHEN $8 THEN coalesce(canceled_at, now()) ELSE canceled_at END, usage_billed_until = $9, anchor = $10, paused_at = $11, updated_at = now()
       WHERE subscription_id = $1 RETURNING *`,
      [id, s.planId, s.status, s.periodStart, s.periodEnd, s.cancelAtPeriodEnd, s.creditBalance.toString(), canceled, s.usageBilledUntil, s.anchor, s.pausedAt ?? null],
    );
    return rows[0];
  }

  /** Creates an invoice with its lines, applying (and consuming) the subscription's credit. */
  async createInvoice(c: Q, id: string, sub: SubscriptionRow, currency: Currency, lines: InvoiceLine[]): Promise<{ invoice: InvoiceRow; creditBalanceAfter: bigint }> {
    const t = invoiceTotals(lines, BigInt(sub.credit_balance));
    const status = newInvoiceStatus(t.amountDue, MIN_CHARGE[currency]);
    const { rows } = await c.query<InvoiceRow>(
      `INSERT INTO bil_invoices (invoice_id, subscription_id, user_id, currency, status, subtotal, credit_applied, amount_due, paid_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8, CASE WHEN $5 = 'paid' THEN now() END) RETURNING *`,
      [id, sub.subscription_id, sub.user_id, currency, status, t.subtotal.toString(), t.creditApplied.toString(), t.amountDue.toString()],
    );
    if (lines.length > 0)
      await c.query(
        `INSERT INTO bil_invoice_lines (invoice_id, line_no, kind, description, quantity, amount, period_start, period_end)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamptz[], $8::timestamptz[])`,
        [id, lines.map((_, i) => i + 1), lines.map((l) => l.kind), lines.map((l) => l.description), lines.map((l) => l.quantity.toString()), lines.map((l) => l.amount.toString()), lines.map((l) => l.periodStart), lines.map((l) => l.periodEnd)],
      );
    return { invoice: rows[0], creditBalanceAfter: t.creditBalanceAfter };
  }

  /**
   * An invoice; `forUpdate`: locked, after its subscription's row. A change of an invoice locks its
   * subscription first wherever it starts from one (a plan change, a cancel, the cycle), so a payment
   * event or a refused charge locking the invoice first and its subscription after deadlocked with a
   * cancel or plan change of that subscription: one of them answered 503 (session 49's race suite).
   */
  async invoice(id: string, c: Q = this.pg.pool, forUpdate = false): Promise<InvoiceRow | undefined> {
    if (forUpdate) await c.query("SELECT 1 FROM bil_subscriptions WHERE subscription_id = (SELECT subscription_id FROM bil_invoices WHERE invoice_id = $1) FOR UPDATE", [id]);
    return (await c.query<InvoiceRow>(`SELECT * FROM bil_invoices WHERE invoice_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [id])).rows[0];
  }

  async invoicesOf(userId: string, limit: number): Promise<InvoiceRow[]> {
    return (await this.pg.query<InvoiceRow>("SELECT * FROM bil_invoices WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2", [userId, limit])).rows;
  }

  async lines(invoiceIds: string[], c: Q = this.pg.pool) {
    const { rows } = await c.query<{ invoice_id: string; kind: string; description: string; quantity: string; amount: string; period_start: Date; period_end: Date }>(
      "SELECT * FROM bil_invoice_lines WHERE invoice_id = ANY($1::uuid[]) ORDER BY invoice_id, line_no",
      [invoiceIds],
    );
    return rows;
  }

  async markProcessed(c: Q, eventId: string): Promise<boolean> {
    return (await c.query("INSERT INTO bil_processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING", [eventId])).rowCount === 1;
  }

  /** Up to `batch` event ids applied longer ago than `days`, oldest first (index of migration 0469); how many went. */
  async deleteProcessedEventsPastRetention(days: number, batch: number): Promise<number> {
    return deleteOlderThanDays(this.pg, { table: "bil_processed_events", key: "event_id", at: "applied_at" }, days, batch);
  }

  async emit(c: PoolClient, type: BillingEventMsg["type"], sub: SubscriptionRow, plan: Plan, extra: Partial<BillingEventMsg> & { eventId: string }): Promise<void> {
    // As the client sees it: a paused subscription's events say `paused`, with MRR 0, whatever the
    // event (an invoice of before the pause paid meanwhile said `active` with the plan's MRR).
    const status = shownStatus({ status: sub.status, pausedAt: sub.paused_at });
    const paying = status === "active" || status === "past_due";
    const msg: BillingEventMsg = { type, userId: sub.user_id, subscriptionId: sub.subscription_id, planId: sub.plan_id, status, currency: plan.currency, mrr: paying ? toJson(monthlyAmount(plan)) : 0, ts: Date.now(), ...extra };
    await enqueue(c, OUTBOX, [{ eventId: msg.eventId, topic: BUSINESS_TOPICS.billing, key: userPartitionKey(sub.user_id), payload: { ...msg } }]);
  }
}
