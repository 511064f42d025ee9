/**
 * ai-chain-analytics without a service: the event -> row/graph mapping (pure), the ArangoDB adapter's
 * calls on a recording arangojs double (no ArangoDB server can run here: what it sends is listed
 * in the README as unverified), and the ClickHouse aggregates against a real 18.16 server with
 * hand-computed expectations.
 */
import { describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, runClickHouseMigrations } from "../../services/src/migrations";
import { decisionGraph, decisionOrderRow, decisionRow, fillGraph, fillRow, orderGraph, orderRow, type DecisionIn } from "../../services/src/services/ai-chain-analytics/chains";
import { CHAIN_AQL, CHAIN_GRAPH, CHAIN_REACH_AQL, ChainGraph, DECIDED_AT_INDEX, DUE_DECISIONS_AQL, EDGE_COLLECTION, REMOVE_KEYS_AQL } from "../../services/src/services/ai-chain-analytics/graph";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import type { OrderEventMsg } from "../../services/src/trading/events";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("clickhouse");
const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);
const STRAT = "11111111-1111-4111-8111-111111111111";
const USER = "u-1";

const decision = (id: string, o: Partial<DecisionIn> = {}): DecisionIn => ({
  decisionId: id, strategyId: STRAT, userId: USER, symbol: "AAAUSDT", decidedAt: new Date(T0).toISOString(), modelVersion: "lgbm-a",
  probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId: null, ...o,
});
const orderEvent = (orderId: string, decisionId: string | undefined, status: string, createdMs: number, eventMs: number, side = "buy"): OrderEventMsg =>
  ({
    eventId: `${orderId}:${status}`, type: `order.${status}`, ts: eventMs,
    order: { orderId, clientOrderId: decisionId, userId: USER, symbol: "AAAUSDT", side, type: "market", quantity: "1", status, filledQuantity: "0", avgFillPrice: null, fees: "0",
      rejectReason: null, rejectMessage: null, lastPrice: null, createdAt: new Date(createdMs).toISOString(), updatedAt: new Date(eventMs).toISOString() },
  }) as OrderEventMsg;
const fill = (fillId: string, orderId: string, quantity: number, price: number, fee: number, side: "buy" | "sell" = "buy"): Fill => ({
  fillId, orderId, userId: USER, symbol: "AAAUSDT", side, quantity: String(quantity), price: String(price), fee: String(fee), liquidity: "taker", ts: T0,
});

const D1 = "aaaaaaaa-0000-4000-8000-000000000001";
const D2 = "aaaaaaaa-0000-4000-8000-000000000002";
const D3 = "aaaaaaaa-0000-4000-8000-000000000003";
const D4 = "aaaaaaaa-0000-4000-8000-000000000004";
const O1 = "bbbbbbbb-0000-4000-8000-000000000001";
const O2 = "bbbbbbbb-0000-4000-8000-000000000002";

describe("chain mapping (pure)", () => {
  it("an order belongs to a decision only through a UUID clientOrderId", () => {
    expect(orderRow(orderEvent(O1, D1.toUpperCase(), "accepted", T0 + 100, T0 + 100))).toMatchObject({ order_id: O1, decision_id: D1, created_ms: T0 + 100, status: "accepted" });
    expect(orderRow(orderEvent(O1, undefined, "accepted", T0, T0))).toBeUndefined();
    expect(orderRow(orderEvent(O1, "manual-1", "accepted", T0, T0))).toBeUndefined();
  });

  it("rows carry numbers, epoch ms and the partition day; a refusal has an empty model version", () => {
    expect(decisionRow(decision(D1, { modelVersion: null, probabilityUp: null, decisionPrice: null, action: "skip" }))).toMatchObject({
      decided_ms: T0, day: "2026-11-29", model_version: "", probability_up: 0, decision_price: 0, action: "skip",
    });
    expect(fillRow(fill("f:1", O1, 0.5, 101.5, 0.05))).toMatchObject({ quantity: 0.5, price: 101.5, fee: 0.05, market_ms: T0, day: "2026-11-29" });
  });

  it("a decision's order link (0023) exists once ai-orchestrator has placed its order, with the decision's user", () => {
    expect(decisionOrderRow(decision(D1))).toBeUndefined();
    expect(decisionOrderRow(decision(D1, { orderId: O1 }))).toEqual({ decision_id: D1, order_id: O1, user_id: USER, day: "2026-11-29" });
  });

  it("graph: signal -> decision -> order -> fill edges with keys ArangoDB accepts", () => {
    expect(decisionGraph(decision(D1)).edges).toEqual([{ from: `ai_signals/${D1}`, to: `ai_decisions/${D1}`, step: "decided", userId: USER }]);
    expect(decisionGraph(decision(D1, { modelVersion: null })).edges).toEqual([]);
    expect(orderGraph(orderEvent(O1, D1, "filled", T0, T0))!.edges).toEqual([{ from: `ai_decisions/${D1}`, to: `ai_orders/${O1}`, step: "ordered", userId: USER }]);
    const g = fillGraph(fill(`${O1}:1`, O1, 1, 100, 0));
    expect(g.vertices[0].key).toBe(`${O1}:1`);
    expect(fillGraph(fill("a/b c", O1, 1, 100, 0)).vertices[0].key).toBe("a_b_c");
  });
});

