/**
 * configuration-service over real HTTP against real PostgreSQL and Redis: concurrent writes of a key
 * that does not exist yet with `expectedVersion: 0` ("must not exist"). A writer's FOR UPDATE read
 * finds no row to lock while another creates it; before session 40 it then read the version history
 * after the other's commit, upserted over the other's value as version 2 and answered 201: two
 * creators both "created" the key and the first one's value was lost (found by session 40's race hunt).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import configurationService from "../../services/src/services/configuration-service";
import { runPostgresMigrations, POSTGRES_MIGRATIONS_DIR } from "../../services/src/migrations";

const srv = useServers("postgres", "redis");
let svc: Service;
let base: string;
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt", "content-type": "application/json" };

async function call(method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { ...admin };
  if (body === undefined) delete headers["content-type"];
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  const pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  await pool.end();
  svc = await createService(configurationService, { env: { LOG_LEVEL: "silent", POSTGRES_URL: srv.postgres.url, ...srv.redis.env }, defaultMetrics: false });
  base = await svc.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => svc?.close());

const WRITERS = 30;
const KEYS = 20;

describe("concurrent creations with expectedVersion 0", () => {
  it(`${WRITERS} writers on each of ${KEYS} new keys: one creates it, the others get 409 and change nothing`, async () => {
    for (let k = 0; k < KEYS; k++) {
      const path = `/namespaces/create-race/keys/k-${randomUUID().slice(0, 8)}`;
      // Arrivals spread over a few milliseconds, so that some come while the first creation commits.
      const rs = await Promise.all(Array.from({ length: WRITERS }, (_, i) => new Promise((r) => setTimeout(r, i / 3)).then(() => call("PUT", path, { value: { writer: i }, expectedVersion: 0 }))));
      for (const r of rs) expect([201, 409], JSON.stringify(r.body)).toContain(r.status);
      const created = rs.filter((r) => r.status === 201);
      expect(created.length).toBe(1);
      for (const r of rs.filter((x) => x.status === 409)) expect(r.body.error).toMatchObject({ code: "CONFLICT", field: "expectedVersion" });
      // The one creation is what is stored, as version 1, and the history holds it alone.
      expect(created[0].body.version).toBe(1);
      expect((await call("GET", path)).body.version).toBe(1);
      const history = await call("GET", `${path}/versions`);
      expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([1]);
    }
  });
});
