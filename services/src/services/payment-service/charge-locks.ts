/**
 * The connections a card charge holds its account's lock on through the processor call (kit
 * lockAccountForWrite in a transaction of its own, after the intent's insert committed): a pool of
 * their own, PAYMENT_CHARGE_LOCK_CONNECTIONS, apart from the service's POSTGRES_POOL_MAX. Held on the
 * service's pool, ten charges at a stalled processor took every connection, and the service's other
 * queries (webhooks, reads, the reconciler) waited for one. A charge takes its connection before its
 * intent is inserted: when none frees within PAYMENT_CHARGE_LOCK_WAIT_MS it answers 503
 * CHARGE_LOCKS_BUSY with Retry-After, nothing inserted and nothing sent (the same key may be sent
 * again). The connections' idle_in_transaction_session_timeout and statement_timeout
 * (PAYMENT_CHARGE_LOCK_HOLD_MS, above one processor request's whole retry budget) end a lock held by
 * a call stuck past it: the server ends the session, the lock goes with it.
 *
 * The connections are kept open (session 55): opened in the background at start and again whenever
 * one is dropped (a hold's timeouts, a lost session), so a charge takes one already made. Made on
 * demand, with the pool's one timeout at PAYMENT_CHARGE_LOCK_WAIT_MS bounding the making too, a
 * charge on a host at load 14 answered 503 DATASTORE_UNAVAILABLE: its new connection took 4.3 s
 * ("Connection terminated due to connection timeout"). The making is now bounded by the kit's
 * POSTGRES_CONNECT_TIMEOUT_MS (the pool's connectionTimeoutMillis), and a charge's wait by
 * PAYMENT_CHARGE_LOCK_WAIT_MS alone (acquire's own timer).
 * One account holds at most half of them (./account-shares.ts; since session 56).
 */
import type { Logger } from "pino";
import type { PoolClient } from "pg";
import { lockAccountForWrite, unavailable, type DatastoreConfig } from "../../kit";
import { createPostgres } from "../../kit/datastores/postgres";
import { AccountShares, accountShare } from "./account-shares";

export interface ChargeLockOptions {
  /** Connections of the pool (PAYMENT_CHARGE_LOCK_CONNECTIONS), all kept open. */
  connections: number;
  /** How long a charge waits for one (PAYMENT_CHARGE_LOCK_WAIT_MS). */
  waitMs: number;
  /** The connections' idle-in-transaction and statement timeouts (PAYMENT_CHARGE_LOCK_HOLD_MS). */
  holdMs: number;
  /** The Retry-After of the 503 when every connection is held by a charge, in seconds: a charge's processor attempt ends by then. */
  retryAfterS: number;
  /** The Retry-After of the 503 when connections were still being made, in seconds: a making ends by then (POSTGRES_CONNECT_TIMEOUT_MS). */
  openingRetryAfterS: number;
}

/** The pause before the missing connections are opened again after a making that failed (or left the pool short). */
const REOPEN_PAUSE_MS = 1_000;
/** At most one warning per this long that connections are missing. */
const MISSING_WARN_EVERY_MS = 10_000;

/** One charge's lock connection, taken before its insert; released (once) when the charge is done with it. */
export interface ChargeLock {
  /**
   * Runs `send` (the processor call of the intent inserted since) in a transaction holding the
   * account's lock: "account_deleted", `send` not run, when the account was deleted since the insert
   * committed; otherwise a deletion waits until the processor answered. `closed` (run first, in the
   * same transaction: the repo's send lock) answers what stops the send, `send` then not run. Errors of
   * `send` roll the transaction back and are thrown.
   */
  whileAccountLive<T, C>(userId: string, closed: (c: PoolClient) => Promise<C | undefined>, send: () => Promise<T>): Promise<{ sent: T } | { closed: C } | "account_deleted">;
  release(): void;
}

export class ChargeLocks {
  private readonly pg;
  /** Connections checked out by charges and not yet released. */
  private held = 0;
  /** Each account's share of the connections (./account-shares.ts). */
  private readonly shares;
  /** keepOpen() was called: connections are made ahead of charges, and made again when dropped. */
  private keepingOpen = false;
  private closed = false;
  /** The next try at opening the missing connections, after a try that left some missing. */
  private retryTimer: NodeJS.Timeout | undefined;
  private warnedAt = -Infinity;
  /** Every connection was open at once since keepOpen(): the service took charges (readiness). */
  private everOpen = false;
  /** A making ended with the pool short, and none has filled it since (readiness). */
  private remakingFailed = false;

