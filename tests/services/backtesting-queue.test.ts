/**
 * backtesting-engine's job queue (queue.ts) on real PostgreSQL 15: the claim takes turns between
 * users (fewest jobs running under a live lease, then the user served longest ago, then the oldest
 * job), concurrent claims on separate connections never take one job twice, and a lease that ran
 * out passes its job on as before; the claim marks its run running in its own statement, and runs
 * left open with every job final are settled by a pass each replica makes at most once an interval
 * (its clock set by the test). The replicas here are JobQueue instances, each on its own pool.
 */
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import { createPostgres } from "../../services/src/kit/datastores";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { CLAIM_SQL, JobQueue, type ClaimedJob, type StrandedRunRepairOptions } from "../../services/src/services/backtesting-engine/queue";
import type { JobSpec } from "../../services/src/services/backtesting-engine/plan";
import { STARTED_QUEUED_RUNS_SQL, STRANDED_RUNS_SQL } from "../../services/src/services/backtesting-engine/settle";
import { PATIENCE_MS, within } from "../helpers/patience";

const srv = useServers("postgres");
let pool: import("pg").Pool;
const clients: ReturnType<typeof createPostgres>[] = [];

const spec: JobSpec = { kind: "sweep", parameters: { fast: 5, slow: 20 }, from: 0, to: 1 };
const request = { strategy: "sma-crossover", symbols: ["BTCUSDT"] } as never;

/** A replica's queue on a connection pool of its own. */
function replica(name: string, leaseMs = 60_000, repair?: StrandedRunRepairOptions): JobQueue {
  const client = createPostgres({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 1, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 } as never, { warn() {} } as never);
  clients.push(client);
  return new JobQueue(client, name, leaseMs, repair);
}

/** Submits a run of `jobs` jobs for `owner`; answers the run's id. */
async function submit(queue: JobQueue, owner: string, jobs: number): Promise<string> {
  const id = randomUUID();
  const outcome = await queue.enqueue({ id, ownerId: owner, strategy: "sma-crossover", kind: jobs > 1 ? "sweep" : "run", request }, Array(jobs).fill(spec), 3, 10_000);
  expect(outcome.kind).toBe("queued");
  return id;
}

const ownerOf = async (job: ClaimedJob | undefined) =>
  (await pool.query("SELECT owner_id FROM bt_runs WHERE id = $1", [job?.runId])).rows[0]?.owner_id as string | undefined;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
});
beforeEach(async () => {
  await pool.query("TRUNCATE bt_jobs, bt_runs, bt_owner_turns");
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pool?.end();
});

describe("fair share between users", () => {
  it("with one replica, a user's single backtest submitted after another's sweep is claimed next, not after the sweep", async () => {
    const q = replica("only-replica");
    await submit(q, "sweeper", 50);
    const first = await q.claim();
    expect(await ownerOf(first)).toBe("sweeper");
    expect(await q.succeed(first!, { done: true })).toBe(true);
    const single = await submit(q, "one-off", 1);
    // First come first served took the sweep's 49 other jobs first.
    const next = await q.claim();
    expect(next?.runId).toBe(single);
    expect(await q.succeed(next!, { done: true })).toBe(true);
    expect(await ownerOf(await q.claim())).toBe("sweeper");
  });

  it("a user with fewer jobs running is served first, even when the other's jobs are older", async () => {
    const a = replica("replica-a");
    const b = replica("replica-b");
    await submit(a, "sweeper", 20);
    const held = await a.claim(); // still running: sweeper has 1 job under a live lease
    expect(await ownerOf(held)).toBe("sweeper");
    await submit(b, "one-off", 2);
    expect(await ownerOf(await b.claim())).toBe("one-off");
    // Both have one running now; one-off was served last: sweeper's turn.
    expect(await ownerOf(await b.claim())).toBe("sweeper");
    // sweeper 2 running, one-off 1: one-off's second job.
    expect(await ownerOf(await b.claim())).toBe("one-off");
  });

  it("one replica alternates between users with queued jobs", async () => {
    const q = replica("only-replica");
    for (const owner of ["u1", "u2", "u3"]) await submit(q, owner, 4);
    const order: string[] = [];
    for (let i = 0; i < 9; i++) {
      const job = await q.claim();
      order.push((await ownerOf(job))!);
      await q.succeed(job!, { done: true });
    }
    expect(order).toEqual(["u1", "u2", "u3", "u1", "u2", "u3", "u1", "u2", "u3"]);
  });

  it("between users with equal running counts never served before, the older job goes first; within a user, queue order", async () => {
    const q = replica("only-replica");
    // Owner ids in the opposite order of submission: the order is the jobs' age, not the ids'.
    const older = await submit(q, "zz-submitted-first", 2);
    const newer = await submit(q, "aa-submitted-second", 2);
    const first = await q.claim();
    expect(first).toMatchObject({ runId: older, idx: 0, attempt: 1 });
    const second = await q.claim();
    expect(second).toMatchObject({ runId: newer, idx: 0, attempt: 1 });
    // Each has one running and both were served: the one served longer ago, then queue order.
    expect(await q.claim()).toMatchObject({ runId: older, idx: 1 });
    expect(await q.claim()).toMatchObject({ runId: newer, idx: 1 });
    expect(await q.claim()).toBeUndefined();
  });
});

