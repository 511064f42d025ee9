/**
 * An operator settles a refund the processor records with another amount or currency than ours
 * (POST /refund-issues/:id/settle). Such a refund (refund-repo.ts matchesProcessor) stays pending and
 * held against its payment until the processor's record matches ours, which it may never do: no
 * operator action ended it before (closing its issue left the refund held). The settle re-reads the
 * refund from the processor (processor.ts findRefund, with no transaction open) and applies the
 * processor's final state as the processor records it, never an amount an operator types:
 *   - succeeded: booked at the processor's amount and currency (refund-repo.ts rebook, then apply: the
 *     journal `refund:<id>`, the payment's refunded total unless in another currency, one
 *     `payment.refunded`), what we asked kept as the refund's `requestedAmount`, the processor's amount
 *     and currency on the issue;
 *   - failed or canceled: released (`payment.refund_failed`), nothing booked;
 *   - still pending there: 409 PROCESSOR_PENDING, nothing changes.
 * A refund booked here already (succeeded) whose re-check found the processor's record differing
 * (refund-reconciler.ts recheck: the issue, its status not applied) could only be closed with a note
 * before (409 REFUND_NOT_PENDING), though its failure at the processor (the money came back) was then
 * never applied by anything: the ledger kept a refund that did not go out, billing never credited it.
 * Settled now: failed or canceled there, it is reversed (journal `refund-reversal:<id>`, the refunded
 * total back, one `payment.refund_reversed`); succeeded there as we booked it (its record matches ours
 * now), the issue is closed and nothing moves; succeeded there at another amount in its currency, the
 * processor's amount is booked (refund-adjustment.ts: the difference journaled, `payment.refund_adjusted`;
 * since session 54, 409 REFUND_BOOKED before); in another currency, 409 REFUND_BOOKED (not re-booked:
 * close it with a note once the difference is corrected). A failed one: 409 REFUND_NOT_PENDING.
 * All of it in one transaction with the payment's row locked first (refund-repo.ts's order): the issue
 * closed with who, how signed in and the note, the refund's other mismatch issue resolved, so a second
 * settle, a webhook or the sweep arriving meanwhile find it settled and change nothing.
 */
import type { Logger } from "pino";
import { HttpError, type Identity, notFound, type PostgresClient } from "../../kit";
import { isCurrency, MAX_AMOUNT } from "../../business/money";
import { reportOf } from "./domain/refund-status";
import type { CardProcessor, ProcessorRefund } from "./processor";
import type { IssueRow, RefundIssues, RefundIssueView } from "./refund-issues";
import { adjustBookedRefund } from "./refund-adjustment";
import type { RefundRepo } from "./refund-repo";
import type { RefundView } from "./refund-view";
import type { PaymentRepo } from "./repo";

const conflict = (code: string, message: string) => new HttpError(409, code, message, "id");
const resolvedAlready = () => conflict("ISSUE_RESOLVED", "this refund issue is resolved already (GET /refund-issues?status=all shows by whom)");
const notPending = () => conflict("REFUND_NOT_PENDING", "the issue's refund is failed here: nothing is held or booked to settle; close the issue with POST /refund-issues/:id/resolve");
const bookedDiffers = () =>
  conflict("REFUND_BOOKED", "the issue's refund is booked here in one currency and the processor has it succeeded in another: a booked refund is not re-booked in another currency; correct the difference (a refund of the rest, or by hand) and close the issue with POST /refund-issues/:id/resolve");
const exceedsPayment = (amount: bigint) =>
  new HttpError(409, "REFUND_EXCEEDS_PAYMENT", `the processor's amount of this refund (${amount}) does not fit into what is left of the payment beside its other refunds: nothing booked`, "id");

export class RefundIssueSettler {
  constructor(
    private readonly pg: PostgresClient,
    private readonly issues: RefundIssues,
    private readonly refunds: RefundRepo,
    private readonly payments: PaymentRepo,
    private readonly processor: CardProcessor | undefined,
    private readonly log: Logger,
    private readonly published: () => void,
  ) {}

