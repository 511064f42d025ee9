/**
 * Payment events that cannot be applied yet: when to look again, and when to give up.
 *
 * An event naming an invoice billing does not have: billing asks payment-service for a charge only
 * after the invoice's commit (invoicing.ts charge reads it back first), so an event should never
 * precede its invoice; parking (payment-events.ts) covers one whose commit is still on its way (a replica's
 * transaction committing while the event is read), for the wait, without holding the partition (before
 * session 60 the batch waited, looking again with these pauses). Given up on, the event is set aside
 * (consumer_dead_letters, replayable by an operator through database-service's dead-letter routes). An event
 * older than RACE_WINDOW_MS (its `ts`, payment-service's clock) cannot be such a race: its invoice would have
 * committed long since, so it is set aside at once (a billing database restored to before the invoice,
 * another platform's event, a forged one).
 *
 * A row the batch must lock held by another transaction (the invoice's subscription, locked by the
 * transaction writing another of its invoices: a renewal of the cycle, a plan change, a hand-written
 * insert whose foreign key holds the subscription's row): each look waits for a lock at most
 * `lockWaitMs` (SET LOCAL lock_timeout), then the batch is looked at again within the same budget; given up on, the
 * batch is an outage (retried later, never set aside: the invoice exists). Before, a look waited for
 * the lock as long as the holder kept it, the partition and the consumer with it. No I/O.
 */

/** The first pause before looking again; each next one doubles, within the batch's budget. */
export const FIRST_PAUSE_MS = 100;
/** An event older than this (by its `ts`) is not waited for: no commit stays on its way that long. */
export const RACE_WINDOW_MS = 60_000;
/** A look waits at least this long for a lock, whatever is left of the budget (lock_timeout 0 would be no bound at all). */
export const MIN_LOCK_WAIT_MS = 100;

/**
 * Whether an event naming an invoice billing does not have is too old to be parked (`eventAgeMs`: by its `ts`,
 * another host's clock, so it may be negative): set aside at once (payment-events.ts).
 */
export function tooOldToPark(eventAgeMs: number): boolean {
  return eventAgeMs > RACE_WINDOW_MS;
}

/**
 * The pause before the next look at a batch whose row another transaction holds (`looks` made so far,
 * `waitedMs` of the batch's `budgetMs` spent), or undefined: give up now. (Until session 60 it paced the
 * looks for an unknown invoice too, which are parked since.)
 */
export function nextLookPause(p: { looks: number; waitedMs: number; budgetMs: number }): number | undefined {
  const left = p.budgetMs - p.waitedMs;
  if (left <= 0) return undefined;
  return Math.min(FIRST_PAUSE_MS * 2 ** Math.max(0, p.looks - 1), left);
}

/**
 * How long a look may wait for a row lock (its lock_timeout, ms): half of what is left of the budget, so a
 * look whose wait runs out leaves room to look again (the holder may be about to commit); at least
 * MIN_LOCK_WAIT_MS.
 */
export function lockWaitMs(p: { waitedMs: number; budgetMs: number }): number {
  return Math.max(MIN_LOCK_WAIT_MS, Math.floor((p.budgetMs - p.waitedMs) / 2));
}

/** The period of the pass over parked events (parked-payment-events.ts): a quarter of the wait, within 100 ms and 1 s. */
export function parkedPassIntervalMs(waitMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(waitMs / 4)));
}
