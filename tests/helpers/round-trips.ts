/**
 * Counts the messages a kit PostgreSQL client's pool sends (each `query` call of its connections: one round trip,
 * whatever the statements in it), for tests that hold a batch's path to a number of round trips
 * (tests/trading/portfolio-statements.test.ts, order-executions-statements.test.ts).
 */
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";

export interface RoundTrips {
  /** Round trips since the last reset. */
  readonly count: number;
  reset(): void;
}

/** Counts from now on, on every connection the pool opens after this call (call it before the pool's first query). */
export function countRoundTrips(client: PostgresClient): RoundTrips {
  let count = 0;
  client.pool.on("connect", (c) => {
    const query = c.query.bind(c) as (...args: unknown[]) => unknown;
    (c as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      count++;
      return query(...args);
    };
  });
  return {
    get count() {
      return count;
    },
    reset: () => void (count = 0),
  };
}
