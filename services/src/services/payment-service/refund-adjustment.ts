/**
 * A refund booked here (succeeded) that the processor records succeeded at another amount in the same
 * currency (a re-check or a webhook found it: an `amount_mismatch` issue, its report not applied). Until
 * session 54 an operator's settle answered 409 REFUND_BOOKED and the difference had to be corrected by
 * hand: the ledger, the payment's refunded total and billing kept our amount though the processor paid
 * out its own. The platform does as it does for every mismatch: nothing moves on the processor's word
 * alone (the issue holds it for an operator), and the operator's settle (refund-issue-settle.ts) books
 * the processor's amount as the truth, read again from the processor, never typed in:
 *   - the refund's `amount` becomes the processor's, what we had booked kept as `requestedAmount`;
 *   - the payment's refunded total moves by the difference (not for a refund an earlier settle booked
 *     in another currency than the payment's: that total never held it), refused with 409
 *     REFUND_EXCEEDS_PAYMENT when more would be refunded than the payment beside its other refunds;
 *   - a journal `refund-adjustment:<refund id>` of the difference (customer <- processor when more went
 *     back, the reverse when less did);
 *   - one `payment.refund_adjusted` (event id `refund:<id>:adjusted`, `refundedAmount` the processor's,
 *     `previousRefundedAmount` ours): billing-service moves what it recorded as given back and the credit
 *     of its shortfall (give-backs.ts adjusted).
 * Once per refund: the settle closes its issue as an operator's, and such a close is never reopened
 * (refund-issues.ts record), so no second settle of it reaches here. In the settle's transaction, with
 * the payment's row and the refund's locked (refund-repo.ts's lock order).
 */
import type { PoolClient } from "pg";
import { type Currency, toJson } from "../../business/money";
import { journal, refundIssued, refundReversed } from "./domain/ledger";
import { HOLDS } from "./refund-repo";
import type { IntentRow, PaymentRepo } from "./repo";

export interface BookedRefund {
  refundId: string;
  /** What is booked. */
  amount: bigint;
  /** Null: the payment's currency (then the payment's refunded total holds it). */
  currency: string | null;
}

/** Books `processorAmount` for the booked refund (see above): "adjusted", or "exceeds_payment" with nothing written. */
export async function adjustBookedRefund(c: PoolClient, payments: PaymentRepo, intent: IntentRow, ours: BookedRefund, processorAmount: bigint): Promise<"adjusted" | "exceeds_payment"> {
  const { refundId } = ours;
  const delta = processorAmount - ours.amount;
  const inRefunded = ours.currency === null;
  if (inRefunded && delta > 0n) {
    const { rows } = await c.query<{ others: string }>(
      `SELECT coalesce(sum(${HOLDS}), 0)::text AS others FROM pay_refunds WHERE intent_id = $1 AND status IN ('pending', 'succeeded') AND refund_id <> $2`,
      [intent.intent_id, refundId],
    );
    const amount = BigInt(intent.amount);
    if (BigInt(rows[0].others) + processorAmount > amount || BigInt(intent.refunded) + delta > amount) return "exceeds_payment";
  }
  await c.query("UPDATE pay_refunds SET requested_amount = coalesce(requested_amount, amount), amount = $2, updated_at = now() WHERE refund_id = $1", [refundId, processorAmount.toString()]);
  let row = intent;
  if (inRefunded)
    row = (await c.query<IntentRow>("UPDATE pay_intents SET refunded = refunded + $2, updated_at = now() WHERE intent_id = $1 RETURNING *", [intent.intent_id, delta.toString()])).rows[0];
  const currency = (ours.currency ?? intent.currency) as Currency;
  const m = { processor: intent.processor, userId: intent.user_id, amount: delta > 0n ? delta : -delta, currency, refundId };
  const moves = (delta > 0n ? refundIssued(m) : refundReversed(m)).map((x) => ({ ...x, memo: `refund adjusted ${refundId}` }));
  await payments.post(c, `refund-adjustment:${refundId}`, "refund_adjustment", journal(moves));
  await payments.emit(c, row, "payment.refund_adjusted", {
    eventId: `refund:${refundId}:adjusted`,
    refundId,
    refundedAmount: toJson(processorAmount),
    previousRefundedAmount: toJson(ours.amount),
    currency,
  });
  return "adjusted";
}
