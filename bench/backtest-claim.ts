/**
 * What one claim of the backtesting job queue costs with a long queue: 20,000 queued jobs of 10
 * users (each user 20 runs of 100 jobs, submitted in turns), 20,000 finished jobs of history and 4
 * jobs running under live leases, on real PostgreSQL (tests/harness):
 *
 *   npx tsx bench/backtest-claim.ts [claims=300]
 *
 * Prints the claim statement's plan (EXPLAIN ANALYZE, rolled back), then the time of `claim()` (all
 * its statements, one replica's loop: claim, record a result, claim again) over CLAIMS calls.
 */
import { randomUUID } from "node:crypto";
import { pg, startPostgres } from "../tests/harness";
import { createPostgres } from "../services/src/kit/datastores";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../services/src/migrations";
import { CLAIM_SQL, JobQueue } from "../services/src/services/backtesting-engine/queue";
import type { JobSpec } from "../services/src/services/backtesting-engine/plan";
import { percentile } from "./lib/stats";

const CLAIMS = Number(process.argv[2] ?? 300);
const USERS = 10;
const RUNS_PER_USER = 20;
const JOBS_PER_RUN = 100;
const LEASE_MS = 60_000;

async function main() {
  const postgres = await startPostgres({ readyTimeoutMs: 600_000 });
  const pool = new pg.Pool({ connectionString: postgres.url });
  // The server's shutdown at the end ends idle connections: not an error of the run.
  pool.on("error", () => undefined);
  const client = createPostgres({ POSTGRES_URL: postgres.url, POSTGRES_POOL_MAX: 2, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 } as never, { warn() {} } as never);
  try {
    await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
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
    for (let r = 0; r < RUNS_PER_USER; r++)
      for (const owner of users)
        await queue.enqueue({ id: randomUUID(), ownerId: owner, strategy: "sma-crossover", kind: "sweep", request }, Array(JOBS_PER_RUN).fill(spec), 3, 1_000_000);
    // Four other replicas hold a job each.
    for (let i = 0; i < 4; i++) await new JobQueue(client, `other-replica-${i}`, LEASE_MS).claim();
    await pool.query("ANALYZE bt_jobs; ANALYZE bt_runs");
    const counts = (await pool.query(`SELECT status, count(*)::int AS n FROM bt_jobs GROUP BY status ORDER BY status`)).rows;
    console.log(`bt_jobs: ${counts.map((c) => `${c.n} ${c.status}`).join(", ")}; ${USERS} users`);

    const explain = await pool.connect();
    try {
      await explain.query("BEGIN");
      const plan = await explain.query(`EXPLAIN (ANALYZE, BUFFERS) ${CLAIM_SQL}`, ["explain", LEASE_MS]);
      console.log(plan.rows.map((r) => r["QUERY PLAN"]).join("\n"));
    } finally {
      await explain.query("ROLLBACK");
      explain.release();
    }

    const ms: number[] = [];
    for (let i = 0; i < CLAIMS; i++) {
      const t0 = process.hrtime.bigint();
      const job = await queue.claim();
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (!job) throw new Error("the queue ran dry");
      await queue.succeed(job, { bench: true });
    }
    const fmt = (p: number) => percentile(ms, p).toFixed(2);
    console.log(`claim(): ${CLAIMS} calls, p50 ${fmt(50)} ms, p90 ${fmt(90)} ms, p99 ${fmt(99)} ms, max ${fmt(100)} ms`);
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
