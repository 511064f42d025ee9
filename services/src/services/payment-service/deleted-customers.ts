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
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { PaymentMethodData } from "./payment-method-data";
import type { CardProcessor } from "./processor";

/** Tombstones checked a statement (markDeletedAccountsDue), and statements a pass at most. */
const TOMBSTONE_BATCH = 1000;
const TOMBSTONE_BATCHES = 10;
/** Beside one processor request's every attempt, a claim's lease holds this much more: the record after it, a slow host. */
const CLAIM_MARGIN_MS = 60_000;

export class DeletedCustomers {
  constructor(
    private readonly data: PaymentMethodData,
    private readonly processor: CardProcessor,
    private readonly log: Logger,
  ) {}

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
      const due = await this.data.claimDue(claim, this.leaseMs());
      if (!due) break;
      const removed = await this.remove(due.userId, due.customerId, claim);
      if (!removed) break;
      // Counted by the pass that recorded it (since session 55: three passes at once each answered 1
      // for one customer). With the claims a second pass no longer deletes it; a lease that ran out
      // mid-call (a processor slower than its bound) still may.
      if (removed.recorded) deleted++;
    }
    return deleted;
  }

  /**
   * A card save's customer made for an account deleted meanwhile (payment-methods.ts): recorded claimed
   * by the save, so no pass sends the same delete, and deleted at the processor now; one the processor
   * did not delete is left to a later pass (its claim ended).
   */
  async recordAndRemove(userId: string, customerId: string): Promise<void> {
    const claim = randomUUID();
    await this.data.recordForDeletion(userId, customerId, claim, this.leaseMs());
    await this.remove(userId, customerId, claim);
  }

  /** How long a claim holds: the delete's every attempt, and the margin. */
  private leaseMs(): number {
    return this.processor.requestBoundMs + CLAIM_MARGIN_MS;
  }

  /**
   * Deletes the customer at the processor and records it; false (logged with its ids, the claim
   * `claim` ended so the next pass tries it again) when the processor did not; `recorded`: this call
   * recorded it (false: recorded already by another).
   */
  private async remove(userId: string, customerId: string, claim: string): Promise<false | { recorded: boolean }> {
    try {
      await this.processor.deleteCustomer(customerId);
    } catch (err) {
      // None such there (deleted by an earlier pass whose record failed, or on the processor's dashboard): done.
      const gone = this.processor.isClientError(err) && err.code === "resource_missing";
      if (!gone) {
        this.log.warn({ userId, customerId, err: { message: (err as Error).message } }, "deleted account's processor customer not deleted yet; a later pass tries again");
        await this.data.releaseDeleteClaim(customerId, claim);
        return false;
      }
    }
    return { recorded: await this.data.customerDeletedAtProcessor(customerId) };
  }
}
