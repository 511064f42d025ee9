/**
 * What a query read on ClickHouse 18.16, from system.query_log (session 44). 18.16 counts a scalar
 * subquery's reads neither in read_rows nor against max_rows_to_read, but its ProfileEvents do:
 * SelectedMarks, the granules (8,192 rows) the key analysis picked, every read of the query included.
 */
import { randomUUID } from "node:crypto";
import type { createClickHouse } from "../../services/src/kit/datastores";
import { bindParamsForLegacyServer } from "../../services/src/kit/clickhouse/legacy-binding";
import { PATIENCE_MS } from "./patience";

type ClickHouse = ReturnType<typeof createClickHouse>;

/** The kit client `ch` whose SELECTs are logged in system.query_log under `queryId` (18.16 logs none by default). */
export function loggedAs(ch: ClickHouse, queryId: string): ClickHouse {
  return {
    ...ch,
    async query<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
      const server = (await ch.paramBinding()) === "server";
      const rs = await ch.client.query({
        query: server ? query : bindParamsForLegacyServer(query, params),
        ...(server ? { query_params: params } : {}),
        format: "JSONEachRow",
        query_id: queryId,
        clickhouse_settings: { log_queries: 1 },
      });
      return rs.json<T>();
    },
  };
}

/** The granules the finished queries logged under `queryId` selected, their scalar subqueries' included. */
export async function selectedMarks(ch: ClickHouse, queryId: string): Promise<number> {
  // The server logs a query as finished once its HTTP answer is sent, which the client may have read
  // before: a flush right after can miss it (session 46's .ci/run, once). So flushed and read again
  // until PATIENCE_MS pass (the suite's bound on a wait; 10 s before).
  const deadline = Date.now() + PATIENCE_MS;
  let rows: Array<{ marks: string; n: string }>;
  for (;;) {
    await ch.client.command({ query: "SYSTEM FLUSH LOGS" });
    rows = await ch.query<{ marks: string; n: string }>(
      `SELECT toString(sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SelectedMarks')])) AS marks, toString(count()) AS n
         FROM system.query_log WHERE query_id = {id:String} AND type = 2`,
      { id: queryId },
    );
    if (rows[0]?.n !== "0" || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (rows[0]?.n === "0") throw new Error(`no finished query ${queryId} in system.query_log after ${PATIENCE_MS} ms`);
  return Number(rows[0].marks);
}

/** `fn`'s answer with the granules its queries on `ch` selected. */
export async function withSelectedMarks<T>(ch: ClickHouse, fn: (logged: ClickHouse) => Promise<T>): Promise<{ result: T; marks: number }> {
  const id = randomUUID();
  const result = await fn(loggedAs(ch, id));
  return { result, marks: await selectedMarks(ch, id) };
}

/**
 * Merges the chain and candle tables (views aside) as ClickHouse merges them in the background, so a
 * read by the key is a granule or two of a part and the granule counts above compare like with like.
 */
export async function mergeChainAndCandleTables(ch: ClickHouse): Promise<void> {
  const tables = await ch.query<{ name: string }>(
    "SELECT name FROM system.tables WHERE database = currentDatabase() AND (name LIKE 'ai_chain%' OR name LIKE 'market_candles%') AND engine != 'MaterializedView'",
  );
  for (const t of tables) {
    // OPTIMIZE does nothing (and says nothing) while a background merge holds the parts: asked again
    // until each partition is one part (session 45: a view-fed table was read as 6 parts after it).
    for (let i = 0; ; i++) {
      await ch.client.command({ query: `OPTIMIZE TABLE ${t.name} FINAL` });
      const split = await ch.query<{ n: string }>(
        "SELECT toString(count()) AS n FROM system.parts WHERE active AND database = currentDatabase() AND table = {t:String} GROUP BY partition HAVING count() > 1",
        { t: t.name },
      );
      if (!split.length) break;
      if (i >= 50) throw new Error(`${t.name} still has ${split.length} partitions of several parts after ${i + 1} OPTIMIZE FINAL`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
