/**
 * backtesting-engine through HTTP against real PostgreSQL 15 and ClickHouse 18.16: validation (400
 * naming the field), Idempotency-Key on submissions, a run on each data source (synthetic, ClickHouse bars, replay file) agreeing
 * with the library, a sweep shared by two replicas with progress, a walk-forward run, SVG charts,
 * and a replica SIGKILLed mid-job: the job is retried by another replica, its result recorded once,
 * and rows of the dead attempt never read.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { deadPort, freePort, pg, waitFor } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import backtestingEngine from "../../services/src/services/backtesting-engine";
import { BarCache } from "../../services/src/services/backtesting-engine/bars";
import { FAILED_ATTEMPT } from "../../services/src/services/backtesting-engine/worker";
import { backtest, syntheticSeries } from "../../services/src/backtest";
import { CLICKHOUSE_MIGRATIONS_DIR, POSTGRES_MIGRATIONS_DIR, runClickHouseMigrations, runPostgresMigrations } from "../../services/src/migrations";
import { watchServiceWarnings } from "../harness/child-warnings";

const srv = useServers("postgres", "clickhouse");
const ROOT = join(__dirname, "..", "..");
const USER = randomUUID();
const headers = { "x-user-id": USER, "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" };
let pool: import("pg").Pool;
let ch: ReturnType<typeof createClickHouse>;
let api: Service;
let base: string;
const workers: Service[] = [];

const env = (extra: Record<string, string> = {}) => ({
  // Leases long enough that a loaded machine never lets one lapse, except where a test wants it to.
  LOG_LEVEL: "silent", ...srv.env, BACKTEST_POLL_MS: "50", BACKTEST_LEASE_MS: "120000", BACKTEST_MAX_ATTEMPTS: "10", ...extra,
});

async function call(method: string, path: string, body?: unknown, h: Record<string, string> = headers) {
  const res = await fetch(`${base}${path}`, { method, headers: body === undefined ? { "x-user-id": h["x-user-id"], "x-user-role": h["x-user-role"], "x-auth-method": "jwt" } : h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined };
}

async function finished(id: string, timeoutMs = 300_000) {
  let last: Awaited<ReturnType<typeof call>> | undefined;
  await waitFor(`backtest ${id} to finish`, async () => {
    last = await call("GET", `/${id}`);
    return last.body.status === "succeeded" || last.body.status === "failed";
  }, { timeoutMs, intervalMs: 100 });
  return last!.body;
}

const synthetic = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1m", period: { start: "2024-01-01T00:00:00Z", end: "2024-01-08T00:00:00Z" }, data: { source: "synthetic", seed: 7 } };

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  ch = createClickHouse({ CLICKHOUSE_URL: srv.clickhouse.url, CLICKHOUSE_USER: srv.clickhouse.user, CLICKHOUSE_PASSWORD: srv.clickhouse.password, CLICKHOUSE_DATABASE: srv.clickhouse.database });
  await runClickHouseMigrations(ch, { dir: CLICKHOUSE_MIGRATIONS_DIR });
  // The API replica does not work on jobs: the tests decide which replicas do.
  api = await createService(backtestingEngine, { env: env({ BACKTEST_WORKER: "false" }), defaultMetrics: false });
  base = await api.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await api?.close();
  await ch?.close();
  await pool?.end();
});

async function startWorker(extra: Record<string, string> = {}): Promise<void> {
  const w = await createService(backtestingEngine, { env: env(extra), defaultMetrics: false });
  await w.app.ready();
  workers.push(w);
}

async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => w.close()));
}

describe("validation: 400 naming the field, nothing stored", () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["unknown strategy", { strategy: "moon" }, "strategy"],
    ["negative window", { parameters: { fast: -5, slow: 30 } }, "parameters.fast"],
    ["fast not below slow", { parameters: { fast: 50, slow: 30 } }, "parameters.fast"],
    ["unknown parameter", { parameters: { speed: 3 } }, "parameters.speed"],
    ["empty period", { period: { start: "2024-01-02T00:00:00Z", end: "2024-01-02T00:00:00Z" } }, "period.end"],
    ["71 million bars (every minute 1970-2106)", { period: { start: "1970-01-01T00:00:00Z", end: "2106-01-01T00:00:00Z" } }, "period"],
    ["an instant past 2106", { period: { start: "2000-01-01T00:00:00Z", end: "3901-01-01T00:00:00Z" } }, "period.end"],
    ["bad symbol", { symbols: ["btc/usdt"] }, "symbols.0"],
    ["unknown replay file", { data: { source: "replay", file: "nope.csv" } }, "data.file"],
    ["path in replay file", { data: { source: "replay", file: "../../etc/passwd" } }, "data.file"],
    // Names every JavaScript object answers are no built-in replay, parameter or strategy.
    ["replay file named constructor", { data: { source: "replay", file: "constructor" } }, "data.file"],
    ["replay file named toString", { data: { source: "replay", file: "toString" } }, "data.file"],
    ["parameter named constructor", { parameters: { constructor: 3 } }, "parameters.constructor"],
    ["sweep over a parameter named toString", { sweep: { parameters: { toString: [1, 2] } } }, "sweep.parameters.toString"],
    ["strategy named constructor", { strategy: "constructor" }, "strategy"],
    ["sweep over an unknown parameter", { sweep: { parameters: { speed: [1, 2] } } }, "sweep.parameters.speed"],
    // A value twice ran every set it is in twice: refused by the schema (uniqueItems), naming the list.
    ["sweep with a value twice", { sweep: { parameters: { fast: [5, 10, 5], slow: [20, 40] } } }, "sweep.parameters.fast"],
    ["sweep with a value twice in its second list", { sweep: { parameters: { fast: [5], slow: [20, 40, 20] } } }, "sweep.parameters.slow"],
    ["walk-forward grid with a value twice", { walkForward: { folds: 2, parameters: { slow: [30, 30] } } }, "walkForward.parameters.slow"],
    ["walk-forward over an unknown parameter", { walkForward: { folds: 2, parameters: { speed: [1, 2] } } }, "walkForward.parameters.speed"],
    ["walk-forward with too many folds", { walkForward: { folds: 25, parameters: { fast: [5] } } }, "walkForward.folds"],
    // One fold trains 1,000 sets on half of 1,051,200 bars: 526 million bar-steps in one job.
    [
      "walk-forward whose fold simulates more bars than a job may",
      { period: { start: "2022-01-01T00:00:00Z", end: "2024-01-01T00:00:00Z" }, walkForward: { folds: 1, parameters: { fast: Array.from({ length: 10 }, (_, i) => i + 1), slow: Array.from({ length: 100 }, (_, i) => i + 11) } } },
      "walkForward.parameters",
    ],
    ["unknown field", { leverage: 100 }, "leverage"],
    // Split between the symbols, 5e-324 leaves each none: the job was taken, then every attempt failed as a platform error.
    ["initial cash that leaves each symbol none", { initialCash: 5e-324, symbols: ["BTCUSDT", "ETHUSDT"] }, "initialCash"],
    ["a taker fee of 100 %", { execution: { takerFeeBps: "10000" } }, "execution.takerFeeBps"],
    ["a slippage cap of 100 % (sells at a negative price)", { execution: { maxSlippageBps: "20000" } }, "execution.maxSlippageBps"],
    // Fill prices are rounded to the tick: a tick of 0 made every one NaN, and the run succeeded with no trade.
    ["a tick size of 0", { execution: { tickSize: "0" } }, "execution.tickSize"],
    ["a tick size of 0.00000000", { execution: { tickSize: "000.00000000" } }, "execution.tickSize"],
    // A fraction of a bar's volume: above 1 filled more than the bar traded, 0 nothing.
    ["a participation above 1", { execution: { maxParticipation: "1.5" } }, "execution.maxParticipation"],
    ["a participation of 0", { execution: { maxParticipation: "0.00000000" } }, "execution.maxParticipation"],
    // Session 65: runs that "succeeded" without a trade (tests/unit/backtest-meaningless-parameters.test.ts has the rest).
    ["a window as long as the period (1 day of 1,440 bars)", { period: { start: "2024-01-01T00:00:00Z", end: "2024-01-02T00:00:00Z" }, parameters: { fast: 5, slow: 1_440 } }, "parameters.slow"],
    ["a sweep's window longer than the period", { period: { start: "2024-01-01T00:00:00Z", end: "2024-01-02T00:00:00Z" }, sweep: { parameters: { slow: [30, 5_000] } } }, "sweep.parameters.slow"],
    ["an RSI entry level of 0 (RSI is never below it)", { strategy: "rsi-mean-reversion", parameters: { lower: 0 } }, "parameters.lower"],
    ["a lot larger than the fixed quantity", { quantity: 1, quantityStep: 2 }, "quantityStep"],
  ];
  for (const [name, patch, field] of cases)
    it(name, async () => {
      const r = await call("POST", "/", { ...synthetic, ...patch });
      expect(r.status, r.text).toBe(400);
      expect(r.body.error.field).toBe(field);
    });
  it("requires the gateway's identity and hides other users' runs", async () => {
    expect((await call("POST", "/", synthetic, { "content-type": "application/json" } as never)).status).toBe(401);
    expect((await call("GET", `/${randomUUID()}`)).status).toBe(404);
    expect((await pool.query("SELECT count(*)::int AS n FROM bt_runs")).rows[0].n).toBe(0);
  });
  it("an offset past what the datastores take is a 400 naming it", async () => {
    const other = { ...headers, "x-user-id": randomUUID() };
    const sub = await call("POST", "/", synthetic, other);
    expect(sub.status, sub.text).toBe(202);
    try {
      const r = await call("GET", `/${sub.body.id}/results?offset=99999999999999999999`, undefined, other);
      expect(r.status, r.text).toBe(400);
      expect(r.body.error.field).toBe("offset");
      expect((await call("GET", `/${sub.body.id}/jobs/0/trades?offset=5000000000`, undefined, other)).body.error.field).toBe("offset");
    } finally {
      await pool.query("DELETE FROM bt_jobs WHERE run_id = $1", [sub.body.id]);
      await pool.query("DELETE FROM bt_runs WHERE id = $1", [sub.body.id]);
    }
  });
  it("lists the strategies with their parameters", async () => {
    const r = await call("GET", "/strategies");
    expect(r.body.strategies.map((s: { name: string }) => s.name)).toEqual(["sma-crossover", "ema-crossover", "rsi-mean-reversion", "breakout", "ml-model"]);
    expect(r.body.strategies[0].parameters.fast).toMatchObject({ integer: true, min: 1, default: 10 });
  });
});

describe("the replica's bar cache", () => {
  it("holds at most its capacity in bars (an entry per request period and symbol), least recently used out first", async () => {
    const queries: string[] = [];
    // ClickHouse answers 600 one-minute bars for any symbol: what matters is how often it is asked.
    const clickhouse = {
      async query(_sql: string, p: { symbol: string; from: number }) {
        queries.push(p.symbol);
        return Array.from({ length: 600 }, (_, i) => ({ t: p.from + i * 60, open: 1, high: 1, low: 1, close: 1, volume: 1 }));
      },
    };
    const cache = new BarCache({ clickhouse: clickhouse as never }, 1_000);
    const req = { ...synthetic, period: { start: "2024-01-01T00:00:00Z", end: "2024-01-01T10:00:00Z" }, data: { source: "clickhouse" } } as never;
    const load = (symbol: string) => cache.loaderFor(req)(symbol, 0, Number.MAX_SAFE_INTEGER);
    expect((await load("AAAUSDT")).close.length).toBe(600);
    await load("AAAUSDT");
    expect(queries).toEqual(["AAAUSDT"]);
    await load("BBBUSDT"); // 1,200 bars: AAAUSDT goes
    expect(cache.heldBars).toBe(600);
    await load("BBBUSDT");
    await load("AAAUSDT");
    expect(queries).toEqual(["AAAUSDT", "BBBUSDT", "AAAUSDT"]);
  });
});

describe("per-user bound on queued and running jobs", () => {
  it("refuses a submission that would take a user past BACKTEST_MAX_OPEN_JOBS_PER_USER, concurrent ones included", async () => {
    const capped = await createService(backtestingEngine, { env: env({ BACKTEST_WORKER: "false", BACKTEST_MAX_OPEN_JOBS_PER_USER: "3" }), defaultMetrics: false });
    const user = randomUUID();
    try {
      const submit = (body: unknown, id = user) =>
        capped.app.inject({ method: "POST", url: "/", headers: { "x-user-id": id, "x-user-role": "trader", "x-auth-method": "jwt" }, payload: body as Record<string, unknown> });
      const codes = (await Promise.all(Array.from({ length: 5 }, () => submit(synthetic)))).map((r) => r.statusCode);
      expect(codes.sort()).toEqual([202, 202, 202, 409, 409]);
      const sweep = await submit({ ...synthetic, sweep: { parameters: { fast: [5, 10] } } });
      expect(sweep.statusCode).toBe(409);
      expect(sweep.json().error.message).toBe("this backtest has 2 jobs and 3 of yours are queued or running: at most 3 per user; submit it when they finish");
      expect((await pool.query("SELECT count(*)::int AS n FROM bt_runs WHERE owner_id = $1", [user])).rows[0].n).toBe(3);
      expect((await submit(synthetic, randomUUID())).statusCode).toBe(202);
      // A finished job no longer counts.
      await pool.query(`UPDATE bt_jobs SET status = 'failed' WHERE run_id = (SELECT id FROM bt_runs WHERE owner_id = $1 LIMIT 1)`, [user]);
      expect((await submit(synthetic)).statusCode).toBe(202);
    } finally {
      await capped.close();
      // Nothing of this test is left for the workers of the next ones.
      await pool.query(`DELETE FROM bt_jobs WHERE run_id IN (SELECT id FROM bt_runs WHERE owner_id <> $1)`, [USER]);
      await pool.query(`DELETE FROM bt_runs WHERE owner_id <> $1`, [USER]);
    }
  });
});

describe("Idempotency-Key on submissions (per user)", () => {
  it("a retry is answered its run, another body is a 409 naming the key, concurrent duplicates make one run", async () => {
    const capped = await createService(backtestingEngine, { env: env({ BACKTEST_WORKER: "false", BACKTEST_MAX_OPEN_JOBS_PER_USER: "3" }), defaultMetrics: false });
    const user = randomUUID();
    try {
      const submit = (key: string, body: unknown = synthetic, id = user) =>
        capped.app.inject({ method: "POST", url: "/", headers: { "x-user-id": id, "x-user-role": "trader", "x-auth-method": "jwt", "idempotency-key": key }, payload: body as Record<string, unknown> });
      const first = await submit("bt-1");
      expect(first.statusCode, first.body).toBe(202);
      // The same request with its fields in another order is the same request.
      const reordered = Object.fromEntries(Object.entries(synthetic).reverse());
      const again = await submit("bt-1", reordered);
      expect(again.statusCode).toBe(200);
      expect(again.headers["idempotent-replay"]).toBe("true");
      expect(again.json()).toMatchObject({ id: first.json().id, status: "queued", kind: "run", jobs: 1, barsPerSymbol: first.json().barsPerSymbol, links: first.json().links });
      const other = await submit("bt-1", { ...synthetic, data: { source: "synthetic", seed: 8 } });
      expect(other.statusCode).toBe(409);
      expect(other.json().error).toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED", field: "idempotency-key" });
      expect(other.json().error.message).toMatch(/^Idempotency-Key bt-1 was used with a different request body/);
      expect((await submit("not a key")).json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "idempotency-key" });

      const answers = await Promise.all(Array.from({ length: 5 }, () => submit("bt-2")));
      expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 200, 200, 202]);
      expect(new Set(answers.map((a) => a.json().id)).size).toBe(1);
      expect((await pool.query("SELECT count(*)::int AS n FROM bt_runs WHERE owner_id = $1", [user])).rows[0].n).toBe(2);
      // Keys are per user.
      const stranger = await submit("bt-1", synthetic, randomUUID());
      expect(stranger.statusCode).toBe(202);
      expect(stranger.json().id).not.toBe(first.json().id);
      // At the cap, a new submission is refused and a retry still answered.
      expect((await submit("bt-3")).statusCode).toBe(202);
      expect((await submit("bt-4")).statusCode).toBe(409);
      expect((await submit("bt-2")).statusCode).toBe(200);
    } finally {
      await capped.close();
      await pool.query(`DELETE FROM bt_jobs WHERE run_id IN (SELECT id FROM bt_runs WHERE owner_id <> $1)`, [USER]);
      await pool.query(`DELETE FROM bt_runs WHERE owner_id <> $1`, [USER]);
    }
  });
});

describe("runs, sweeps and walk-forward across replicas", () => {
  it("a sweep waits queued with progress, then two replicas share its jobs", async () => {
    const sub = await call("POST", "/", { ...synthetic, mode: "vectorized", sweep: { parameters: { fast: [5, 10, 15], slow: [20, 40, 60, 80] } } });
    expect(sub.status, sub.text).toBe(202);
    expect(sub.body).toMatchObject({ kind: "sweep", jobs: 12, barsPerSymbol: 7 * 1440 });
    const queued = await call("GET", `/${sub.body.id}`);
    expect(queued.body).toMatchObject({ status: "queued", progress: { queued: 12, running: 0, succeeded: 0, fraction: 0 } });
    await startWorker();
    await startWorker();
    const done = await finished(sub.body.id);
    expect(done).toMatchObject({ status: "succeeded", progress: { succeeded: 12, failed: 0, fraction: 1 } });
    const results = await call("GET", `/${sub.body.id}/results`);
    const sharpe = results.body.jobs.map((j: { metrics: { sharpe: number } }) => j.metrics.sharpe);
    expect(sharpe).toEqual([...sharpe].sort((a, b) => b - a));
    const recorded = await pool.query("SELECT count(*)::int AS n FROM bt_jobs WHERE run_id = $1 AND status = 'succeeded' AND result_attempt = attempts", [sub.body.id]);
    expect(recorded.rows[0].n).toBe(12);
    // each result is the library's on the same bars
    const bars = syntheticSeries({ seed: 7, symbol: "BTCUSDT", bars: 7 * 1440, origin: Date.parse(synthetic.period.start) });
    for (const j of results.body.jobs.slice(0, 3)) {
      const lib = backtest(bars, { strategy: "sma-crossover", parameters: j.parameters, mode: "vectorized", initialCash: 100_000, quantityStep: 1e-8 });
      expect(j.metrics.finalEquity).toBeCloseTo(lib.metrics.finalEquity, 6);
      expect(j.metrics.trades).toBe(lib.metrics.trades);
    }
    const svg = await call("GET", `/${sub.body.id}/chart.svg`);
    expect(svg.type).toContain("image/svg+xml");
    expect(svg.text).toMatch(/^<svg[\s\S]*<polyline[\s\S]*drawdown[\s\S]*<\/svg>$/);
  }, 600_000);

  it("a single event-driven run has trades, a curve and a chart", async () => {
    const sub = await call("POST", "/", { ...synthetic, parameters: { fast: 8, slow: 21 }, execution: { takerFeeBps: "7.5", slippageBps: "1" } });
    const done = await finished(sub.body.id);
    expect(done.status).toBe("succeeded");
    const [job] = (await call("GET", `/${sub.body.id}/results`)).body.jobs;
    expect(Object.keys(job.metrics).sort()).toEqual(["bars", "cagr", "exposure", "fees", "finalEquity", "initialCash", "maxDrawdown", "maxDrawdownBars", "maxDrawdownDurationMs", "profitFactor", "sharpe", "sortino", "totalReturn", "trades", "turnover", "volatility", "winRate"].sort());
    const trades = await call("GET", `/${sub.body.id}/jobs/0/trades?limit=5`);
    expect(trades.body.total).toBe(job.metrics.trades);
    expect(trades.body.trades).toHaveLength(5);
    expect(trades.body.trades[0]).toMatchObject({ symbol: "BTCUSDT", direction: "long" });
    const curve = await call("GET", `/${sub.body.id}/jobs/0/equity`);
    expect(curve.body.equity.length).toBeGreaterThan(100);
    expect(curve.body.equity.length).toBeLessThanOrEqual(4_000);
    expect(curve.body.equity.at(-1)).toBeCloseTo(job.metrics.finalEquity, 6);
    expect((await call("GET", `/${sub.body.id}/jobs/0/chart.svg`)).type).toContain("image/svg+xml");
    expect((await call("GET", `/${sub.body.id}/jobs/7/equity`)).status).toBe(404);
  }, 600_000);

  it("runs on ClickHouse bars and on the built-in replay file", async () => {
    const bars = syntheticSeries({ seed: 99, symbol: "ETHUSDT", bars: 3_000, origin: Date.parse("2024-03-01T00:00:00Z") });
    const fmt = (t: number) => new Date(t).toISOString().slice(0, 19).replace("T", " ");
    await ch.insert("market_candles", Array.from(bars.close, (_, i) => ({
      symbol: "ETHUSDT", timeframe: "1m", open_time: fmt(bars.time[i]), open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i], volume: bars.volume[i], trades: 1, source: "test",
    })));
    const sub = await call("POST", "/", { ...synthetic, symbols: ["ETHUSDT"], period: { start: "2024-03-01T00:00:00Z", end: "2024-03-03T02:00:00Z" }, data: { source: "clickhouse" } });
    expect(sub.status, sub.text).toBe(202);
    const done = await finished(sub.body.id);
    expect(done.status).toBe("succeeded");
    const [job] = (await call("GET", `/${sub.body.id}/results`)).body.jobs;
    const lib = backtest(bars, { strategy: "sma-crossover", initialCash: 100_000 });
    expect(job.metrics.bars).toBe(3_000);
    expect(job.metrics.finalEquity).toBeCloseTo(lib.metrics.finalEquity, 6);

    const replay = await call("POST", "/", { ...synthetic, parameters: { fast: 2, slow: 4 }, period: { start: "2024-01-01T00:00:00Z", end: "2024-01-01T01:00:00Z" }, data: { source: "replay", file: "sample-btcusdt-1m.csv" } });
    expect((await finished(replay.body.id)).status).toBe("succeeded");
  }, 600_000);

  it("walk-forward: each fold searches its training window and reports the next one", async () => {
    const sub = await call("POST", "/", { ...synthetic, mode: "vectorized", walkForward: { folds: 3, parameters: { fast: [5, 10], slow: [30, 60] } } });
    expect(sub.body).toMatchObject({ kind: "walk-forward", jobs: 3 });
    expect((await finished(sub.body.id)).status).toBe("succeeded");
    const { jobs } = (await call("GET", `/${sub.body.id}/results`)).body;
    for (const j of jobs) {
      expect(j.inSample.candidates).toBe(4);
      expect(j.parameters).toEqual(j.inSample.parameters);
      expect(j.metrics.bars).toBe(Math.floor((7 * 1440) / 4));
    }
  }, 600_000);
});

describe("the queue (two replicas' claims on real PostgreSQL)", () => {
  it("concurrent claims take different jobs; an expired lease passes the job on; the stale holder records nothing", async () => {
    await stopWorkers(); // only the two queues below claim
    const { JobQueue } = await import("../../services/src/services/backtesting-engine/queue");
    const { createPostgres } = await import("../../services/src/kit/datastores");
    const quiet = { warn() {} } as never;
    const a = createPostgres({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 2 } as never, quiet);
    const b = createPostgres({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 2 } as never, quiet);
    try {
      const qa = new JobQueue(a, "replica-a", 60_000);
      const qb = new JobQueue(b, "replica-b", 60_000);
      const id = randomUUID();
      const spec = { kind: "sweep" as const, parameters: { fast: 1, slow: 2 }, from: 0, to: 1 };
      await qa.enqueue({ id, ownerId: USER, strategy: "sma-crossover", kind: "sweep", request: synthetic as never }, [spec, spec], 3, 1_000);
      const [ja, jb] = await Promise.all([qa.claim(), qb.claim()]);
      expect([ja?.idx, jb?.idx].sort()).toEqual([0, 1]);
      expect(await qa.claim()).toBeUndefined();
      // replica-a stalls: its lease runs out and replica-b takes the job over
      await a.query("UPDATE bt_jobs SET lease_until = now() - interval '1 second' WHERE run_id = $1 AND idx = $2", [id, ja!.idx]);
      const again = await qb.claim();
      expect(again).toMatchObject({ idx: ja!.idx, attempt: 2 });
      await expect(qa.heartbeat(ja!, 0.5)).rejects.toThrow(/no longer held/);
      expect(await qa.succeed(ja!, { stale: true })).toBe(false);
      expect(await qb.succeed(again!, { fresh: true })).toBe(true);
      expect(await qb.succeed(jb!, { fresh: true })).toBe(true);
      const rows = await a.query("SELECT idx, result, result_attempt FROM bt_jobs WHERE run_id = $1 ORDER BY idx", [id]);
      expect(rows.rows.map((r) => r.result)).toEqual([{ fresh: true }, { fresh: true }]);
      expect((await a.query("SELECT status FROM bt_runs WHERE id = $1", [id])).rows[0].status).toBe("succeeded");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("a replica killed mid-job", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    try {
      if (child?.pid) process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone (the test kills it)
    }
  });
  it("loses no job: another replica retries it, one result, the dead attempt's rows unread", async () => {
    await stopWorkers(); // the child replica is the only one working
    const sub = await call("POST", "/", { ...synthetic, period: { start: "2024-01-01T00:00:00Z", end: "2025-01-01T00:00:00Z" }, sweep: { parameters: { fast: [10, 12, 14] } } });
    expect(sub.status, sub.text).toBe(202);
    child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "services", "src", "main.ts"), "backtesting-engine"], {
      cwd: ROOT, env: { ...process.env, ...env({ PORT: String(await freePort()), HOST: "127.0.0.1", BACKTEST_LEASE_MS: "5000" }) }, stdio: ["ignore", "ignore", "pipe"],
    });
    watchServiceWarnings("backtesting-engine (child replica)", child.stderr);
    const dead = `:${child.pid}`;
    await waitFor("the child replica to claim a job", async () =>
      (await pool.query("SELECT 1 FROM bt_jobs WHERE run_id = $1 AND status = 'running' AND worker LIKE $2", [sub.body.id, `%${dead}`])).rowCount === 1,
    { timeoutMs: 120_000, intervalMs: 20 });
    process.kill(child.pid!, "SIGKILL");
    const held = await pool.query("SELECT idx, attempts FROM bt_jobs WHERE run_id = $1 AND status = 'running' AND worker LIKE $2", [sub.body.id, `%${dead}`]);
    expect(held.rows).toHaveLength(1);
    const { idx } = held.rows[0];
    // A row the dead attempt might have written: it must never be served.
    await ch.insert("bt_curves", [{ run_id: sub.body.id, job: idx, attempt: held.rows[0].attempts, seq: 0, time_ms: 0, equity: -1, drawdown: 0 }]);
    await startWorker();
    const done = await finished(sub.body.id);
    expect(done).toMatchObject({ status: "succeeded", progress: { succeeded: 3, failed: 0 } });
    const job = await pool.query("SELECT attempts, result_attempt, worker FROM bt_jobs WHERE run_id = $1 AND idx = $2", [sub.body.id, idx]);
    expect(job.rows[0].attempts).toBe(held.rows[0].attempts + 1);
    expect(job.rows[0].result_attempt).toBe(held.rows[0].attempts + 1);
    expect(job.rows[0].worker).not.toContain(dead);
    const curve = (await call("GET", `/${sub.body.id}/jobs/${idx}/equity`)).body;
    expect(Math.min(...curve.equity)).toBeGreaterThan(0);
    expect(new Set(curve.time).size).toBe(curve.time.length);
    const results = (await call("GET", `/${sub.body.id}/results`)).body.jobs;
    expect(results).toHaveLength(3);
  }, 600_000);

  it("a replica stopped mid-job (deploy) gives the job back without spending its attempts", async () => {
    await stopWorkers();
    // One attempt allowed: before, a stop on it failed the job for good (ATTEMPTS_EXHAUSTED "replica stopped").
    const replica = await createService(backtestingEngine, { env: env({ BACKTEST_MAX_ATTEMPTS: "1" }), defaultMetrics: false });
    let closed = false;
    try {
      const sub = await replica.app.inject({ method: "POST", url: "/", headers, payload: { ...synthetic, symbols: ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"], period: { start: "2022-01-01T00:00:00Z", end: "2024-01-01T00:00:00Z" } } });
      expect(sub.statusCode, sub.body).toBe(202);
      const id = sub.json().id;
      await replica.app.ready();
      // Stopped as soon as it holds the job, not once a lease renewal has recorded progress: on a fast host the whole
      // run (4 x 1M bars, about 0.5 s after 1 s of loading) fitted between two renewals, and a CI run waited here for a
      // progress the job never showed. A stop at any point before its result is written gives the job back.
      await waitFor("the replica to hold the job", async () => {
        const jobs = (await pool.query("SELECT idx, status, attempts, progress, worker, error FROM bt_jobs WHERE run_id = $1 ORDER BY idx", [id])).rows;
        if (jobs.filter((j) => j.status === "running" && j.progress < 0.9).length === 1) return true;
        throw new Error(`jobs ${JSON.stringify(jobs)}`);
      }, { timeoutMs: 120_000, intervalMs: 20 });
      await replica.close();
      closed = true;
      const given = (await pool.query("SELECT status, attempts, max_attempts, error FROM bt_jobs WHERE run_id = $1", [id])).rows[0];
      expect(given).toMatchObject({ status: "queued", attempts: 1, max_attempts: 2, error: null });
      await startWorker();
      const done = await finished(id);
      expect(done.status).toBe("succeeded");
      expect((await pool.query("SELECT attempts, result_attempt FROM bt_jobs WHERE run_id = $1", [id])).rows[0]).toEqual({ attempts: 2, result_attempt: 2 });
    } finally {
      if (!closed) await replica.close();
    }
  }, 600_000);
});

describe("a job that fails for no fault of its input", () => {
  it("is failed once its attempts are spent, and its answer names no datastore, address or driver message", async () => {
    await stopWorkers();
    // A replica whose ClickHouse is gone: every attempt's write of the curve fails.
    const port = await deadPort();
    const replica = await createService(backtestingEngine, { env: env({ BACKTEST_MAX_ATTEMPTS: "2", CLICKHOUSE_URL: `http://127.0.0.1:${port}` }), defaultMetrics: false });
    try {
      const sub = await replica.app.inject({ method: "POST", url: "/", headers, payload: synthetic });
      expect(sub.statusCode, sub.body).toBe(202);
      await replica.app.ready();
      const done = await finished(sub.json().id);
      expect(done.status).toBe("failed");
      const r = await call("GET", `/${sub.json().id}/results`);
      expect(r.body.jobs[0].error).toEqual({ code: "ATTEMPTS_EXHAUSTED", message: FAILED_ATTEMPT });
      expect(r.text).not.toMatch(new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|:${port}|connect|ClickHouse`, "i"));
    } finally {
      await replica.close();
    }
  }, 300_000);
});

describe("cancelling a backtest", () => {
  it("stops its unfinished jobs (a running one at its next lease renewal), keeps what finished, frees the user's open jobs; only its owner, once", async () => {
    await stopWorkers();
    // 20 event-driven jobs over a year of minutes: each takes a while, so some are still queued when it is cancelled.
    const sweep = { ...synthetic, period: { start: "2023-01-01T00:00:00Z", end: "2024-01-01T00:00:00Z" }, sweep: { parameters: { fast: [5, 6, 7, 8, 9], slow: [20, 30, 40, 50] } } };
    const sub = await call("POST", "/", sweep);
    expect(sub.status, sub.text).toBe(202);
    const id = sub.body.id as string;
    await startWorker();
    await waitFor("a job running", async () => (await call("GET", `/${id}`)).body.progress.running > 0, { timeoutMs: 300_000, intervalMs: 50 });
    const other = { ...headers, "x-user-id": randomUUID() };
    expect((await call("POST", `/${id}/cancel`, undefined, other)).status).toBe(404);
    const cancelled = await call("POST", `/${id}/cancel`);
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body).toMatchObject({ id, status: "cancelled" });
    expect(cancelled.body.cancelledJobs).toBeGreaterThan(0);
    const run = (await call("GET", `/${id}`)).body;
    expect(run).toMatchObject({ status: "cancelled", progress: { queued: 0, running: 0 } });
    expect(run.progress.cancelled).toBe(cancelled.body.cancelledJobs);
    expect((await pool.query("SELECT count(*)::int AS n FROM bt_jobs WHERE owner_id = $1 AND run_id = $2 AND status IN ('queued', 'running')", [USER, id])).rows[0].n).toBe(0);
    expect((await call("POST", `/${id}/cancel`)).status).toBe(409);
    // The replica that was running a job loses it at its next renewal: the job stays cancelled, no result is recorded.
    // Shown after a later job finished on that same replica, the only worker, one job at a time: it
    // claimed the later job only once it was done with the cancelled one (lost at its renewal, or
    // refused at its last one before writing), so whatever it would have written is written by now.
    const small = await call("POST", "/", { ...synthetic, parameters: { fast: 8, slow: 21 } });
    expect((await finished(small.body.id)).status).toBe("succeeded");
    const jobs = await pool.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM bt_jobs WHERE run_id = $1 GROUP BY status ORDER BY status", [id]);
    expect(jobs.rows.find((r) => r.status === "cancelled")?.n).toBe(cancelled.body.cancelledJobs);
    expect(jobs.rows.filter((r) => r.status !== "cancelled" && r.status !== "succeeded")).toEqual([]);
    const recorded = await pool.query<{ idx: number }>("SELECT idx FROM bt_jobs WHERE run_id = $1 AND status = 'cancelled' AND (result IS NOT NULL OR result_attempt IS NOT NULL)", [id]);
    expect(recorded.rows).toEqual([]);
    expect((await call("GET", `/${id}`)).body.status).toBe("cancelled");
    // A finished run has nothing to cancel.
    const again = await call("POST", `/${small.body.id}/cancel`);
    expect([again.status, again.body.error.message]).toEqual([409, `backtest ${small.body.id} is already succeeded: nothing left to cancel`]);
  }, 600_000);
});
