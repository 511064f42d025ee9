/**
 * billing-service's periodic pass over its parked payment events (payment-events.ts, migration 0516), every
 * replica's (each event is settled by the one transaction that locks its row; the others skip it):
 * - one whose invoice exists (its commit raced the parking, or the invoice came another way than billing's
 *   creation: an operator's restore) is applied, deduped by event id, and unparked in one transaction;
 * - one parked BILLING_UNKNOWN_INVOICE_WAIT_MS or longer is set aside in consumer_dead_letters, the message as
 *   the consumer received it, the reason naming `reference`, and unparked in one transaction (counted in
 *   consumer_dead_letters_total once committed);
 * - one that fails to apply with an error that is not an outage is set aside the same way with that error; an
 *   outage (a row held by another transaction past the wait among them) leaves it parked for the next pass.
 * A crash at any step leaves the event parked (nothing of its transaction committed) or settled (applied or set
 * aside, and unparked): never both, never lost.
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import { isTransientError, type Queryable } from "../../kit";
import { PoisonMessageError, reasonText, recordDeadLetter } from "../../trading/infra/deadLetters";
import type { Billing } from "./billing";
import { MIN_LOCK_WAIT_MS } from "./domain/unknown-invoices";
import { UnknownInvoiceError } from "./invoicing";
import { dueParkedIds, lockParked, takeParked, type ParkedEvent } from "./parking-data";
import type { BillingRepo } from "./repo";

/** Parked events settled by one pass at most (the next pass takes the rest). */
const PASS_LIMIT = 100;

type Outcome = "applied" | "published" | "set aside" | "waiting";
/** What a settling transaction did; a dead letter it wrote (not one PostgreSQL held already) is counted and logged once committed. */
type Settled = { outcome: Outcome; letter?: { parked: ParkedEvent; reason: string; written: boolean } };

export class ParkedPaymentEvents {
  constructor(
    private readonly repo: BillingRepo,
    private readonly billing: Billing,
    private readonly log: Logger,
    private readonly opts: { waitMs: number; setAsideTotal: Counter<"consumer_group" | "topic">; published: () => void },
  ) {}

  /** One pass: how many parked events it applied and set aside. */
  async pass(): Promise<{ applied: number; setAside: number }> {
    const done = { applied: 0, setAside: 0 };
    for (const eventId of await dueParkedIds(this.repo.pg, this.opts.waitMs, PASS_LIMIT)) {
      const settled = await this.settle(eventId);
      if (!settled) continue;
      if (settled.outcome === "applied" || settled.outcome === "published") done.applied++;
      if (settled.outcome === "published") this.opts.published();
      if (settled.letter) {
        done.setAside++;
        const { parked, reason, written } = settled.letter;
        const { groupId, topic, partition, offset } = parked.message;
        if (written) this.opts.setAsideTotal.inc({ consumer_group: groupId, topic });
        this.log.error({ groupId, topic, partition, offset, eventId: parked.eventId, reason }, "parked payment event set aside in consumer_dead_letters");
      }
    }
    return done;
  }

  private async settle(eventId: string): Promise<Settled | undefined> {
    try {
      // A row held by another transaction (the invoice's subscription) is waited for at most the wait: then the next pass.
      const lockTimeout = { begin: `SET LOCAL lock_timeout = ${Math.max(MIN_LOCK_WAIT_MS, this.opts.waitMs)}` };
      return await this.repo.pg.transaction(async (tx): Promise<Settled | undefined> => {
        const parked = await lockParked(tx, eventId);
        if (!parked) return undefined;
        if (await this.repo.invoice(parked.invoiceId, tx)) {
          const any = await this.billing.onPaymentEvent(tx, parked.event);
          await takeParked(tx, eventId);
          return { outcome: any ? "published" : "applied" };
        }
        if (parked.parkedMs < this.opts.waitMs) return { outcome: "waiting" };
        const why = new PoisonMessageError(`${new UnknownInvoiceError(parked.invoiceId, parked.event).message} (parked ${Math.round(parked.parkedMs)} ms): replay it once the invoice exists`);
        return setAside(tx, parked, reasonText(why));
      }, lockTimeout);
    } catch (err) {
      if (isTransientError(err)) {
        this.log.warn({ eventId, err: { message: (err as Error).message } }, "parked payment event not settled (an outage): the next pass tries again");
        return undefined;
      }
      // Its invoice exists, yet it cannot be applied: set aside with the error, as the consumer sets aside such a message.
      return this.repo.pg.transaction(async (tx) => {
        const parked = await lockParked(tx, eventId);
        return parked && setAside(tx, parked, reasonText(err));
      });
    }
  }
}

/** Records the parked event's dead letter and unparks it, in the caller's transaction. */
async function setAside(tx: Queryable, parked: ParkedEvent, reason: string): Promise<Settled> {
  const written = await recordDeadLetter(tx, { ...parked.message, reason });
  await takeParked(tx, parked.eventId);
  return { outcome: "set aside", letter: { parked, reason, written } };
}
