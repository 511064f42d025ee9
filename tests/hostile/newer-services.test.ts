/**
 * Hostile input on the newer services (ai-orchestrator, ai-chain-analytics, ml-predictor,
 * backtesting-engine, performance-analytics, revenue-analytics, usage-monitoring, chain-debug), on
 * real servers: what the generated cases of hostile.test.ts do not reach, because they mutate one
 * field of a sample request at a time. Numbers at their edges in bodies the routes' schemas do not
 * describe (chain-debug's OTLP intake), data a peer stored that a read then serves (a trace of
 * thousands of nested spans), lists of repeated values, pairs of instants at the ends of the
 * platform's range, other users' ids and concurrent duplicate creates. Every answer is judged by
 * ./oracle.ts as well: no 5xx, no internal details.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureAccount } from "../helpers/accounts";
import { startPlatform, type Platform } from "../helpers/platform";
import { cpuMsWhile } from "../helpers/patience";
import { useServersWith } from "../harness/shared";
import { FINE_TEXT, HOSTILE_TEXT } from "./display-texts";
import { judge } from "./oracle";
import { decisionRow, type DecisionIn } from "../../services/src/services/ai-chain-analytics/chains";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import { OrchestratorStore, type DecisionRecord } from "../../services/src/services/ai-orchestrator/store";
import { ModelRegistry } from "../../services/src/ml/registry";
import type { TrainingReport } from "../../services/src/ml/training";
import { MAX_TRACE_SPANS } from "../../services/src/services/chain-debug/routes";
import { MAX_TREE_DEPTH, type SpanNode } from "../../services/src/services/chain-debug/tree";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
const NEWER = ["ai-orchestrator", "ai-chain-analytics", "ml-predictor", "backtesting-engine", "performance-analytics", "revenue-analytics", "usage-monitoring", "chain-debug"];
let p: Platform;
let internalPorts: number[];
const alice = randomUUID();
const bob = randomUUID();
const adminId = randomUUID();
/** A user of its own for the cases at the limits (a strategy or backtest they make counts against nobody else's). */
const carolId = randomUUID();
const as = (userId: string, role: "trader" | "admin" = "trader") => ({ "x-user-id": userId, "x-user-role": role, "x-auth-method": "jwt" });
const failures: string[] = [];

beforeAll(async () => {
  // ML_RELOAD_MS 0: ml-predictor reads the registry at each request (a model promoted by a test is served at once).
  p = await startPlatform(srv.env, { ML_RELOAD_MS: "0" }, { only: NEWER });
  internalPorts = [srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL].map((u) => Number(/:(\d+)(?:\/|$)/.exec(u)?.[1] ?? 0)).filter(Boolean);
  for (const u of [alice, bob, adminId, carolId]) await ensureAccount(p.pool, u);
}, 600_000);

afterAll(async () => {
  await p?.close();
}, 120_000);

