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
 * recheck() does the same for refunds that succeeded recently: one can still fail there later.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { PostgresClient } from "../../kit";
import { NEVER_REACHED, type RefundSettlement, settleRefund } from "./domain/refund-settlement";
import { reportOf } from "./domain/refund-status";
import type { CardProcessor, ProcessorRefund } from "./processor";
import { type ClaimedRefund, RefundClaims } from "./refund-claims";
import type { RefundRepo } from "./refund-repo";

export interface RefundReconcilerOptions {
  /** A refund pending this long since its last send is looked up (PAYMENT_REFUND_RECONCILE_AGE_MS). */
  ageMs: number;
  /** domain/refund-settlement.ts inFlightBoundMs for this deployment's processor settings. */
  inFlightMs: number;
  /** How long a claim keeps other passes off a refund: longer than one lookup at the processor can take. */
  leaseMs: number;
  /** Succeeded refunds are re-checked for this many days after they succeeded (PAYMENT_REFUND_RECHECK_DAYS; 0: never). */
  recheckDays: number;
  /** ...each at most once in this long (PAYMENT_REFUND_RECHECK_EVERY_MINUTES). */
  recheckEveryMs: number;
}

/**
 * A succeeded refund re-checked: `reversed` (it failed at the processor since: reversed as its webhook
 * would have), `unchanged`, `not_found` (the processor lists no such refund of the payment: recorded
 * for an operator once, GET /refund-issues, and still re-checked in the window), `superseded` (a
 * webhook moved it meanwhile), `error` (the processor did not answer), `mismatch` (the processor's
 * record of it is of another amount or currency: not applied, recorded for an operator once).
 */
export type RefundRecheckResult = { refundId: string; intentId: string; outcome: "reversed" | "unchanged" | "not_found" | "mismatch" | "superseded" | "error" };

/**
 * `superseded`: settled or sent again by someone else while this pass asked the processor; left as it
 * is. `mismatch`: the processor's record of it is of another amount or currency: left pending and held,
 * recorded for an operator once (refund-repo.ts matchesProcessor), looked up again by the next passes.
 */
export type RefundReconcileResult = { refundId: string; intentId: string; outcome: RefundSettlement["kind"] | "mismatch" | "superseded" | "error" };

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
    private readonly rechecked?: Counter<"outcome">,
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
      // (`mismatch`: logged at error level once, when first recorded for an operator: refund-issues.ts)
      if (result.outcome !== "wait" && result.outcome !== "error" && result.outcome !== "mismatch") this.log.info(result, "refund reconciled");
      results.push(result);
    }
    return results;
  }

  /**
   * One pass over refunds that succeeded within `recheckDays` and were not looked at in the last
   * `recheckEveryMs` (least recently checked first, at most `limit`): a refund can fail after it
   * succeeded (a closed card), and when that failure's webhook is lost nothing else would see it. Each
   * is claimed as a pending one is (refund-claims.ts: SKIP LOCKED, a lease; replicas never check one
   * twice at once), looked up with nothing held, and its processor status applied as a webhook's would
   * be (refund-repo.ts apply: a failed one is reversed, journal `refund-reversal:<id>` and
   * `payment.refund_reversed`, once: the late webhook then finds it failed already and changes nothing).
   */
  async recheck(limit = 100): Promise<RefundRecheckResult[]> {
    const results: RefundRecheckResult[] = [];
    if (this.opts.recheckDays <= 0) return results;
    const seen: string[] = [];
    while (results.length < limit) {
      const claim = randomUUID();
      const r = await this.claims.claimSettled({ withinDays: this.opts.recheckDays, everyMs: this.opts.recheckEveryMs, leaseMs: this.opts.leaseMs, claim, skip: seen });
      if (!r) break;
      seen.push(r.refund_id);
      const result = await this.recheckClaimed(r, claim);
      this.rechecked?.inc({ outcome: result.outcome });
      if (result.outcome === "reversed") {
        this.published();
        this.log.warn(result, "refund failed at the processor after it succeeded (its webhook never came): reversed");
      }
      // (`not_found`: logged at error level and counted once, when first recorded for an operator: refund-issues.ts)
      results.push(result);
    }
    return results;
  }

  private async recheckClaimed(r: ClaimedRefund, claim: string): Promise<RefundRecheckResult> {
    const base = { refundId: r.refund_id, intentId: r.intent_id };
    const looked = await this.lookUp(r, claim);
    if (looked === "error") return { ...base, outcome: "error" };
    const report = looked && reportOf(looked, null);
    const outcome = await this.pg.transaction(async (c) => {
      if (!(await this.claims.lockClaimed(c, r.refund_id, r.intent_id, claim, "succeeded"))) return "superseded" as const;
      // Of another amount or currency: not applied (a failure there would reverse what it is not), an operator's issue.
      const matches = !looked || (await this.refunds.matchesProcessor(r.refund_id, looked, c));
      const step = report && matches ? (await this.refunds.apply(r.refund_id, report, c)).step : undefined;
      await this.refunds.listedAtProcessor(c, r.refund_id, !!looked);
      await this.claims.release(r.refund_id, claim, c, true);
      if (!matches) return "mismatch" as const;
      if (!report) return "not_found" as const;
      return step?.kind === "move" && step.effect === "reverse" ? ("reversed" as const) : ("unchanged" as const);
    });
    return { ...base, outcome };
  }

  /** The processor's record of a claimed refund (undefined: it has none), or `error` (claim released) when it did not answer. */
  private async lookUp(r: ClaimedRefund, claim: string): Promise<ProcessorRefund | undefined | "error"> {
    try {
      // No processor id: the refund could not have been sent for it (the processor refuses a refund of no payment).
      return r.processor_intent_id ? await this.processor.findRefund(r.processor_intent_id, { refundId: r.refund_id, processorRefundId: r.processor_refund_id }) : undefined;
    } catch (err) {
      // The processor did not answer: left for the next pass.
      this.log.warn({ refundId: r.refund_id, intentId: r.intent_id, err: { message: (err as Error).message } }, "refund reconciliation: processor lookup failed");
      await this.claims.release(r.refund_id, claim);
      return "error";
    }
  }

  private async reconcileClaimed(r: ClaimedRefund, claim: string): Promise<RefundReconcileResult> {
    const base = { refundId: r.refund_id, intentId: r.intent_id };
    const remote = await this.lookUp(r, claim);
    if (remote === "error") return { ...base, outcome: "error" };
    const outcome = await this.pg.transaction(async (c) => {
      const held = await this.claims.lockClaimed(c, r.refund_id, r.intent_id, claim);
      if (!held) return "superseded" as const;
      // Of another amount or currency: left pending and held (neither booked nor released), an operator's issue.
      if (remote && !(await this.refunds.matchesProcessor(r.refund_id, remote, c))) {
        await this.claims.release(r.refund_id, claim, c);
        return "mismatch" as const;
      }
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
