/**
 * One user's crowd of requests on a per-user advisory lock, and another user's request (session 56).
 *
 * Backtest submissions of one owner take turns on an advisory lock (backtesting-engine queue.ts). A
 * transaction waiting on pg_advisory_xact_lock holds its pool connection meanwhile, so when the holder
 * is slow (here: this test, holding the owner's lock from a session of its own, as a slow transaction of
 * another replica would) that owner's requests at once held every connection of the pool, and another
 * owner's submission waited for the pool until POSTGRES_CONNECT_TIMEOUT_MS and answered 503
 * DATASTORE_UNAVAILABLE (measured with the lock taken inside the transaction: 6 of one owner on a pool
 * of 3, the other owner's 503 after 2 s). The kit's `transaction(fn, { lock })` now waits for the lock's
 * turn in the process without a connection: one owner holds one connection however many wait.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { pg } from "../harness";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { RaceClient } from "./race-rig";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
/** backtesting-engine's key space of the per-owner submission lock (queue.ts SUBMIT_LOCK_SPACE, "bt"). */
const SUBMIT_LOCK_SPACE = 0x6274;
const POOL = 3;
const CROWD = 6;
let p: Platform;
let engine: Service<any>;
let gateway: Service<any>;
let gatewayUrl = "";
let admin: InstanceType<typeof pg.Client>;
const c = new RaceClient(() => gatewayUrl);

beforeAll(async () => {
  p = await startPlatform(srv.env, { BACKTEST_WORKER: "false", BACKTEST_MAX_OPEN_JOBS_PER_USER: "50", BILLING_CYCLE_INTERVAL_MS: "0" }, { only: ["api-gateway", "user-management"] });
  // A pool of 3 whose checkout gives up after 2 s: the crowd is twice the pool. The crowd waits as long
  // as this test holds the owner's lock (its arrival on a loaded host included): the kit's bound on a
  // lock wait (POSTGRES_LOCK_WAIT_MS, 10 s by default; tests/services/kit-postgres-lock-bounds.test.ts) at its most.
  engine = await createService(await registry["backtesting-engine"](), { env: { ...p.env, POSTGRES_POOL_MAX: String(POOL), POSTGRES_CONNECT_TIMEOUT_MS: "2000", POSTGRES_LOCK_WAIT_MS: "600000" }, defaultMetrics: false });
  const engineUrl = await engine.listen({ port: 0, host: "127.0.0.1" });
  gateway = await createService(await registry["api-gateway"](), { env: { ...p.env, SERVICE_BACKTESTING_ENGINE_URL: engineUrl, GATEWAY_FAST_LANE: "true" }, defaultMetrics: false });
  gatewayUrl = await gateway.listen({ port: 0, host: "127.0.0.1" });
  admin = new pg.Client({ connectionString: srv.postgres.url });
  await admin.connect();
}, 600_000);

afterAll(async () => {
  await admin?.end().catch(() => undefined);
  await gateway?.close().catch(() => undefined);
  await engine?.close().catch(() => undefined);
  await p?.close();
}, 120_000);

const backtest = (seed: number) => ({ strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-03-01T00:00:00Z" }, data: { source: "synthetic", seed } });

/** Sessions of the test's database waiting on an advisory lock now. */
const advisoryWaiters = async () =>
  Number((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).rows[0].n);

describe("a crowd of one owner's submissions while another replica holds the owner's lock", () => {
  it(`${CROWD} submissions of one owner at once on a pool of ${POOL}: they hold one connection; another owner's submission answers 202; the ${CROWD} answer 202 once the lock is let go`, async () => {
    const [crowded, other] = [await c.user("crowded"), await c.user("other")];
    await admin.query("SELECT pg_advisory_lock($1, hashtext($2))", [SUBMIT_LOCK_SPACE, crowded.id]);
    let released = false;
    try {
      const crowd = Promise.all(Array.from({ length: CROWD }, (_, i) => c.send("POST", "/api/backtests", { token: crowded.token, body: backtest(i + 1) })));
      // Every one of the crowd arrived: waiting on the lock in PostgreSQL, for the pool, or for the lock's turn in the process.
      const pg = engine.app.pg;
      await expect.poll(async () => (await advisoryWaiters()) + pg.pool.waitingCount + pg.turns.waiting, { timeout: 120_000, interval: 100 }).toBe(CROWD);
      expect(await advisoryWaiters()).toBe(1);

      const answer = await c.send("POST", "/api/backtests", { token: other.token, body: backtest(100) });
      expect(answer.status, answer.text.slice(0, 300)).toBe(202);
      expect(await advisoryWaiters()).toBe(1);

      await admin.query("SELECT pg_advisory_unlock($1, hashtext($2))", [SUBMIT_LOCK_SPACE, crowded.id]);
      released = true;
      const answers = await crowd;
      expect(answers.map((a) => a.status), answers.map((a) => a.text).join(" ").slice(0, 400)).toEqual(Array(CROWD).fill(202));
      expect(pg.turns.waiting).toBe(0);
      expect(c.failures).toEqual([]);
    } finally {
      if (!released) await admin.query("SELECT pg_advisory_unlock($1, hashtext($2))", [SUBMIT_LOCK_SPACE, crowded.id]);
    }
  });
});