describe("ArangoDB adapter (recording arangojs double; no server here)", () => {
  /** `answers`: what each query's cursor gives, in order (then [{ id: "x" }]). */
  function recorder(existing: string[] = [], graphs: string[] = [], saveResult: object[] = [], answers: unknown[][] = []) {
    const calls: unknown[][] = [];
    const db = {
      collections: async (x: boolean) => (calls.push(["collections", x]), existing.map((name) => ({ name }))),
      createCollection: async (n: string) => void calls.push(["createCollection", n]),
      createEdgeCollection: async (n: string) => void calls.push(["createEdgeCollection", n]),
      graphs: async () => graphs.map((name) => ({ name })),
      createGraph: async (n: string, defs: unknown) => void calls.push(["createGraph", n, defs]),
      collection: (n: string) => ({
        saveAll: async (docs: unknown[], opts: unknown) => (calls.push(["saveAll", n, docs, opts]), saveResult),
        ensureIndex: async (o: unknown) => void calls.push(["ensureIndex", n, o]),
      }),
      query: async (q: unknown) => (calls.push(["query", q]), { all: async () => answers.shift() ?? [{ id: "x" }] }),
    };
    return { calls, graph: new ChainGraph(db as never) };
  }

  it("ensure creates only what is missing: four vertex collections, the edge collection, the named graph; the decisions' decidedAt index every time (idempotent)", async () => {
    const index = ["ensureIndex", "ai_decisions", { type: "persistent", fields: ["decidedAt"], name: DECIDED_AT_INDEX }];
    const { calls, graph } = recorder(["ai_orders"]);
    await graph.ensure();
    expect(calls.filter((c) => c[0] !== "collections")).toEqual([
      ["createCollection", "ai_signals"], ["createCollection", "ai_decisions"], ["createCollection", "ai_fills"], ["createEdgeCollection", EDGE_COLLECTION], index,
      ["createGraph", CHAIN_GRAPH, [{ collection: EDGE_COLLECTION, from: ["ai_signals", "ai_decisions", "ai_orders", "ai_fills"], to: ["ai_signals", "ai_decisions", "ai_orders", "ai_fills"] }]],
    ]);
    const again = recorder(["ai_signals", "ai_decisions", "ai_orders", "ai_fills", EDGE_COLLECTION], [CHAIN_GRAPH]);
    await again.graph.ensure();
    expect(again.calls).toEqual([["collections", true], index]);
  });

  it("retention: the oldest decisions before the cutoff, a batch, removed with their chains (edges, fills, orders, signals), the decisions last (the AQL is unverified)", async () => {
    const before = new Date("2019-12-06T00:00:00.000Z");
    const { calls, graph } = recorder([], [], [], [
      [D1, D2],
      // D1's order O1 and its fill; D2's order O2, whose vertex was never written (null).
      [{ vertex: `ai_orders/${O1}`, edge: "e1" }, { vertex: `ai_fills/${O1}:1`, edge: "e2" }, { vertex: null, edge: "e3" }],
    ]);
    expect(await graph.removeOlderThan(before, 500)).toBe(2);
    const remove = (collection: string, keys: string[]) => ["query", { query: REMOVE_KEYS_AQL, bindVars: { keys, "@collection": collection } }];
    expect(calls).toEqual([
      ["query", { query: DUE_DECISIONS_AQL, bindVars: { before: "2019-12-06T00:00:00.000Z", batch: 500 } }],
      ["query", { query: CHAIN_REACH_AQL, bindVars: { keys: [D1, D2] } }],
      // The signal edges by the keys write() gives them (the test above), then those the traversal found.
      remove(EDGE_COLLECTION, [`ai_signals_${D1}_ai_decisions_${D1}`, `ai_signals_${D2}_ai_decisions_${D2}`, "e1", "e2", "e3"]),
      remove("ai_fills", [`${O1}:1`]),
      remove("ai_orders", [O1]),
      remove("ai_signals", [D1, D2]),
      remove("ai_decisions", [D1, D2]),
    ]);
    // Nothing due: one read, nothing removed.
    const idle = recorder([], [], [], [[]]);
    expect(await idle.graph.removeOlderThan(before, 500)).toBe(0);
    expect(idle.calls).toHaveLength(1);
    expect(DUE_DECISIONS_AQL).toMatch(/FILTER d\.decidedAt > "" AND d\.decidedAt < @before\s+SORT d\.decidedAt\s+LIMIT @batch/);
    expect(REMOVE_KEYS_AQL).toContain("OPTIONS { ignoreErrors: true }");
  });

  it("CHAIN_GRAPH_RETENTION_DAYS has ai-orchestrator's decision retention's floor (5 years): below it the service does not start, naming the key", async () => {
    await expect(createService(aiChainAnalytics, { env: { ...srv.env, LOG_LEVEL: "silent", CHAIN_GRAPH_RETENTION_DAYS: "1824" }, defaultMetrics: false })).rejects.toThrow(
      "CHAIN_GRAPH_RETENTION_DAYS must be >= 1825",
    );
  });

  it("writes vertices per collection and edges with deterministic keys, overwriteMode update; fails on a rejected document", async () => {
    const { calls, graph } = recorder();
    const g = decisionGraph(decision(D1));
    await graph.write(g.vertices, g.edges);
    expect(calls.map((c) => [c[1], (c[2] as unknown[]).length, c[3]])).toEqual([
      ["ai_decisions", 1, { overwriteMode: "update" }], ["ai_signals", 1, { overwriteMode: "update" }], [EDGE_COLLECTION, 1, { overwriteMode: "update" }],
    ]);
    expect((calls[2][2] as Array<Record<string, string>>)[0]).toEqual({ _key: `ai_signals_${D1}_ai_decisions_${D1}`, _from: `ai_signals/${D1}`, _to: `ai_decisions/${D1}`, step: "decided", userId: USER });
    const bad = recorder([], [], [{ error: true, errorMessage: "illegal document key" }]);
    await expect(bad.graph.write(g.vertices, [])).rejects.toThrow(/arangodb ai_decisions: illegal document key/);
  });

  it("the chain traversal binds the start vertex, the graph name and the decision's user (the AQL itself is unverified)", async () => {
    const { calls, graph } = recorder();
    expect(await graph.chain(D1, USER)).toEqual([{ id: "x" }]);
    expect(calls).toEqual([["query", { query: CHAIN_AQL, bindVars: { start: `ai_decisions/${D1}`, graph: CHAIN_GRAPH, userId: USER } }]]);
    expect(CHAIN_AQL).toContain("FILTER p.edges[*].userId ALL == @userId");
  });
});