/** One request to a service directly (as the gateway would forward it), its answer judged by the oracle. */
async function send(service: string, method: string, url: string, who: Record<string, string>, body?: unknown, headers: Record<string, string> = {}) {
  const r = await p.services.get(service)!.app.inject({
    method: method as "GET",
    url,
    headers: { ...who, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  const v = judge(r.statusCode, r.body, String(r.headers["content-type"] ?? ""), internalPorts);
  if (!v.ok) failures.push(`${service} ${method} ${url.slice(0, 120)} -> ${r.statusCode} [${v.problems.join(", ")}] ${r.body.slice(0, 160)}`);
  return r;
}
const fieldOf = (r: { body: string }) => (JSON.parse(r.body) as { error?: { field?: string } }).error?.field;

describe("chain-debug: OTLP numbers past what its columns hold, and traces as large as peers make them", () => {
  const otlp = (spans: unknown[]) => ({ resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "hostile" } }] }, scopeSpans: [{ spans }] }] });
  const span = (traceId: string, o: Record<string, unknown> = {}) => ({ traceId, spanId: "cd".repeat(8), startTimeUnixNano: "1700000000000000000", endTimeUnixNano: "1700000000100000000", name: "x", ...o });
  const intake = (body: unknown) => send("chain-debug", "POST", "/internal/otlp/v1/traces", as(alice), body);
  const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

  it("a time past 2106, a kind or status code out of its enum, 1,001 events: a 400 naming the field, never the 503 an exporter retries forever", async () => {
    const f = "resourceSpans[0].scopeSpans[0].spans[0]";
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ startTimeUnixNano: 1e308 }, "startTimeUnixNano"],
      [{ startTimeUnixNano: 1e22, endTimeUnixNano: 1e22 }, "startTimeUnixNano"],
      [{ startTimeUnixNano: "99999999999999999999", endTimeUnixNano: "99999999999999999999" }, "startTimeUnixNano"],
      [{ endTimeUnixNano: "99999999999999999999" }, "endTimeUnixNano"],
      [{ kind: 300 }, "kind"],
      [{ kind: 1e20 }, "kind"],
      [{ kind: -1 }, "kind"],
      [{ status: { code: 1e20, message: "x" } }, "status.code"],
      [{ status: { code: -5 } }, "status.code"],
      [{ events: [{ name: "exception", timeUnixNano: 1e22, attributes: [{ key: "exception.message", value: { stringValue: "m" } }] }] }, "events[0].timeUnixNano"],
      [{ events: [{ name: "exception", timeUnixNano: "99999999999999999999" }] }, "events[0].timeUnixNano"],
      [{ events: Array.from({ length: 70_000 }, () => ({ name: "exception", timeUnixNano: "1700000000000000000" })) }, "events"],
    ];
    for (const [o, field] of cases) {
      const traceId = randomUUID().replace(/-/g, "");
      const r = await intake(otlp([span(traceId, o)]));
      expect([r.statusCode, fieldOf(r)], `${JSON.stringify(o).slice(0, 80)}: ${r.body.slice(0, 200)}`).toEqual([400, `${f}.${field}`]);
      // Nothing of the batch was stored.
      expect((await send("chain-debug", "GET", `/traces/${traceId}`, as(adminId, "admin"))).statusCode).toBe(404);
    }
    // The ends of the range are taken: 1970 and the platform's latest instant.
    for (const t of ["0", "4294967295000000000"]) expect((await intake(otlp([span(randomUUID().replace(/-/g, ""), { startTimeUnixNano: t, endTimeUnixNano: t })]))).statusCode).toBe(200);
    // As JSON numbers too (OTLP/JSON's int64 may be one): the route takes integers beyond 2^53 (kit takesInexactNumbers).
    expect((await intake(otlp([span(randomUUID().replace(/-/g, ""), { startTimeUnixNano: 1700000000000000000, endTimeUnixNano: 1700000000100000000 })]))).statusCode).toBe(200);
    expect(failures).toEqual([]);
  });

  it("exception stacks shaped against the frame pattern cost time linear in their length (one event took half a second)", async () => {
    const stack = { key: "exception.stacktrace", value: { stringValue: "Error: x\n    at " + " ".repeat(16_000) + "x" } };
    const events = Array.from({ length: 200 }, () => ({ name: "exception", timeUnixNano: "1700000000000000000", attributes: [stack] }));
    // CPU time, not the clock (the services run in this process): waiting for a core is not the parser's.
    const { result: r, ms } = await cpuMsWhile(() => intake(otlp([span(randomUUID().replace(/-/g, ""), { events })])));
    expect(r.statusCode).toBe(200);
    expect(ms).toBeLessThan(10_000); // about 100 s before
    expect(failures).toEqual([]);
  }, 120_000);

  it("a chain of 5,000 nested spans is answered, nested at most MAX_TREE_DEPTH levels (it was a 500), and a trace is read up to MAX_TRACE_SPANS spans", async () => {
    const deep = randomUUID().replace(/-/g, "");
    const chain = Array.from({ length: 5_000 }, (_, i) => span(deep, { spanId: hex(i + 1, 16), parentSpanId: i ? hex(i, 16) : undefined, startTimeUnixNano: String(1700000000000000000n + BigInt(i) * 1000n) }));
    expect((await intake(otlp(chain))).statusCode).toBe(200);
    const r = await send("chain-debug", "GET", `/traces/${deep}`, as(adminId, "admin"));
    expect(r.statusCode, r.body.slice(0, 200)).toBe(200);
    const t = r.json() as { spanCount: number; roots: SpanNode[]; truncated?: boolean };
    expect(t.spanCount).toBe(5_000);
    expect(t.truncated).toBeUndefined();
    expect(t.roots).toHaveLength(Math.ceil(5_000 / MAX_TREE_DEPTH));

    // More spans than an answer holds, over several requests: the first MAX_TRACE_SPANS by start, and truncated.
    const wide = randomUUID().replace(/-/g, "");
    const total = MAX_TRACE_SPANS + 10;
    for (let from = 0; from < total; from += 5_000) {
      const batch = Array.from({ length: Math.min(5_000, total - from) }, (_, i) => span(wide, { spanId: hex(from + i + 1, 16), startTimeUnixNano: String(1700000000000000000n + BigInt(from + i) * 1000n) }));
      expect((await intake(otlp(batch))).statusCode).toBe(200);
    }
    const w = await send("chain-debug", "GET", `/traces/${wide}`, as(adminId, "admin"));
    expect(w.statusCode).toBe(200);
    expect(w.json()).toMatchObject({ spanCount: MAX_TRACE_SPANS, truncated: true });
    expect(failures).toEqual([]);
  }, 120_000);
});

