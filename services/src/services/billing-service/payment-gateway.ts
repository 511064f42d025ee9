/**
 * billing-service's view of payment-service: charges and refunds billing asks for (the HTTP client
 * is index.ts paymentGateway; tests use a stand-in).
 */

export interface PaymentGateway {
  /**
   * Asks payment-service to charge; resolves once it accepted the request (outcome comes as an
   * event). Throws ChargeRefusedError when payment-service refused the request for good
   * (domain/invoices.ts refusesCharge), any other error when it may be retried as it is.
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