  constructor(
    cfg: DatastoreConfig["postgres"],
    private readonly log: Logger,
    private readonly opts: ChargeLockOptions,
  ) {
    this.shares = new AccountShares(accountShare(opts.connections), opts.waitMs, opts.retryAfterS, opts.connections);
    this.pg = createPostgres(cfg, log, {
      max: opts.connections,
      // pg-pool closes no idle client while the pool has at most `min`: none of these, ever. (It
      // opens none either: keepOpen does.) The making of one is bounded by the kit's
      // connectionTimeoutMillis, POSTGRES_CONNECT_TIMEOUT_MS, not by a charge's wait.
      min: opts.connections,
      idle_in_transaction_session_timeout: opts.holdMs,
      statement_timeout: opts.holdMs,
      application_name: "payment-service charge locks",
    });
    // A client is removed when its session ended (the server, a hold's timeouts, a lost network) or was released broken.
    this.pg.pool.on("remove", () => this.openMissing());
  }

  /**
   * Opens the connections in the background (startup does not wait for them) and keeps them open
   * until close(): a dropped one is opened again. Not called where no charge can be made (the
   * processor not configured): the connections would only sit there.
   */
  keepOpen(): void {
    this.keepingOpen = true;
    this.openMissing();
  }

  /**
   * Starts making the connections the pool is short of (those being made count as there). pg-pool
   * makes a new connection only for a checkout that finds none idle (and the pool not full), so this
   * checks out as many as are idle plus as many as are missing, all at once: the idle ones are handed
   * back at once (pg-pool hands them out and gets them back in the same turn of the event loop, so no
   * charge meets them held), each of the rest is a connection made, handed back as soon as it is open
   * (to a charge waiting for one, if any). Each making runs on its own: one slow making does not hold
   * up another's. One that fails (or leaves the pool short) has the rest tried again after
   * REOPEN_PAUSE_MS, with a warning at most every MISSING_WARN_EVERY_MS.
   */
  private openMissing(): void {
    const pool = this.pg.pool;
    if (!this.keepingOpen || this.closed) return;
    const missing = this.opts.connections - pool.totalCount;
    if (missing <= 0) return;
    for (let i = missing + pool.idleCount; i > 0; i--)
      pool.connect().then(
        (client) => {
          client.release();
          this.noteOpenState();
          this.tryAgainIfShort();
        },
        (err: Error) => this.tryAgainIfShort(err),
      );
  }

