/**
 * What one claim of the backtesting job queue costs with a long queue: 20,000 queued jobs of 10
 * users, 20,000 finished jobs of history and 4 jobs running under live leases, on real PostgreSQL
 * (tests/harness), once per number of open runs (OPEN_RUNS: the same 20,000 jobs as 200 runs of 100
 * jobs, then as 2,000 runs of 10; each user's runs submitted in turns with the others'):
 *
 *   npx tsx bench/backtest-claim.ts [claims=300]
 *
 * For each, prints the plans of the claim statement, of the submission's count of the user's
 * unfinished jobs and of the claim's probe for exhausted leases (EXPLAIN ANALYZE, rolled back),
 * then the time of `claim()` and of `succeed()` (all their statements, one replica's loop: claim,
 * record a result, claim again) over CLAIMS calls.
 */
import { randomUUID } from "node:crypto";
import { pg, startPostgres } from "../tests/harness";
import { createPostgres } from "../services/src/kit/datastores";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../services/src/migrations";
import { CLAIM_SQL, EXHAUSTED_RUNS_SQL, JobQueue, OPEN_JOBS_SQL } from "../services/src/services/backtesting-engine/queue";
import type { JobSpec } from "../services/src/services/backtesting-engine/plan";
import { percentile } from "./lib/stats";

const CLAIMS = Number(process.argv[2] ?? 300);
const USERS = 10;
const QUEUED_JOBS = 20_000;
const OPEN_RUNS = [200, 2_000];
const LEASE_MS = 60_000;

type Pool = import("pg").Pool;

async function explain(pool: Pool, title: string, sql: string, params: unknown[]) {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const plan = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
    console.log(`-- ${title}\n${plan.rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
  } finally {
    await c.query("ROLLBACK");
    c.release();
  }
}

const summary = (ms: number[]) => [50, 90, 99, 100].map((p) => `${p === 100 ? "max" : `p${p}`} ${percentile(ms, p).toFixed(2)} ms`).join(", ");

async function measure(pool: Pool, client: ReturnType<typeof createPostgres>, openRuns: number) {
  await pool.query("TRUNCATE bt_jobs, bt_runs, bt_owner_turns");
  const queue = new JobQueue(client, "bench-replica", LEASE_MS);
  const spec: JobSpec = { kind: "sweep", parameters: { fast: 5, slow: 20 }, from: 0, to: 1 };
  const request = { strategy: "sma-crossover", symbols: ["BTCUSDT"] } as never;
  const users = Array.from({ length: USERS }, () => randomUUID());
  // History: finished jobs stay in bt_jobs (one finished run of 2,000 per user).
  for (const owner of users) {
    const id = randomUUID();
    await queue.enqueue({ id, ownerId: owner, strategy: "sma-crossover", kind: "sweep", request }, Array(2_000).fill(spec), 3, 1_000_000);
    await pool.query(`UPDATE bt_jobs SET status = 'succeeded', result = '{}', result_attempt = 1, attempts = 1, finished_at = now() WHERE run_id = $1`, [id]);
    await pool.query(`UPDATE bt_runs SET status = 'succeeded', finished_at = now() WHERE id = $1`, [id]);
  }
  const jobsPerRun = QUEUED_JOBS / openRuns;
  for (let r = 0; r < openRuns / USERS; r++)
    for (const owner of users)
      await queue.enqueue({ id: randomUUID(), ownerId: owner, strategy: "sma-crossover", kind: "sweep", request }, Array(jobsPerRun).fill(spec), 3, 1_000_000);
  // Four other replicas hold a job each.
  for (let i = 0; i < 4; i++) await new JobQueue(client, `other-replica-${i}`, LEASE_MS).claim();
  await pool.query("ANALYZE bt_jobs; ANALYZE bt_runs");
  const counts = (await pool.query(`SELECT status, count(*)::int AS n FROM bt_jobs GROUP BY status ORDER BY status`)).rows;
  const open = (await pool.query(`SELECT count(*)::int AS n FROM bt_runs WHERE status IN ('queued', 'running')`)).rows[0].n;
  console.log(`\n== ${open} open runs of ${jobsPerRun} jobs; bt_jobs: ${counts.map((c) => `${c.n} ${c.status}`).join(", ")}; ${USERS} users`);
  await explain(pool, "claim", CLAIM_SQL, ["explain", LEASE_MS]);
  await explain(pool, "a submission's count of its user's unfinished jobs", OPEN_JOBS_SQL, [users[0]]);
  await explain(pool, "the claim's probe for jobs whose last attempt's lease ran out", EXHAUSTED_RUNS_SQL, []);

  const claimMs: number[] = [];
  const succeedMs: number[] = [];
  for (let i = 0; i < CLAIMS; i++) {
    const t0 = process.hrtime.bigint();
    const job = await queue.claim();
    const t1 = process.hrtime.bigint();
    if (!job) throw new Error("the queue ran dry");
    await queue.succeed(job, { bench: true });
    succeedMs.push(Number(process.hrtime.bigint() - t1) / 1e6);
    claimMs.push(Number(t1 - t0) / 1e6);
  }
  console.log(`${open} open runs: claim(): ${CLAIMS} calls, ${summary(claimMs)}`);
  console.log(`${open} open runs: succeed(): ${CLAIMS} calls, ${summary(succeedMs)}`);
}

async function main() {
  const postgres = await startPostgres({ readyTimeoutMs: 600_000 });
  const pool = new pg.Pool({ connectionString: postgres.url });
  // The server's shutdown at the end ends idle connections: not an error of the run.
  pool.on("error", () => undefined);
  const client = createPostgres({ POSTGRES_URL: postgres.url, POSTGRES_POOL_MAX: 2, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 } as never, { warn() {} } as never);
  try {
    await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
    for (const openRuns of OPEN_RUNS) await measure(pool, client, openRuns);
  } finally {
    await client.pool.end();
    await pool.end();
    await postgres.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
