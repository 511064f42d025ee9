/**
 * backtesting-engine: deleting backtests and the series sweep, against real PostgreSQL 15 and
 * ClickHouse 18.16. DELETE /:id by the owner removes the run and its jobs, and the series sweep's next
 * pass its ClickHouse curves and trades, with those of every run deleted since, in one mutation per
 * table: a request issues none (404 for anyone else, nothing removed; 409 while it is queued or
 * running, nothing lost); a pass waits while a table has an unfinished mutation;
 * the sweep removes ClickHouse rows no read returns (runs PostgreSQL no longer has, attempts other
 * than the recorded one of jobs final past the grace) and runs past the retention, keeps the
 * recorded attempt's rows, and issues no mutation when nothing matches.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, waitFor } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import type { createClickHouse } from "../../services/src/kit/datastores";
import backtestingEngine from "../../services/src/services/backtesting-engine";
import { SeriesSweep } from "../../services/src/services/backtesting-engine/sweep";
import { runPostgresMigrations } from "../../services/src/migrations";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServers("postgres", "clickhouse");
const USER = randomUUID();
const headers = { "x-user-id": USER, "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" };
const OTHER = { ...headers, "x-user-id": randomUUID() };
let pool: import("pg").Pool;
let ch: ReturnType<typeof createClickHouse>;
let api: Service;
let worker: Service | undefined;
let base: string;

const env = (extra: Record<string, string> = {}) => ({ LOG_LEVEL: "silent", ...srv.env, BACKTEST_POLL_MS: "50", BACKTEST_LEASE_MS: "120000", ...extra });

async function call(method: string, path: string, body?: unknown, h: Record<string, string> = headers) {
  const res = await fetch(`${base}${path}`, { method, headers: body === undefined ? { "x-user-id": h["x-user-id"], "x-user-role": h["x-user-role"], "x-auth-method": "jwt" } : h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, body: text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined };
}

const synthetic = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1m", period: { start: "2024-01-01T00:00:00Z", end: "2024-01-03T00:00:00Z" }, data: { source: "synthetic", seed: 7 } };

async function succeededRun(): Promise<string> {
  if (!worker) {
    worker = await createService(backtestingEngine, { env: env(), defaultMetrics: false });
    await worker.app.ready();
  }
  const sub = await call("POST", "/", synthetic);
  expect(sub.status, sub.text).toBe(202);
  await waitFor("the run to succeed", async () => (await call("GET", `/${sub.body.id}`)).body.status === "succeeded", { timeoutMs: 300_000, intervalMs: 100 });
  return sub.body.id as string;
}

/** Rows of `run` in each series table (of one attempt when given). */
async function seriesRows(run: string, attempt?: number): Promise<{ curves: number; trades: number }> {
  const n = async (table: string) =>
    Number((await ch.query<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE run_id = {run:String}${attempt === undefined ? "" : " AND attempt = {attempt:UInt32}"}`, { run, attempt }))[0].n);
  return { curves: await n("bt_curves"), trades: await n("bt_trades") };
}

async function pgRows(run: string): Promise<number> {
  const r = await pool.query<{ n: number }>("SELECT (SELECT count(*) FROM bt_runs WHERE id = $1) + (SELECT count(*) FROM bt_jobs WHERE run_id = $1) AS n", [run]);
  return Number(r.rows[0].n);
}

async function writeSeries(run: string, job: number, attempt: number): Promise<void> {
  await ch.insert("bt_curves", [{ run_id: run, job, attempt, seq: 0, time_ms: 0, equity: 1, drawdown: 0 }]);
  await ch.insert("bt_trades", [{ run_id: run, job, attempt, seq: 0, symbol: "BTCUSDT", direction: "long", entry_time_ms: 0, exit_time_ms: 1, quantity: 1, entry_price: 1, exit_price: 1, pnl: 0, fees: 0 }]);
}

/** Mutations ClickHouse has recorded on this file's database (18.16 keeps the last 100 finished ones of a table). */
async function mutations(): Promise<number> {
  return Number((await ch.query<{ n: string }>("SELECT count() AS n FROM system.mutations WHERE database = currentDatabase()"))[0].n);
}

/** Until ClickHouse has finished every mutation of this file's database (a pass waits for them). */
const mutationsDone = () => waitFor("ClickHouse's mutations to finish", async () =>
  Number((await ch.query<{ n: string }>("SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND is_done = 0"))[0].n) === 0,
{ timeoutMs: 60_000, intervalMs: 100 });

/** A pass of `sweep` once ClickHouse has finished the mutations before it (a pass waits for them: a later test shows it). */
async function passOf(sweep: SeriesSweep): Promise<number> {
  await mutationsDone();
  return sweep.pass();
}

/** One pass of the sweep as a replica runs it, but for the retention. */
const sweepPass = () => passOf(new SeriesSweep(api.app.pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: 0 }));

async function noted(): Promise<string[]> {
  return (await pool.query<{ id: string }>("SELECT run_id::text AS id FROM bt_deleted_runs ORDER BY run_id")).rows.map((r) => r.id);
}

/** A succeeded one-job run of USER's as the worker leaves it, with one row in each series table. */
async function finishedRun(): Promise<string> {
  const id = randomUUID();
  await pool.query(`INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs, status, finished_at) VALUES ($1, $2, 'sma-crossover', 'run', '{}', 1, 'succeeded', now())`, [id, USER]);
  await pool.query(`INSERT INTO bt_jobs (run_id, idx, spec, status, attempts, result_attempt, result, finished_at) VALUES ($1, 0, '{}', 'succeeded', 1, 1, '{}', now())`, [id]);
  await writeSeries(id, 0, 1);
  return id;
}

const gone = (run: string, attempt?: number) => waitFor(`rows of ${run} (attempt ${attempt ?? "any"}) deleted`, async () => {
  const r = await seriesRows(run, attempt);
  return r.curves === 0 && r.trades === 0;
}, { timeoutMs: 60_000, intervalMs: 200 });

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool);
  ch = await migratedClickHouse(srv.clickhouse.env);
  api = await createService(backtestingEngine, { env: env({ BACKTEST_WORKER: "false" }), defaultMetrics: false });
  base = await api.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await worker?.close();
  await api?.close();
  await ch?.close();
  await pool?.end();
});

describe("DELETE /:id", () => {
  it("a queued or running run is a 409 telling to cancel it first, and nothing is lost; cancelled, it can be deleted", async () => {
    const sub = await call("POST", "/", synthetic);
    expect(sub.status, sub.text).toBe(202);
    const id = sub.body.id as string;
    const queued = await call("DELETE", `/${id}`);
    expect(queued.status, queued.text).toBe(409);
    expect(queued.body.error.message).toBe(`backtest ${id} is still queued: cancel it first (POST /api/backtests/${id}/cancel), then delete it`);
    // As a claim marks it (no replica works in this test yet).
    await pool.query("UPDATE bt_runs SET status = 'running', started_at = now() WHERE id = $1", [id]);
    await pool.query("UPDATE bt_jobs SET status = 'running', attempts = 1, worker = 'w', lease_until = now() + interval '1 hour' WHERE run_id = $1", [id]);
    await writeSeries(id, 0, 1);
    const running = await call("DELETE", `/${id}`);
    expect([running.status, running.body.error.message]).toEqual([409, `backtest ${id} is still running: cancel it first (POST /api/backtests/${id}/cancel), then delete it`]);
    expect(await pgRows(id)).toBe(2);
    expect(await seriesRows(id)).toEqual({ curves: 1, trades: 1 });
    expect((await call("GET", `/${id}`)).body.status).toBe("running");
    expect((await call("POST", `/${id}/cancel`)).status).toBe(200);
    expect((await call("DELETE", `/${id}`)).status).toBe(204);
    expect(await pgRows(id)).toBe(0);
    expect(await noted()).toEqual([id]);
    expect(await sweepPass()).toBe(1);
    await gone(id);
    expect(await noted()).toEqual([]);
  });

  it("the owner deletes a finished run: GET is a 404, its jobs and ClickHouse rows are gone; anyone else gets a 404 and nothing is removed", async () => {
    const id = await succeededRun();
    const kept = await succeededRun();
    const before = await seriesRows(id);
    expect(before.curves).toBeGreaterThan(0);
    expect(before.trades).toBeGreaterThan(0);

    const other = await call("DELETE", `/${id}`, undefined, OTHER);
    expect(other.status, other.text).toBe(404);
    expect(other.body.error).toMatchObject({ message: `no backtest ${id}` });
    expect((await call("DELETE", `/${randomUUID()}`)).status).toBe(404);
    expect((await call("DELETE", "/not-a-uuid")).status).toBe(400);
    expect(await pgRows(id)).toBe(2);
    expect(await seriesRows(id)).toEqual(before);

    // In upper case (the schema's uuid format takes it): its ClickHouse rows, in lower case, go too.
    const before2 = await mutations();
    const del = await call("DELETE", `/${id.toUpperCase()}`);
    expect([del.status, del.text]).toEqual([204, ""]);
    expect((await call("GET", `/${id}`)).status).toBe(404);
    expect((await call("GET", `/${id}/results`)).status).toBe(404);
    expect(await pgRows(id)).toBe(0);
    expect(await mutations()).toBe(before2);
    await sweepPass();
    await gone(id);
    expect((await call("DELETE", `/${id}`)).status).toBe(404);
    // Another run of the owner's is untouched.
    expect((await call("GET", `/${kept}/jobs/0/equity`)).status).toBe(200);
    expect((await seriesRows(kept)).curves).toBeGreaterThan(0);
  }, 600_000);

  it("deleting runs one by one issues no ClickHouse mutation: the next pass deletes all their rows with one mutation per table", async () => {
    const runs = [await finishedRun(), await finishedRun(), await finishedRun(), await finishedRun(), await finishedRun()];
    const kept = await finishedRun();
    const before = await mutations();
    for (const id of runs) expect((await call("DELETE", `/${id}`)).status).toBe(204);
    expect(await mutations()).toBe(before);
    expect(await noted()).toEqual([...runs].sort());
    for (const id of runs) expect(await seriesRows(id)).toEqual({ curves: 1, trades: 1 }); // inert: no read returns them

    const sweep = new SeriesSweep(api.app.pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: 0 });
    expect(await passOf(sweep)).toBe(5);
    expect(sweep.mutations).toBe(2);
    for (const id of runs) await gone(id);
    expect(await noted()).toEqual([]);
    expect(await seriesRows(kept)).toEqual({ curves: 1, trades: 1 });
  }, 300_000);
});

describe("the series sweep", () => {
  it("removes rows of runs PostgreSQL no longer has and of attempts not recorded, past the grace; keeps the recorded attempt's and unfinished jobs'; no mutation for nothing", async () => {
    const live = await succeededRun();
    // As if the attempt that wrote its rows lost its lease and the next one recorded its result.
    const first = (await pool.query<{ result_attempt: number }>("SELECT result_attempt FROM bt_jobs WHERE run_id = $1 AND idx = 0", [live])).rows[0].result_attempt;
    const superseded = await seriesRows(live, first);
    expect(superseded.curves).toBeGreaterThan(0);
    const recorded = first + 1;
    await pool.query("UPDATE bt_jobs SET attempts = $2, result_attempt = $2 WHERE run_id = $1 AND idx = 0", [live, recorded]);
    await writeSeries(live, 0, recorded);
    const liveRows = await seriesRows(live, recorded);
    const orphan = randomUUID();
    await writeSeries(orphan, 0, 1); // a run deleted while its ClickHouse delete failed
    await writeSeries("not-a-run", 0, 1);
    // A run still queued: rows of an attempt of its job are not touched (the job is not final).
    await worker!.close();
    worker = undefined;
    const open = (await call("POST", "/", synthetic)).body.id as string;
    await writeSeries(open, 0, 1);

    const app = api.app;
    const hourGrace = new SeriesSweep(app.pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: 0 });
    expect(await passOf(hourGrace)).toBe(2);
    await gone(orphan);
    await gone("not-a-run");
    expect(await seriesRows(live, first)).toEqual(superseded); // its job finished less than an hour ago

    const sweep = new SeriesSweep(app.pg, ch, { batch: 1_000, graceMs: 0, retentionDays: 0 });
    expect(await passOf(sweep)).toBe(1);
    await gone(live, first);
    expect(await seriesRows(live, recorded)).toEqual(liveRows);
    expect(await seriesRows(open)).toEqual({ curves: 1, trades: 1 });
    expect((await call("GET", `/${live}/jobs/0/equity`)).status).toBe(200);

    const mutations = sweep.mutations;
    expect(await passOf(sweep)).toBe(0);
    expect(sweep.mutations).toBe(mutations);
  }, 600_000);

  it("pages through the run ids: a batch smaller than the runs still reaches every orphan over passes", async () => {
    const orphans = Array.from({ length: 5 }, () => randomUUID());
    for (const o of orphans) await writeSeries(o, 0, 1);
    const sweep = new SeriesSweep(api.app.pg, ch, { batch: 2, graceMs: 0, retentionDays: 0 });
    for (let i = 0; i < 8; i++) await passOf(sweep);
    for (const o of orphans) await gone(o);
  }, 300_000);

  it("deletes finished runs past the retention with their rows, not newer ones", async () => {
    const old = await succeededRun();
    const recent = await succeededRun();
    await pool.query("UPDATE bt_runs SET finished_at = now() - interval '200 days' WHERE id = $1", [old]);
    const sweep = new SeriesSweep(api.app.pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: 180 });
    await passOf(sweep);
    expect(await pgRows(old)).toBe(0);
    await gone(old);
    expect(await pgRows(recent)).toBe(2);
    expect((await call("GET", `/${recent}/jobs/0/trades`)).status).toBe(200);
  }, 600_000);

  it("waits while a table has a mutation ClickHouse has not finished, saying so, and keeps the deleted runs for later", async () => {
    const id = await finishedRun();
    expect((await call("DELETE", `/${id}`)).status).toBe(204);
    // A mutation that fails on every try stays unfinished on 18.16 (which has no KILL MUTATION), as a
    // slow one does for its duration on any version.
    await writeSeries("stuck", 0, 1);
    await ch.command("ALTER TABLE bt_trades DELETE WHERE throwIf(run_id = 'stuck') = 1");
    const before = await mutations();
    await expect(new SeriesSweep(api.app.pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: 0 }).pass()).rejects.toThrow(/ClickHouse has 1 unfinished mutation\(s\) of bt_trades \(system\.mutations\): the sweep waits for them/);
    expect(await mutations()).toBe(before);
    expect(await noted()).toEqual([id]);
    expect(await seriesRows(id)).toEqual({ curves: 1, trades: 1 });

    // The table made again without it (what an operator does on 18.16): the next pass goes on.
    const ddl = (await ch.query<{ statement: string }>("SHOW CREATE TABLE bt_trades"))[0].statement;
    await ch.command("DROP TABLE bt_trades");
    await ch.command(ddl);
    await sweepPass();
    expect((await seriesRows(id)).trades).toBe(0);
    await gone(id);
    expect(await noted()).toEqual([]);
  }, 300_000);
});
