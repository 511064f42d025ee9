/** PostgreSQL: a pg Pool with query/transaction helpers (created lazily by the Datastores registry). */
import type { Logger } from "pino";
import type { ClientBase, Pool, PoolClient, PoolConfig, QueryResult, QueryResultRow } from "pg";
import type { DatastoreConfig } from "./env";
import { boundedLockStatements, checkWaitMs, CONFLICT_SQLSTATES, conflictPauseMs, KeyedTurns, LOCK_WAIT_DEFAULT_MS, turnName, type AdvisoryLock, type TransactionOptions } from "./postgres-contention";

export { boundedLockStatements, CONFLICT_SQLSTATES, conflictPauseMs, KeyedTurns, LockWaitError, LOCK_WAIT_DEFAULT_MS, type AdvisoryLock, type TransactionOptions } from "./postgres-contention";

/**
 * What data-access functions take: the pool (one statement, any connection) or the client of a
 * transaction (`app.pg.transaction(async (client) => ...)`). Both answer `query` alike.
 */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** The rows of the last statement of a multi-statement simple query (pg answers one result per statement). */
export function lastResult<R extends QueryResultRow = QueryResultRow>(answer: unknown): R[] {
  const results = Array.isArray(answer) ? answer : [answer];
  return (results[results.length - 1] as QueryResult<R>).rows;
}

/**
 * A text literal for a statement sent without parameters (a transaction's `begin`), quoted with pg's
 * escapeLiteral; a NUL byte, which would end the statement's text early, is refused.
 */
export function textLiteral(text: string): string {
  if (text.includes("\0")) throw new Error("a value holds a NUL byte");
  return pgModule().escapeLiteral(text);
}

/**
 * pg, loaded by the first service that uses PostgreSQL (a service without it never loads it) and
 * kept: require() resolves its path on every call, with file-system lookups under the tsx loader
 * (a --cpu-prof of order-management at 200 orders/s spent a quarter of its busy time there when
 * each literal called it).
 */
type PgUtils = { prepareValue(v: unknown): string | Buffer | null };
let pgLoaded: typeof import("pg") | undefined;
let pgUtilsLoaded: PgUtils | undefined;
const pgModule = () => (pgLoaded ??= require("pg") as typeof import("pg"));
const pgUtils = () => (pgUtilsLoaded ??= require("pg/lib/utils") as PgUtils);

/** A text[] of literals (textLiteral each) for a statement sent without parameters. */
export function textArrayLiteral(texts: string[]): string {
  return `ARRAY[${texts.map(textLiteral).join(", ")}]::text[]`;
}

/**
 * A statement a transaction EXECUTEs by name in its `begin` (`executeStatement`), prepared on each
 * connection the first time a transaction there needs it (`transaction`'s `prepared`). Written with
 * literals, the submit transaction's statements were planned afresh on every call: 0.4 ms of
 * PostgreSQL's CPU per order at 200 orders/s, a quarter of its statement time on the order path
 * (BENCH_PG_STATEMENTS=1 npx tsx bench/trading.ts). `params` are the parameters' SQL types.
 */
export interface PreparedStatement {
  name: string;
  params: readonly string[];
  text: string;
}
/**
 * Sent with BEGIN when a transaction EXECUTEs prepared statements: PostgreSQL's default (`auto`) plans
 * an EXECUTE afresh for its values whenever the generic plan's estimate looks dearer, and over an
 * unnest() of an array parameter it always does (10 rows estimated against the literal's 1: the risk
 * facts were planned on every call, 20 of 20, though the plans were the same lookups by user). For
 * the rest of the transaction: its other statements are INSERTs and lookups by key. A generic plan
 * is made from the tables as they were: PREPARED_MAX_AGE_MS bounds how old it gets.
 */
const GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan";
const PREPARED_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Sends statements without parameters and COMMIT in one round trip; answers the rows of the last statement before COMMIT. */
export type CommitWith = (last: string) => Promise<QueryResultRow[]>;

/**
 * A parameter's value as an SQL literal of unknown type, which EXECUTE converts to the parameter's
 * type: the text pg itself sends for the value as a parameter (its prepareValue: arrays in
 * PostgreSQL's array syntax, dates, JSON), quoted with escapeLiteral, so the server reads what it
 * would have read as a parameter. A NUL byte is refused (PostgreSQL stores none either way).
 */
