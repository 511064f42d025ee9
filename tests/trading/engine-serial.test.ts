/**
 * The trading-engine's in-memory book against a real PostgreSQL when batches arrive together (the
 * consumer hands over several partitions at once): a batch that fails rebuilds the book from the
 * database, and a batch that commits meanwhile must not go missing from memory. After every round
 * the engine's book and last bar equal what a fresh engine loads from the database.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import type { Bar, OrderRequest } from "../../services/src/trading/types";

const srv = useServers("postgres");
/** A symbol of this file alone: the database is shared with other test files. */
const SYMBOL = `T${randomBytes(4).toString("hex").toUpperCase()}USDT`;
const ROUNDS = 20;
let client: PostgresClient;

const log = { info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createPostgres>[1];
const engineOn = (pgc: PostgresClient) =>
  testEngine({ pg: pgc, log });
const bar = (openTime: number, close: string): Bar => ({ symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high: close, low: close, close, volume: "1" });
const limitBuy = (limitPrice: string, extra: Partial<OrderRequest> = {}): OrderRequest => ({
  orderId: randomUUID(), userId: "u-serial", symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice, ...extra,
});

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 6);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

describe("trading-engine batches arriving together", () => {
  it("a failed batch's rebuild never loses a batch committed beside it: memory equals the database after every round", async () => {
    const engine = engineOn(client);
    await engine.load();
    const t0 = Date.UTC(2026, 0, 1);
    await engine.onBatch([{ kind: "bars", bars: [bar(t0, "100")] }]);
    const rested: string[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      // PostgreSQL refuses the poison order's row (jsonb has no \u0000): its batch rolls back and
      // rebuilds the book, while the other batch rests a limit order and moves the last bar on.
      const good = limitBuy("90");
      rested.push(good.orderId);
      const [poisoned, applied] = await Promise.allSettled([
        engine.onBatch([{ kind: "execute", order: limitBuy("50", { clientOrderId: "a\u0000b" }) }]),
        engine.onBatch([{ kind: "execute", order: good }, { kind: "bars", bars: [bar(t0 + i * 60_000, "100")] }]),
      ]);
      expect(poisoned.status).toBe("rejected");
      expect(applied.status).toBe("fulfilled");
      const fromDatabase = engineOn(client);
      await fromDatabase.load();
      expect(engine.lastBar(SYMBOL)?.openTime, `round ${i}`).toBe(t0 + i * 60_000);
      expect(engine.lastBar(SYMBOL)).toEqual(fromDatabase.lastBar(SYMBOL));
      const ids = (e: TradingEngine) => [...e.restingOf()].filter((r) => r.order.symbol === SYMBOL).map((r) => r.order.orderId).sort();
      expect(ids(engine), `round ${i}`).toEqual([...rested].sort());
      expect(ids(engine)).toEqual(ids(fromDatabase));
    }
  }, 300_000);
});
