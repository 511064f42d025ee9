/**
 * The kit's PostgreSQL transactions under contention (PostgresClient.transaction's `lock` and
 * `retryConflicts`): the turns of advisory locks in a process, and the conflicts a transaction is run
 * again for. Pure: no connection here.
 *
 * Bounded lock waits (session 58). A transaction with a `lock` waits twice: for its lock's turn in
 * this process (KeyedTurns, holding no connection), then for the advisory lock in PostgreSQL (another
 * replica's holder). Neither wait had a bound: one stuck holder (a slow statement, a network stall)
 * let every request of that key queue behind it in memory until each client gave up, and the queue
 * had no end. Now:
 * - Time: a run waits for its turn and then for PostgreSQL's lock at most `waitMs` together, measured
 *   on the monotonic clock from when it asked (POSTGRES_LOCK_WAIT_MS, 10 s by default; a transaction
 *   may ask for less or more with `lockWaitMs`, e.g. what is left of its own deadline). The turn's
 *   share is a timer that takes the run out of the line; PostgreSQL's share is `SET LOCAL
 *   lock_timeout` of the time left, sent in BEGIN's round trip before the lock and set back to the
 *   session's default after it (the statements of fn keep the timeout they had). 10 s: well inside
 *   the gateway's PROXY_TIMEOUT_MS (30 s by default), so the client gets this answer, not a 504, with
 *   time for the transaction itself. A conflict's try again (retryConflicts) waits for the lock anew,
 *   with a bound of its own: the turn is already held.
 * - Crowd: at most WAITING_PER_NAME runs wait for one name's turn and WAITING_IN_ALL for any in the
 *   process; one more is refused at once, before it queues (nothing held, nothing written). 64 of one
 *   key: a user's burst of legitimate requests (races.test.ts sends 10 at once) fits many times over;
 *   more is a flood that would only wait out its bound. 1,024 in all bounds the memory of waiting
 *   requests however many keys are crowded.
 * - Answer: either bound passed throws an error of SQLSTATE 55P03 (lock_not_available): LockWaitError for
 *   the turn (and a crowd), PostgreSQL's own lock_timeout error (the driver's) for the lock: transient for kit isTransientError, so a Kafka consumer
 *   retries its batch and a route answers 503 DATASTORE_UNAVAILABLE with Retry-After (kit errors.ts),
 *   never a 500; but a run refused for its one key's crowd answers 429 TOO_MANY_WAITING with
 *   Retry-After (LockWaitError below). Nothing of the transaction ran (the turn: fn never started) or all of it was rolled
 *   back (the lock wait: the first statement failed): no write is lost or half made, and the request
 *   may be sent again. A caller must not take the error for a refusal of its input: the callers
 *   (grep `lock:`) let it through to the error handler: ai-orchestrator's strategy creation,
 *   notification-service's webhook additions, configuration-service's key changes (it maps only
 *   23505), backtesting-engine's submissions, payment-service's card saves (after the processor's
 *   attach: the card sent again is attached again, the same customer, and recorded), user-management's
 *   API key creations and admin changes, the model registry's switches (routes map only RegistryError;
 *   ml-predictor's train job tries again within ML_PROMOTE_WAIT_MS, then fails its run, the model registered but
 *   not promoted: an admin promotes it).
 * The bounds are per process, as the turns are: N replicas may hold N times as many waiting, each in
 * its own memory.
 */
import { POSTGRES_LOCK_WAIT_MS } from "../../catalog";
import type { PreparedStatement } from "./postgres";

/**
 * A transaction advisory lock: `{ space, key }` is `pg_advisory_xact_lock(space, hashtext(key))` of a
 * text key (a user, a namespace/key) or `pg_advisory_xact_lock(space, key)` of an int4 key; a number
 * alone is `pg_advisory_xact_lock(key)` (one bigint key space). postgres.ts advisoryLockStatement.
 */
