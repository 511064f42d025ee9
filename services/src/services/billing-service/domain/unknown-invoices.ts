/**
 * A payment event naming an invoice billing does not have: when to look for the invoice again, and
 * when to give up (the consumer sets the event aside in consumer_dead_letters, replayable by an
 * operator through database-service's dead-letter routes). Billing asks payment-service for a charge
 * only after the invoice's commit (invoicing.ts charge reads it back first), so an event should never
 * precede its invoice; the wait covers one whose commit is still on its way (a replica's transaction
 * committing while the event is read), briefly: every look holds the batch's partition. An event
 * older than RACE_WINDOW_MS (its `ts`, payment-service's clock) cannot be such a race: its invoice would
 * have committed long since, so it is set aside at once (a billing database restored to before the
 * invoice, another platform's event, a forged one). No I/O.
 */

/** The first pause before looking again; each next one doubles, within the batch's budget. */
export const FIRST_PAUSE_MS = 100;
/** An event older than this (by its `ts`) is not waited for: no commit stays on its way that long. */
export const RACE_WINDOW_MS = 60_000;

/**
 * The pause before the next look for an invoice (`looks` made so far, `waitedMs` of the batch's
 * `budgetMs` spent), or undefined: give up now.
 */
export function nextLookPause(p: { looks: number; waitedMs: number; budgetMs: number; eventAgeMs: number }): number | undefined {
  if (p.eventAgeMs > RACE_WINDOW_MS) return undefined;
  const left = p.budgetMs - p.waitedMs;
  if (left <= 0) return undefined;
  return Math.min(FIRST_PAUSE_MS * 2 ** Math.max(0, p.looks - 1), left);
}
