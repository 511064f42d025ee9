/**
 * billing-service's consumer of `payments.events`, one fetched batch at a time: its events applied in
 * one transaction (Billing.onPaymentEvent, deduped by event id). An event naming an invoice billing
 * does not have (UnknownInvoiceError: its transaction rolled back, nothing recorded) is not taken for
 * done: the batch is tried again after a pause while the invoice may still be on its way (a young event,
 * within BILLING_UNKNOWN_INVOICE_WAIT_MS a batch: domain/unknown-invoices.ts), then the event is set
 * aside (PoisonMessageError, the reason naming `reference`): the kit's consumer (trading/infra/kafka.ts)
 * hands the batch over again one message at a time, applies the others, and records this one in
 * consumer_dead_letters, where an operator replays it (database-service's dead-letter routes) once
 * the invoice exists. Before session 57 it was marked processed with a log line: lost to everyone.
 * The pauses hold no transaction; a close cuts them (the batch is not committed: retried by the next owner).
 */
import { setTimeout as pause } from "node:timers/promises";
import type { Logger } from "pino";
import type { PostgresClient } from "../../kit";
import type { PaymentEventMsg } from "../../business/events";
import { HandlerUnavailableError, PoisonMessageError } from "../../trading/infra/deadLetters";
import type { Billing } from "./billing";
import { nextLookPause } from "./domain/unknown-invoices";
import { UnknownInvoiceError } from "./invoicing";

/** Event ids given up on, remembered (the newest this many) so the one-at-a-time pass sets each aside at once. */
const GIVEN_UP_KEPT = 10_000;

export class PaymentEvents {
  private readonly givenUp = new Set<string>();

  constructor(
    private readonly pg: PostgresClient,
    private readonly billing: Billing,
    private readonly log: Logger,
    private readonly opts: { waitMs: number; closing: AbortSignal },
  ) {}

  /** Applies the batch's events; whether any changed billing's state (its events to publish). */
  async apply(events: PaymentEventMsg[]): Promise<boolean> {
    let waitedMs = 0;
    for (let looks = 1; ; looks++) {
      try {
        return await this.pg.transaction(async (tx) => {
          let any = false;
          for (const ev of events) any = (await this.billing.onPaymentEvent(tx, ev)) || any;
          return any;
        });
      } catch (err) {
        if (!(err instanceof UnknownInvoiceError)) throw err;
        const { eventId } = err.event;
        const wait = this.givenUp.has(eventId) ? undefined : nextLookPause({ looks, waitedMs, budgetMs: this.opts.waitMs, eventAgeMs: Date.now() - err.event.ts });
        if (wait === undefined) {
          this.remember(eventId);
          throw new PoisonMessageError(`${err.message}${looks > 1 ? ` (looked for ${looks} times over ${waitedMs} ms)` : ""}: replay it once the invoice exists`);
        }
        this.log.warn({ eventId, invoiceId: err.invoiceId, looks }, "payment event names an invoice billing does not have (yet): looked for again shortly");
        try {
          await pause(wait, undefined, { signal: this.opts.closing });
        } catch {
          throw new HandlerUnavailableError("closing: the batch is left to the next owner");
        }
        waitedMs += wait;
      }
    }
  }

  private remember(eventId: string): void {
    this.givenUp.add(eventId);
    if (this.givenUp.size > GIVEN_UP_KEPT) this.givenUp.delete(this.givenUp.values().next().value!);
  }
}
