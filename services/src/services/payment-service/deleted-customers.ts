/**
 * The processor customers of deleted accounts, deleted at the processor (Stripe deletes the customer's
 * saved cards with it: never charged again). A durable job: every reconciliation pass (index.ts, and
 * `POST /reconcile`) first takes the tombstones (deleted_users) of accounts user-management deleted since
 * (not yet checked: migration 0507's marker) and marks their customers due, then takes up to 100 due
 * customers not deleted there yet and deletes them; one the processor did not confirm is tried again by
 * a later pass, until it does (migration 0495). Until session 54 each pass joined every tombstone ever
 * written with the customers: its cost grew with the history of deletions; now it follows the new ones. A card save whose account was deleted
 * mid-way records the customer it made the same way and deletes it at once (payment-methods.ts), so a
 * failure there is retried too. Before, only that mid-way case deleted its customer (a failure only
 * logged), and every customer of an account deleted after its first save stayed at the processor.
 *
 * One pass at a time per customer (session 56): a pass claims one due customer at a time with a lease
 * (migration 0510), committed before the processor is asked, and passes at once (replicas, an
 * operator's POST /reconcile beside the periodic pass) each take another. Before, a pass took its 100
 * in one statement that marked them tried and held nothing after it: a pass started a moment later
 * took the same ones, and each sent the processor the same delete (the second its 404).
 *
 * A delete never outlives its claim (session 57): the processor call is given a deadline inside the
 * claim's lease (DeleteBounds: the lease is the call's bound and a margin), counted from before the
 * claim was asked, and the SDK's attempts are cut at it and none is sent after it (processor-deadline.ts).
 * A call cut at that deadline keeps its claim to the lease's end: its last attempt may still be on its
 * way, and the margin passes before another pass may send (any other failure ends the claim at once).
 * Before, the lease was the call's nominal bound plus a minute, but nothing held the call to it (the
 * SDK's timeout is per idle socket, a slow host stretches it): a lease that ran out mid-call let a
 * second pass claim the customer and send the same delete while the first was still under way.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { PaymentMethodData } from "./payment-method-data";
import type { CardProcessor } from "./processor";
import { CallDeadlineError } from "./processor-deadline";

/** Tombstones checked a statement (markDeletedAccountsDue), and statements a pass at most. */
const TOMBSTONE_BATCH = 1000;
const TOMBSTONE_BATCHES = 10;
/** Beside one processor request's every attempt, a claim's lease holds this much more: the record after it, a slow host. */
const CLAIM_MARGIN_MS = 60_000;
/** The least margin between a delete's deadline and its claim's end (DeleteBounds as a test gives them). */
const LEAST_MARGIN_MS = 1_000;

/** How long a claim holds (`leaseMs`), and of it how long its delete's processor call may take (`callMs`, every attempt included). */
export interface DeleteBounds {
  leaseMs: number;
  callMs: number;
}

/** The bounds of a processor whose one request takes at most `requestBoundMs` (CardProcessor.requestBoundMs): that, and a minute's margin. */
export function deleteBounds(requestBoundMs: number): DeleteBounds {
  return { callMs: requestBoundMs, leaseMs: requestBoundMs + CLAIM_MARGIN_MS };
}

export class DeletedCustomers {
  private readonly bounds: DeleteBounds;
  constructor(
    private readonly data: PaymentMethodData,
    private readonly processor: CardProcessor,
    private readonly log: Logger,
    bounds?: DeleteBounds,
  ) {
    this.bounds = bounds ?? deleteBounds(processor.requestBoundMs);
    if (!(this.bounds.callMs > 0 && this.bounds.leaseMs - this.bounds.callMs >= LEAST_MARGIN_MS))
      throw new Error(`a delete's claim must outlast its call by at least ${LEAST_MARGIN_MS} ms (lease ${this.bounds.leaseMs} ms, call ${this.bounds.callMs} ms)`);
  }

  /**
   * One pass: deletes at the processor up to `limit` customers of deleted accounts, least recently
   * tried first; answers how many it deleted. It stops at the first the processor did not delete
   * (unreachable, or refusing: the rest would fare alike), logged; a later pass goes on.
   */
  async sweep(limit = 100): Promise<number> {
    // (1,000 tombstones a statement, at most 10 statements a pass: a backlog goes on at the next pass)
    for (let i = 0; i < TOMBSTONE_BATCHES; i++) if ((await this.data.markDeletedAccountsDue(TOMBSTONE_BATCH)) < TOMBSTONE_BATCH) break;
    const claim = randomUUID();
    let deleted = 0;
    for (let i = 0; i < limit; i++) {
      // (before the claim is asked: the lease the database starts after this can only end later)
      const asked = performance.now();
      const due = await this.data.claimDue(claim, this.bounds.leaseMs);
      if (!due) break;
      const removed = await this.remove(due.userId, due.customerId, claim, asked);
      if (!removed) break;
      // Counted by the pass that recorded it (since session 55: three passes at once each answered 1
      // for one customer). With the claims and the call held inside its lease, a second pass no longer deletes it.
      if (removed.recorded) deleted++;
    }
    return deleted;
  }

  /**
   * A card save's customer made for an account deleted meanwhile (payment-methods.ts): recorded claimed
   * by the save, so no pass sends the same delete, and deleted at the processor now; one the processor
   * did not delete is left to a later pass (its claim ended, or, cut at its deadline, run out).
   */
  async recordAndRemove(userId: string, customerId: string): Promise<void> {
    const claim = randomUUID();
    const asked = performance.now();
    await this.data.recordForDeletion(userId, customerId, claim, this.bounds.leaseMs);
    await this.remove(userId, customerId, claim, asked);
  }

  /**
   * Deletes the customer at the processor, within the claim `claim` asked at `asked` (performance.now()), and
   * records it; false (logged with its ids) when the processor did not: the claim ended so the next pass
   * tries it again, unless the call was cut at its deadline (its last attempt may still be on its way to
   * the processor: the claim runs to its lease's end, the margin after the deadline, rather than let
   * another pass send beside it). `recorded`: this call recorded it (false: recorded already by another).
   */
  private async remove(userId: string, customerId: string, claim: string, asked: number): Promise<false | { recorded: boolean }> {
    // The monotonic clock: the call's time is measured in this process, where a wall-clock step (NTP, a
    // VM resumed) would stretch it past the claim's lease (a second pass then sends beside it) or cut it.
    // The lease itself stays on the database's clock (now() + leaseMs, stored: every replica reads it).
    const left = asked + this.bounds.callMs - performance.now();
    let sent = false;
    try {
      // (a claim that took its call's whole time to answer: nothing is sent under it)
      if (left <= 0) throw new CallDeadlineError("a customer's delete", this.bounds.callMs);
      sent = true;
      await this.processor.deleteCustomer(customerId, left);
    } catch (err) {
      // None such there (deleted by an earlier pass whose record failed, or on the processor's dashboard): done.
      const gone = this.processor.isClientError(err) && err.code === "resource_missing";
      if (!gone) {
        this.log.warn({ userId, customerId, err: { message: (err as Error).message } }, "deleted account's processor customer not deleted yet; a later pass tries again");
        if (!(sent && err instanceof CallDeadlineError)) await this.data.releaseDeleteClaim(customerId, claim);
        return false;
      }
    }
    return { recorded: await this.data.customerDeletedAtProcessor(customerId) };
  }
}
