/**
 * Planted one-minute bars (./planted-bars.ts) as the rows data-bridge writes to ClickHouse's
 * `market_candles`, ending at the current minute, and their insert over ClickHouse's HTTP interface
 * with a stack's connection string: what the deploy suites give ml-predictor's retraining to learn,
 * and how they read back what it trained.
 */
import { Client } from "pg";
import { createClickHouse } from "../../services/src/kit/datastores";
import { candleRow } from "../../services/src/services/data-bridge/domain";
import { plantedBars, type PlantedBar } from "./planted-bars";

/** A planted bar of `symbol` as the `market_candles` row data-bridge writes (`source`: who wrote it). */
export const plantedCandleRow = (symbol: string, b: PlantedBar, source: string) =>
  candleRow({ symbol, interval: "1m", openTime: b.openTime, closeTime: b.openTime + 59_999, open: String(b.open), high: String(b.high), low: String(b.low), close: String(b.close), volume: String(b.volume) }, source);

/** Inserts planted `bars` of `symbol` into the harness's ClickHouse (`market_candles`), 5,000 rows an INSERT. */
export async function insertPlantedBars(clickhouse: { url: string; user: string; password: string; database: string }, symbol: string, bars: readonly PlantedBar[]): Promise<void> {
  const ch = createClickHouse({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_USER: clickhouse.user, CLICKHOUSE_PASSWORD: clickhouse.password, CLICKHOUSE_DATABASE: clickhouse.database });
  try {
    const rows = bars.map((b) => plantedCandleRow(symbol, b, "test"));
    for (let i = 0; i < rows.length; i += 5000) await ch.insert("market_candles", rows.slice(i, i + 5000));
  } finally {
    await ch.close();
  }
}

/** `bars` rows of `symbol` (JSON lines), the last one opening at the current minute. */
export function plantedCandleRows(symbol: string, bars: number, seed: string): string[] {
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  return plantedBars({ symbol, bars, seed, plantedSignal: 0.5, origin: minute - (bars - 1) * 60_000 }).map((b) => JSON.stringify(plantedCandleRow(symbol, b, "e2e")));
}

/**
 * Inserts the rows with the credentials and database of `connectionString` (a stack output), at
 * `hostPort` (the string's own host, or a port-forward's). Resolves to the HTTP status and body.
 */
export async function insertCandleRows(connectionString: string, hostPort: string, rows: string[]): Promise<{ status: number; body: string }> {
  const ch = new URL(connectionString);
  const params = new URLSearchParams({
    database: ch.searchParams.get("database")!,
    user: decodeURIComponent(ch.username),
    password: decodeURIComponent(ch.password),
    query: "INSERT INTO market_candles FORMAT JSONEachRow",
  });
  const r = await fetch(`http://${hostPort}/?${params}`, { method: "POST", body: rows.join("\n") });
  return { status: r.status, body: await r.text() };
}

/** The last result line (`{"version":...}`) a training run printed, if it printed one. */
export function lastTrainResult(output: string): { version: string; hasEdge: boolean } | undefined {
  return output
    .split("\n")
    .filter((l) => l.startsWith('{"version"'))
    .map((l) => JSON.parse(l) as { version: string; hasEdge: boolean })
    .pop();
}

/** The registry's row for model `version` (its symbols), read with a PostgreSQL connection string. */
export async function registeredModelRows(postgresUrl: string, version: string): Promise<unknown[]> {
  const client = new Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return (await client.query("SELECT symbols FROM ml_models WHERE version = $1", [version])).rows;
  } finally {
    await client.end();
  }
}