export function parameterLiteral(value: unknown): string {
  const prepared = pgUtils().prepareValue(value);
  if (prepared === null) return "NULL";
  if (typeof prepared !== "string") throw new Error("a binary parameter cannot be written as a literal");
  return textLiteral(prepared);
}

/** `EXECUTE name(...)` of the values as literals (parameterLiteral): a parameterised statement sent without parameters, so it can share a round trip. */
export function executeWith(statement: PreparedStatement, values: readonly unknown[]): string {
  return executeStatement(statement, values.map(parameterLiteral));
}

/** PREPARE and EXECUTE take no parentheses where there are no parameters. */
const inParentheses = (list: readonly string[]) => (list.length === 0 ? "" : `(${list.join(", ")})`);

/** `EXECUTE name(args)`: each argument is an SQL expression (a literal built with textLiteral / textArrayLiteral, or a checked number). */
export function executeStatement(statement: PreparedStatement, args: readonly string[]): string {
  if (args.length !== statement.params.length) throw new Error(`${statement.name} takes ${statement.params.length} arguments, not ${args.length}`);
  return `EXECUTE ${statement.name}${inParentheses(args)}`;
}

/** The statements prepared on each connection: name -> when (performance.now()); a connection outlives many transactions, and the pool reuses its client object. */
const preparedOn = new WeakMap<ClientBase, Map<string, number>>();

/**
 * How long a connection keeps a prepared statement before preparing it again. A generic plan is made
 * once, from the table's size then, and PostgreSQL makes it again only after an ANALYZE: one made on
 * a fresh database kept a sequential scan of om_orders (a hash join, 1.7 ms a lookup of
 * Idempotency-Keys at 20,000 rows, against 0.04 ms by the index) until autovacuum got round to it.
 * Prepared again, the plan follows the table's current size (the planner reads its pages now).
 */
export const PREPARED_MAX_AGE_MS = 30_000;

/**
 * PREPAREs on `client` what it does not have yet, or had for longer than PREPARED_MAX_AGE_MS (those
 * DEALLOCATEd first), in one round trip. A failure leaves the connection's statements unknown (a
 * PREPARE is not undone by a rollback): the caller then destroys the connection.
 */
export async function prepareStatements(client: ClientBase, statements: readonly PreparedStatement[], now = performance.now()): Promise<void> {
  let done = preparedOn.get(client);
  if (!done) preparedOn.set(client, (done = new Map()));
  const due = statements.filter((s) => !(now - (done.get(s.name) ?? -Infinity) < PREPARED_MAX_AGE_MS));
  if (due.length === 0) return;
  for (const s of due) if (!PREPARED_NAME.test(s.name)) throw new Error(`bad prepared statement name ${JSON.stringify(s.name)}`);
  await client.query(due.flatMap((s) => [...(done.has(s.name) ? [`DEALLOCATE ${s.name}`] : []), `PREPARE ${s.name}${inParentheses(s.params)} AS ${s.text}`]).join(";\n"));
  for (const s of due) done.set(s.name, now);
}

/** SQLSTATE too_many_connections: the server (max_connections), the role's or the database's CONNECTION LIMIT refused a new connection. */
export const TOO_MANY_CONNECTIONS = "53300";
/** The first and the longest pause between two tries of a connection the server refused as too many. */
const REFUSED_RETRY_FIRST_MS = 10;
const REFUSED_RETRY_MAX_MS = 250;
/** At most one warning per this long that a pool waited for a connection the server refused. */
const REFUSED_WARN_EVERY_MS = 10_000;

type ConnectCallback = (err: Error | undefined, client?: PoolClient, done?: (release?: unknown) => void) => void;