export type AdvisoryLock = { space: number; key: string | number } | number;

/** The name of a lock's turn in this process (distinct per lock, as PostgreSQL's keys are). */
export const turnName = (lock: AdvisoryLock) => (typeof lock === "number" ? `${lock}` : `${lock.space}/${typeof lock.key}/${lock.key}`);

/** The default of POSTGRES_LOCK_WAIT_MS: how long a transaction waits for its lock's turn and then the lock (see above). */
export const LOCK_WAIT_DEFAULT_MS = POSTGRES_LOCK_WAIT_MS.default;
/** Runs that may wait for one name's turn at once in a process (see above). */
export const WAITING_PER_NAME = 64;
/** Runs that may wait for any turn at once in a process (see above). */
export const WAITING_IN_ALL = 1_024;

/** SQLSTATE lock_not_available: PostgreSQL's lock_timeout, and a turn waited for past its bound or refused to a crowd. */
export const LOCK_NOT_AVAILABLE = "55P03";

/**
 * A lock not taken within its bound: `waited` (the turn's or PostgreSQL's lock wait passed `waitMs`),
 * `crowded` (WAITING_PER_NAME already wait for this one lock: refused before it queued) or `full`
 * (WAITING_IN_ALL wait in the process). Transient (code 55P03): a Kafka consumer retries its batch. A
 * route answers `crowded` 429 TOO_MANY_WAITING with Retry-After (kit errors.ts): the crowd is requests
 * for one lock's key, a user's or one resource's, a burst its senders can spread, not an outage (a
 * 503 there made a client's own flood a 5xx: the red team's crowd of one user's webhook additions,
 * session 58); `waited` and `full` answer 503 DATASTORE_UNAVAILABLE with Retry-After. Its message names
 * neither the lock nor the setting: it goes to the log, the client gets the error handler's own text.
 */
export class LockWaitError extends Error {
  readonly code = LOCK_NOT_AVAILABLE;
  constructor(
    readonly reason: "waited" | "crowded" | "full",
    message: string,
  ) {
    super(message);
    this.name = "LockWaitError";
  }
}

/** KeyedTurns' bounds (the module's comment): a test or a caller of its own may give others. */
export interface TurnBounds {
  /** How long a run waits for its turn (and its caller then for the lock) when `run` is given none. */
  waitMs: number;
  waitingPerName: number;
  waitingInAll: number;
}

/** A bound of a wait in ms: a positive finite number (a lock_timeout of 0 would mean none). */
export function checkWaitMs(ms: number, what = "a lock wait"): number {
  if (!(Number.isFinite(ms) && ms > 0)) throw new Error(`${what} must be a positive number of milliseconds, not ${ms}`);
  return ms;
}

/** PostgreSQL's lock_timeout (whole ms, at least 1: 0 is no timeout) for what is left until `deadline` (performance.now()). */
export const lockTimeoutMs = (deadline: number, now = performance.now()) => Math.max(1, Math.ceil(deadline - now));

/**
 * The statements of BEGIN's round trip that take a lock (`lockStatement`, postgres.ts
 * advisoryLockStatement) waiting at most until `deadline` (performance.now()): lock_timeout of the time
 * left, the lock, then lock_timeout back to the session's default, so the transaction's own statements
 * keep the timeout they had (none, or their `begin`'s). Past it PostgreSQL cancels the wait: 55P03.
 */
export function boundedLockStatements(lockStatement: string, deadline: number, now = performance.now()): string[] {
  return [`SET LOCAL lock_timeout = ${lockTimeoutMs(deadline, now)}`, lockStatement, "SET LOCAL lock_timeout = DEFAULT"];
}

interface Waiter {
  /** Its turn came: out of the line, its timer stopped, its run goes on. */
  go(): void;
}
/** A name whose turn is held: the runs waiting for it, in the order they asked. */
interface Line {
  waiting: Waiter[];
}

