/**
 * What an admin's (and a trader's) chain and every user's summary read on ClickHouse 18.16 (session 45's
 * business-logic hunt; left by sessions 43 and 44), by query_log's SelectedMarks (tests/helpers/query-log.ts).
 * The decisions were read from 0024's table, keyed by user then instant: a chain without a user (an admin's
 * GET /chains/:decisionId) read every user's decisions ever recorded to find one, a trader's every one of
 * their own, and a summary without a user (GET /summary/all, the /metrics gauges at each scrape) every
 * user's decisions of the months its range spans. A chain reads 0026's table (by decision id) now, every
 * user's summary 0027's (by instant), and /summary/all spans at most CHAIN_SUMMARY_ALL_MAX_DAYS. 0005's
 * ai_chain_decisions, read by no release since session 43's, is no longer written.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migratedClickHouse } from "../helpers/schemas";
import { mergeChainAndCandleTables, withSelectedMarks } from "../helpers/query-log";
import { createClickHouse } from "../../services/src/kit/datastores";
import { createApp, createLogger } from "../../services/src/kit/app";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, runClickHouseMigrations } from "../../services/src/migrations";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import { registerRoutes } from "../../services/src/services/ai-chain-analytics/routes";
import { decisionRow } from "../../services/src/services/ai-chain-analytics/chains";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
}, 300_000);
afterAll(() => ch?.close());

/** Decisions of others (and of the trader), 12 granules of 8,192 rows and more. */
const NOISE = 100_000;

const decision = (id: string, userId: string, strategyId: string, at: number, action = "buy") =>
  decisionRow({ decisionId: id, strategyId, userId, symbol: "ADMREADUSDT", decidedAt: new Date(at).toISOString(), modelVersion: "adm-1", probabilityUp: 0.6, decisionPrice: 100, action: action as "buy", quantity: 1, orderId: null });

async function insertDecisions(n: number, row: (i: number) => ReturnType<typeof decisionRow>): Promise<void> {
  const store = new ChainStore(ch);
  for (let i = 0; i < n; i += 20_000) await store.insertDecisions(Array.from({ length: Math.min(20_000, n - i) }, (_, k) => row(i + k)));
}

const marksOf = <T>(fn: (s: ChainStore) => Promise<T>) => withSelectedMarks(ch, (logged) => fn(new ChainStore(logged)));

