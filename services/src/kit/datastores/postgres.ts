/** PostgreSQL: a pg Pool with query/transaction helpers (created lazily by the Datastores registry). */
import type { Logger } from "pino";
import type { Pool, PoolClient, PoolConfig, QueryResult, QueryResultRow } from "pg";
import type { DatastoreConfig } from "./env";

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
  return (require("pg") as typeof import("pg")).escapeLiteral(text);
}

/** A text[] of literals (textLiteral each) for a statement sent without parameters. */
export function textArrayLiteral(texts: string[]): string {
  return `ARRAY[${texts.map(textLiteral).join(", ")}]::text[]`;
}

export function createPostgres(cfg: DatastoreConfig["postgres"], log: Logger, extra: PoolConfig = {}) {
  const { Pool } = require("pg") as typeof import("pg");
  const pool: Pool = new Pool({
    connectionString: cfg.POSTGRES_URL,
    max: cfg.POSTGRES_POOL_MAX,
    connectionTimeoutMillis: cfg.POSTGRES_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    ...extra,
  });
  // An idle client losing its connection must not crash the process.
  pool.on("error", (err) => log.warn({ err: { message: err.message } }, "postgres idle client error"));
  return {
    pool,
    query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]) {
      return pool.query<R>(text, values);
    },
    /**
     * Runs `fn` inside BEGIN/COMMIT on one client, ROLLBACK on error. `begin`: statements without
     * parameters (`;`-separated) sent in the same round trip as BEGIN (simple protocol): a round trip
     * less for each statement a transaction can write with literals. `fn` gets the rows of the last
     * one (`begun`) and of each one in order (`begunEach`). Each statement still reads with its own
     * snapshot (READ COMMITTED), so one placed after a lock sees what the lock waited for.
     */
    async transaction<T>(fn: (client: PoolClient, begun: QueryResultRow[], begunEach: QueryResultRow[][]) => Promise<T>, opts: { begin?: string } = {}): Promise<T> {
      const client = await pool.connect();
      try {
        const answer: unknown = await client.query(opts.begin === undefined ? "BEGIN" : `BEGIN; ${opts.begin}`);
        const each = opts.begin === undefined ? [] : (answer as QueryResult[]).slice(1).map((r) => r.rows);
        const r = await fn(client, each[each.length - 1] ?? [], each);
        await client.query("COMMIT");
        return r;
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}
export type PostgresClient = ReturnType<typeof createPostgres>;

