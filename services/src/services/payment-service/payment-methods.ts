/**
 * Saved payment methods: the only cards payment-service charges. A user saves a processor token
 * (`pm_...`, made by the processor's client library in the user's browser): it is attached to the
 * user's processor customer, which the processor refuses for a card already attached to someone
 * else, and recorded for that user. A charge names a saved method of the payer and its customer, so
 * a token of another user, one made up, or one never saved is refused before the processor is asked.
 */
import type { Logger } from "pino";
import { accountDeleted, HttpError } from "../../kit";
import { DeletedCustomers } from "./deleted-customers";
import type { CardProcessor } from "./processor";
import type { PaymentMethodData, PaymentMethodRow } from "./payment-method-data";

const notFound = () => new HttpError(404, "PAYMENT_METHOD_NOT_FOUND", "no saved payment method of yours has this id: save it first (POST /payment-methods)", "paymentMethod");

export class PaymentMethods {
  /** Deletes deleted accounts' customers at the processor (its sweep runs with reconciliation); none without a processor. */
  readonly deletedCustomers: DeletedCustomers | undefined;

  constructor(
    private readonly data: PaymentMethodData,
    private readonly processor: CardProcessor | undefined,
    private readonly log: Logger,
    /** Methods one user may have saved (PAYMENT_MAX_METHODS_PER_USER). */
    private readonly maxPerUser: number,
  ) {
    this.deletedCustomers = processor && new DeletedCustomers(data, processor, log);
  }

  private requireProcessor(): CardProcessor {
    if (!this.processor) throw new HttpError(404, "PROCESSOR_NOT_CONFIGURED", "the card processor is not configured on this deployment");
    return this.processor;
  }

  /** Attaches `token` to the user's customer and records it; saving one of the user's own methods again answers it. */
  async save(userId: string, token: string): Promise<{ row: PaymentMethodRow; created: boolean }> {
    const processor = this.requireProcessor();
    const mine = await this.data.owned(userId, token);
    if (mine) return { row: mine, created: false };
    await this.refuseDeleted(userId, "no card is saved for it");
    // Tokens are free to make in a browser: without a bound one user's saves grew their rows, their
    // customer at the processor and GET /payment-methods (which lists them all) without end.
    if ((await this.data.countFor(userId)) >= this.maxPerUser) throw this.full();
    // A first save makes the customer at the processor, then records it under the account's lock.
    const known = await this.data.customerOf(userId);
    const made = known ? undefined : await processor.createCustomer(userId);
    const customerId = known ?? (await this.data.saveCustomer(userId, made!));
    // Deleted since the check above: no card is attached, and the customer just made is deleted there.
    if (customerId === "account_deleted") return this.deletedMidway(userId, made);
    let attached;
    try {
      attached = await processor.attach(token, customerId);
    } catch (err) {
      if (!processor.isClientError(err)) throw err;
      this.log.info({ userId, code: processor.failureCodeOf(err) }, "payment method refused by the processor");
      throw new HttpError(422, "PAYMENT_METHOD_REFUSED", "the processor refused this payment method (unknown, already saved by another account, or used once already)", "paymentMethod");
    }
    const row = await this.data.insert(userId, attached, this.maxPerUser);
    if (row === "full") {
      // Another save of the user's took the last place meanwhile: this card is not kept at the processor either.
      await this.detachQuietly(userId, attached.id);
      throw this.full();
    }
    if (row === "account_deleted") {
      await this.detachQuietly(userId, attached.id);
      return this.deletedMidway(userId, made);
    }
    if (row) return { row, created: true };
    // Recorded already: the user's own (a concurrent save), or, if the processor let it through, someone else's.
    const again = await this.data.owned(userId, attached.id);
    if (again) return { row: again, created: false };
    throw new HttpError(422, "PAYMENT_METHOD_REFUSED", "this payment method is saved by another account", "paymentMethod");
  }

  /**
   * An account deleted while its request was under way (it passed the gateway before the deletion) is
   * refused before the processor is asked: 403 ACCOUNT_DELETED naming userId. Before, a card was
   * saved and a payment charged for an account that no longer existed (session 49's race suite). The
   * writes read the tombstone again in their own transaction, under the account's row lock (insert,
   * insertIntent: kit lockAccountForWrite), so a deletion waits for a write that passed, or is seen by it.
   */
  async refuseDeleted(userId: string, does: string): Promise<void> {
    if (await this.data.accountDeleted(userId)) throw accountDeleted(userId, does);
  }

  /**
   * A save whose account was deleted after its check (a locked write read the tombstone): 403
   * ACCOUNT_DELETED naming userId. The processor customer this save made (a first save's, `made`) is
   * recorded, if it was not, and deleted there at once: nothing of the account is left at the processor
   * (one the processor did not delete is deleted by a later pass: deleted-customers.ts, as a customer
   * made by an earlier save is).
   */
  private async deletedMidway(userId: string, made: string | undefined): Promise<never> {
    if (made && this.deletedCustomers) {
      await this.deletedCustomers.recordAndRemove(userId, made);
    }
    throw accountDeleted(userId, "no card is saved for it");
  }

  private full(): HttpError {
    return new HttpError(409, "PAYMENT_METHODS_LIMIT", `at most ${this.maxPerUser} saved payment methods per user: remove one first (DELETE /payment-methods/:paymentMethod)`, "paymentMethod");
  }

  private async detachQuietly(userId: string, paymentMethod: string): Promise<void> {
    try {
      await this.processor?.detach(paymentMethod);
    } catch (err) {
      this.log.warn({ userId, paymentMethod, err: { message: (err as Error).message } }, "payment method not detached at the processor");
    }
  }

  list(userId: string): Promise<PaymentMethodRow[]> {
    return this.data.listFor(userId);
  }

  /** Removes the user's method: never charged again; detached at the processor (logged if that fails). */
  async remove(userId: string, paymentMethod: string): Promise<void> {
    if (!(await this.data.remove(userId, paymentMethod))) throw notFound();
    await this.detachQuietly(userId, paymentMethod);
  }

  /** The customer to charge `paymentMethod` to for `userId`, or a 404 naming paymentMethod unless it is a saved method of theirs. */
  async customerFor(userId: string, paymentMethod: string): Promise<string> {
    const [row, customerId] = await Promise.all([this.data.owned(userId, paymentMethod), this.data.customerOf(userId)]);
    if (!row || !customerId) throw notFound();
    return customerId;
  }

  /** The user's processor customer, if one was made (their first saved card). */
  customerOf(userId: string): Promise<string | undefined> {
    return this.data.customerOf(userId);
  }

  /** Whether `paymentMethod` is a saved method of `userId` (billing asks before a subscription is made). */
  async isSaved(userId: string, paymentMethod: string): Promise<boolean> {
    return (await this.data.owned(userId, paymentMethod)) !== undefined;
  }
}
