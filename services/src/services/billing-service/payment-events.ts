/**
 * billing-service's consumer of `payments.events`, one fetched batch at a time: its events applied in
 * one transaction (Billing.onPaymentEvent, deduped by event id).
 * - An event naming an invoice billing does not have (yet: the invoice's commit may still be on its way) is
 *   parked (bil_parked_payment_events, migration 0516) in the batch's transaction, and the batch goes on: the
 *   invoice's creation applies it (invoicing.ts), else the periodic pass (parked-payment-events.ts) applies it once
 *   the invoice exists, or sets it aside in consumer_dead_letters (the message as received, the reason naming
 *   `reference`) once parked BILLING_UNKNOWN_INVOICE_WAIT_MS; an operator replays it (database-service's
 *   dead-letter routes) once the invoice exists. Before session 60 the consumer waited for the invoice inside the
 *   batch, up to that wait, holding up every later event of the partition. An event older than RACE_WINDOW_MS
 *   (domain/unknown-invoices.ts) cannot be such a race: it is set aside at once (PoisonMessageError: the kit's
 *   consumer hands the batch over again one message at a time, applies the others and records this one).
 *   Before session 57 it was marked processed with a log line: lost to everyone.
 * - A row the batch locks held by another transaction past the look's lock_timeout (55P03): within
 *   BILLING_UNKNOWN_INVOICE_WAIT_MS, after pauses doubling from 100 ms, the batch is looked at again;
 *   given up on, it is an outage (HandlerUnavailableError: retried later, never set aside). Before session
 *   58 it waited as long as the holder kept the row (an open insert of another invoice of the subscription).
 * The pauses hold no transaction; a close cuts them (the batch is not committed: retried by the next owner).
 */
import { setTimeout as pause } from "node:timers/promises";
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import type { PaymentEventMsg } from "../../business/events";
import { deadLetterHeaders, HandlerUnavailableError, PoisonMessageError } from "../../trading/infra/deadLetters";
import type { BatchMessage } from "../../trading/infra/kafka";
import type { Billing } from "./billing";
import { lockWaitMs, nextLookPause, tooOldToPark } from "./domain/unknown-invoices";
import { invoiceIdOf, UnknownInvoiceError } from "./invoicing";
import { parkEvent } from "./parking-data";
import type { BillingRepo } from "./repo";

/** SQLSTATE of a lock not granted within lock_timeout. */
const LOCK_NOT_AVAILABLE = "55P03";
/** billing's line when it parks an event (once per event). */
export const PARKED_LINE = "payment event names an invoice billing does not have (yet): parked until it appears";

export class PaymentEvents {
  constructor(
    private readonly repo: BillingRepo,
    private readonly billing: Billing,
    private readonly log: Logger,
    private readonly opts: { waitMs: number; closing: AbortSignal; groupId: string },
  ) {}

  /** Applies the batch's events (parking those whose invoice billing does not have); whether any changed billing's state (its events to publish). */
  async apply(msgs: BatchMessage[]): Promise<boolean> {
    const items = msgs.map((m) => ({ m, ev: JSON.parse(m.value) as PaymentEventMsg }));
    const started = performance.now();
    const budgetMs = this.opts.waitMs;
    for (let looks = 1; ; looks++) {
      // The event being applied when a lock wait ran out (its log line names it).
      const at: { applying?: PaymentEventMsg } = {};
      try {
        return await this.repo.pg.transaction(
          async (tx) => {
            let any = false;
            for (const { m, ev } of items) {
              at.applying = ev;
              any = (await this.billing.onPaymentEvent(tx, ev, (c) => this.park(c, m, ev))) || any;
            }
            return any;
          },
          { begin: `SET LOCAL lock_timeout = ${lockWaitMs({ waitedMs: performance.now() - started, budgetMs })}` },
        );
      } catch (err) {
        if ((err as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw err;
        const waitedMs = Math.round(performance.now() - started);
        const wait = nextLookPause({ looks, waitedMs, budgetMs });
        const fields = { eventId: at.applying?.eventId, reference: at.applying?.reference, looks, waitedMs };
        if (wait === undefined) {
          this.log.warn(fields, "payment event's rows held by another transaction past the wait: the batch is retried later");
          throw new HandlerUnavailableError(`a payment event's rows were held by another transaction for ${waitedMs} ms`, { cause: err });
        }
        this.log.warn(fields, "payment event's rows held by another transaction: looked at again shortly");
        try {
          await pause(wait, undefined, { signal: this.opts.closing });
        } catch {
          throw new HandlerUnavailableError("closing: the batch is left to the next owner");
        }
      }
    }
  }

  /** Parks `ev` (its invoice unknown) in the batch's transaction; one too old to be a race is set aside at once. */
  private async park(c: PoolClient, m: BatchMessage, ev: PaymentEventMsg): Promise<void> {
    const invoiceId = invoiceIdOf(ev);
    if (tooOldToPark(Date.now() - ev.ts)) throw new PoisonMessageError(`${new UnknownInvoiceError(invoiceId, ev).message}: replay it once the invoice exists`);
    const message = { groupId: this.opts.groupId, topic: m.topic, partition: m.partition, offset: m.offset, key: m.raw.key, value: m.raw.value, headers: deadLetterHeaders(m.raw.headers) };
    if (await parkEvent(c, { eventId: ev.eventId, invoiceId, event: ev, message })) this.log.warn({ eventId: ev.eventId, invoiceId }, PARKED_LINE);
  }
}
