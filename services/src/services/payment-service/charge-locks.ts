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
 */
import type { Logger } from "pino";
import type { PoolClient } from "pg";
import { lockAccountForWrite, unavailable, type DatastoreConfig } from "../../kit";
import { createPostgres } from "../../kit/datastores/postgres";

export interface ChargeLockOptions {
  /** Connections of the pool (PAYMENT_CHARGE_LOCK_CONNECTIONS). */
  connections: number;
  /** How long a charge waits for one (PAYMENT_CHARGE_LOCK_WAIT_MS). */
  waitMs: number;
  /** The connections' idle-in-transaction and statement timeouts (PAYMENT_CHARGE_LOCK_HOLD_MS). */
  holdMs: number;
  /** The Retry-After of the 503, in seconds. */
  retryAfterS: number;
}

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

  constructor(
    cfg: DatastoreConfig["postgres"],
    private readonly log: Logger,
    private readonly opts: ChargeLockOptions,
  ) {
    this.pg = createPostgres(cfg, log, {
      max: opts.connections,
      connectionTimeoutMillis: opts.waitMs,
      idle_in_transaction_session_timeout: opts.holdMs,
      statement_timeout: opts.holdMs,
      application_name: "payment-service charge locks",
    });
  }

  /** A lock connection, or 503 CHARGE_LOCKS_BUSY (Retry-After) when none frees within the wait. */
  async acquire(): Promise<ChargeLock> {
    let client: PoolClient;
    try {
      client = await this.pg.pool.connect();
    } catch (err) {
      // Every connection open and held: none freed within the wait (otherwise PostgreSQL failed, which
      // the kit answers as a datastore outage).
      if (this.pg.pool.totalCount >= this.opts.connections)
        throw unavailable("CHARGE_LOCKS_BUSY", `every connection for charges' account locks is held by a charge at the card processor; nothing was charged or recorded, retry`, this.opts.retryAfterS);
      throw err;
    }
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
        client.removeListener("error", onError);
        client.release(broken);
      },
    };
  }

  async close(): Promise<void> {
    await this.pg.close();
  }
}
