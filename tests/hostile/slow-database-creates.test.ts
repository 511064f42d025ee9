/**
 * Concurrent creates while PostgreSQL takes no new connection (session 55). Two full suites at once on
 * this 2-core host (each suite's test files share one PostgreSQL server) answered 503 to 1 of 10
 * concurrent backtest submissions and 2 of 10 concurrent creations of one plan in
 * ./races.test.ts, where 202/409 and 201/409 are right; the file alone, even at load 15, never did.
 * A burst of 10 grows a service's pool by up to 10 connections, and a server at its connection limit
 * refuses the new ones (SQLSTATE 53300, "too many clients"): the kit took that for an outage and
 * answered 503 DATASTORE_UNAVAILABLE at once, though the pool's own connections were free again a
 * few milliseconds later. The kit's pool now waits for one of them, or for the server to take a new
 * one, within POSTGRES_CONNECT_TIMEOUT_MS (kit datastores/postgres.ts).
 *
 * Reproduced without timing: each service under test connects as a role of its own with a CONNECTION
 * LIMIT below its pool's size (PostgreSQL refuses the role's next connection with the same 53300 a full
 * server gives), so a burst needs more connections than the server will give, every time.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import { createPostgres } from "../../services/src/kit/datastores/postgres";
import { isTransientError } from "../../services/src/kit/transient-errors";
import { registry } from "../../services/src/registry";
import { pg } from "../harness";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { RaceClient, statuses } from "./race-rig";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
const ADMIN = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
/** Connections each limited role may hold at once: below the services' pool size (POSTGRES_POOL_MAX 10). */
const ROLE_CONNECTIONS = 2;
const run = randomBytes(3).toString("hex");
const roles: string[] = [];
let p: Platform;
const limited: Service<any>[] = [];
let gatewayUrl = "";
const c = new RaceClient(() => gatewayUrl);

/** A role that may hold `connections` connections of this file's database, with the rights the services need; its URL. */
async function limitedRole(name: string, connections: number): Promise<string> {
  const role = `h_${name}_${run}`;
  const password = randomBytes(12).toString("hex");
  const admin = new pg.Client({ connectionString: srv.postgres.url });
  await admin.connect();
  try {
    const db = (await admin.query<{ db: string }>("SELECT current_database() AS db")).rows[0].db;
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' CONNECTION LIMIT ${connections}`);
    roles.push(role);
    for (const grant of [
      `GRANT CONNECT ON DATABASE ${db} TO ${role}`,
      `GRANT USAGE ON SCHEMA public TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
      `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
    ])
      await admin.query(grant);
  } finally {
    await admin.end();
  }
  const u = new URL(srv.postgres.url);
  u.username = role;
  u.password = password;
  return u.toString();
}

beforeAll(async () => {
  p = await startPlatform(srv.env, { BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password, BACKTEST_WORKER: "false", BACKTEST_MAX_OPEN_JOBS_PER_USER: "3", BILLING_CYCLE_INTERVAL_MS: "0" }, { only: ["api-gateway", "user-management"] });
  // backtesting-engine and billing-service on limited roles, and a gateway in front of them.
  const urls: Record<string, string> = {};
  for (const [name, envVar] of [["backtesting-engine", "SERVICE_BACKTESTING_ENGINE_URL"], ["billing-service", "SERVICE_BILLING_SERVICE_URL"]] as const) {
    const s = await createService(await registry[name](), { env: { ...p.env, POSTGRES_URL: await limitedRole(name.split("-")[0], ROLE_CONNECTIONS), POSTGRES_POOL_MAX: "10" }, defaultMetrics: false });
    limited.push(s);
    urls[envVar] = await s.listen({ port: 0, host: "127.0.0.1" });
  }
  const gateway = await createService(await registry["api-gateway"](), { env: { ...p.env, ...urls, GATEWAY_FAST_LANE: "true" }, defaultMetrics: false });
  limited.push(gateway);
  gatewayUrl = await gateway.listen({ port: 0, host: "127.0.0.1" });
}, 600_000);