describe("backtesting-engine and ai-orchestrator: repeated values, other users' ids, concurrent duplicate creates", () => {
  const backtest = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-03-01T00:00:00Z" }, data: { source: "synthetic", seed: 7 } };
  const strategy = { name: "hostile", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100 };

  it("a value repeated in a sweep's or walk-forward's list is a 400 naming the list (it was one run queued 1,000 times)", async () => {
    const jobs = async () => Number((await p.pool.query("SELECT count(*) AS n FROM bt_jobs")).rows[0].n);
    const before = await jobs();
    for (const [extra, field] of [
      [{ sweep: { parameters: { fast: Array.from({ length: 1_000 }, () => 5) } } }, "sweep.parameters.fast"],
      [{ sweep: { parameters: { fast: [2, 3], slow: [40, 40.0] } } }, "sweep.parameters.slow"],
      [{ walkForward: { folds: 2, parameters: { fast: [2, 2, 3] } } }, "walkForward.parameters.fast"],
    ] as const) {
      const r = await send("backtesting-engine", "POST", "/", as(alice), { ...backtest, ...extra });
      expect([r.statusCode, fieldOf(r)], r.body.slice(0, 200)).toEqual([400, field]);
    }
    expect(await jobs()).toBe(before);
    // Distinct values still make one job per set.
    const ok = await send("backtesting-engine", "POST", "/", as(alice), { ...backtest, sweep: { parameters: { fast: [2, 3, 4] } } });
    expect(ok.statusCode, ok.body.slice(0, 200)).toBe(202);
    expect(ok.json().jobs).toBe(3);
    expect(failures).toEqual([]);
  });

  it("a parameter name its pattern does not take is a 400 naming it, its value unchecked no more (it was taken: kit record-keys.ts)", async () => {
    const jobs = async () => Number((await p.pool.query("SELECT count(*) AS n FROM bt_jobs")).rows[0].n);
    const before = await jobs();
    for (const [extra, field] of [
      [{ parameters: { fast: 5, "bad key!": "text" } }, "parameters.bad key!"],
      [{ parameters: { "1fast": 5 } }, "parameters.1fast"],
      [{ sweep: { parameters: { fast: [2, 3], "": "x" } } }, "sweep.parameters."],
      [{ walkForward: { folds: 2, parameters: { "slow-ma": [2, 3] } } }, "walkForward.parameters.slow-ma"],
    ] as const) {
      const r = await send("backtesting-engine", "POST", "/", as(alice), { ...backtest, ...extra });
      expect([r.statusCode, fieldOf(r)], r.body.slice(0, 200)).toEqual([400, field]);
    }
    expect(await jobs()).toBe(before);
    const ok = await send("backtesting-engine", "POST", "/", as(alice), { ...backtest, parameters: { fast: 5, slow: 20 } });
    expect(ok.statusCode, ok.body.slice(0, 200)).toBe(202);
    expect(failures).toEqual([]);
  });

  it("a strategy's name is display text: controls, separators, overrides and invisible-only names are a 400 naming name (they were stored), text in any script is kept", async () => {
    const own = (await send("ai-orchestrator", "POST", "/strategies", as(alice), strategy)).json().strategyId as string;
    for (const [label, text] of HOSTILE_TEXT) {
      const r = await send("ai-orchestrator", "POST", "/strategies", as(alice), { ...strategy, name: text });
      expect([r.statusCode, fieldOf(r)], `${label}: ${r.body.slice(0, 200)}`).toEqual([400, "name"]);
      const patch = await send("ai-orchestrator", "PATCH", `/strategies/${own}`, as(alice), { name: text });
      expect([patch.statusCode, fieldOf(patch)], `${label}: ${patch.body.slice(0, 200)}`).toEqual([400, "name"]);
    }
    for (const text of FINE_TEXT) {
      const r = await send("ai-orchestrator", "PATCH", `/strategies/${own}`, as(alice), { name: text });
      expect([r.statusCode, r.json().name], r.body.slice(0, 200)).toEqual([200, text]);
    }
    await send("ai-orchestrator", "DELETE", `/strategies/${own}`, as(alice));
    expect(failures).toEqual([]);
  });

  it("another user's backtest and strategy ids are unknown on every route that takes one; 12 concurrent creates under one key make one", async () => {
    const run = (await send("backtesting-engine", "POST", "/", as(alice), backtest)).json().id as string;
    const own = (await send("ai-orchestrator", "POST", "/strategies", as(alice), strategy)).json().strategyId as string;
    const attempts: Array<[string, string, string, unknown?]> = [
      ["backtesting-engine", "GET", `/${run}`], ["backtesting-engine", "GET", `/${run}/results`], ["backtesting-engine", "GET", `/${run}/jobs/0/equity`],
      ["backtesting-engine", "GET", `/${run}/jobs/0/trades`], ["backtesting-engine", "GET", `/${run}/jobs/0/chart.svg`], ["backtesting-engine", "GET", `/${run}/chart.svg`],
      ["backtesting-engine", "POST", `/${run}/cancel`], ["backtesting-engine", "DELETE", `/${run}`], ["backtesting-engine", "GET", `/${run.toUpperCase()}`],
      ["ai-orchestrator", "GET", `/strategies/${own}`], ["ai-orchestrator", "GET", `/strategies/${own}/decisions`], ["ai-orchestrator", "PATCH", `/strategies/${own}`, { name: "mine now" }],
      ["ai-orchestrator", "POST", `/strategies/${own}/enable`], ["ai-orchestrator", "POST", `/strategies/${own}/disable`], ["ai-orchestrator", "POST", `/strategies/${own}/evaluate`],
      ["ai-orchestrator", "DELETE", `/strategies/${own}`], ["ai-orchestrator", "GET", `/strategies/${own.toUpperCase()}`],
    ];
    for (const [service, method, path, body] of attempts) {
      const r = await send(service, method, path, as(bob), body);
      expect(r.statusCode, `${service} ${method} ${path}: ${r.body.slice(0, 160)}`).toBe(404);
    }
    // One of alice's decisions, as an evaluation records it: bob reads it as unknown, in either case.
    const decision = await new OrchestratorStore(p.services.get("ai-orchestrator")!.app.pg).recordDecision({
      strategyId: own, userId: alice, symbol: "BTCUSDT", modelVersion: "h4", probabilityUp: 0.7, barTime: new Date().toISOString(), decisionPrice: 100, features: null,
      regimes: [], tradingState: "active", positionBefore: 0, action: "hold", quantity: 0, reason: "hostile", orderId: null, risk: null, error: null, evaluationId: null,
    } as Parameters<OrchestratorStore["recordDecision"]>[0]) as DecisionRecord;
    for (const id of [decision.decisionId, decision.decisionId.toUpperCase()]) expect((await send("ai-orchestrator", "GET", `/decisions/${id}`, as(bob))).statusCode).toBe(404);
    expect((await send("ai-orchestrator", "GET", `/decisions/${decision.decisionId}`, as(alice))).json()).toMatchObject({ decisionId: decision.decisionId, userId: alice });
    expect((await send("backtesting-engine", "GET", `/${run}`, as(alice))).statusCode).toBe(200);
    expect((await send("ai-orchestrator", "GET", `/strategies/${own}`, as(alice))).json()).toMatchObject({ name: "hostile", enabled: false });

    for (const [service, path, body, idOf] of [
      ["backtesting-engine", "/", backtest, (b: Record<string, string>) => b.id],
      ["ai-orchestrator", "/strategies", strategy, (b: Record<string, string>) => b.strategyId],
    ] as const) {
      const key = { "idempotency-key": `h4-${randomUUID()}` };
      const answers = await Promise.all(Array.from({ length: 12 }, () => send(service, "POST", path, as(bob), body, key)));
      expect(answers.map((a) => a.statusCode).sort(), service).toEqual([...Array(11).fill(200), answers.find((a) => a.statusCode !== 200)!.statusCode]);
      expect(new Set(answers.map((a) => idOf(a.json()))).size, service).toBe(1);
    }
    expect(failures).toEqual([]);
  });
});

