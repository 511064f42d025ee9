/**
 * The billing cycle's rows one at a time (migration 0417_bil_cycle_backoff.sql). Before, every due
 * subscription renewed in one transaction and the due invoices were charged in one loop: one row
 * whose step threw (an invoice total beyond 2^53 minor units, any bug or bad row) rolled back every
 * renewal, or stopped the charges, and the next cycle picked that row first again, so billing stopped
 * for every user. Now a row's step runs under a savepoint: its failure undoes its own work only, is
 * logged with the row's id, and the row is set aside (`cycle_retry_at`: a minute, doubled at each
 * consecutive failure, at most a day; cycle-queries.ts's lockDue, lockOfDeletedOwners and dueInvoices skip it
 * until then) so the others keep their places in the cycle's `limit`. A
 * transient datastore error (the kit's isTransientError), or a peer that did not answer (the 502 of
 * usage-monitoring's units, or its read cut by the shutdown), is not the row's fault: it is thrown,
 * and ends the cycle as before (retried by a later cycle), rather than setting every row aside.
 */
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { HttpError, isShuttingDown, isTransientError } from "../../kit";

type Q = Pick<PoolClient, "query">;

// A usage read the shutdown cut (kit peers cutOnClose: 503 SHUTTING_DOWN) is no fault of the row's either.
const outage = (err: unknown) => isTransientError(err) || (err instanceof HttpError && err.statusCode === 502) || isShuttingDown(err);

/** A row of the cycle: a subscription (renewal, ending of a deleted account's) or an invoice (charge). */
export type CycleRow = { table: "bil_subscriptions"; id: string } | { table: "bil_invoices"; id: string };

const KEY = { bil_subscriptions: "subscription_id", bil_invoices: "invoice_id" } as const;

/** Sets the row aside after its step failed: a minute, doubled at each consecutive failure, at most a day. */
async function setAside(c: Q, row: CycleRow): Promise<Date | undefined> {
  const { rows } = await c.query<{ cycle_retry_at: Date }>(
    `UPDATE ${row.table} SET cycle_failures = cycle_failures + 1, cycle_retry_at = now() + make_interval(secs => least(60 * power(2, least(cycle_failures, 20)), 86400))
      WHERE ${KEY[row.table]} = $1 RETURNING cycle_retry_at`,
    [row.id],
  );
  return rows[0]?.cycle_retry_at;
}

/** The row's step succeeded: its count of consecutive failures starts again. */
async function cleared(c: Q, row: CycleRow): Promise<void> {
  await c.query(`UPDATE ${row.table} SET cycle_failures = 0, cycle_retry_at = NULL WHERE ${KEY[row.table]} = $1 AND cycle_failures > 0`, [row.id]);
}

function logFailure(log: Logger, step: string, row: CycleRow, err: unknown, retryAt: Date | undefined): void {
  const id = row.table === "bil_subscriptions" ? { subscriptionId: row.id } : { invoiceId: row.id };
  log.error({ ...id, step, retryAt, err: { name: (err as Error)?.name, message: (err as Error)?.message } }, `billing cycle: ${step} failed; set aside, the others go on`);
}

/**
 * Runs one row's step and returns whether it succeeded. A failure other than a transient one is
 * undone (`undo`), logged, and sets the row aside (through `q`); a transient one is thrown.
 */
async function runStep(q: Q, log: Logger, name: string, row: CycleRow, fn: () => Promise<void>, undo?: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    await cleared(q, row);
    return true;
  } catch (err) {
    if (outage(err)) throw err;
    await undo?.();
    logFailure(log, name, row, err, await setAside(q, row));
    return false;
  }
}

/** One row's step within the cycle's transaction `c`, under a savepoint: a failure undoes its own work only (the whole transaction ends on a transient one). */
export async function inSavepoint(c: PoolClient, log: Logger, name: string, row: CycleRow, fn: () => Promise<void>): Promise<boolean> {
  await c.query("SAVEPOINT bil_cycle_row");
  const ok = await runStep(c, log, name, row, fn, () => c.query("ROLLBACK TO SAVEPOINT bil_cycle_row"));
  if (ok) await c.query("RELEASE SAVEPOINT bil_cycle_row");
  return ok;
}

/** The same for a step that runs its own transactions (a charge): nothing to undo, a failure sets the row aside at once. */
export function isolated(pool: Q, log: Logger, name: string, row: CycleRow, fn: () => Promise<void>): Promise<boolean> {
  return runStep(pool, log, name, row, fn);
}