afterAll(async () => {
  for (const s of limited.reverse()) await s.close().catch(() => undefined);
  await p?.close();
  if (roles.length === 0) return;
  const admin = new pg.Client({ connectionString: srv.postgres.url });
  await admin.connect();
  try {
    for (const role of roles) await admin.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  } finally {
    await admin.end();
  }
}, 120_000);

describe(`concurrent creates while PostgreSQL takes no more than ${ROLE_CONNECTIONS} connections of a service whose pool holds 10`, () => {
  it("10 backtests submitted at once at BACKTEST_MAX_OPEN_JOBS_PER_USER 3: 3 x 202 and 7 x 409, never a 503", async () => {
    const u = await c.user("slow-db-backtests");
    const backtest = (seed: number) => ({ strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-03-01T00:00:00Z" }, data: { source: "synthetic", seed } });
    const made = await c.burst(10, (i) => c.send("POST", "/api/backtests", { token: u.token, body: backtest(i + 1) }));
    expect(statuses(made), made.map((a) => a.text).join(" ").slice(0, 400)).toEqual([...Array(3).fill(202), ...Array(7).fill(409)]);
    expect(c.failures).toEqual([]);
  });

  it("one plan created 10 times at once: 201 once, 409 PLAN_EXISTS naming id 9 times, never a 503", async () => {
    const admin = (await c.login(ADMIN.email, ADMIN.password)).token;
    const id = `slow-${randomBytes(3).toString("hex")}`;
    const plans = await c.burst(10, () => c.send("POST", "/api/billing/plans", { token: admin, body: { id, name: `plan ${id}`, currency: "usd", amount: 1_000, interval: "month" } }));
    expect(statuses(plans), plans.map((a) => a.text).join(" ").slice(0, 400)).toEqual([201, ...Array(9).fill(409)]);
    for (const a of plans.filter((x) => x.status === 409)) expect([a.json.error.code, a.json.error.field]).toEqual(["PLAN_EXISTS", "id"]);
    expect(c.failures).toEqual([]);
  });
});

describe("the kit's pool when PostgreSQL refuses a new connection (53300)", () => {
  const silent = { warn: () => undefined } as unknown as Parameters<typeof createPostgres>[1];

  it("statements and transactions beyond the connections the server gives wait for the pool's own: 30 at once on 2 connections, all done", async () => {
    const url = await limitedRole("kitwait", ROLE_CONNECTIONS);
    const db = createPostgres({ POSTGRES_URL: url, POSTGRES_POOL_MAX: 10, POSTGRES_CONNECT_TIMEOUT_MS: 30_000 } as Parameters<typeof createPostgres>[0], silent);
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 ? db.query<{ n: number }>("SELECT $1::int AS n, pg_sleep(0.02)", [i]).then((r) => r.rows[0].n) : db.transaction(async (tx) => (await tx.query<{ n: number }>("SELECT $1::int AS n", [i])).rows[0].n),
        ),
      );
      expect(answers).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(db.pool.totalCount).toBeLessThanOrEqual(ROLE_CONNECTIONS);
    } finally {
      await db.close();
    }
  });

  it("a server that gives no connection for longer than POSTGRES_CONNECT_TIMEOUT_MS is still an outage: the 53300 error, transient (503 DATASTORE_UNAVAILABLE)", async () => {
    const url = await limitedRole("kitfull", ROLE_CONNECTIONS);
    // Another process holds every connection the role may have, for the whole test.
    const holders = Array.from({ length: ROLE_CONNECTIONS }, () => new pg.Client({ connectionString: url }));
    for (const h of holders) await h.connect();
    const db = createPostgres({ POSTGRES_URL: url, POSTGRES_POOL_MAX: 10, POSTGRES_CONNECT_TIMEOUT_MS: 300 } as Parameters<typeof createPostgres>[0], silent);
    try {
      const err = await db.query("SELECT 1").then(() => undefined, (e: unknown) => e);
      expect((err as { code?: string }).code).toBe("53300");
      expect(isTransientError(err)).toBe(true);
      const inTx = await db.transaction(async () => undefined).then(() => undefined, (e: unknown) => e);
      expect((inTx as { code?: string }).code).toBe("53300");
    } finally {
      await db.close();
      for (const h of holders) await h.end();
    }
  });
});