describe("ai-chain-analytics: a strategy id in upper case", () => {
  it("filters the summary as the same strategy (it matched nothing: an empty summary, no error)", async () => {
    const strategyId = randomUUID();
    const decidedAt = new Date(Date.now() - 60_000).toISOString();
    const d = { decisionId: randomUUID(), strategyId, userId: alice, symbol: "HOSTUSDT", decidedAt, modelVersion: "h4", probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId: randomUUID() };
    await new ChainStore(p.services.get("ai-chain-analytics")!.app.clickhouse).insertDecisions([decisionRow(d as DecisionIn)]);
    for (const [path, who] of [["/summary", as(alice)], ["/summary/all", as(adminId, "admin")]] as const) {
      for (const id of [strategyId, strategyId.toUpperCase()]) {
        const r = await send("ai-chain-analytics", "GET", `${path}?strategyId=${id}`, who);
        expect(r.statusCode, r.body.slice(0, 200)).toBe(200);
        expect(r.json().summary, `${path} ${id}`).toMatchObject([{ strategyId, decisions: 1 }]);
      }
    }
    // Another user's strategy id filters their own decisions: none.
    expect((await send("ai-chain-analytics", "GET", `/summary?strategyId=${strategyId}`, as(bob))).json().summary).toEqual([]);
    expect(failures).toEqual([]);
  });
});

