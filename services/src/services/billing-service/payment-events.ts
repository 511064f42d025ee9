/**
 * billing-service's consumer of `payments.events`, one fetched batch at a time: its events applied in
 * one transaction (Billing.onPaymentEvent, deduped by event id). Within BILLING_UNKNOWN_INVOICE_WAIT_MS
 * a batch (domain/unknown-invoices.ts), after pauses doubling from 100 ms, it is looked at again when:
 * - an event names an invoice billing does not have (UnknownInvoiceError: its transaction rolled
 *   back, nothing recorded): the invoice's commit may still be on its way (a young event). Given up on,
 *   the event is set aside (PoisonMessageError, the reason naming `reference`): the kit's consumer
 *   (trading/infra/kafka.ts) hands the batch over again one message at a time, applies the others, and
 *   records this one in consumer_dead_letters, where an operator replays it (database-service's
 *   dead-letter routes) once the invoice exists. Every other event of the batch whose invoice is still
 *   missing waited as long: given up on with it, not after a wait of its own in that pass. Before session
 *   57 it was marked processed with a log line: lost to everyone.
 * - a row it locks stays held by another transaction past the look's lock_timeout (55P03): before, it
 *   waited as long as the holder kept the row (session 57's test held an invoice's insert open, its
 *   foreign key holding the subscription's row, and billing waited on it for good, never reaching the
 *   event after it). Given up on, the batch is an outage (HandlerUnavailableError: retried later, never
 *   set aside; the invoice exists).
 * The pauses hold no transaction; a close cuts them (the batch is not committed: retried by the next owner).
 */
import { setTimeout as pause } from "node:timers/promises";
import type { Logger } from "pino";
import type { PaymentEventMsg } from "../../business/events";
import { HandlerUnavailableError, PoisonMessageError } from "../../trading/infra/deadLetters";
import type { Billing } from "./billing";
import { lockWaitMs, nextLookPause } from "./domain/unknown-invoices";
import { invoiceIdOf, UnknownInvoiceError } from "./invoicing";
import type { BillingRepo } from "./repo";

/** Event ids given up on, remembered (the newest this many) so the one-at-a-time pass sets each aside at once. */
const GIVEN_UP_KEPT = 10_000;
/** SQLSTATE of a lock not granted within lock_timeout. */
const LOCK_NOT_AVAILABLE = "55P03";

export class PaymentEvents {
  /** Per event id given up on, how it was looked for: the one-at-a-time pass's reason (the one recorded) says it too. */
  private readonly givenUp = new Map<string, string>();

  constructor(
    private readonly repo: BillingRepo,
    private readonly billing: Billing,
    private readonly log: Logger,
    private readonly opts: { waitMs: number; closing: AbortSignal },
  ) {}

  /** Applies the batch's events; whether any changed billing's state (its events to publish). */
  async apply(events: PaymentEventMsg[]): Promise<boolean> {
    const started = performance.now();
    const budgetMs = this.opts.waitMs;
    for (let looks = 1; ; looks++) {
      // The event being applied when a lock wait ran out (its log line names it).
      const at: { applying?: PaymentEventMsg } = {};
      try {
        return await this.repo.pg.transaction(
          async (tx) => {
            let any = false;
            for (const ev of events) {
              at.applying = ev;
              any = (await this.billing.onPaymentEvent(tx, ev)) || any;
            }
            return any;
          },
          { begin: `SET LOCAL lock_timeout = ${lockWaitMs({ waitedMs: performance.now() - started, budgetMs })}` },
        );
      } catch (err) {
        const waitedMs = Math.round(performance.now() - started);
        let wait: number | undefined;
        if (err instanceof UnknownInvoiceError) {
          const { eventId } = err.event;
          const lookedFor = this.givenUp.get(eventId);
          wait = lookedFor !== undefined ? undefined : nextLookPause({ looks, waitedMs, budgetMs, eventAgeMs: Date.now() - err.event.ts });
          if (wait === undefined) {
            const how = lookedFor ?? (looks > 1 ? ` (looked for ${looks} times over ${waitedMs} ms)` : "");
            this.remember(eventId, how);
            // The batch waited its budget: every other event of it whose invoice is still missing waited as long
            // (the look stopped at the first), so the one-at-a-time pass sets each aside at once, not after a wait each.
            if (lookedFor === undefined && looks > 1 && waitedMs >= budgetMs) for (const other of await this.stillMissing(events, eventId)) this.remember(other, how);
            throw new PoisonMessageError(`${err.message}${how}: replay it once the invoice exists`);
          }
          this.log.warn({ eventId, invoiceId: err.invoiceId, looks }, "payment event names an invoice billing does not have (yet): looked for again shortly");
        } else if ((err as { code?: unknown }).code === LOCK_NOT_AVAILABLE) {
          wait = nextLookPause({ looks, waitedMs, budgetMs });
          const fields = { eventId: at.applying?.eventId, reference: at.applying?.reference, looks, waitedMs };
          if (wait === undefined) {
            this.log.warn(fields, "payment event's rows held by another transaction past the wait: the batch is retried later");
            throw new HandlerUnavailableError(`a payment event's rows were held by another transaction for ${waitedMs} ms`, { cause: err });
          }
          this.log.warn(fields, "payment event's rows held by another transaction: looked at again shortly");
        } else throw err;
        try {
          await pause(wait, undefined, { signal: this.opts.closing });
        } catch {
          throw new HandlerUnavailableError("closing: the batch is left to the next owner");
        }
      }
    }
  }

  /** The ids of the events of `events` (but `except`) naming an invoice billing does not have. */
  private async stillMissing(events: PaymentEventMsg[], except: string): Promise<string[]> {
    const named = events.filter((ev) => ev.eventId !== except && invoiceIdOf(ev) !== "");
    const existing = await this.repo.existingInvoices(named.map(invoiceIdOf));
    return named.filter((ev) => !existing.has(invoiceIdOf(ev))).map((ev) => ev.eventId);
  }

  private remember(eventId: string, how: string): void {
    this.givenUp.set(eventId, how);
    if (this.givenUp.size > GIVEN_UP_KEPT) this.givenUp.delete(this.givenUp.keys().next().value!);
  }
}