/**
 * A pg Pool whose checkout (`connect`, which pool.query and transactions go through) waits when
 * PostgreSQL refuses a new connection as one too many (53300), instead of failing the request. pg-pool
 * gives up at the first refusal: a burst of 10 requests growing a pool of 10 on a server at its
 * max_connections got the refusal for every connection past the server's last free slot, and each of
 * those requests answered 503 DATASTORE_UNAVAILABLE (session 55: 1 of 10 concurrent backtest
 * submissions, 2 of 10 concurrent creations of one plan in tests/hostile/races.test.ts, with two full
 * suites sharing this host), though the pool's own connections were free again milliseconds later.
 * A refusal is tried again (a checkout takes an idle connection of the pool's first, or a new one
 * once the server has a slot) with a growing pause, until POSTGRES_CONNECT_TIMEOUT_MS has passed since
 * the first try: the wait for a connection the pool already has is bounded alike. A server that takes
 * no connection for that long is an outage: the refusal is thrown, transient (503 DATASTORE_UNAVAILABLE).
 * Only 53300: nothing was sent, so a try again runs no statement twice; a refused or lost connection,
 * a server starting up or shutting down stay the outages they are (kit transient-errors.ts).
 */
function patientPool(config: PoolConfig, log: Logger): Pool {
  const { Pool } = pgModule();
  const budgetMs = config.connectionTimeoutMillis || 0;
  let warnedAt = -Infinity;
  class PatientPool extends Pool {
    // pg-pool's signature: a promise without a callback; with one, the callback and no promise.
    connect(): Promise<PoolClient>;
    connect(callback: ConnectCallback): void;
    connect(callback?: ConnectCallback): Promise<PoolClient> | void {
      const checkout = this.checkoutPatiently();
      if (!callback) return checkout;
      checkout.then(
        (client) => callback(undefined, client, (release) => client.release(release as Error | boolean | undefined)),
        (err: Error) => callback(err, undefined, () => undefined),
      );
    }

    private async checkoutPatiently(): Promise<PoolClient> {
      const until = performance.now() + budgetMs;
      for (let pauseMs = REFUSED_RETRY_FIRST_MS; ; pauseMs = Math.min(pauseMs * 2, REFUSED_RETRY_MAX_MS)) {
        try {
          return await super.connect();
        } catch (e) {
          if ((e as { code?: unknown }).code !== TOO_MANY_CONNECTIONS || this.ending || performance.now() + pauseMs > until) throw e;
          if (performance.now() - warnedAt >= REFUSED_WARN_EVERY_MS) {
            warnedAt = performance.now();
            log.warn({ pool: { total: this.totalCount, idle: this.idleCount, waiting: this.waitingCount } }, "postgres refused a new connection (too many connections): waiting for one");
          }
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
      }
    }
  }
  return new PatientPool(config);
}

const INT4 = (n: number) => Number.isSafeInteger(n) && n >= -0x80000000 && n <= 0x7fffffff;

/** The statement that takes `lock` exclusively to the end of the transaction (sent with BEGIN: no parameters). */
export function advisoryLockStatement(lock: AdvisoryLock): string {
  if (typeof lock === "number") {
    if (!Number.isSafeInteger(lock)) throw new Error(`an advisory lock key must be an integer, not ${lock}`);
    return `SELECT pg_advisory_xact_lock(${lock})`;
  }
  if (!INT4(lock.space)) throw new Error(`an advisory lock space must be an int4, not ${lock.space}`);
  if (typeof lock.key === "number") {
    if (!INT4(lock.key)) throw new Error(`an advisory lock key must be an int4, not ${lock.key}`);
    return `SELECT pg_advisory_xact_lock(${lock.space}, ${lock.key})`;
  }
  return `SELECT pg_advisory_xact_lock(${lock.space}, hashtext(${textLiteral(lock.key)}))`;
}

/** POSTGRES_LOCK_WAIT_MS may be left out (LOCK_WAIT_DEFAULT_MS): a pool of a service's own (charge-locks.ts), a test's. */
export function createPostgres(cfg: Omit<DatastoreConfig["postgres"], "POSTGRES_LOCK_WAIT_MS"> & { POSTGRES_LOCK_WAIT_MS?: number }, log: Logger, extra: PoolConfig = {}) {
  const pool: Pool = patientPool(
    {
      connectionString: cfg.POSTGRES_URL,
      max: cfg.POSTGRES_POOL_MAX,
      connectionTimeoutMillis: cfg.POSTGRES_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      ...extra,
    },
    log,
  );
  // A connection lost (the server restarted, pg_terminate_backend, a network cut) must not crash the
  // process. pg-pool listens for a client's 'error' only while it is idle and drops that listener at
  // checkout, so a client held through pool.connect() (a transaction, charge-locks' advisory locks, the
  // outbox's LISTEN) emitted an 'error' nobody heard when its backend ended: an uncaught exception. Every
  // client gets its own listener for its whole life; its query or the holder's next one fails as usual.
  pool.on("connect", (client) => client.on("error", (err) => log.warn({ err: { message: err.message } }, "postgres connection lost")));
  // (pg-pool re-emits an idle client's error on the pool, and an unheard pool 'error' throws: the client's listener logged it)
  pool.on("error", () => undefined);
  const turns = new KeyedTurns({ waitMs: checkWaitMs(cfg.POSTGRES_LOCK_WAIT_MS ?? LOCK_WAIT_DEFAULT_MS, "POSTGRES_LOCK_WAIT_MS") });

  async function transactionOnce<T>(fn: (client: PoolClient, begun: QueryResultRow[], begunEach: QueryResultRow[][], commitWith: CommitWith) => Promise<T>, opts: TransactionOptions, lockDeadline: number): Promise<T> {
    const client = await pool.connect();
    if (opts.prepared)
      await prepareStatements(client, opts.prepared).catch((e: unknown) => {
        client.release(e as Error);
        throw e;
      });
    try {
      const head = ["BEGIN", ...(opts.prepared ? [GENERIC_PLANS] : []), ...(opts.lock === undefined ? [] : boundedLockStatements(advisoryLockStatement(opts.lock), lockDeadline))];
      const answer: unknown = await client.query([...head, ...(opts.begin === undefined ? [] : [opts.begin])].join("; "));
      const each = opts.begin === undefined ? [] : (answer as QueryResult[]).slice(head.length).map((r) => r.rows);
      let committed = false;
      const commitWith: CommitWith = async (last) => {
        if (committed) throw new Error("the transaction was already committed");
        committed = true;
        const answer: unknown = await client.query(`${last};\nCOMMIT`);
        const results = answer as QueryResult[];
        return results[results.length - 2].rows;
      };
      const r = await fn(client, each[each.length - 1] ?? [], each, commitWith);
      if (!committed) await client.query("COMMIT");
      return r;
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  return {
    pool,
    query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]) {
      return pool.query<R>(text, values);
    },
    /**
     * Runs `fn` inside BEGIN/COMMIT on one client, ROLLBACK on error (`begin`, `prepared`, `lock`,
     * `retryConflicts`: TransactionOptions). `fn` gets the rows of `begin`'s last statement (`begun`) and
     * of each one in order (`begunEach`). Each statement still reads with its own snapshot (READ
     * COMMITTED), so one placed after a lock sees what the lock waited for. `commitWith(last)` (fn's
     * last call): sends `last` (statements without parameters) and COMMIT in one round trip, a round
     * trip less than a statement and then COMMIT; answers the rows of the last statement of `last`.
     * Without it the helper sends COMMIT after fn.
     */
    async transaction<T>(fn: (client: PoolClient, begun: QueryResultRow[], begunEach: QueryResultRow[][], commitWith: CommitWith) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      const retries = opts.retryConflicts ?? 0;
      const waitMs = opts.lock === undefined ? Infinity : checkWaitMs(opts.lockWaitMs ?? turns.bounds.waitMs, "lockWaitMs"); // (a wait to bound only with a lock)
      // A try's lock wait in PostgreSQL ends at `deadline` (performance.now()): the first's shares the bound with the turn's, a try again waits anew (the turn is held).
      const tries = async (deadline: number) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await transactionOnce(fn, opts, attempt === 1 ? deadline : performance.now() + waitMs);
          } catch (e) {
            if (attempt > retries || !CONFLICT_SQLSTATES.has((e as { code?: string }).code ?? "")) throw e;
            await new Promise((resolve) => setTimeout(resolve, conflictPauseMs(attempt)));
          }
        }
      };
      return opts.lock === undefined ? tries(Infinity) : turns.run(turnName(opts.lock), tries, waitMs);
    },
    /** The turns of the advisory locks `transaction`'s `lock` takes (`waiting`: transactions waiting for theirs, holding no connection; `bounds`: postgres-contention.ts). */
    turns,
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}
export type PostgresClient = ReturnType<typeof createPostgres>;