describe("ai-chain-analytics: a chain and every user's summary read what they answer (session 45)", () => {
  it("an admin's and a trader's chain select the same granules with 100,000 more decisions, half of them the trader's own", async () => {
    const [user, strategyId, decisionId] = [randomUUID(), randomUUID(), randomUUID()];
    const t0 = Date.now() - 60_000;
    await new ChainStore(ch).insertDecisions([decision(decisionId, user, strategyId, t0)]);
    await mergeChainAndCandleTables(ch);
    const admin0 = await marksOf((s) => s.chain(decisionId));
    const trader0 = await marksOf((s) => s.chain(decisionId, user));
    expect(admin0.result!.decision).toMatchObject({ decisionId, userId: user, action: "buy" });
    expect(trader0.result).toEqual(admin0.result);

    await insertDecisions(NOISE, (i) => decision(randomUUID(), i % 2 ? user : randomUUID(), strategyId, t0 - 3_600_000 + i * 20));
    await mergeChainAndCandleTables(ch);
    const admin1 = await marksOf((s) => s.chain(decisionId));
    const trader1 = await marksOf((s) => s.chain(decisionId, user));
    expect(admin1.result).toEqual(admin0.result);
    expect(trader1.result).toEqual(admin0.result);
    // Before: 12 granules more for the admin's in a run here (every decision ever recorded), and the trader's read all of their own.
    expect(admin1.marks - admin0.marks).toBeLessThanOrEqual(1);
    expect(trader1.marks - trader0.marks).toBeLessThanOrEqual(1);
    // Another trader's ask is still nothing.
    expect(await new ChainStore(ch).chain(decisionId, randomUUID())).toBeUndefined();
  }, 300_000);

  it("every user's summary of an hour selects the hour's granules, not its month's, and answers the same", async () => {
    const strategyId = randomUUID();
    // An hour late in a month, and 100,000 decisions of others earlier in that month (its partition).
    const hour = Date.UTC(2026, 1, 20, 12);
    const range = { from: new Date(hour), to: new Date(hour + 3_600_000) };
    await new ChainStore(ch).insertDecisions([
      decision(randomUUID(), randomUUID(), strategyId, hour + 60_000),
      decision(randomUUID(), randomUUID(), strategyId, hour + 120_000, "sell"),
      decision(randomUUID(), randomUUID(), strategyId, hour - 1),
    ]);
    await mergeChainAndCandleTables(ch);
    const before = await marksOf((s) => s.summary(range));
    expect(before.result.filter((r) => r.strategyId === strategyId)).toEqual([expect.objectContaining({ modelVersion: "adm-1", decisions: 2, trades: 2 })]);

    await insertDecisions(NOISE, (i) => decision(randomUUID(), randomUUID(), randomUUID(), Date.UTC(2026, 1, 2) + i * 10_000));
    await mergeChainAndCandleTables(ch);
    const after = await marksOf((s) => s.summary(range));
    expect(after.result).toEqual(before.result);
    // Before: 924 granules more in a run here (the month's decisions, read for the rows, their ids and symbols, and the joins by those ids).
    expect(after.marks - before.marks).toBeLessThanOrEqual(3);
  }, 300_000);

  it("GET /summary/all spans at most CHAIN_SUMMARY_ALL_MAX_DAYS, a trader's GET /summary CHAIN_SUMMARY_MAX_DAYS: a longer range is a 400 naming from", async () => {
    const app = createApp({ log: createLogger("ai-chain-admin-range-test", "silent"), bodyLimit: 1 << 20, trustProxy: undefined, jsonMaxDepth: 64, receiveTimeoutMs: 10_000 });
    registerRoutes({ app } as never, { store: new ChainStore(ch), maxAllDays: 31, maxOwnDays: 93 });
    const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
    const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    try {
      const to = Date.UTC(2026, 1, 20);
      const ask = (path: string, days: number, headers: Record<string, string>) =>
        app.inject({ method: "GET", url: `${path}?from=${new Date(to - days * 86_400_000).toISOString()}&to=${new Date(to).toISOString()}`, headers });
      for (const [path, days, headers, key] of [
        ["/summary/all", 31, admin, "CHAIN_SUMMARY_ALL_MAX_DAYS"],
        ["/summary", 93, trader, "CHAIN_SUMMARY_MAX_DAYS"], // before session 46: any range, e.g. from 1970
      ] as const) {
        const long = await ask(path, days + 1, headers);
        expect(long.statusCode).toBe(400);
        expect(long.json().error).toMatchObject({ field: "from", message: expect.stringContaining(key) });
        expect((await ask(path, days, headers)).statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  }, 120_000);

  it("decisions are no longer written to 0005's ai_chain_decisions; migrations 0026 and 0027 carry 0024's rows over, and every later insert", async () => {
    const id = randomUUID();
    await new ChainStore(ch).insertDecisions([decision(id, randomUUID(), randomUUID(), Date.now())]);
    const old = await ch.query<{ n: string }>("SELECT toString(count()) AS n FROM ai_chain_decisions WHERE decision_id = {id:String}", { id });
    expect(old[0].n).toBe("0");

    const root = createClickHouse(srv.clickhouse.env);
    const db = `adm_0026_${Math.random().toString(36).slice(2, 8)}`;
    await root.command(`CREATE DATABASE ${db}`);
    const fresh = createClickHouse({ ...srv.clickhouse.env, CLICKHOUSE_DATABASE: db });
    try {
      const files = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
      await runClickHouseMigrations(fresh, { files: files.filter((f) => f.version < 26) });
      const [a, b] = [randomUUID(), randomUUID()];
      await fresh.insert("ai_chain_user_decisions", [decision(a, "u-1", "s-1", Date.UTC(2026, 5, 1)), decision(a, "u-1", "s-1", Date.UTC(2026, 5, 1))]);
      const applied = (await runClickHouseMigrations(fresh, { files })).applied;
      expect(applied).toEqual(expect.arrayContaining(["0026_ai_chain_decisions_by_id.sql", "0027_ai_chain_decisions_by_time.sql"]));
      // Written after, as a replica of the release before writes it (into 0024's table only).
      await fresh.insert("ai_chain_user_decisions", [decision(b, "u-2", "s-1", Date.UTC(2026, 5, 2), "sell")]);
      const store = new ChainStore(fresh);
      expect((await store.chain(a))!.decision).toMatchObject({ decisionId: a, userId: "u-1" });
      expect((await store.chain(b, "u-2"))!.decision).toMatchObject({ decisionId: b, action: "sell" });
      expect(await store.summary({ from: new Date(Date.UTC(2026, 4, 31)), to: new Date(Date.UTC(2026, 5, 3)) })).toEqual([
        expect.objectContaining({ strategyId: "s-1", decisions: 2, trades: 2 }),
      ]);
    } finally {
      await fresh.close();
      await root.command(`DROP DATABASE ${db}`);
      await root.close();
    }
  }, 120_000);
});
