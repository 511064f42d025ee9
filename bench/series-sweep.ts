/**
 * What the backtest series sweep costs on large tables (services/src/services/backtesting-engine/sweep.ts),
 * on real PostgreSQL and ClickHouse (tests/harness; ClickHouse is Debian's 18.16 here):
 *
 *   npx tsx bench/series-sweep.ts [runs=20000] [curvePointsPerRun=500] [tradesPerRun=50]
 *
 * Fills bt_curves and bt_trades with `runs` runs (one job each) generated inside ClickHouse, and
 * bt_runs / bt_jobs in PostgreSQL with the same ids (md5 of "run<n>" as a UUID on both sides), so
 * that the sweep has each kind of work: every 100th run is missing from PostgreSQL (deleted there,
 * its rows left in ClickHouse), every 100th (another) finished 200 days ago (past the 180-day
 * retention), every 50th has a superseded attempt (attempt 1 rows, attempt 2 recorded). Then it
 * runs SeriesSweep passes as a replica works off a backlog (batch 1,000, grace 0), each once the
 * previous one's mutations are applied, until the cursor has gone round the key space once, and
 * prints each pass's time and its mutations' (ClickHouse applies them in the background: what they
 * cost is the rewrite of every part they touch), the page query (`seriesRunIds`) at the start, middle
 * and end of the key space, and whether exactly the rows to delete are gone.
 */
import { pg, startClickHouse, startPostgres } from "../tests/harness";
import { createPostgres } from "../services/src/kit/datastores";
import { runPostgresMigrations } from "../services/src/migrations";
import { migratedClickHouse } from "../tests/helpers/schemas";
import { SeriesSweep } from "../services/src/services/backtesting-engine/sweep";
import { seriesRunIds } from "../services/src/services/backtesting-engine/deletion";
import { median, percentile } from "./lib/stats";

const RUNS = Number(process.argv[2] ?? 20_000);
const CURVE_POINTS = Number(process.argv[3] ?? 500);
const TRADES = Number(process.argv[4] ?? 50);
const BATCH = 1_000;
/** Rows one INSERT ... SELECT generates (the kit client's request timeout is 30 s). */
const CHUNK = 2_000_000;