  /** After a making ended: while the pool is short of connections (nothing making them), another try after a pause. */
  private tryAgainIfShort(err?: Error): void {
    const pool = this.pg.pool;
    if (!this.keepingOpen || this.closed || this.retryTimer || pool.totalCount >= this.opts.connections) return;
    this.remakingFailed = true;
    if (performance.now() - this.warnedAt >= MISSING_WARN_EVERY_MS) {
      this.warnedAt = performance.now();
      this.log.warn({ open: pool.totalCount, connections: this.opts.connections, err: err && { message: err.message } }, "charge-lock connections missing: opening them again");
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.openMissing();
    }, REOPEN_PAUSE_MS);
  }

  /**
   * A lock connection, or 503 CHARGE_LOCKS_BUSY (Retry-After) when none is free within
   * PAYMENT_CHARGE_LOCK_WAIT_MS. The wait is the charge's own timer, raced against the checkout: the
   * pool's timeout is the making's bound (POSTGRES_CONNECT_TIMEOUT_MS), and a checkout that answers
   * after the timer fired hands its connection back at once.
   *
   * When the wait ran out while connections were still being made (dropped ones being opened again,
   * or the first ones at start, on a slow host), the charge answers CHARGE_LOCKS_BUSY too, not a
   * longer wait up to the making's bound: the wait is the charge's share of the gateway's budget
   * (the stack refuses PAYMENT_CHARGE_LOCK_WAIT_MS + PAYMENT_CHARGE_DEADLINE_MS + the charge's writes
   * at or over PROXY_TIMEOUT_MS), and waiting longer would take it from the processor call, which
   * would then be cut by the gateway's 504 with the card charged, the outcome unknown to the client.
   * The 503 records and sends nothing, and its Retry-After is the making's bound. The wait begins
   * with the account's place among its share (./account-shares.ts: 429 CHARGES_IN_PROGRESS).
   */
  async acquire(userId: string): Promise<ChargeLock> {
    const startedAt = performance.now();
    await this.shares.take(userId);
    const lock = await this.checkout(Math.max(0, this.opts.waitMs - (performance.now() - startedAt))).catch((err: unknown) => {
      this.shares.done(userId);
      throw err;
    });
    let done = false;
    const release = () => {
      lock.release();
      if (!done) this.shares.done(userId);
      done = true;
    };
    return { whileAccountLive: lock.whileAccountLive, release };
  }

  /** A connection within `waitMs` (the charge's wait less its account turn's), or the 503 (see acquire). */
  private async checkout(waitMs: number): Promise<ChargeLock> {
    const checkout = this.pg.pool.connect();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, waitMs, undefined)));
    let got: PoolClient | undefined;
    try {
      got = await Promise.race([checkout, waited]);
    } catch (err) {
      // The pool's own wait (POSTGRES_CONNECT_TIMEOUT_MS) ran out first, every connection held: a
      // wait set longer than that.
      if (this.held >= this.opts.connections) throw this.busy();
      // Otherwise the making failed: PostgreSQL refused or lost the connection, which the kit
      // answers as a datastore outage. The connection is made again.
      this.tryAgainIfShort(err as Error);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (got === undefined) {
      checkout.then(
        (late) => late.release(),
        (err: Error) => this.tryAgainIfShort(err),
      );
      throw this.busy();
    }
    const client = got;
    this.held++;
    // Checked out, a client has no listener of pg-pool's: a session the server ended (the hold's
    // timeouts) would emit an unhandled 'error'. The query under way fails with it; the client is dropped.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
      this.log.warn({ err: { message: err.message } }, "a charge lock's connection was ended");
    };
    client.on("error", onError);
    let released = false;
    return {
      whileAccountLive: async (userId, closed, send) => {
        await client.query("BEGIN");
        try {
          if ((await lockAccountForWrite(client, userId)) === "deleted") {
            await client.query("ROLLBACK");
            return "account_deleted";
          }
          const stop = await closed(client);
          if (stop !== undefined) {
            await client.query("ROLLBACK");
            return { closed: stop };
          }
          const sent = await send();
          await client.query("COMMIT");
          return { sent };
        } catch (err) {
          await client.query("ROLLBACK").catch((e: Error) => (broken ??= e));
          throw err;
        }
      },
      release: () => {
        if (released) return;
        released = true;
        this.held--;
        client.removeListener("error", onError);
        // A broken one is removed (pool 'remove'): another is made (openMissing).
        client.release(broken);
      },
    };
  }

  /** The connections open, idle or held by a charge (made and not yet dropped: the opener keeps their sum at PAYMENT_CHARGE_LOCK_CONNECTIONS). */
  connectionStates(): { idle: number; held: number } {
    return { idle: this.pg.pool.idleCount, held: this.held };
  }

  /**
   * /ready's check (index.ts, where the processor is configured): throws, naming how many are open,
   * while the service cannot take charges as it should. Until every connection was open once (at
   * start; on a slow host making them takes seconds, and a charge meanwhile answered 503
   * CHARGE_LOCKS_BUSY to a replica the probe had already called ready), and again while some are
   * missing and a making of them failed (PostgreSQL refusing or unreachable: tried again every
   * REOPEN_PAUSE_MS). One dropped and being made again (a hold's timeouts ended its session) leaves the
   * service ready: the others serve, and a probe flapping at each drop would take the replica out of
   * service for a probe period. The text is the probe's, which the platform does not route to clients;
   * it still names no server, key or error of the driver.
   */
  checkReady(): void {
    if (!this.keepingOpen) return;
    const open = this.noteOpenState();
    const of = `${open} of ${this.opts.connections} connections for card charges open`;
    if (open >= this.opts.connections) return;
    if (this.remakingFailed) throw new Error(`${of}: the rest could not be opened, tried again every ${REOPEN_PAUSE_MS / 1000} s`);
    if (!this.everOpen) throw new Error(`starting: ${of}, the rest being opened`);
  }

  /** The connections made (idle, or held by a charge; not those being made), noting when all are. */
  private noteOpenState(): number {
    const open = this.pg.pool.idleCount + this.held;
    if (open >= this.opts.connections) {
      this.everOpen = true;
      this.remakingFailed = false;
    }
    return open;
  }

  /** The 503 of a charge that got no connection: nothing inserted or sent. */
  private busy(): Error {
    if (this.held >= this.opts.connections)
      return unavailable("CHARGE_LOCKS_BUSY", `every connection for charges' account locks is held by a charge at the card processor; nothing was charged or recorded, retry`, this.opts.retryAfterS);
    return unavailable("CHARGE_LOCKS_BUSY", `no connection for charges' account locks was free within the wait: some are still being opened; nothing was charged or recorded, retry`, this.opts.openingRetryAfterS);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.pg.close();
  }
}