describe("instants: pairs at the ends of the platform's range, offsets, invalid calendar dates, reversed and enormous ranges", () => {
  const q = encodeURIComponent;
  // [service, path, who, the range's query]: every route of the newer services that takes a range of instants.
  const ranges: Array<[string, string, Record<string, string>, (from: string, to: string) => string]> = [
    ["usage-monitoring", "/", as(alice), (f, t) => `from=${q(f)}&to=${q(t)}`],
    ["usage-monitoring", "/all", as(adminId, "admin"), (f, t) => `from=${q(f)}&to=${q(t)}`],
    ["ai-chain-analytics", "/summary", as(alice), (f, t) => `from=${q(f)}&to=${q(t)}`],
    ["ai-chain-analytics", "/summary/all", as(adminId, "admin"), (f, t) => `from=${q(f)}&to=${q(t)}`],
  ];
  it("within the range and its limits: 200; reversed, too long, not a calendar date or a leap second: a 400 naming the field", async () => {
    for (const [service, path, who, query] of ranges) {
      const at = (from: string, to: string) => send(service, "GET", `${path}?${query(from, to)}`, who);
      // Both ends of the platform's range (ClickHouse DateTime), a second long; offsets of +14:00 and -12:00.
      for (const [from, to] of [["2106-02-07T06:28:14Z", "2106-02-07T06:28:15Z"], ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z"], ["2024-01-01T00:00:00+14:00", "2024-01-01T00:00:00-12:00"], ["2024-02-29T00:00:00.999999999Z", "2024-02-29T00:00:01.0000001Z"]]) {
        const r = await at(from, to);
        expect(r.statusCode, `${service} ${path} ${from} ${to}: ${r.body.slice(0, 160)}`).toBe(200);
      }
      for (const [from, to, field] of [
        ["2024-01-01T01:00:00Z", "2024-01-01T10:00:00+14:00", "from"], // to's wall clock is later, its instant earlier: reversed
        ["2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z", "from"],
        ["1970-01-01T00:00:00Z", "2106-02-07T06:28:15Z", "from"], // 136 years
        ["2023-02-29T00:00:00Z", "2023-03-01T00:00:00Z", "from"],
        ["2024-04-31T00:00:00Z", "2024-05-01T00:00:00Z", "from"],
        ["2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z", "from"],
        ["2024-01-01T00:00:00Z", "2106-02-07T06:28:16Z", "to"],
        ["1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "from"],
        ["2024-01-01T00:00:00+24:00", "2024-01-02T00:00:00Z", "from"],
      ]) {
        const r = await at(from, to);
        expect([r.statusCode, fieldOf(r)], `${service} ${path} ${from} ${to}: ${r.body.slice(0, 160)}`).toEqual([400, field]);
      }
    }
    // Only `to`, at the start of the range: the default `from` (a day before) is not before 1970.
    for (const path of ["/summary", "/summary/all"]) {
      const who = path === "/summary" ? as(alice) : as(adminId, "admin");
      const r = await send("ai-chain-analytics", "GET", `${path}?to=${q("1970-01-01T12:00:00Z")}`, who);
      expect(r.json(), r.body.slice(0, 200)).toMatchObject({ from: "1970-01-01T00:00:00.000Z", to: "1970-01-01T12:00:00.000Z" });
      const at = await send("ai-chain-analytics", "GET", `${path}?to=${q("1970-01-01T00:00:00Z")}`, who);
      expect([at.statusCode, fieldOf(at)], at.body.slice(0, 200)).toEqual([400, "to"]);
    }
    // revenue-analytics: asOf at either end with the longest period (from reaches 1959: PostgreSQL holds it).
    for (const asOf of ["1970-01-01T00:00:00Z", "2106-02-07T06:28:15Z", "2024-01-01T00:00:00+14:00"]) {
      const r = await send("revenue-analytics", "GET", `/?asOf=${q(asOf)}&periodDays=3660`, as(adminId, "admin"));
      expect(r.statusCode, `${asOf}: ${r.body.slice(0, 160)}`).toBe(200);
    }
    // A backtest's period: the whole range at 1d is 49,710 bars (accepted); at 1m past BACKTEST_MAX_BARS; an offset reversing it.
    const backtest = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", data: { source: "synthetic", seed: 1 } };
    const whole = { start: "1970-01-01T00:00:00Z", end: "2106-02-07T06:28:15Z" };
    expect((await send("backtesting-engine", "POST", "/", as(bob), { ...backtest, period: whole })).json()).toMatchObject({ barsPerSymbol: 49_710 });
    for (const [body, field] of [
      [{ ...backtest, interval: "1m", period: whole }, "period"],
      [{ ...backtest, period: { start: "2024-01-01T00:00:00+14:00", end: "2023-12-31T10:00:00Z" } }, "period.end"],
      [{ ...backtest, period: { start: "2023-02-29T00:00:00Z", end: "2023-04-01T00:00:00Z" } }, "period.start"],
      [{ ...backtest, period: { start: "2024-01-01T00:00:00Z", end: "2016-12-31T23:59:60Z" } }, "period.end"],
    ] as const) {
      const r = await send("backtesting-engine", "POST", "/", as(bob), body);
      expect([r.statusCode, fieldOf(r)], r.body.slice(0, 200)).toEqual([400, field]);
    }
    expect(failures).toEqual([]);
  });
});

describe("lists and strings at and one past every declared maximum of the newer services' bodies", () => {
  it("at the maximum: taken (or refused for another reason, never a 5xx); one past: a 400 naming the field", async () => {
    const symbols = (n: number) => Array.from({ length: n }, (_, i) => `S${i}USDT`);
    const strategy = { name: "edge", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100 };
    const backtest = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-02-01T00:00:00Z" }, data: { source: "synthetic", seed: 1 } };
    const emoji = (n: number) => "\u{1F600}".repeat(n); // two UTF-16 units each: lengths count characters
    const cases: Array<[string, string, string, Record<string, string>, (n: number) => unknown, number, string]> = [
      ["ai-orchestrator", "POST", "/strategies", as(carolId), (n) => ({ ...strategy, symbols: symbols(n) }), 20, "symbols"],
      ["ai-orchestrator", "POST", "/strategies", as(carolId), (n) => ({ ...strategy, name: emoji(n) }), 100, "name"],
      ["ml-predictor", "POST", "/predict", as(carolId), (n) => ({ symbols: symbols(n) }), 100, "symbols"],
      ["ml-predictor", "POST", "/models/rollback", as(adminId, "admin"), (n) => ({ fromVersion: "v".repeat(80), reason: emoji(n) }), 500, "reason"],
      ["ml-predictor", "POST", "/models/rollback", as(adminId, "admin"), (n) => ({ fromVersion: "v".repeat(n) }), 80, "fromVersion"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, symbols: symbols(n) }), 50, "symbols"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, strategy: "s".repeat(n) }), 64, "strategy"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, data: { source: "synthetic", seed: emoji(n) } }), 64, "data.seed"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, data: { source: "replay", file: "f".repeat(n) } }), 128, "data.file"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, sweep: { parameters: { fast: Array.from({ length: n }, (_, i) => i + 1) } } }), 1_000, "sweep.parameters.fast"],
      ["backtesting-engine", "POST", "/", as(carolId), (n) => ({ ...backtest, walkForward: { folds: n, parameters: { fast: [2] } } }), 20, "walkForward.folds"],
    ];
    for (const [service, method, path, who, body, max, field] of cases) {
      const at = await send(service, method, path, who, body(max));
      expect(at.statusCode, `${service} ${path} ${field} at ${max}: ${at.body.slice(0, 200)}`).toBeLessThan(500);
      // Refused at the maximum, then for what the value says (an unknown strategy), not by the schema's bound.
      if (at.statusCode === 400 && fieldOf(at) === field) expect(at.json().error.code, `${service} ${path} ${field} at ${max}: ${at.body.slice(0, 200)}`).not.toBe("VALIDATION_ERROR");
      const past = await send(service, method, path, who, body(max + 1));
      expect([past.statusCode, fieldOf(past)], `${service} ${path} ${field} at ${max + 1}: ${past.body.slice(0, 200)}`).toEqual([400, field]);
    }
    expect(failures).toEqual([]);
  });
});

