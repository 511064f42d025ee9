/**
 * portfolio-manager applies a batch of fills in two round trips to PostgreSQL (fills.ts
 * applyFillsInTransaction: the reads with BEGIN, the writes with COMMIT; nine before), its statements
 * written with literals: values holding quotes and backslashes are stored as given, a redelivered
 * batch applies nothing and writes nothing, and the outcome is the one applyFills (the caller's
 * transaction) reaches.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { countRoundTrips, type RoundTrips } from "../helpers/round-trips";
import { migratedKitPostgres } from "../helpers/schemas";
import { applyFills, applyFillsInTransaction } from "../../services/src/services/portfolio-manager/fills";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("postgres");
const log = { info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createPostgres>[1];
let client: PostgresClient;
/** Messages sent to PostgreSQL (each a round trip) by the pool's clients. */
let roundTrips: RoundTrips;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 2);
  roundTrips = countRoundTrips(client);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

const fill = (userId: string, symbol: string, n: number, side: "buy" | "sell", quantity: string, price: string): Fill => ({
  fillId: `${userId}:${symbol}:${n}`, orderId: randomUUID(), userId, symbol, side, quantity, price, fee: "0.1", liquidity: "taker", ts: 1_767_225_600_000 + n,
});

/** A user's positions, cash and fills as stored. */
async function stateOf(userId: string) {
  const q = (sql: string) => client.query(sql, [userId]).then((r) => r.rows);
  return {
    positions: await q("SELECT symbol, quantity::text, avg_price::text, realized_pnl::text, fees::text FROM pm_positions WHERE user_id = $1 ORDER BY symbol"),
    cash: await q("SELECT cash::text FROM pm_accounts WHERE user_id = $1"),
    fills: await q("SELECT fill_id, symbol, side, quantity::text, price::text, fee::text, realized_pnl::text, cash_delta::text, fill_ts, applied_seq FROM pm_fills WHERE user_id = $1 ORDER BY applied_seq"),
  };
}

describe("portfolio-manager's batch statements", () => {
  it("applies a batch in two round trips, stores values with quotes and backslashes as given, and a redelivery applies nothing", async () => {
    const who = `u-'\\${randomUUID()}`;
    const batch = [fill(who, "BTCUSDT", 1, "buy", "2", "100"), fill(who, "ETH'USDT\\", 2, "buy", "1.5", "10.25"), fill(who, "BTCUSDT", 3, "sell", "0.5", "110")];
    roundTrips.reset();
    expect(await applyFillsInTransaction(client, batch, "100000", 0)).toBe(3);
    expect(roundTrips.count).toBe(2);
    const after = await stateOf(who);
    expect(after.fills.map((f) => f.fill_id)).toEqual(batch.map((f) => f.fillId));
    expect(after.positions).toEqual([
      { symbol: "BTCUSDT", quantity: "1.5", avg_price: "100", realized_pnl: "5", fees: "0.2" },
      { symbol: "ETH'USDT\\", quantity: "1.5", avg_price: "10.25", realized_pnl: "0", fees: "0.1" },
    ]);
    expect(after.fills[0].fill_ts).toEqual(new Date(batch[0].ts));

    roundTrips.reset();
    expect(await applyFillsInTransaction(client, batch, "100000", 0)).toBe(0);
    expect(roundTrips.count).toBe(2); // the reads with BEGIN, then COMMIT: no write
    expect(await stateOf(who)).toEqual(after);
  });

  it("reaches the state applyFills reaches in the caller's transaction", async () => {
    const [a, b] = [`u-${randomUUID()}`, `u-${randomUUID()}`];
    const batchOf = (u: string) => [fill(u, "BTCUSDT", 1, "buy", "3", "100.5"), fill(u, "BTCUSDT", 2, "sell", "1", "99.25"), fill(u, "SOLUSDT", 3, "sell", "4", "20")];
    await applyFillsInTransaction(client, batchOf(a), "5000", 0);
    await client.transaction((tx) => applyFills(tx, batchOf(b), "5000"));
    const strip = (s: Awaited<ReturnType<typeof stateOf>>) => ({ ...s, fills: s.fills.map(({ fill_id: _, applied_seq: __, ...f }) => f) });
    expect(strip(await stateOf(a))).toEqual(strip(await stateOf(b)));
  });
});
