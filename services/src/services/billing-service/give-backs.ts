/**
 * billing-service's give-backs: a payment that completed for an invoice no longer owed (void, or
 * paid by another payment) is refunded through payment-service, and each such refund is recorded
 * with its status (bil_give_backs, migration 0479). Before, billing took the refund for done as soon
 * as payment-service answered, though a refund answered `pending` had not gone back yet (slower
 * methods) and could still fail. Now a give-back stays `pending` until `payment.refunded` says the
 * money went back (`succeeded`; what did not, when payment-service booked it at less than asked, is
 * credit); `payment.refund_failed` / `payment.refund_reversed` make it `failed` and what it had given
 * back credit on the subscription (givenBackNot): in all, the amount asked, never more. A status only
 * moves forward (pending < succeeded < failed), so replayed or out-of-order events change nothing. Only a give-back billing
 * asked for is credited, by the refund the event names (any failed refund of a payment of a void
 * invoice was before: an admin's or a dashboard refund too).
 */
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { ANY_CASE_UUID_RE } from "../../kit";
import type { PaymentEventMsg } from "../../business/events";
import { ChargeRefusedError, type PaymentGateway } from "./payment-gateway";
import type { InvoiceRow } from "./repo";

export type GiveBackStatus = "pending" | "succeeded" | "failed";

/** A status's place in the order it moves in, as SQL (`s`: a status column or parameter). */
const rank = (s: string) => `(CASE ${s} WHEN 'pending' THEN 0 WHEN 'succeeded' THEN 1 ELSE 2 END)`;

export class GiveBacks {
  constructor(
    private readonly payments: PaymentGateway,
    private readonly log: Logger,
  ) {}

