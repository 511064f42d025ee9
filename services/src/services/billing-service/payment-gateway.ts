/**
 * billing-service's view of payment-service: charges and refunds billing asks for (the HTTP client
 * is index.ts paymentGateway; tests use a stand-in).
 */

export interface PaymentGateway {
  /**
   * Asks payment-service to charge; resolves once it accepted the request (outcome comes as an
   * event). Throws ChargeRefusedError when payment-service refused the request for good
   * (domain/invoices.ts refusesCharge), ChargeHeldError when it holds the charge for an operator,
   * any other error when it may be retried as it is.
   */
  charge(p: { userId: string; amount: bigint; currency: string; paymentMethod: string; reference: string; idempotencyKey: string; description: string }): Promise<{ intentId: string; status: string }>;
  /** Whether `paymentMethod` is saved to `userId` at payment-service (only such a method is ever charged). */
  isSaved(userId: string, paymentMethod: string): Promise<boolean>;
  /**
   * Asks payment-service to refund `amount` of the intent; resolves with the refund as it answered it:
   * `pending` (accepted, the money not back yet: payment.refunded tells when it is) or `succeeded`.
   * Throws ChargeRefusedError when payment-service refused it for good, any other error when it may be
   * retried as it is (the idempotency key makes a retry refund once).
   */
  refund(p: { intentId: string; amount: bigint; idempotencyKey: string; reason: string }): Promise<{ refundId: string | null; status: "pending" | "succeeded" }>;
}

/**
 * payment-service holds the charge for an operator (the processor answered it with another amount or
 * currency: 409 CHARGE_HELD_FOR_REVIEW, or 502 PROCESSOR_MISMATCH its first answer): neither failed
 * nor to be sent again, with this key or another; its outcome comes as a payment event.
 */
export class ChargeHeldError extends Error {
  constructor(readonly code: string) {
    super(`the charge is held for an operator's review (${code})`);
    this.name = "ChargeHeldError";
  }
}

/** The answers of payment-service that say it holds the charge (ChargeHeldError). */
export const HELD_CHARGE_CODES: ReadonlySet<string> = new Set(["CHARGE_HELD_FOR_REVIEW", "PROCESSOR_MISMATCH"]);

/** payment-service refused a charge (or refund) request for good: the attempt has failed. */
export class ChargeRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ChargeRefusedError";
  }
}
