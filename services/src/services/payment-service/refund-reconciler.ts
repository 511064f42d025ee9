/**
 * Settles refunds left `pending`: the service crashed after reserving one (refund() commits the
 * pending row, then calls the processor), or the processor's answer was lost (a timeout, a dropped
 * connection). Before, nothing settled them: the amount stayed held against the payment for ever.
 * Each refund pending longer than `ageMs` since its last send is asked for at the processor by the
 * refund id we sent (processor.ts findRefund), and marked succeeded or failed as the processor has
 * it; one the processor never saw is failed (released) only past the in-flight bound
 * (domain/refund-settlement.ts settleRefund explains the rule).
 *
 * Replicas: each refund is worked on in its own transaction holding its row and its payment's row
 * (FOR UPDATE ... SKIP LOCKED): another replica's sweep skips it, and a client's retry of the same key
 * (refund(), which takes the payment's lock) waits and then sees the outcome.
 */
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { PostgresClient } from "../../kit";
import { NEVER_REACHED, type RefundSettlement, settleRefund } from "./domain/refund-settlement";
import type { CardProcessor } from "./processor";
import type { PaymentRepo } from "./repo";

export interface RefundReconcilerOptions {
  /** A refund pending this long since its last send is looked up (PAYMENT_REFUND_RECONCILE_AGE_MS). */
  ageMs: number;
  /** domain/refund-settlement.ts inFlightBoundMs for this deployment's processor settings. */
  inFlightMs: number;
}

export type RefundReconcileResult = { refundId: string; intentId: string; outcome: RefundSettlement["kind"] | "error" };

export class RefundReconciler {
  constructor(
    private readonly pg: PostgresClient,
    private readonly repo: PaymentRepo,
    private readonly processor: CardProcessor,
    private readonly log: Logger,
    private readonly opts: RefundReconcilerOptions,
    private readonly counted: Counter<"outcome">,
    private readonly published: () => void,
  ) {}

  /** One pass: at most `limit` refunds, each settled at most once across replicas. */
  async sweep(limit = 100): Promise<RefundReconcileResult[]> {
    const results: RefundReconcileResult[] = [];
    // Ids looked at in this pass (left pending or failed to settle): not taken again until the next.
    const seen: string[] = [];
    while (results.length < limit) {
      const result = await this.pg.transaction(async (c) => {
        const r = await this.repo.lockStalePendingRefund(c, Math.max(this.opts.ageMs, 0), seen);
        if (!r) return undefined;
        seen.push(r.refund_id);
        const base = { refundId: r.refund_id, intentId: r.intent_id };
        let settlement: RefundSettlement;
        try {
          // No processor id: the refund could not have been sent for it (the processor refuses a refund of no payment).
          const remote = r.processor_intent_id ? await this.processor.findRefund(r.processor_intent_id, r.refund_id) : undefined;
          settlement = settleRefund(remote, r.since_sent_ms, this.opts.inFlightMs);
        } catch (err) {
          // The processor did not answer: left pending for the next pass.
          this.log.warn({ ...base, err: { message: (err as Error).message } }, "refund reconciliation: processor lookup failed");
          return { ...base, outcome: "error" as const };
        }
        if (settlement.kind === "succeeded") await this.repo.completeRefund(r.refund_id, settlement.processorRefundId, c);
        else if (settlement.kind === "failed") await this.repo.failRefund(r.refund_id, settlement.failureCode, c, settlement.processorRefundId);
        else if (settlement.kind === "never_reached_processor") await this.repo.failRefund(r.refund_id, NEVER_REACHED, c);
        return { ...base, outcome: settlement.kind };
      });
      if (!result) break;
      this.counted.inc({ outcome: result.outcome });
      if (result.outcome === "succeeded") this.published();
      if (result.outcome !== "wait" && result.outcome !== "error") this.log.info(result, "refund reconciled");
      results.push(result);
    }
    return results;
  }
}