  /**
   * A payment that completed for an invoice no longer open nor uncollectible (Invoicing pays that
   * one). Voided (its subscription ended while the charge was processing) or paid by another
   * payment, nothing is owed for it: the payment is refunded, and the refund recorded as
   * payment-service answered it (pending or succeeded). The payment that paid it, told again under
   * another event id, is not refunded. Called within the event's transaction: a refund that fails
   * for now fails the event, retried with the same key (which refunds once).
   */
  async giveBack(c: PoolClient, inv: InvoiceRow, ev: PaymentEventMsg): Promise<void> {
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id, invoiceStatus: inv.status };
    if (inv.status === "paid" && inv.last_payment_id === ev.intentId) {
      this.log.info(fields, "payment for an invoice it paid already: nothing to do");
      return;
    }
    const amount = BigInt(inv.amount_due);
    let answer;
    try {
      const reason = `invoice ${inv.invoice_id} is ${inv.status === "void" ? "void" : "paid already"}: nothing is owed for it`;
      answer = await this.payments.refund({ intentId: ev.intentId, amount, idempotencyKey: `invoice-refund-${inv.invoice_id}-${ev.intentId}`, reason });
    } catch (err) {
      if (!(err instanceof ChargeRefusedError)) throw err;
      this.log.warn({ ...fields, code: err.code, err: { message: err.message } }, "payment for an invoice that is no longer open: refund refused by payment-service; left to an operator");
      return;
    }
    await c.query(
      `INSERT INTO bil_give_backs (invoice_id, intent_id, refund_id, amount, status) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (invoice_id, intent_id) DO UPDATE SET refund_id = coalesce(bil_give_backs.refund_id, excluded.refund_id), updated_at = now(),
         status = CASE WHEN ${rank("excluded.status")} > ${rank("bil_give_backs.status")} THEN excluded.status ELSE bil_give_backs.status END`,
      [inv.invoice_id, ev.intentId, answer.refundId, amount.toString(), answer.status],
    );
    const pending = answer.status === "pending";
    this.log.info({ ...fields, refundId: answer.refundId, refundStatus: answer.status }, pending ? "payment for an invoice that is no longer open: refund pending at the processor" : "payment for an invoice that is no longer open refunded");
  }

  /**
   * `payment.refunded` of an invoice's payment: the give-back it is (by refund id) went out, as much of
   * it as the event says (`refundedAmount`: payment-service books a refund at the processor's amount
   * when an operator settles it from the processor's record, which may be less than billing asked).
   * What did not go back is credit on the subscription now, as a failed give-back's is; what went back
   * is kept (`returned_amount`), the credit should the refund fail afterwards. One told in another
   * currency than the invoice's cannot be compared: taken as returned in full, and logged.
   */
  async refunded(c: PoolClient, inv: InvoiceRow, ev: PaymentEventMsg): Promise<boolean> {
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id, refundId: ev.refundId };
    const moved = await this.advance(c, inv, ev, "succeeded");
    if (moved === undefined) {
      this.log.info(fields, "a refund of an invoice's payment: not a pending give-back, nothing to do");
      return false;
    }
    const short = BigInt(moved.amount) - BigInt(moved.returned ?? moved.amount);
    if (short > 0n) {
      await this.credit(c, inv, short);
      this.log.warn({ ...fields, asked: moved.amount, returned: moved.returned, credited: short.toString() }, "the refund of a payment not owed went out short: what did not go back is credit on the subscription");
    } else if (moved.returned === null && ev.currency !== inv.currency)
      this.log.warn({ ...fields, currency: ev.currency, invoiceCurrency: inv.currency, refundedAmount: ev.refundedAmount }, "the refund of a payment not owed went out in another currency than the invoice's: taken as returned in full");
    else this.log.info(fields, "the refund of a payment not owed went out");
    return true;
  }

  /**
   * A refund of a payment of this invoice did not go out (payment-service: it failed before it
   * succeeded, or failed after and was reversed: the money is with the platform again). Only a
   * give-back billing itself asked for, the refund the event names, is credited: its amount (what
   * billing asked back) becomes credit on the invoice's subscription, spent by its next invoices (or
   * taken by the user's next subscription once this one ended), and the give-back is `failed`, once.
   * Any other refund of a payment of the invoice changes nothing here: one of the payment that paid it
   * (an admin's: the invoice stays paid), an operator's or a dashboard refund of a payment billing did
   * not give back (its give-back refused), another refund of a payment given back (a second try by
   * hand after billing's failed: credited once, not per refund). Before, any failed refund of any
   * payment of a void invoice (or of one paid by another payment) was credited, billing's or not.
   */
  async givenBackNot(c: PoolClient, inv: InvoiceRow, ev: PaymentEventMsg): Promise<boolean> {
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id, invoiceStatus: inv.status, refundId: ev.refundId };
    const moved = await this.advance(c, inv, ev, "failed");
    if (moved === undefined) {
      this.log.info(fields, "a refund of an invoice's payment did not go out; not a give-back billing asked for (or failed already): nothing to do");
      return false;
    }
    // What had gone back (as asked, unless payment.refunded said less: its shortfall credited then), never more than asked.
    const asked = BigInt(moved.amount);
    const back = moved.returned === null ? asked : BigInt(moved.returned);
    const credited = back < asked ? back : asked;
    if (credited > 0n) await this.credit(c, inv, credited);
    this.log.warn({ ...fields, credited: credited.toString() }, "the refund of a payment not owed did not go out: what it gave back is credit on the subscription");
    return true;
  }

  /**
   * `payment.refund_adjusted` of an invoice's payment: a refund payment-service had booked (and
   * announced by payment.refunded) was paid out by the processor at another amount, now booked at its
   * (an operator's settle; `refundedAmount` the processor's). The give-back it is (by refund id, gone
   * out) records what went back as that amount, and the credit of its shortfall follows: more credit
   * when less went back than recorded, less when more did (taken back from what credit is left; what
   * was spent already is logged). Once per event id (onPaymentEvent). Any other refund, one not gone
   * out, or one told in another currency than the invoice's (not comparable): nothing, logged.
   */
  async adjusted(c: PoolClient, inv: InvoiceRow, ev: PaymentEventMsg): Promise<boolean> {
    const fields = { eventId: ev.eventId, intentId: ev.intentId, invoiceId: inv.invoice_id, refundId: ev.refundId };
    const refundId = ev.refundId && ANY_CASE_UUID_RE.test(ev.refundId) ? ev.refundId : null;
    const now = Number.isSafeInteger(ev.refundedAmount) && ev.refundedAmount! >= 0 ? BigInt(ev.refundedAmount!) : null;
    const { rows } = refundId && now !== null && ev.currency === inv.currency
      ? await c.query<{ amount: string; before: string }>(
          `UPDATE bil_give_backs g SET returned_amount = $4, updated_at = now() FROM (SELECT invoice_id, intent_id, coalesce(returned_amount, amount) AS before FROM bil_give_backs
             WHERE invoice_id = $1 AND intent_id = $2 AND refund_id = $3::uuid AND status = 'succeeded' FOR UPDATE) old
            WHERE g.invoice_id = old.invoice_id AND g.intent_id = old.intent_id RETURNING g.amount::text, old.before::text`,
          [inv.invoice_id, ev.intentId, refundId, now.toString()],
        )
      : { rows: [] };
    if (!rows[0]) {
      this.log.info(fields, "a refund of an invoice's payment adjusted: not a give-back gone out in the invoice's currency, nothing to do");
      return false;
    }
    // The credit of the shortfall (what was asked and did not go back), before and now.
    const asked = BigInt(rows[0].amount);
    const shortfall = (back: bigint) => (back < asked ? asked - back : 0n);
    const more = shortfall(now!) - shortfall(BigInt(rows[0].before));
    if (more > 0n) await this.credit(c, inv, more);
    if (more < 0n) {
      const taken = await c.query<{ taken: string }>(
        `UPDATE bil_subscriptions s SET credit_balance = s.credit_balance - least(s.credit_balance, $2), updated_at = now() FROM (SELECT credit_balance FROM bil_subscriptions WHERE subscription_id = $1 FOR UPDATE) old
          WHERE s.subscription_id = $1 RETURNING least(old.credit_balance, $2)::text AS taken`,
        [inv.subscription_id, (-more).toString()],
      );
      const spent = -more - BigInt(taken.rows[0]?.taken ?? "0");
      if (spent > 0n) this.log.warn({ ...fields, spent: spent.toString() }, "a give-back went out larger than recorded: credit of its shortfall spent already, not taken back");
    }
    this.log.info({ ...fields, credit: more.toString() }, "a give-back's refund adjusted to the processor's amount: its credit follows");
    return true;
  }

  private async credit(c: PoolClient, inv: InvoiceRow, amount: bigint): Promise<void> {
    await c.query("UPDATE bil_subscriptions SET credit_balance = credit_balance + $2, updated_at = now() WHERE subscription_id = $1", [inv.subscription_id, amount.toString()]);
  }

  /**
   * Moves the give-back of this invoice and payment forward to `to`: the one of the refund the event
   * names (one recorded without a refund id, as a payment-service before session 49 answered, takes
   * it). `succeeded` also moves on an event naming no refund; `failed` credits money, so it needs the
   * refund named, and one recorded without an id only when the event's amount is the give-back's.
   * `succeeded` keeps what went back (`returned_amount`: the event's amount when in the invoice's
   * currency). Answers the give-back's amount and what went back (null: as asked) when it moved.
   */
  private async advance(c: PoolClient, inv: InvoiceRow, ev: PaymentEventMsg, to: GiveBackStatus): Promise<{ amount: string; returned: string | null } | undefined> {
    const refundId = ev.refundId && ANY_CASE_UUID_RE.test(ev.refundId) ? ev.refundId : null;
    const amount = Number.isSafeInteger(ev.refundedAmount) && ev.refundedAmount! >= 0 ? String(ev.refundedAmount) : null;
    const returned = to === "succeeded" && ev.currency === inv.currency ? amount : null;
    const { rows } = await c.query<{ amount: string; returned: string | null }>(
      `UPDATE bil_give_backs SET status = $4, refund_id = coalesce(refund_id, $3), updated_at = now(),
              returned_amount = CASE WHEN $4 = 'succeeded' THEN $6::bigint ELSE returned_amount END
        WHERE invoice_id = $1 AND intent_id = $2 AND ${rank("status")} < ${rank("$4::text")}
          AND CASE WHEN $4 = 'failed' THEN refund_id = $3::uuid OR (refund_id IS NULL AND $3::uuid IS NOT NULL AND amount = $5::bigint)
                   ELSE $3::uuid IS NULL OR refund_id IS NULL OR refund_id = $3::uuid END
        RETURNING amount::text, returned_amount::text AS returned`,
      [inv.invoice_id, ev.intentId, refundId, to, amount, returned],
    );
    return rows[0];
  }
}