describe("ClickHouse aggregates (real 18.16 server)", () => {
  it("counts, hit rate, PnL, slippage and latencies per model version and strategy, duplicates folded", async () => {
    const ch = createClickHouse(srv.clickhouse.env);
    try {
      await runClickHouseMigrations(ch, {});
      const store = new ChainStore(ch);
      await ch.insert("market_candles", [{ symbol: "AAAUSDT", timeframe: "1m", open_time: "2026-11-29 12:00:00", open: 100, high: 110, low: 90, close: 104, volume: 1, trades: 1, source: "t" }]);
      // D1 buy filled in two fills at 101 and 102 (qty 1 + 1), D2 sell filled at 99 (qty 2, mark 104: a loss),
      // D3 a hold, D4 another model's buy; every row delivered twice.
      const decisions = [decision(D1), decision(D2, { action: "sell", quantity: 2 }), decision(D3, { action: "hold", quantity: 0 }), decision(D4, { modelVersion: "lgbm-b" })];
      const orders = [orderEvent(O1, D1, "accepted", T0 + 40, T0 + 40), orderEvent(O1, D1, "filled", T0 + 40, T0 + 240), orderEvent(O2, D2, "accepted", T0 + 60, T0 + 60, "sell"), orderEvent(O2, D2, "filled", T0 + 60, T0 + 160, "sell")];
      const fills = [fill(`${O1}:1`, O1, 1, 101, 0.1), fill(`${O1}:2`, O1, 1, 102, 0.1), fill(`${O2}:1`, O2, 2, 99, 0.2, "sell")];
      for (let i = 0; i < 2; i++) {
        await store.insertDecisions(decisions.map(decisionRow));
        await store.insertOrders(orders.map((o) => orderRow(o)!));
        await store.insertFills(fills.map(fillRow));
      }
      const summary = await store.summary({ from: new Date(T0 - 1000), to: new Date(T0 + 1000) });
      expect(summary.map((s) => s.modelVersion)).toEqual(["lgbm-a", "lgbm-b"]);
      const [a, b] = summary;
      expect(a).toMatchObject({ strategyId: STRAT, decisions: 3, trades: 2, orders: 2, fills: 3, filledDecisions: 2 });
      // D1: 2 * 104 - 203 - 0.2 = 4.8 (a hit); D2: -(2 * 104 - 198) - 0.2 = -10.2 (a miss).
      expect(a.pnl).toBeCloseTo(4.8 - 10.2, 6);
      expect(a.hitRate).toBe(0.5);
      // D1: +(203 - 200) / 100 * 1e4 = 300 bps over 2; D2: -(198 - 200) / 100 * 1e4 = 200 bps over 2 -> (300 + 200) / 4 = 125 bps per unit.
      expect(a.slippageBps).toBeCloseTo(125, 6);
      expect(a.decisionToOrderMs!.p50).toBeGreaterThanOrEqual(40);
      expect(a.decisionToOrderMs!.p95).toBeLessThanOrEqual(60);
      expect(a.orderToFillMs!.p50).toBeGreaterThanOrEqual(100);
      expect(a.orderToFillMs!.p95).toBeLessThanOrEqual(200);
      expect(b).toMatchObject({ modelVersion: "lgbm-b", decisions: 1, trades: 1, orders: 0, fills: 0, filledDecisions: 0, hitRate: null, pnl: 0, slippageBps: null, decisionToOrderMs: null, orderToFillMs: null });

      expect(await store.summary({ from: new Date(T0 - 1000), to: new Date(T0 + 1000), userId: "someone-else" })).toEqual([]);
      expect(await store.summary({ from: new Date(T0 + 1000), to: new Date(T0 + 2000) })).toEqual([]);

      const chain = await store.chain(D1, USER);
      expect(chain!.decision).toMatchObject({ decisionId: D1, modelVersion: "lgbm-a", action: "buy", decidedAt: new Date(T0).toISOString() });
      expect(chain!.orders).toEqual([{ orderId: O1, status: "filled", side: "buy" }]);
      expect(chain!.fills.map((f) => [f.fillId, f.quantity, f.price])).toEqual([[`${O1}:1`, 1, 101], [`${O1}:2`, 1, 102]]);
      expect(await store.chain(D1, "someone-else")).toBeUndefined();
      expect((await store.chain(D3))!.orders).toEqual([]);
    } finally {
      await ch.close();
    }
  }, 120_000);

  it("migration 0022 carries the orders recorded before it over, each with the user of the decision it names", async () => {
    const ch = createClickHouse(srv.clickhouse.env);
    const db = `chain_0022_${Math.random().toString(36).slice(2, 8)}`;
    await ch.command(`CREATE DATABASE ${db}`);
    const old = createClickHouse({ ...srv.clickhouse.env, CLICKHOUSE_DATABASE: db });
    try {
      const files = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
      await runClickHouseMigrations(old, { files: files.filter((f) => f.version < 22) });
      // Rows as the release before wrote them: no user on the order; O2 names a decision not pulled yet.
      await old.insert("ai_chain_decisions", [decisionRow(decision(D1))]);
      const { user_id: _none, ...before } = orderRow(orderEvent(O1, D1, "filled", T0 + 40, T0 + 240))!;
      const { user_id: _none2, ...pending } = orderRow(orderEvent(O2, D2, "accepted", T0 + 60, T0 + 60))!;
      await old.insert("ai_chain_orders", [before, pending]);
      expect((await runClickHouseMigrations(old, { files })).applied).toContain("0022_ai_chain_user_orders.sql");
      expect(await old.query("SELECT order_id, user_id, decision_id, status FROM ai_chain_user_orders ORDER BY order_id")).toEqual([
        { order_id: O1, user_id: USER, decision_id: D1, status: "filled" },
        { order_id: O2, user_id: "", decision_id: D2, status: "accepted" },
      ]);
      expect((await new ChainStore(old).chain(D1, USER))!.orders).toEqual([{ orderId: O1, status: "filled", side: "buy" }]);
    } finally {
      await old.close();
      await ch.command(`DROP DATABASE ${db}`);
      await ch.close();
    }
  }, 120_000);

  it("migration 0024 carries the decisions recorded before it over to the table keyed by user, which the reads take", async () => {
    const ch = createClickHouse(srv.clickhouse.env);
    const db = `chain_0024_${Math.random().toString(36).slice(2, 8)}`;
    await ch.command(`CREATE DATABASE ${db}`);
    const old = createClickHouse({ ...srv.clickhouse.env, CLICKHOUSE_DATABASE: db });
    try {
      const files = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
      await runClickHouseMigrations(old, { files: files.filter((f) => f.version < 24) });
      // Rows as the release before wrote them: 0005's table only, D1 pulled twice.
      await old.insert("ai_chain_decisions", [decisionRow(decision(D1)), decisionRow(decision(D1)), decisionRow(decision(D2, { userId: "u-2", action: "sell" }))]);
      expect((await runClickHouseMigrations(old, { files })).applied).toContain("0024_ai_chain_user_decisions.sql");
      expect(await old.query("SELECT user_id, decision_id, action FROM ai_chain_user_decisions GROUP BY user_id, decision_id, action ORDER BY decision_id")).toEqual([
        { user_id: USER, decision_id: D1, action: "buy" },
        { user_id: "u-2", decision_id: D2, action: "sell" },
      ]);
      const store = new ChainStore(old);
      const range = { from: new Date(T0 - 1000), to: new Date(T0 + 1000) };
      expect(await store.summary({ ...range, userId: USER })).toEqual([expect.objectContaining({ strategyId: STRAT, decisions: 1, trades: 1 })]);
      expect(await store.summary(range)).toEqual([expect.objectContaining({ strategyId: STRAT, decisions: 2, trades: 2 })]);
      expect((await store.chain(D2, "u-2"))!.decision).toMatchObject({ decisionId: D2, action: "sell" });
      expect(await store.chain(D2, USER)).toBeUndefined();
      // This release writes 0024's table (its views, 0026 and 0027, key the rows by id and instant too), no longer
      // 0005's, which neither it nor the release before reads (session 45; session 43's wrote both for its predecessor).
      await store.insertDecisions([decisionRow(decision(D3))]);
      for (const t of ["ai_chain_user_decisions", "ai_chain_decisions_by_id", "ai_chain_decisions_by_time"])
        expect(await old.query(`SELECT decision_id FROM ${t} WHERE decision_id = '${D3}' GROUP BY decision_id`)).toEqual([{ decision_id: D3 }]);
      expect(await old.query(`SELECT decision_id FROM ai_chain_decisions WHERE decision_id = '${D3}'`)).toEqual([]);
    } finally {
      await old.close();
      await ch.command(`DROP DATABASE ${db}`);
      await ch.close();
    }
  }, 120_000);
});
