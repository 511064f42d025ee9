/**
 * configuration-service through HTTP against real PostgreSQL and Redis (Dragonfly stand-in):
 * versions and audit trail, optimistic concurrency (409), rollback, cache-aside with invalidation,
 * pub/sub change notification, validation (400 naming the field), roles.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, Redis, type IORedis, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import configurationService, { subscribeConfigChanges, watchNamespace, type ConfigChange } from "../../services/src/services/configuration-service";
import { cacheKey, generationKey } from "../../services/src/services/configuration-service/store";
import { runPostgresMigrations, POSTGRES_MIGRATIONS_DIR } from "../../services/src/migrations";
import { PATIENCE_MS } from "../helpers/patience";

const srv = useServers("postgres");
let redis: RedisServer;
let svc: Service;
let base: string;
let r: IORedis.Redis;
const ADMIN = randomUUID();
const TRADER = randomUUID();
const admin = { "x-user-id": ADMIN, "x-user-role": "admin", "x-auth-method": "jwt", "content-type": "application/json" };

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = admin) {
  const h = { ...headers };
  if (body === undefined) delete (h as Record<string, string>)["content-type"];
  const res = await fetch(`${base}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  redis = await startRedis();
  const pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  await pool.end();
  svc = await createService(configurationService, {
    env: { LOG_LEVEL: "silent", POSTGRES_URL: srv.postgres.url, DRAGONFLY_URL: redis.url, CONFIG_MAX_VALUE_BYTES: "1024", CONFIG_CACHE_TTL_SECONDS: "60" },
    defaultMetrics: false,
  });
  base = await svc.listen({ port: 0, host: "127.0.0.1" });
  r = new Redis(redis.url);
  r.on("error", () => undefined); // the degraded-cache test kills the server
});
afterAll(async () => {
  r?.disconnect();
  await svc?.close();
  await redis?.stop();
});

describe("versions, audit trail, concurrency, rollback", () => {
  it("creates, updates with expected version, rejects stale versions with 409", async () => {
    const c = await call("PUT", "/namespaces/risk-management/keys/max.position", { value: { usd: 1000 } });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ namespace: "risk-management", key: "max.position", version: 1, operation: "set", changedBy: ADMIN });
    const u = await call("PUT", "/namespaces/risk-management/keys/max.position", { value: { usd: 2000 }, expectedVersion: 1 });
    expect(u.status).toBe(200);
    expect(u.body.version).toBe(2);
    const stale = await call("PUT", "/namespaces/risk-management/keys/max.position", { value: { usd: 3000 }, expectedVersion: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: "CONFLICT", field: "expectedVersion" });
    expect(stale.body.error.message).toContain("version 2");
    const mustBeNew = await call("PUT", "/namespaces/risk-management/keys/max.position", { value: 1, expectedVersion: 0 });
    expect(mustBeNew.status).toBe(409);
    const g = await call("GET", "/namespaces/risk-management/keys/max.position");
    expect(g.body).toMatchObject({ value: { usd: 2000 }, version: 2, updatedBy: ADMIN });
  });

  it("keys named like Object.prototype members are ordinary keys: 404 until set, then their own value", async () => {
    for (const key of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
      const missing = await call("GET", `/namespaces/proto-names/keys/${key}`);
      expect(missing.status, key).toBe(404);
      expect(missing.body.error.code).toBe("NOT_FOUND");
    }
    expect((await call("PUT", "/namespaces/proto-names/keys/constructor", { value: { kept: 1 } })).status).toBe(201);
    const g = await call("GET", "/namespaces/proto-names/keys/constructor");
    expect(g.status).toBe(200);
    expect(g.body).toMatchObject({ key: "constructor", value: { kept: 1 }, version: 1 });
    expect((await call("GET", "/namespaces/proto-names/keys/toString")).status).toBe(404);
  });

  it("keeps who/when/old/new/request id for every version, rolls back as a new version", async () => {
    const rid = "req-rollback-1";
    const rb = await call("POST", "/namespaces/risk-management/keys/max.position/rollback", { version: 1, expectedVersion: 2 }, { ...admin, "x-request-id": rid });
    expect(rb.status).toBe(200);
    expect(rb.body).toMatchObject({ version: 3, operation: "rollback", requestId: rid });
    expect((await call("GET", "/namespaces/risk-management/keys/max.position")).body.value).toEqual({ usd: 1000 });
    const h = await call("GET", "/namespaces/risk-management/keys/max.position/versions");
    expect(h.body.versions.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
    expect(h.body.versions[0]).toMatchObject({ operation: "rollback", oldValue: { usd: 2000 }, newValue: { usd: 1000 }, changedBy: ADMIN, requestId: rid, rollbackOf: 1 });
    expect(h.body.versions[2]).toMatchObject({ operation: "set", oldValue: null, newValue: { usd: 1000 } });
    expect(new Date(h.body.versions[0].changedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await call("POST", "/namespaces/risk-management/keys/max.position/rollback", { version: 99 })).status).toBe(404);
  });

  it("deletes as a version; re-creating continues the numbering; audit lists the namespace", async () => {
    const d = await call("DELETE", "/namespaces/risk-management/keys/max.position?expectedVersion=3");
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ version: 4, operation: "delete" });
    expect((await call("GET", "/namespaces/risk-management/keys/max.position")).status).toBe(404);
    expect((await call("DELETE", "/namespaces/risk-management/keys/max.position")).status).toBe(404);
    expect((await call("POST", "/namespaces/risk-management/keys/max.position/rollback", { version: 4 })).body.error.field).toBe("version");
    const again = await call("PUT", "/namespaces/risk-management/keys/max.position", { value: null, expectedVersion: 0 });
    expect(again.status).toBe(201);
    expect(again.body.version).toBe(5);
    expect((await call("GET", "/namespaces/risk-management/keys/max.position")).body.value).toBeNull();
    const audit = await call("GET", "/namespaces/risk-management/audit?limit=3");
    expect(audit.body.changes.map((c: { version: number; key: string }) => `${c.key}@${c.version}`)).toEqual(["max.position@5", "max.position@4", "max.position@3"]);
  });

  it("lets exactly one of concurrent writers with the same expected version win", async () => {
    await call("PUT", "/namespaces/race/keys/k", { value: 0 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => call("PUT", "/namespaces/race/keys/k", { value: i, expectedVersion: 1 })));
    expect(results.map((x) => x.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    // without expectedVersion: last write wins, every write gets its own version
    const lww = await Promise.all(Array.from({ length: 5 }, (_, i) => call("PUT", "/namespaces/race/keys/fresh", { value: i })));
    expect(lww.every((x) => x.status === 200 || x.status === 201)).toBe(true);
    expect(lww.map((x) => x.body.version).sort()).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("validation and roles", () => {
  it("400 naming the field for bad keys, namespaces, values and sizes", async () => {
    const badKey = await call("PUT", "/namespaces/ok/keys/" + encodeURIComponent("bad key!"), { value: 1 });
    expect(badKey.status).toBe(400);
    expect(badKey.body.error.field).toBe("key");
    const badNs = await call("PUT", "/namespaces/Bad_NS/keys/k", { value: 1 });
    expect(badNs.status).toBe(400);
    expect(badNs.body.error.field).toBe("namespace");
    const noValue = await call("PUT", "/namespaces/ok/keys/k", { expectedVersion: 1 });
    expect(noValue.status).toBe(400);
    expect(noValue.body.error.field).toBe("value");
    const big = await call("PUT", "/namespaces/ok/keys/k", { value: "x".repeat(2000) });
    expect(big.status).toBe(400);
    expect(big.body.error.field).toBe("value");
    expect(big.body.error.message).toContain("limit is 1024");
    const extra = await call("PUT", "/namespaces/ok/keys/k", { value: 1, other: 2 });
    expect(extra.body.error.field).toBe("other");
    const badVersion = await call("PUT", "/namespaces/ok/keys/k", { value: 1, expectedVersion: -1 });
    expect(badVersion.body.error.field).toBe("expectedVersion");
    // Beyond PostgreSQL's integer (was a 500 from inside the query).
    for (const [body, field] of [[{ version: 2147483648 }, "version"], [{ version: 1, expectedVersion: 2147483648 }, "expectedVersion"]] as const) {
      const r = await call("POST", "/namespaces/ok/keys/k/rollback", body);
      expect([r.status, r.body.error.field]).toEqual([400, field]);
    }
  });

  it("a value is stored as sent: an integer beyond ±(2^53 - 1), which JSON.parse rounds, is a 400 naming where it is", async () => {
    const put = (raw: string) => fetch(`${base}/namespaces/exact/keys/limit`, { method: "PUT", headers: admin, body: raw }).then(async (r) => ({ status: r.status, body: await r.json() }));
    for (const [raw, field] of [['{"value":9007199254740993}', "value"], ['{"value":{"caps":[1,-18446744073709551615]}}', "value.caps.1"]] as const) {
      const r = await put(raw);
      expect([r.status, r.body.error.code, r.body.error.field], raw).toEqual([400, "VALIDATION_ERROR", field]);
    }
    expect((await call("GET", "/namespaces/exact/keys/limit")).status).toBe(404);
    expect((await put('{"value":{"max":9007199254740991,"ratio":0.1,"big":"9007199254740993"}}')).status).toBe(201);
    expect((await call("GET", "/namespaces/exact/keys/limit")).body.value).toEqual({ max: 9007199254740991, ratio: 0.1, big: "9007199254740993" });
  });

  it("writes and the history need an admin identity from the gateway; the current values do not", async () => {
    expect((await call("PUT", "/namespaces/ok/keys/k", { value: 1 }, { "content-type": "application/json" })).status).toBe(401);
    expect((await call("PUT", "/namespaces/ok/keys/k", { value: 1 }, { "x-user-id": TRADER, "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" })).status).toBe(403);
    // The history names the admins, their request ids and the values replaced (before: any caller read it).
    const trader = { "x-user-id": TRADER, "x-user-role": "trader", "x-auth-method": "jwt" };
    for (const path of ["/namespaces/risk-management/keys/max.position/versions", "/namespaces/risk-management/audit"]) {
      expect((await call("GET", path, undefined, trader)).status, path).toBe(403);
      expect((await call("GET", path, undefined, {})).status, path).toBe(401);
    }
    expect((await call("GET", "/namespaces/risk-management", undefined, {})).status).toBe(200);
    expect((await call("GET", "/internal/namespaces/risk-management", undefined, {})).body.entries["max.position"].version).toBe(5);
  });

  // Session 38's hunt: the history was the admins' own already, but every entry of a namespace (and
  // of a key) named the admin who last wrote it, `updatedBy`, to any trader.
  it("who wrote a value is for admins: a trader reads the values without updatedBy, cached or not", async () => {
    await call("PUT", "/namespaces/writer-test/keys/max.leverage", { value: 3 });
    const trader = { "x-user-id": TRADER, "x-user-role": "trader", "x-auth-method": "jwt" };
    const miss = await call("GET", "/namespaces/writer-test", undefined, trader);
    expect(miss.headers.get("x-cache")).toBe("miss");
    const hit = await call("GET", "/namespaces/writer-test", undefined, trader);
    expect(hit.headers.get("x-cache")).toBe("hit");
    for (const r of [miss, hit]) {
      expect(r.status).toBe(200);
      expect(r.body.entries["max.leverage"]).toEqual({ value: 3, version: 1, updatedAt: expect.any(String) });
    }
    const key = await call("GET", "/namespaces/writer-test/keys/max.leverage", undefined, trader);
    expect(key.body).toEqual({ namespace: "writer-test", key: "max.leverage", value: 3, version: 1, updatedAt: expect.any(String) });
    expect(JSON.stringify([miss.body, hit.body, key.body])).not.toContain(ADMIN);
    // Admins, and peers on /internal, still see who wrote it.
    expect((await call("GET", "/namespaces/writer-test")).body.entries["max.leverage"].updatedBy).toBe(ADMIN);
    expect((await call("GET", "/namespaces/writer-test/keys/max.leverage")).body.updatedBy).toBe(ADMIN);
    expect((await call("GET", "/internal/namespaces/writer-test", undefined, {})).body.entries["max.leverage"].updatedBy).toBe(ADMIN);
  });
});

describe("cache-aside in Dragonfly", () => {
  it("serves from cache after the first read and invalidates on write", async () => {
    await call("PUT", "/namespaces/cache-test/keys/a", { value: 1 });
    const first = await call("GET", "/namespaces/cache-test");
    expect(first.headers.get("x-cache")).toBe("miss");
    const second = await call("GET", "/namespaces/cache-test");
    expect(second.headers.get("x-cache")).toBe("hit");
    expect(second.body.entries.a.value).toBe(1);
    const gen = (await r.get(generationKey("cache-test"))) ?? "0";
    expect(await r.ttl(cacheKey("cache-test", gen))).toBeGreaterThan(0);
    await call("PUT", "/namespaces/cache-test/keys/a", { value: 2 });
    expect(await r.exists(cacheKey("cache-test", gen))).toBe(0);
    expect(await r.get(generationKey("cache-test"))).toBe(String(Number(gen) + 1));
    const third = await call("GET", "/namespaces/cache-test/keys/a");
    expect(third.headers.get("x-cache")).toBe("miss");
    expect(third.body.value).toBe(2);
  });

  it("a snapshot loaded before a write cannot be served after it (generation in the cache key)", async () => {
    await call("PUT", "/namespaces/race-cache/keys/a", { value: "old" });
    const gen = (await r.get(generationKey("race-cache"))) ?? "0";
    // a slow reader stores the pre-write snapshot after the write committed and invalidated:
    await call("PUT", "/namespaces/race-cache/keys/a", { value: "new" });
    await r.set(cacheKey("race-cache", gen), JSON.stringify({ namespace: "race-cache", entries: { a: { value: "old", version: 1 } } }), "EX", 60);
    const g = await call("GET", "/namespaces/race-cache/keys/a");
    expect(g.body.value).toBe("new");
  });
});

describe("change notification", () => {
  it("publishes every committed change on the namespace channel; watchNamespace stays current", async () => {
    const got: ConfigChange[] = [];
    const all: ConfigChange[] = [];
    const sub = subscribeConfigChanges(r, ["notify-test"], (c) => void got.push(c));
    const subAll = subscribeConfigChanges(r, "*", (c) => void all.push(c));
    const watched = watchNamespace(r, "notify-test", async () => (await call("GET", "/internal/namespaces/notify-test", undefined, {})).body.entries);
    await Promise.all([sub.ready, subAll.ready, watched.ready]);
    expect(watched.get()).toEqual({});
    await call("PUT", "/namespaces/notify-test/keys/flag", { value: true }, { ...admin, "x-request-id": "req-n-1" });
    await call("PUT", "/namespaces/other-ns/keys/flag", { value: true });
    await call("DELETE", "/namespaces/notify-test/keys/flag");
    await call("PUT", "/namespaces/notify-test/keys/flag2", { value: "on" });
    await expect.poll(() => got.length, { timeout: PATIENCE_MS }).toBe(3);
    expect(got[0]).toMatchObject({ namespace: "notify-test", key: "flag", version: 1, operation: "set", changedBy: ADMIN, requestId: "req-n-1" });
    expect(got[1]).toMatchObject({ key: "flag", version: 2, operation: "delete" });
    await expect.poll(() => all.map((c) => c.namespace).sort().join(","), { timeout: PATIENCE_MS }).toBe("notify-test,notify-test,notify-test,other-ns");
    await expect.poll(() => JSON.stringify(Object.keys(watched.get() ?? {})), { timeout: PATIENCE_MS }).toBe('["flag2"]');
    await Promise.all([sub.close(), subAll.close(), watched.close()]);
  });
});

describe("degraded cache", () => {
  it("keeps serving reads and writes from PostgreSQL when Dragonfly is down", async () => {
    await redis.kill();
    const g = await call("GET", "/namespaces/risk-management/keys/max.position");
    expect(g.status).toBe(200);
    expect(g.headers.get("x-cache")).toBe("error");
    const w = await call("PUT", "/namespaces/risk-management/keys/while-down", { value: 1 });
    expect(w.status).toBe(201);
    await redis.restart();
  });
});