describe("ml-predictor: a model onnxruntime refuses", () => {
  it("is refused without the library's source paths, to the admin promoting it and to every trader while it is the promoted one", async () => {
    // Valid protobuf, no opset: onnxruntime answers "/onnxruntime_src/onnxruntime/core/graph/model.cc:191 onnxruntime::Model::Model(...) Missing opset ...".
    const artifact = Buffer.from([0x08, 0x07, 0x3a, 0x00]);
    const report = {
      features: ["ret_1"], horizon: 1, intervalMs: 60_000, symbols: ["AAAUSDT"], trainingWindow: { from: 0, to: 60_000 }, params: {},
      metrics: { outOfSample: {}, folds: [], hasEdge: true }, reference: { predictionBins: [], predictionFractions: [], features: {} },
    } as unknown as TrainingReport;
    const ml = p.services.get("ml-predictor")!;
    const model = await new ModelRegistry(ml.app.pg).register(artifact, report, "hostile");
    const noSource = (body: string) => {
      expect(body).toContain("Missing opset");
      for (const text of ["onnxruntime_src", ".cc:", "onnxruntime::", "ModelProto&&"]) expect(body).not.toContain(text);
    };
    const promote = await send("ml-predictor", "POST", `/models/${model.version}/promote`, as(adminId, "admin"), { reason: "hostile" });
    expect([promote.statusCode, promote.json().error.code]).toEqual([409, "MODEL_UNLOADABLE"]);
    noSource(promote.body);
    // Promoted anyway (a replica with another onnxruntime promoted it): every trader's status and prediction say why, without the paths.
    const previous = (await p.pool.query("SELECT version FROM ml_models WHERE status = 'promoted'")).rows.map((r) => r.version);
    await p.pool.query("UPDATE ml_models SET status = CASE WHEN version = $1 THEN 'promoted' ELSE 'retired' END WHERE version = $1 OR status = 'promoted'", [model.version]);
    try {
      const status = await send("ml-predictor", "GET", "/status", as(alice));
      expect(status.json().loadFailure).toMatchObject({ version: model.version });
      noSource(status.body);
      const predict = await send("ml-predictor", "POST", "/predict", as(alice), { symbols: ["AAAUSDT"] });
      expect([predict.statusCode, predict.json().error.code]).toEqual([503, "MODEL_UNAVAILABLE"]);
      // The 503 is the documented answer (retry once another model is promoted); the oracle's only objection may be its status.
      const judged = failures.findIndex((f) => f.startsWith("ml-predictor POST /predict") && f.includes(" -> 503 [status 503] "));
      if (judged >= 0) failures.splice(judged, 1);
      noSource(predict.body);
    } finally {
      await p.pool.query("UPDATE ml_models SET status = 'retired' WHERE version = $1", [model.version]);
      if (previous.length) await p.pool.query("UPDATE ml_models SET status = 'promoted' WHERE version = $1", [previous[0]]);
    }
    expect(failures).toEqual([]);
  });
});