/** md5("run<n>") as canonical UUID text (of `h`, its hex digest), as PostgreSQL's md5(...)::uuid::text spells it. */
const RUN_ID = `lower(concat(substring(h, 1, 8), '-', substring(h, 9, 4), '-', substring(h, 13, 4), '-', substring(h, 17, 4), '-', substring(h, 21, 12))) AS run_id`;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(0)} ms, p99 ${percentile(xs, 99).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;

async function fillClickHouse(ch: Awaited<ReturnType<typeof migratedClickHouse>>) {
  const series = async (table: string, perRun: number, attempt: number, every: number, columns: string) => {
    const total = RUNS * perRun;
    for (let from = 0; from < total; from += CHUNK) {
      const rows = Math.min(CHUNK, total - from);
      // n: the run (1..RUNS), seq: the row within it; only every `every`th run gets this attempt's rows.
      await ch.command(
        `INSERT INTO ${table} SELECT ${RUN_ID}, 0 AS job, ${attempt} AS attempt, seq, ${columns}
           FROM (SELECT *, hex(MD5(concat('run', toString(n)))) AS h
                   FROM (SELECT intDiv(number, ${perRun}) + 1 AS n, number % ${perRun} AS seq FROM numbers(${from}, ${rows})) WHERE n % ${every} = 0)`,
      );
    }
  };
  const curve = `1700000000000 + seq * 60000 AS time_ms, 10000 + seq AS equity, 0 AS drawdown`;
  const trade =
    `'BTCUSDT' AS symbol, 'long' AS direction, 1700000000000 + seq * 60000 AS entry_time_ms, 1700000000000 + seq * 60000 + 30000 AS exit_time_ms, ` +
    `1 AS quantity, 100 AS entry_price, 101 AS exit_price, 1 AS pnl, 0.1 AS fees`;
  await series("bt_curves", CURVE_POINTS, 1, 1, curve);
  await series("bt_curves", CURVE_POINTS, 2, 50, curve);
  await series("bt_trades", TRADES, 1, 1, trade);
  await series("bt_trades", TRADES, 2, 50, trade);
  for (const table of ["bt_curves", "bt_trades"]) await ch.command(`OPTIMIZE TABLE ${table} FINAL`);
}

async function fillPostgres(pool: InstanceType<typeof pg.Pool>) {
  await pool.query(
    `INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs, status, created_at, started_at, finished_at)
     SELECT md5('run' || n)::uuid, 'bench-owner', 'sma-crossover', 'run', '{}'::jsonb, 1, 'succeeded', f, f, f
       FROM (SELECT n, now() - CASE WHEN n % 100 = 1 THEN interval '200 days' ELSE interval '1 day' END AS f
               FROM generate_series(1, $1::int) n WHERE n % 100 <> 0) s`,
    [RUNS],
  );
  await pool.query(
    `INSERT INTO bt_jobs (run_id, idx, spec, status, attempts, result_attempt, result, finished_at)
     SELECT md5('run' || n)::uuid, 0, '{}'::jsonb, 'succeeded', a, a, '{}'::jsonb, now() - interval '1 day'
       FROM (SELECT n, CASE WHEN n % 50 = 0 THEN 2 ELSE 1 END AS a FROM generate_series(1, $1::int) n WHERE n % 100 <> 0) s`,
    [RUNS],
  );
  await pool.query("ANALYZE bt_runs; ANALYZE bt_jobs");
}

async function count(ch: Awaited<ReturnType<typeof migratedClickHouse>>, sql: string): Promise<number> {
  return Number((await ch.query<{ n: string }>(sql))[0].n);
}

async function main() {
  const [postgres, clickhouse] = await Promise.all([startPostgres({ readyTimeoutMs: 600_000 }), startClickHouse({ readyTimeoutMs: 600_000 })]);
  const pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on("error", () => undefined);
  const client = createPostgres({ POSTGRES_URL: postgres.url, POSTGRES_POOL_MAX: 4, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 } as never, { warn() {} } as never);
  const ch = await migratedClickHouse(clickhouse.env);
  try {
    await runPostgresMigrations(pool);
    const version = (await ch.query<{ v: string }>("SELECT version() AS v"))[0].v;
    let t0 = process.hrtime.bigint();
    await Promise.all([fillClickHouse(ch), fillPostgres(pool)]);
    const curves = await count(ch, "SELECT count() AS n FROM bt_curves");
    const trades = await count(ch, "SELECT count() AS n FROM bt_trades");
    console.log(`ClickHouse ${version}: ${RUNS} runs, bt_curves ${curves} rows, bt_trades ${trades} rows (filled and merged in ${(ms(t0) / 1000).toFixed(1)} s)`);

    // The page query alone, at three places of the key space (the cursor's start, middle and end).
    const ids = (await ch.query<{ run_id: string }>("SELECT DISTINCT run_id FROM bt_trades ORDER BY run_id")).map((r) => r.run_id);
    for (const [where, after] of [["start", ""], ["middle", ids[ids.length >> 1]], ["end", ids[ids.length - BATCH - 1] ?? ""]] as const) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        t0 = process.hrtime.bigint();
        for (const table of ["bt_curves", "bt_trades"] as const) await seriesRunIds(ch, table, after, BATCH);
        times.push(ms(t0));
      }
      console.log(`page of ${BATCH} run ids from both tables, cursor at the ${where}: median ${median(times).toFixed(0)} ms over 5`);
    }

    // Passes back to back as a backlog goes (PeriodicDelete), each once the previous one's mutations
    // are done (a pass refuses to start before: sweep.ts).
    const sweep = new SeriesSweep(client, ch, { batch: BATCH, graceMs: 0, retentionDays: 180 });
    const passes = Math.ceil(RUNS / BATCH) + 1;
    const passMs: number[] = [];
    const mutationMs: number[] = [];
    let deleted = 0;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < passes; i++) {
      let p0 = process.hrtime.bigint();
      deleted += await sweep.pass();
      passMs.push(ms(p0));
      p0 = process.hrtime.bigint();
      while ((await count(ch, "SELECT count() AS n FROM system.mutations WHERE is_done = 0")) > 0) await new Promise((r) => setTimeout(r, 100));
      mutationMs.push(ms(p0));
    }
    console.log(`${passes} sweep passes (batch ${BATCH}, one round of the key space, each after the previous one's mutations): ${(ms(t0) / 1000).toFixed(1)} s in all`);
    console.log(`  a pass (its reads and PostgreSQL deletes, issuing its mutations): ${fmt(passMs)}`);
    console.log(`  its mutations until ClickHouse has applied them: ${fmt(mutationMs)}; ${sweep.mutations} mutations, ${deleted} runs and jobs deleted`);
    const orphanRuns = await count(ch, "SELECT uniqExact(run_id) AS n FROM bt_trades");
    const superseded = await count(ch, "SELECT count() AS n FROM bt_trades WHERE attempt = 1 AND run_id IN (SELECT run_id FROM bt_trades WHERE attempt = 2)");
    const pgRuns = Number((await pool.query("SELECT count(*)::int AS n FROM bt_runs")).rows[0].n);
    console.log(`left: ${orphanRuns} runs in bt_trades, ${pgRuns} in bt_runs (expected equal: ${RUNS - RUNS / 100 - RUNS / 100}); ${superseded} superseded trade rows (expected 0)`);
  } finally {
    await ch.close();
    await client.pool.end();
    await pool.end();
    await Promise.all([postgres.stop(), clickhouse.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
