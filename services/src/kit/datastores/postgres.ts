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
     * Runs `fn` inside BEGIN/COMMIT on one client, ROLLBACK on error. `begin`: a statement without
     * parameters sent in the same round trip as BEGIN (simple protocol), its rows handed to `fn`: one
     * round trip less for a transaction whose first statement can be written with literals.
     */
    async transaction<T>(fn: (client: PoolClient, begun: QueryResultRow[]) => Promise<T>, opts: { begin?: string } = {}): Promise<T> {
      const client = await pool.connect();
      try {
        const answer: unknown = await client.query(opts.begin === undefined ? "BEGIN" : `BEGIN; ${opts.begin}`);
        const r = await fn(client, opts.begin === undefined ? [] : lastResult(answer));
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