/**
 * One at a time per name, in this process, in the order asked: `run(name, fn)` starts `fn` once every
 * earlier run of the name has ended, or throws LockWaitError when its turn has not come within the
 * wait's bound (it leaves the line; the runs behind it keep their places) or when too many wait
 * already (refused at once). `fn` gets the run's deadline (performance.now(), from when it asked),
 * which bounds its own wait for PostgreSQL's lock. A waiting run holds nothing but its closure and a
 * timer. A run must not ask for another name's turn while it holds one (a cycle waits until the
 * bound: unlike PostgreSQL's locks, nothing detects it); the kit's transactions take one lock each.
 */
export class KeyedTurns {
  private readonly lines = new Map<string, Line>();
  private waitingRuns = 0;
  readonly bounds: TurnBounds;

  constructor(bounds: Partial<TurnBounds> = {}) {
    this.bounds = { waitMs: LOCK_WAIT_DEFAULT_MS, waitingPerName: WAITING_PER_NAME, waitingInAll: WAITING_IN_ALL, ...bounds };
    checkWaitMs(this.bounds.waitMs);
    for (const k of ["waitingPerName", "waitingInAll"] as const)
      if (!(Number.isSafeInteger(this.bounds[k]) && this.bounds[k] >= 0)) throw new Error(`${k} must be a whole number, not ${this.bounds[k]}`);
  }

  /** Runs waiting for their turn now (not the ones running). */
  get waiting(): number {
    return this.waitingRuns;
  }

  /** Runs waiting for `name`'s turn now. */
  waitingFor(name: string): number {
    return this.lines.get(name)?.waiting.length ?? 0;
  }

  async run<T>(name: string, fn: (deadline: number) => Promise<T>, waitMs = this.bounds.waitMs): Promise<T> {
    checkWaitMs(waitMs);
    const deadline = performance.now() + waitMs;
    let line = this.lines.get(name);
    if (!line) this.lines.set(name, (line = { waiting: [] }));
    else await this.waitInLine(line, waitMs);
    try {
      return await fn(deadline);
    } finally {
      const next = line.waiting.shift();
      if (next) {
        this.waitingRuns--;
        next.go();
      } else this.lines.delete(name);
    }
  }

  private waitInLine(line: Line, waitMs: number): Promise<void> {
    if (line.waiting.length >= this.bounds.waitingPerName)
      return Promise.reject(new LockWaitError("crowded", `${line.waiting.length} transactions already wait for this lock's turn in this process`));
    if (this.waitingRuns >= this.bounds.waitingInAll)
      return Promise.reject(new LockWaitError("full", `${this.waitingRuns} transactions already wait for a lock's turn in this process`));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        go: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        // Still in the line (go() stops the timer): out of it, the runs behind keep their order.
        line.waiting.splice(line.waiting.indexOf(waiter), 1);
        this.waitingRuns--;
        reject(new LockWaitError("waited", `waited ${waitMs} ms for a lock's turn in this process`));
      }, waitMs);
      // A waiting request keeps the process alive anyway; the timer alone must not.
      timer.unref();
      line.waiting.push(waiter);
      this.waitingRuns++;
    });
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
   * How long this transaction waits for `lock` (its turn in the process, then PostgreSQL's lock),
   * instead of POSTGRES_LOCK_WAIT_MS: e.g. what is left of the request's own deadline. Past it,
   * LockWaitError (transient: 503 with Retry-After) and nothing of the transaction runs.
   */
  lockWaitMs?: number;
  /**
   * Runs the transaction again, all of fn, up to this many times when PostgreSQL rolls it back for a
   * conflict (deadlock 40P01, serialization failure 40001), after a short random pause. Only for an fn
   * whose effects are all in the database (it runs again from the start); the last conflict is thrown,
   * a transient error (503 DATASTORE_UNAVAILABLE with Retry-After, never a 500).
   */
  retryConflicts?: number;
}