  /** Settles the open mismatch issue `issueId` from the processor's record (see above): the issue, closed, and its refund. */
  async settle(issueId: string, by: Pick<Identity, "userId" | "authMethod">, note: string): Promise<RefundIssueView & { refund: RefundView | undefined }> {
    const processor = this.processor;
    if (!processor) throw new HttpError(404, "PROCESSOR_NOT_CONFIGURED", "the card processor is not configured on this deployment");
    const issue = await this.issues.byId(issueId);
    if (!issue) throw notFound("refund issue not found");
    if (issue.resolved_at) throw resolvedAlready();
    const refundId = issue.refund_id;
    if (!issue.kind.endsWith("_mismatch") || !refundId)
      throw conflict("ISSUE_NOT_SETTLEABLE", "only an amount_mismatch or currency_mismatch issue of one of our refunds is settled from the processor's record; close this one with POST /refund-issues/:id/resolve");
    const remote = await this.lookUp(issue, refundId, processor);
    const report = reportOf(remote, null);
    if (!report || report.status === "pending" || report.status === "requires_action")
      throw conflict("PROCESSOR_PENDING", `the processor has this refund ${remote.status.slice(0, 32)}, not final yet: settle it once the processor has it succeeded or failed`);
    const succeeded = report.status === "succeeded";
    if (succeeded && (remote.amount <= 0n || remote.amount > MAX_AMOUNT || !isCurrency(remote.currency)))
      throw conflict("PROCESSOR_RECORD_UNBOOKABLE", "the processor's record of this refund has no amount or currency the ledger can book; close the issue with POST /refund-issues/:id/resolve");
    const closed = await this.pg.transaction(async (c) => {
      // The payment first, then the issue and the refund: refund-repo.ts's lock order.
      const intent = (await this.payments.byId(issue.intent_id, c, true))!;
      if ((await this.issues.byId(issueId, c, true))?.resolved_at) throw resolvedAlready();
      const ours = (await c.query<{ status: string; amount: string; currency: string | null }>("SELECT status, amount, currency FROM pay_refunds WHERE refund_id = $1 FOR UPDATE", [refundId])).rows[0];
      if (ours?.status !== "pending" && ours?.status !== "succeeded") throw notPending();
      // (the processor's record may match ours by now: then booked as it is, nothing re-booked)
      const same = remote.currency === (ours.currency ?? intent.currency) && remote.amount === BigInt(ours.amount);
      // Booked here (a re-check found the processor's record differing): its failure there is reversed; its
      // success at another amount is not re-booked; its success as we booked it (the processor's record
      // matches ours now) moves nothing and closes the issue.
      const bookedAsIs = ours.status === "succeeded" && succeeded;
      if (bookedAsIs && !same) {
        if (remote.currency !== (ours.currency ?? intent.currency)) throw bookedDiffers();
        const booked = { refundId, amount: BigInt(ours.amount), currency: ours.currency };
        if ((await adjustBookedRefund(c, this.payments, intent, booked, remote.amount)) === "exceeds_payment") throw exceedsPayment(remote.amount);
      }
      if (succeeded && !same) await this.refunds.rebook(c, refundId, remote.amount, remote.currency === intent.currency ? null : remote.currency);
      if (!bookedAsIs) {
        const { step } = await this.refunds.apply(refundId, report, c);
        if (step.kind === "exceeds_payment") throw exceedsPayment(remote.amount);
        if (step.kind !== "move") throw notPending();
      }
      const v = (await this.issues.closeIn(c, issueId, by, note, { status: report.status, amount: remote.amount, currency: remote.currency }))!;
      // Its other mismatch issue, if any, is over as well (resolved by the service: the refund is settled).
      await this.issues.resolve(c, ["amount_mismatch", "currency_mismatch"], { refundId, processorRefundId: null });
      return v;
    });
    this.issues.logClosed(closed, by);
    this.published();
    const refund = (await this.refunds.ofIntents([issue.intent_id])).get(issue.intent_id)?.find((r) => r.id === refundId);
    return { ...closed, refund };
  }

  /** The processor's record of the issue's refund now; 409 when it has none, 502 when it does not answer. */
  private async lookUp(issue: IssueRow, refundId: string, processor: CardProcessor): Promise<ProcessorRefund> {
    const intent = await this.payments.byId(issue.intent_id);
    const held = await this.refunds.find({ refundId, processorRefundId: issue.processor_refund_id ?? "" });
    let remote: ProcessorRefund | undefined;
    try {
      if (intent?.processor_intent_id) remote = await processor.findRefund(intent.processor_intent_id, { refundId, processorRefundId: held?.processor_refund_id ?? issue.processor_refund_id });
    } catch (err) {
      this.log.warn({ issueId: issue.issue_id, refundId, err: { message: (err as Error).message } }, "refund issue settle: processor lookup failed");
      throw new HttpError(502, "PROCESSOR_UNAVAILABLE", "the processor did not answer; nothing changed (retry the settle)");
    }
    if (!remote) throw conflict("PROCESSOR_HAS_NO_RECORD", "the processor lists no such refund of the payment now: nothing to settle from; close the issue with POST /refund-issues/:id/resolve");
    return remote;
  }
}
