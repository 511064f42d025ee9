/**
 * The kill switch's audit history (`GET /trading-state/global/history`, `.../users/:userId/history`,
 * admin) in pages on real PostgreSQL and Redis (found by session 47's hunt): `nextBefore` was the
 * last id of any full page, so a history whose size is a multiple of `limit` ended on a page that
 * announced another, empty one. It is null on the last page now, as on every paged listing of the
 * platform, and walking the pages answers every change once.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { pg } from "../harness";
import { useServers } from "../harness/shared";
import { migrateAll } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import riskAnalyzer from "../../services/src/services/risk-analyzer";

const srv = useServers("postgres", "redis", "kafka", "clickhouse");
let pool: InstanceType<typeof pg.Pool>;
let risk: Service;
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  risk = await createService(riskAnalyzer, { env: { ...srv.env, LOG_LEVEL: "silent", TRADING_STATE_RECONCILE_MS: "600000" }, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await risk?.close();
  await pool?.end();
});

async function call(method: "GET" | "PUT", url: string, body?: unknown, headers: Record<string, string> = admin) {
  const r = await risk.app.inject({ method, url, headers, ...(body ? { payload: body as object } : {}) });
  return { status: r.statusCode, body: r.json() };
}

describe("the kill switch's audit: how the caller signed in, as it was", () => {
  it("a peer's change is recorded `service`; one without x-auth-method is a 401 naming it, nothing recorded", async () => {
    const user = randomUUID();
    await pool.query("INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', 'trader')", [user, `${user}@example.com`]);
    const bare = await call("PUT", `/trading-state/users/${user}`, { state: "halted", reason: "no auth method" }, { "x-user-id": admin["x-user-id"], "x-user-role": "admin" });
    expect([bare.status, bare.body.error?.field]).toEqual([401, "x-auth-method"]);
    expect((await call("GET", `/trading-state/users/${user}/history`)).body.changes).toEqual([]);
    const peer = { ...admin, "x-auth-method": "service" };
    for (const state of ["halted", "active"]) expect((await call("PUT", `/trading-state/users/${user}`, { state, reason: `peer: ${state}` }, peer)).status).toBe(200);
    const { changes } = (await call("GET", `/trading-state/users/${user}/history`)).body;
    expect(changes.map((c: { authMethod: string }) => c.authMethod)).toEqual(["service", "service"]);
    expect(changes[0]).toMatchObject({ to: "active", changedBy: admin["x-user-id"] });
  });
});

describe("the kill switch's history in pages", () => {
  it("walks every change once; nextBefore is null on the last page, a full one included", async () => {
    for (const state of ["halted", "reduce_only", "active", "halted", "active", "reduce_only"])
      expect((await call("PUT", "/trading-state/global", { state, reason: `to ${state}` })).status).toBe(200);
    const whole = await call("GET", "/trading-state/global/history");
    expect(whole.body.changes).toHaveLength(6);
    expect(whole.body.nextBefore).toBeNull();
    for (const limit of [1, 2, 3, 4, 6]) {
      const seen: string[] = [];
      let url = `/trading-state/global/history?limit=${limit}`;
      for (let page = 0; page < 10; page++) {
        const r = await call("GET", url);
        expect(r.status).toBe(200);
        expect(r.body.changes.length, `limit ${limit}, page ${page}`).toBeGreaterThan(0);
        seen.push(...r.body.changes.map((c: { id: string }) => c.id));
        if (r.body.nextBefore === null) break;
        url = `/trading-state/global/history?limit=${limit}&before=${r.body.nextBefore}`;
      }
      expect(seen, `limit ${limit}`).toEqual(whole.body.changes.map((c: { id: string }) => c.id));
    }
  });

  it("a user's history the same way", async () => {
    const user = randomUUID();
    await pool.query("INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', 'trader')", [user, `${user}@example.com`]);
    for (const state of ["halted", "active"]) expect((await call("PUT", `/trading-state/users/${user}`, { state, reason: `to ${state}` })).status).toBe(200);
    const page = await call("GET", `/trading-state/users/${user}/history?limit=2`);
    expect([page.body.changes.length, page.body.nextBefore]).toEqual([2, null]);
    const first = await call("GET", `/trading-state/users/${user}/history?limit=1`);
    expect(first.body.nextBefore).toBe(first.body.changes[0].id);
  });
});
