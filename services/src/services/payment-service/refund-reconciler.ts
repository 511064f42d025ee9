/**
 * Settles refunds left `pending`: the service crashed after reserving one (refund() commits the
 * pending row, then calls the processor), or the processor's answer was lost (a timeout, a dropped
 * connection). Before, nothing settled them: the amount stayed held against the payment for ever.
 * Each refund pending longer than `ageMs` since its last send is asked for at the processor by the
 * refund id we sent (processor.ts findRefund), and marked succeeded or failed as the processor has
 * it; one the processor never saw is failed (released) only past the in-flight bound
 * (domain/refund-settlement.ts settleRefund explains the rule).
 *
 * No transaction is open while the processor is asked, which may take every attempt of the SDK:
 * holding the refund's and payment's rows through it kept other refunds, retries and webhooks of
 * that payment waiting and a pool connection busy. Instead a refund is (1) claimed for `leaseMs`
 * in its own committed statement (refund-claims.ts; another replica's pass skips it until then),
 * (2) looked up with nothing held, (3) settled in a short transaction holding its payment's and its
 * own row, only if it is still pending and still carries this pass's claim: meanwhile the request
 * path may have settled it, or a retry of its key sent it again (which clears the claim, so a
 * lookup made before that send cannot fail it), or the lease ran out and another pass took it.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { PostgresClient } from "../../kit";
import { NEVER_REACHED, type RemoteRefund, type RefundSettlement, settleRefund } from "./domain/refund-settlement";
import { reportOf } from "./domain/refund-status";
import type { CardProcessor } from "./processor";
import { type ClaimedRefund, RefundClaims } from "./refund-claims";
import type { RefundRepo } from "./refund-repo";

export interface RefundReconcilerOptions {
  /** A refund pending this long since its last send is looked up (PAYMENT_REFUND_RECONCILE_AGE_MS). */
  ageMs: number;
  /** domain/refund-settlement.ts inFlightBoundMs for this deployment's processor settings. */
  inFlightMs: number;
  /** How long a claim keeps other passes off a refund: longer than one lookup at the processor can take. */
  leaseMs: number;
}

/** `superseded`: settled or sent again by someone else while this pass asked the processor; left as it is. */
export type RefundReconcileResult = { refundId: string; intentId: string; outcome: RefundSettlement["kind"] | "superseded" | "error" };

export class RefundReconciler {
  private readonly claims: RefundClaims;
  constructor(
    private readonly pg: PostgresClient,
    private readonly refunds: RefundRepo,
    private readonly processor: CardProcessor,
    private readonly log: Logger,
    private readonly opts: RefundReconcilerOptions,
    private readonly counted: Counter<"outcome">,
    private readonly published: () => void,
  ) {
    this.claims = new RefundClaims(pg);
  }

  /** One pass: at most `limit` refunds, each settled at most once across replicas. */
  async sweep(limit = 100): Promise<RefundReconcileResult[]> {
    const results: RefundReconcileResult[] = [];
    // Ids looked at in this pass (left pending or failed to settle): not taken again until the next.
    const seen: string[] = [];
    while (results.length < limit) {
      const claim = randomUUID();
      const r = await this.claims.claimStale({ olderThanMs: Math.max(this.opts.ageMs, 0), leaseMs: this.opts.leaseMs, claim, skip: seen });
      if (!r) break;
      seen.push(r.refund_id);
      const result = await this.reconcileClaimed(r, claim);
      this.counted.inc({ outcome: result.outcome });
      if (result.outcome === "succeeded" || result.outcome === "failed") this.published();
      if (result.outcome !== "wait" && result.outcome !== "error") this.log.info(result, "refund reconciled");
      results.push(result);
    }
    return results;
  }

  private async reconcileClaimed(r: ClaimedRefund, claim: string): Promise<RefundReconcileResult> {
    const base = { refundId: r.refund_id, intentId: r.intent_id };
    let remote: RemoteRefund | undefined;
    try {
      // No processor id: the refund could not have been sent for it (the processor refuses a refund of no payment).
      remote = r.processor_intent_id ? await this.processor.findRefund(r.processor_intent_id, r.refund_id) : undefined;
    } catch (err) {
      // The processor did not answer: left pending for the next pass.
      this.log.warn({ ...base, err: { message: (err as Error).message } }, "refund reconciliation: processor lookup failed");
      await this.claims.release(r.refund_id, claim);
      return { ...base, outcome: "error" };
    }
    const outcome = await this.pg.transaction(async (c) => {
      const held = await this.claims.lockClaimed(c, r.refund_id, r.intent_id, claim);
      if (!held) return "superseded" as const;
      // Its last send as it is now: the list was read after the claim, so after this send.
      const settlement = settleRefund(remote, held.since_sent_ms, this.opts.inFlightMs);
      // Found at the processor: its status applied as a webhook's would be (refund-repo.ts apply: booked,
      // released with payment.refund_failed, or, still pending there, its processor status recorded).
      const report = remote && reportOf(remote, null);
      if (report) await this.refunds.apply(r.refund_id, report, c);
      else if (settlement.kind === "never_reached_processor") await this.refunds.fail(r.refund_id, NEVER_REACHED, c);
      await this.claims.release(r.refund_id, claim, c);
      return settlement.kind;
    });
    return { ...base, outcome };
  }
}
