/**
 * The kit's PostgreSQL transactions under contention (PostgresClient.transaction's `lock` and
 * `retryConflicts`): the turns of advisory locks in a process, and the conflicts a transaction is run
 * again for. Pure: no connection here.
 */
import type { PreparedStatement } from "./postgres";

/**
 * A transaction advisory lock: `{ space, key }` is `pg_advisory_xact_lock(space, hashtext(key))` of a
 * text key (a user, a namespace/key) or `pg_advisory_xact_lock(space, key)` of an int4 key; a number
 * alone is `pg_advisory_xact_lock(key)` (one bigint key space). postgres.ts advisoryLockStatement.
 */
export type AdvisoryLock = { space: number; key: string | number } | number;

/** The name of a lock's turn in this process (distinct per lock, as PostgreSQL's keys are). */
export const turnName = (lock: AdvisoryLock) => (typeof lock === "number" ? `${lock}` : `${lock.space}/${typeof lock.key}/${lock.key}`);

/**
 * One at a time per name, in this process, in the order asked: `run(name, fn)` starts `fn` once every
 * earlier run of the name has settled. A waiting run holds nothing but its closure. A run must not ask
 * for another name's turn while it holds one (a cycle would wait for ever: unlike PostgreSQL's locks,
 * nothing detects it); the kit's transactions take one lock each.
 */
export class KeyedTurns {
  /** Per name, the promise the next run waits for (settled when the last run asked for ends). */
  private readonly tails = new Map<string, Promise<void>>();
  private waitingRuns = 0;

  /** Runs waiting for their turn now (not the ones running). */
  get waiting(): number {
    return this.waitingRuns;
  }

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(name);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.tails.set(name, mine);
    try {
      if (before) {
        this.waitingRuns++;
        await before.finally(() => this.waitingRuns--);
      }
      return await fn();
    } finally {
      done();
      if (this.tails.get(name) === mine) this.tails.delete(name);
    }
  }
}

/** SQLSTATEs of a transaction PostgreSQL rolled back for a conflict with another: deadlock_detected, serialization_failure. */
export const CONFLICT_SQLSTATES: ReadonlySet<string> = new Set(["40P01", "40001"]);
/** The longest pause before a conflicted transaction runs again (each pause random up to 10 ms, then 20, 40, ... up to this). */
const CONFLICT_RETRY_MAX_MS = 200;
/** A pause before try `attempt` (1, 2, ...) of a conflicted transaction: random ("full jitter"), so the two that met do not meet again in step. */
export const conflictPauseMs = (attempt: number, random = Math.random) => 1 + random() * Math.min(CONFLICT_RETRY_MAX_MS, 10 * 2 ** (attempt - 1));

export interface TransactionOptions {
  /**
   * Statements without parameters (`;`-separated) sent in the same round trip as BEGIN (simple
   * protocol): a round trip less for each statement a transaction can write with literals.
   */
  begin?: string;
  /** The statements `begin` or `commitWith` EXECUTE (executeStatement, executeWith), prepared on the connection first if it does not have them yet. */
  prepared?: readonly PreparedStatement[];
  /**
   * Taken before anything else of the transaction, after this process's earlier transactions of the
   * same lock ended: a transaction waits for its turn without a connection, so one key's crowd holds one
   * connection of the pool (the one waiting on PostgreSQL's lock for the other replicas' holders), not all.
   */
  lock?: AdvisoryLock;
  /**
   * Runs the transaction again, all of fn, up to this many times when PostgreSQL rolls it back for a
   * conflict (deadlock 40P01, serialization failure 40001), after a short random pause. Only for an fn
   * whose effects are all in the database (it runs again from the start); the last conflict is thrown,
   * a transient error (503 DATASTORE_UNAVAILABLE with Retry-After, never a 500).
   */
  retryConflicts?: number;
}