describe("concurrent claims", () => {
  it("claims in parallel on separate connections never take the same job, and every job is taken", async () => {
    const replicas = Array.from({ length: 6 }, (_, i) => replica(`replica-${i}`));
    const runs = [await submit(replicas[0], "u1", 30), await submit(replicas[0], "u2", 20), await submit(replicas[0], "u3", 10)];
    const claimed: ClaimedJob[] = [];
    const drain = async (q: JobQueue) => {
      for (let job = await q.claim(); job; job = await q.claim()) claimed.push(job);
    };
    await Promise.all(replicas.map(drain));
    // A claim may answer nothing while the others hold every job left; whatever is left, one more pass takes.
    await drain(replicas[0]);
    const keys = claimed.map((j) => `${j.runId}/${j.idx}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(60);
    const rows = (await pool.query("SELECT attempts, status, count(*)::int AS n FROM bt_jobs WHERE run_id = ANY($1) GROUP BY attempts, status", [runs])).rows;
    expect(rows).toEqual([{ attempts: 1, status: "running", n: 60 }]);
  });
});

describe("leases", () => {
  it("a job whose lease ran out is claimed again under its next attempt, and counts no longer as running", async () => {
    const a = replica("replica-a");
    const b = replica("replica-b");
    const sweep = await submit(a, "sweeper", 3);
    const stalled = await a.claim();
    const held = await a.claim();
    expect([stalled?.idx, held?.idx]).toEqual([0, 1]);
    await pool.query("UPDATE bt_jobs SET lease_until = now() - interval '1 second' WHERE run_id = $1 AND idx = 0", [sweep]);
    // Its first job's lease ran out: sweeper has one running (job 1), another user none.
    await submit(b, "one-off", 1);
    expect(await ownerOf(await b.claim())).toBe("one-off");
    const again = await b.claim();
    expect(again).toMatchObject({ runId: sweep, idx: 0, attempt: 2 });
    await expect(a.heartbeat(stalled!, 0.5)).rejects.toThrow(/no longer held/);
    expect(await a.succeed(stalled!, { stale: true })).toBe(false);
    expect(await b.succeed(again!, { fresh: true })).toBe(true);
    expect((await pool.query("SELECT max_attempts, result_attempt, worker FROM bt_jobs WHERE run_id = $1 AND idx = 0", [sweep])).rows[0])
      .toEqual({ max_attempts: 3, result_attempt: 2, worker: "replica-b" });
  });

  it("a job whose last attempt's lease ran out fails instead of being claimed", async () => {
    const a = replica("replica-a");
    const run = await submit(a, "u1", 1);
    await a.claim();
    await pool.query("UPDATE bt_jobs SET attempts = max_attempts, lease_until = now() - interval '1 second' WHERE run_id = $1", [run]);
    expect(await replica("replica-b").claim()).toBeUndefined();
    const row = (await pool.query("SELECT status, error->>'code' AS code FROM bt_jobs WHERE run_id = $1", [run])).rows[0];
    expect(row).toEqual({ status: "failed", code: "ATTEMPTS_EXHAUSTED" });
  });
});

/** The run's status. */
const statusOf = async (runId: string) => (await pool.query("SELECT status FROM bt_runs WHERE id = $1", [runId])).rows[0]?.status as string;

describe("runs settle when their last job is final, by whatever made it final", () => {
  it("a run whose last job's last attempt ran out of lease on a dead replica is failed by another replica's claim; its open siblings stay open", async () => {
    const dead = replica("killed-replica");
    const run = await submit(dead, "u1", 2);
    const done = await dead.claim();
    expect(done).toMatchObject({ runId: run, idx: 0 });
    const lost = await dead.claim();
    expect(lost).toMatchObject({ runId: run, idx: 1 });
    const siblings = [];
    for (let i = 0; i < 50; i++) siblings.push(await submit(dead, `sibling-${i % 5}`, 3));
    expect(await dead.succeed(done!, { done: true })).toBe(true);
    expect(await statusOf(run)).toBe("running");
    // The replica is killed on the job's last attempt: its lease runs out, nobody records anything.
    await pool.query("UPDATE bt_jobs SET attempts = max_attempts, lease_until = now() - interval '1 second' WHERE run_id = $1 AND idx = 1", [run]);
    const next = await replica("replica-b").claim();
    expect(siblings).toContain(next?.runId);
    expect((await pool.query("SELECT status, error->>'code' AS code FROM bt_jobs WHERE run_id = $1 AND idx = 1", [run])).rows[0])
      .toEqual({ status: "failed", code: "ATTEMPTS_EXHAUSTED" });
    expect((await pool.query("SELECT status, finished_at IS NOT NULL AS finished FROM bt_runs WHERE id = $1", [run])).rows[0])
      .toEqual({ status: "failed", finished: true });
    const open = (await pool.query("SELECT status, count(*)::int AS n FROM bt_runs WHERE id = ANY($1) GROUP BY status ORDER BY status", [siblings])).rows;
    expect(open).toEqual([{ status: "queued", n: 49 }, { status: "running", n: 1 }]);
  });

  it("the jobs of one run ending together on several replicas settle it, whichever ends last (succeed, fail, exhausted lease)", async () => {
    const replicas = Array.from({ length: 4 }, (_, i) => replica(`replica-${i}`));
    for (let round = 0; round < 15; round++) {
      const run = await submit(replicas[0], `u${round}`, 4);
      const jobs = await Promise.all(replicas.map((q) => q.claim()));
      expect(jobs.map((j) => j?.runId)).toEqual([run, run, run, run]);
      if (round % 3 === 0) {
        await Promise.all(jobs.map((j, i) => replicas[i].succeed(j!, { round })));
        expect(await statusOf(run)).toBe("succeeded");
      } else if (round % 3 === 1) {
        await Promise.all(jobs.map((j, i) => (i === round % 4 ? replicas[i].fail(j!, { code: "INVALID_INPUT", message: "bad" }) : replicas[i].succeed(j!, { round }))));
        expect(await statusOf(run)).toBe("failed");
      } else {
        // replica-0 was killed on its job's last attempt: the others' claims fail it while they record theirs.
        await pool.query("UPDATE bt_jobs SET attempts = max_attempts, lease_until = now() - interval '1 second' WHERE run_id = $1 AND idx = $2", [run, jobs[0]!.idx]);
        await Promise.all(jobs.slice(1).map(async (j, i) => {
          expect(await replicas[i + 1].claim()).toBeUndefined();
          expect(await replicas[i + 1].succeed(j!, { round })).toBe(true);
        }));
        expect(await statusOf(run)).toBe("failed");
      }
    }
  });

  it("a claim waits on no run it does not claim from (one held locked while it settles), the replica's first claim making its repair pass included", async () => {
    const q = replica("only-replica");
    const settling = await submit(q, "u1", 1);
    const other = await submit(q, "u2", 1);
    // Another replica is settling `settling` (its job is final, its run row locked until it commits).
    await pool.query("UPDATE bt_jobs SET status = 'succeeded', result = '{}', result_attempt = 1, attempts = 1, finished_at = now() WHERE run_id = $1", [settling]);
    const holder = await pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM bt_runs WHERE id = $1 FOR UPDATE", [settling]);
      // Before, every claim settled every open run, and waited here for the lock (held until the end of this test).
      const claimed = await within(q.claim(), PATIENCE_MS, "a claim while another replica settles a run");
      expect(claimed).toMatchObject({ runId: other, idx: 0 });
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
  });
});

describe("the claim marks its run running in the same statement", () => {
  it("a claim whose transaction rolls back leaves the run queued and the job unclaimed; one that commits writes both", async () => {
    const q = replica("replica-a");
    const run = await submit(q, "u1", 2);
    const c = await pool.connect();
    try {
      await c.query("BEGIN");
      const claimed = await c.query(CLAIM_SQL, ["killed-replica", 60_000]);
      expect(claimed.rows).toHaveLength(1);
      // Within the claim's transaction, both are written...
      expect((await c.query("SELECT status FROM bt_runs WHERE id = $1", [run])).rows[0].status).toBe("running");
      // ...and the replica dies before it commits.
      await c.query("ROLLBACK");
    } finally {
      c.release();
    }
    expect((await pool.query("SELECT status, started_at FROM bt_runs WHERE id = $1", [run])).rows[0]).toEqual({ status: "queued", started_at: null });
    expect((await pool.query("SELECT status, attempts, worker FROM bt_jobs WHERE run_id = $1 ORDER BY idx", [run])).rows)
      .toEqual([{ status: "queued", attempts: 0, worker: null }, { status: "queued", attempts: 0, worker: null }]);
    // One statement, committed alone: the run is running with its job.
    expect((await pool.query(CLAIM_SQL, ["replica-b", 60_000])).rows[0]).toMatchObject({ run_id: run, idx: 0, attempts: 1 });
    expect((await pool.query("SELECT status, started_at IS NOT NULL AS started FROM bt_runs WHERE id = $1", [run])).rows[0]).toEqual({ status: "running", started: true });
    // A later claim of the same run leaves its start as it was.
    const started = (await pool.query("SELECT started_at FROM bt_runs WHERE id = $1", [run])).rows[0].started_at;
    expect(await q.claim()).toMatchObject({ runId: run, idx: 1 });
    expect((await pool.query("SELECT status, started_at FROM bt_runs WHERE id = $1", [run])).rows[0]).toEqual({ status: "running", started_at: started });
  });
});

describe("runs left open with every job final (stranded by another path) are repaired, not by every claim", () => {
  /** A run whose jobs are all final (`final`) while the run says `status`, as an older release could leave it. */
  async function strand(status: "queued" | "running", final: ("succeeded" | "failed")[]): Promise<string> {
    const id = randomUUID();
    await pool.query(`INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs, status) VALUES ($1, 'old-release-user', 'sma-crossover', 'sweep', '{}', $2, $3)`, [id, final.length, status]);
    for (const [idx, s] of final.entries()) {
      await pool.query(
        `INSERT INTO bt_jobs (run_id, idx, spec, owner_id, status, attempts, result, result_attempt, error, finished_at)
         VALUES ($1, $2, '{}', 'old-release-user', $3, 1, $4, $5, $6, now())`,
        [id, idx, s, s === "succeeded" ? "{}" : null, s === "succeeded" ? 1 : null, s === "failed" ? '{"code":"INVALID_INPUT"}' : null],
      );
    }
    return id;
  }
  const runOf = async (id: string) =>
    (await pool.query("SELECT status, finished_at IS NOT NULL AS finished FROM bt_runs WHERE id = $1", [id])).rows[0];

  it("a replica's first claim settles them (failed when a job failed), open runs with unfinished jobs stay open; within the interval no claim makes a pass", async () => {
    let clock = 1_000_000;
    const q = replica("replica-a", 60_000, { everyMs: 60_000, now: () => clock });
    const running = await strand("running", ["succeeded", "succeeded"]);
    const queued = await strand("queued", ["succeeded", "failed"]);
    const open = await submit(q, "u1", 3);
    expect(await q.claim()).toMatchObject({ runId: open, idx: 0 });
    expect(q.strandedRuns.passes).toBe(1);
    expect(await runOf(running)).toEqual({ status: "succeeded", finished: true });
    expect(await runOf(queued)).toEqual({ status: "failed", finished: true });
    expect(await runOf(open)).toEqual({ status: "running", finished: false });

    // Stranded after the pass: claims within the interval do not look.
    const later = await strand("running", ["succeeded"]);
    clock += 59_999;
    expect(await q.claim()).toMatchObject({ runId: open, idx: 1 });
    expect(await q.claim()).toMatchObject({ runId: open, idx: 2 });
    expect(await q.claim()).toBeUndefined();
    expect(q.strandedRuns.passes).toBe(1);
    expect(await runOf(later)).toEqual({ status: "running", finished: false });
    // The interval is over: the next claim (finding no job) makes the pass.
    clock += 1;
    expect(await q.claim()).toBeUndefined();
    expect(q.strandedRuns.passes).toBe(2);
    expect(await runOf(later)).toEqual({ status: "succeeded", finished: true });
    expect(await runOf(open)).toEqual({ status: "running", finished: false });
  });

  it("a pass settles at most its batch (100), the next pass the rest", async () => {
    let clock = 0;
    const q = replica("replica-a", 60_000, { everyMs: 1_000, now: () => clock });
    const ids: string[] = [];
    for (let i = 0; i < 130; i++) ids.push(await strand(i % 2 ? "running" : "queued", ["succeeded"]));
    const openCount = async () => (await pool.query("SELECT count(*)::int AS n FROM bt_runs WHERE id = ANY($1) AND status IN ('queued', 'running')", [ids])).rows[0].n;
    expect(await q.strandedRuns.runIfDue()).toBe(100);
    expect(await openCount()).toBe(30);
    expect(await q.strandedRuns.runIfDue()).toBeUndefined();
    clock += 1_000;
    expect(await q.strandedRuns.runIfDue()).toBe(30);
    expect(await openCount()).toBe(0);
  });

  it("a pass skips a run whose row another transaction holds (no wait), and a later pass settles it", async () => {
    let clock = 0;
    const q = replica("replica-a", 60_000, { everyMs: 1_000, now: () => clock });
    const held = await strand("running", ["succeeded"]);
    const free = await strand("queued", ["failed"]);
    const holder = await pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM bt_runs WHERE id = $1 FOR UPDATE", [held]);
      // Were it waiting on the lock, this would not return before the holder ends.
      expect(await q.strandedRuns.runIfDue()).toBe(1);
      expect(await runOf(free)).toEqual({ status: "failed", finished: true });
      expect(await runOf(held)).toEqual({ status: "running", finished: false });
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    clock += 1_000;
    expect(await q.strandedRuns.runIfDue()).toBe(1);
    expect(await runOf(held)).toEqual({ status: "succeeded", finished: true });
  });
});

describe("runs left queued while their jobs run (a claim of an older release) are marked running by the repair pass", () => {
  it("the pass marks the run running, started when its job started; the job's end then settles it", async () => {
    let clock = 0;
    const q = replica("replica-a", 60_000, { everyMs: 1_000, now: () => clock });
    const run = await submit(q, "u1", 1);
    // An older release's claim: the job running under its lease, the run left queued (two statements, killed between them).
    await pool.query(
      `UPDATE bt_jobs SET status = 'running', attempts = 1, worker = 'old-replica', lease_until = now() + interval '1 minute', started_at = '2026-01-02T03:04:05Z' WHERE run_id = $1`,
      [run],
    );
    expect(await q.claim()).toBeUndefined();
    expect(q.strandedRuns.passes).toBe(1);
    expect(q.strandedRuns.markedRunning).toBe(1);
    const row = (await pool.query("SELECT status, started_at, finished_at FROM bt_runs WHERE id = $1", [run])).rows[0];
    expect(row).toMatchObject({ status: "running", finished_at: null });
    expect(new Date(row.started_at).toISOString()).toBe("2026-01-02T03:04:05.000Z");
    // The old replica's job ends: the run settles as any other.
    expect(await replica("old-replica").succeed({ runId: run, idx: 0, attempt: 1, spec, request }, { ok: true })).toBe(true);
    expect((await pool.query("SELECT status FROM bt_runs WHERE id = $1", [run])).rows[0].status).toBe("succeeded");
    clock += 1_000;
    await q.strandedRuns.runIfDue();
    expect(q.strandedRuns.markedRunning).toBe(1);
  });

  it("a queued run none of whose jobs started stays queued", async () => {
    const q = replica("replica-a", 60_000, { everyMs: 1_000, now: () => 0 });
    const run = await submit(q, "u1", 2);
    await q.strandedRuns.pass();
    expect(q.strandedRuns.markedRunning).toBe(0);
    expect((await pool.query("SELECT status, started_at FROM bt_runs WHERE id = $1", [run])).rows[0]).toEqual({ status: "queued", started_at: null });
  });
});

describe("the repair pass reads the open runs only (index bt_runs_open, migration 0394)", () => {
  it("with 20,000 finished runs (and jobs) and 3 open, both of its statements plan on bt_runs_open, no scan of bt_runs nor bt_jobs", async () => {
    await pool.query(
      `INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs, status, started_at, finished_at)
       SELECT gen_random_uuid(), 'history', 'sma-crossover', 'run', '{}', 1, CASE WHEN i % 5 = 0 THEN 'failed' ELSE 'succeeded' END, now(), now()
       FROM generate_series(1, 20000) AS i`,
    );
    await pool.query(
      `INSERT INTO bt_jobs (run_id, idx, spec, owner_id, status, attempts, result, result_attempt, error, finished_at)
       SELECT id, 0, '{}', 'history', status, 1, CASE WHEN status = 'succeeded' THEN '{}'::jsonb END, 1, CASE WHEN status = 'failed' THEN '{}'::jsonb END, now()
       FROM bt_runs WHERE owner_id = 'history'`,
    );
    const q = replica("replica-a");
    for (const owner of ["u1", "u2", "u3"]) await submit(q, owner, 2);
    await pool.query("ANALYZE bt_runs");
    await pool.query("ANALYZE bt_jobs");
    type PlanNode = { "Node Type": string; "Relation Name"?: string; "Index Name"?: string; Plans?: PlanNode[] };
    const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
    for (const sql of [STRANDED_RUNS_SQL, STARTED_QUEUED_RUNS_SQL]) {
      const plan = nodes((await pool.query(`EXPLAIN (FORMAT JSON) ${sql}`, [100])).rows[0]["QUERY PLAN"][0].Plan);
      expect(plan.some((n) => n["Index Name"] === "bt_runs_open")).toBe(true);
      expect(plan.filter((n) => n["Node Type"] === "Seq Scan")).toEqual([]);
    }
  });
});

describe("migration 0391", () => {
  it("a job inserted without its owner (a replica of the previous release) gets its run's", async () => {
    const id = randomUUID();
    await pool.query(`INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs) VALUES ($1, 'old-release-user', 'sma-crossover', 'run', '{}', 1)`, [id]);
    await pool.query(`INSERT INTO bt_jobs (run_id, idx, spec, max_attempts) VALUES ($1, 0, $2, 3)`, [id, JSON.stringify(spec)]);
    expect((await pool.query("SELECT owner_id FROM bt_jobs WHERE run_id = $1", [id])).rows[0].owner_id).toBe("old-release-user");
    expect(await ownerOf(await replica("replica-a").claim())).toBe("old-release-user");
  });

  it("fills the owner of every job already recorded", async () => {
    const admin = new pg.Client({ connectionString: srv.postgres.adminUrl });
    await admin.connect();
    const name = `bt_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(srv.postgres.adminUrl);
    url.pathname = `/${name}`;
    const before = new pg.Pool({ connectionString: url.toString(), max: 2 });
    const dir = mkdtempSync(join(tmpdir(), "bt-0390-"));
    try {
      for (const f of readdirSync(POSTGRES_MIGRATIONS_DIR).filter((f) => f.endsWith(".sql") && f < "0391")) copyFileSync(join(POSTGRES_MIGRATIONS_DIR, f), join(dir, f));
      await runPostgresMigrations(before, { dir });
      const id = randomUUID();
      await before.query(`INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs) VALUES ($1, 'recorded-user', 'sma-crossover', 'sweep', '{}', 2)`, [id]);
      await before.query(`INSERT INTO bt_jobs (run_id, idx, spec) VALUES ($1, 0, '{}'), ($1, 1, '{}')`, [id]);
      // 0391 first, then whatever later migrations there are by now.
      expect((await runPostgresMigrations(before, { dir: POSTGRES_MIGRATIONS_DIR })).applied[0]).toBe("0391_backtest_fair_queue.sql");
      expect((await before.query("SELECT owner_id FROM bt_jobs ORDER BY idx")).rows).toEqual([{ owner_id: "recorded-user" }, { owner_id: "recorded-user" }]);
    } finally {
      rmSync(dir, { recursive: true });
      await before.end();
    }
  });
});
