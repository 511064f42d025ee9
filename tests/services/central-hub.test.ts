/**
 * central-hub through HTTP against a real Redis (Dragonfly stand-in): heartbeats with TTL expiry,
 * fleet view, locks for singleton jobs (contention, renew/release only by the holder, expiry).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis, startRedis, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import centralHub from "../../services/src/services/central-hub";

let redis: RedisServer;
let svc: Service;
let base: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  svc = await createService(centralHub, { env: { LOG_LEVEL: "silent", DRAGONFLY_URL: redis.url, HUB_INSTANCE_TTL_MS: "10000" }, defaultMetrics: false });
  base = await svc.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

const hb = (service: string, id: string, extra: Record<string, unknown> = {}) =>
  call("PUT", `/instances/${service}/${id}`, { version: "1.2.0", address: `http://${id}:8000`, health: "healthy", ...extra });

describe("instance registry", () => {
  it("registers (201), refreshes (200) and lists live instances with versions and health", async () => {
    const first = await hb("configuration-service", "cfg-a");
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ service: "configuration-service", id: "cfg-a", version: "1.2.0", health: "healthy", ttlMs: 10000 });
    const again = await hb("configuration-service", "cfg-a", { health: "degraded" });
    expect(again.status).toBe(200);
    expect(again.body.registeredAt).toBe(first.body.registeredAt);
    await hb("configuration-service", "cfg-b", { version: "1.3.0" });
    await hb("central-hub", "hub-1", { health: "unhealthy", metadata: { zone: "a" } });
    const list = await call("GET", "/instances?service=configuration-service");
    expect(list.body.instances.map((i: { id: string }) => i.id)).toEqual(["cfg-a", "cfg-b"]);
    const fleet = await call("GET", "/fleet");
    const cfg = fleet.body.services.find((s: { service: string }) => s.service === "configuration-service");
    expect(cfg).toMatchObject({ inCatalog: true, instances: 2, versions: { "1.2.0": 1, "1.3.0": 1 }, health: { healthy: 1, degraded: 1, unhealthy: 0 } });
    const hub = fleet.body.services.find((s: { service: string }) => s.service === "central-hub");
    expect(hub.health.unhealthy).toBe(1);
    const db = fleet.body.services.find((s: { service: string }) => s.service === "database-service");
    expect(db.instances).toBe(0);
  });

  it("drops instances whose heartbeat TTL expired; a heartbeat in time keeps them", async () => {
    // TTLs of seconds and a wait on the outcome, not a sleep: a loaded 2-core machine can pause a
    // process for most of a second.
    await hb("user-management", "short", { ttlMs: 3000 });
    await hb("user-management", "kept", { ttlMs: 3000 });
    expect((await call("GET", "/instances/user-management")).body.instances).toHaveLength(2);
    const ids = async () => (await call("GET", "/instances/user-management")).body.instances.map((i: { id: string }) => i.id);
    const beating = setInterval(() => void hb("user-management", "kept", { ttlMs: 3000 }).catch(() => undefined), 500);
    try {
      await expect.poll(ids, { timeout: 60_000, interval: 200 }).toEqual(["kept"]);
    } finally {
      clearInterval(beating);
    }
    // Without heartbeats "kept" expires too.
    await expect.poll(ids, { timeout: 60_000, interval: 200 }).toEqual([]);
  });

  it("deregisters on shutdown and validates input (400 naming the field)", async () => {
    await hb("api-gateway", "gw-1");
    expect((await call("DELETE", "/instances/api-gateway/gw-1")).status).toBe(204);
    expect((await call("DELETE", "/instances/api-gateway/gw-1")).status).toBe(404);
    const bad = await hb("api-gateway", "gw-2", { health: "fine" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("health");
    const badTtl = await hb("api-gateway", "gw-2", { ttlMs: 10 });
    expect(badTtl.body.error.field).toBe("ttlMs");
    expect((await hb("API_Gateway", "gw-2")).body.error.field).toBe("service");
    // The schemas allow what the router's path-parameter limit (100) lets through, no more.
    const long = await hb("api-gateway", "x".repeat(101));
    expect([long.status, long.body.error.field]).toEqual([414, "url"]);
    expect((await hb("api-gateway", "x".repeat(100))).status).toBe(201);
    expect((await call("POST", `/locks/${"n".repeat(100)}/acquire`, { owner: "o", ttlMs: 1000 })).status).toBe(200);
  });

  it("through the gateway, reads and writes need the admin role (instances name internal addresses)", async () => {
    const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
    expect((await call("PUT", "/instances/api-gateway/x", { version: "1", address: "a", health: "healthy" }, trader)).status).toBe(403);
    for (const path of ["/instances", "/instances/api-gateway", "/fleet", "/locks/some-job"]) {
      const r = await call("GET", path, undefined, trader);
      expect([r.status, r.body.error?.code]).toEqual([403, "FORBIDDEN"]);
    }
    expect((await call("GET", "/instances", undefined, admin)).status).toBe(200);
  });
});

describe("locks for singleton jobs", () => {
  it("only one of concurrent acquirers wins; the others see the holder", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call("POST", "/locks/daily-report/acquire", { owner: `worker-${i}`, ttlMs: 600_000 })),
    );
    const winners = results.filter((r) => r.status === 200);
    const losers = results.filter((r) => r.status === 409);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(7);
    expect(winners[0].body.token).toMatch(/^[0-9a-f]{32}$/);
    expect(losers[0].body.holder.owner).toBe(winners[0].body.owner);
    expect(losers[0].body.error.code).toBe("LOCKED");
    const info = await call("GET", "/locks/daily-report");
    expect(info.body.owner).toBe(winners[0].body.owner);
    // Remaining TTL is counted down from the 600 s asked (a loaded machine may take seconds between the calls).
    expect(info.body.ttlRemainingMs).toBeGreaterThan(0);
    expect(info.body.ttlRemainingMs).toBeLessThanOrEqual(600_000);
  });

  it("renew and release only by the holder's token; then another can acquire with a higher fencing token", async () => {
    const a = await call("POST", "/locks/rebalance/acquire", { owner: "a", ttlMs: 2000 });
    expect(a.status).toBe(200);
    const wrong = "0".repeat(32);
    expect((await call("POST", "/locks/rebalance/renew", { token: wrong, ttlMs: 5000 })).status).toBe(409);
    expect((await call("POST", "/locks/rebalance/release", { token: wrong })).status).toBe(409);
    // Renewed far past the 2 s acquired (a loaded machine may take seconds between the calls).
    expect((await call("POST", "/locks/rebalance/renew", { token: a.body.token, ttlMs: 60_000 })).status).toBe(200);
    expect((await call("GET", "/locks/rebalance")).body.ttlRemainingMs).toBeGreaterThan(2000);
    expect((await call("POST", "/locks/rebalance/release", { token: a.body.token })).status).toBe(204);
    expect((await call("POST", "/locks/rebalance/release", { token: a.body.token })).status).toBe(404);
    expect((await call("GET", "/locks/rebalance")).status).toBe(404);
    const b = await call("POST", "/locks/rebalance/acquire", { owner: "b", ttlMs: 2000 });
    expect(b.status).toBe(200);
    expect(b.body.fencingToken).toBeGreaterThan(a.body.fencingToken);
  });

  it("an expired lock can be taken over and the old holder can no longer renew it", async () => {
    const a = await call("POST", "/locks/expiring/acquire", { owner: "a", ttlMs: 3000 });
    expect(a.status).toBe(200);
    expect((await call("POST", "/locks/expiring/acquire", { owner: "b", ttlMs: 3000 })).status).toBe(409);
    await expect.poll(async () => (await call("GET", "/locks/expiring")).status, { timeout: 60_000, interval: 200 }).toBe(404);
    expect((await call("POST", "/locks/expiring/renew", { token: a.body.token, ttlMs: 1000 })).status).toBe(404);
    const b = await call("POST", "/locks/expiring/acquire", { owner: "b", ttlMs: 5000 });
    expect(b.status).toBe(200);
    expect((await call("POST", "/locks/expiring/renew", { token: a.body.token, ttlMs: 1000 })).status).toBe(409);
    expect((await call("POST", "/locks/expiring/acquire", { owner: "x|y", ttlMs: 1000 })).body.error.field).toBe("owner");
  });
});

describe("hostile timing on locks and the registry", () => {
  it("a 409 names the holder it lost to, even when that holder releases at the same moment", async () => {
    // The holder used to be read after the failed acquire, in a second round trip: a release in
    // between answered 409 with holder null, for a lock nobody held.
    const nullHolders: number[] = [];
    for (let i = 0; i < 150; i++) {
      const a = await call("POST", "/locks/race-holder/acquire", { owner: "a", ttlMs: 60_000 });
      expect(a.status).toBe(200);
      const [b] = await Promise.all([
        call("POST", "/locks/race-holder/acquire", { owner: "b", ttlMs: 60_000 }),
        call("POST", "/locks/race-holder/release", { token: a.body.token }),
      ]);
      if (b.status === 409 && b.body.holder === null) nullHolders.push(i);
      if (b.status === 200) await call("POST", "/locks/race-holder/release", { token: b.body.token });
    }
    expect(nullHolders).toEqual([]);
  });

  it("instances that stopped beating leave the index even when nobody lists", async () => {
    const client = new Redis(redis.url);
    try {
      for (let i = 0; i < 5; i++) await hb("backtesting-engine", `gone-${i}`, { ttlMs: 500 });
      await expect.poll(async () => (await client.mget(...[0, 1, 2, 3, 4].map((i) => `hub:instance:backtesting-engine:gone-${i}`))).every((v) => v === null), { timeout: 60_000, interval: 100 }).toBe(true);
      await hb("backtesting-engine", "alive");
      const members = await client.zrange("hub:instances", 0, -1);
      expect(members.filter((m) => m.startsWith("backtesting-engine"))).toEqual(["backtesting-engine\u0000alive"]);
    } finally {
      client.disconnect();
    }
  });
});

describe("idempotent acquire (Idempotency-Key)", () => {
  const acquire = (name: string, owner: string, key: string, ttlMs = 600_000) => call("POST", `/locks/${name}/acquire`, { owner, ttlMs }, { "idempotency-key": key });

  it("a retry with the same key and owner while the lock is held answers the same token, fencing number and expiry", async () => {
    const first = await acquire("idem-lost", "job-a", "k-lost-1");
    expect(first.status).toBe(200);
    const retry = await acquire("idem-lost", "job-a", "k-lost-1");
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    // Another key of the same owner is another acquisition: the lock is held.
    expect((await acquire("idem-lost", "job-a", "k-lost-2")).status).toBe(409);
    // After a renewal the replay answers the renewed expiry (what the lock holds now), same token and number.
    const renewed = await call("POST", "/locks/idem-lost/renew", { token: first.body.token, ttlMs: 900_000 });
    expect(renewed.status).toBe(200);
    const afterRenew = await acquire("idem-lost", "job-a", "k-lost-1");
    expect(afterRenew.body).toEqual({ ...first.body, expiresAt: renewed.body.expiresAt });
  });

  it("after release the same key does not bring the lock back: 409 naming the key; a new key acquires with a higher number", async () => {
    const first = await acquire("idem-released", "job-a", "k-rel-1");
    expect((await call("POST", "/locks/idem-released/release", { token: first.body.token })).status).toBe(204);
    const retry = await acquire("idem-released", "job-a", "k-rel-1");
    expect(retry.status).toBe(409);
    expect(retry.body.error).toMatchObject({ code: "IDEMPOTENCY_KEY_USED", field: "idempotency-key" });
    expect(JSON.stringify(retry.body)).not.toContain(first.body.token);
    expect((await call("GET", "/locks/idem-released")).status).toBe(404);
    // The released acquisition's token is gone for good.
    expect((await call("POST", "/locks/idem-released/renew", { token: first.body.token, ttlMs: 1000 })).status).toBe(404);
    expect((await call("POST", "/locks/idem-released/release", { token: first.body.token })).status).toBe(404);
    const fresh = await acquire("idem-released", "job-a", "k-rel-2");
    expect(fresh.status).toBe(200);
    expect(fresh.body.token).not.toBe(first.body.token);
    expect(fresh.body.fencingToken).toBeGreaterThan(first.body.fencingToken);
  });

  it("after expiry the same key acquires anew: a new token and a higher fencing number", async () => {
    const first = await acquire("idem-expired", "job-a", "k-exp-1", 1000);
    expect(first.status).toBe(200);
    await expect.poll(async () => (await call("GET", "/locks/idem-expired")).status, { timeout: 60_000, interval: 100 }).toBe(404);
    const retry = await acquire("idem-expired", "job-a", "k-exp-1", 60_000);
    expect(retry.status).toBe(200);
    expect(retry.body.token).not.toBe(first.body.token);
    expect(retry.body.fencingToken).toBeGreaterThan(first.body.fencingToken);
    expect((await call("POST", "/locks/idem-expired/renew", { token: first.body.token, ttlMs: 1000 })).status).toBe(409);
  });

  it("another owner presenting someone's key gets 409 and the holder, never the token", async () => {
    const first = await acquire("idem-owner", "job-a", "k-owner-1");
    expect(first.status).toBe(200);
    const thief = await acquire("idem-owner", "job-b", "k-owner-1");
    expect(thief.status).toBe(409);
    expect(thief.body.holder.owner).toBe("job-a");
    expect(JSON.stringify(thief.body)).not.toContain(first.body.token);
    // The key is bound to the lock too: the same key and owner on another lock is another acquisition.
    const other = await acquire("idem-owner-2", "job-a", "k-owner-1");
    expect(other.status).toBe(200);
    expect(other.body.token).not.toBe(first.body.token);
  });

  it("concurrent acquires with different keys: one wins, and each key's retry answers as its first try did", async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `k-race-${i}`);
    const first = await Promise.all(keys.map((k, i) => acquire("idem-race", `worker-${i}`, k)));
    expect(first.filter((r) => r.status === 200)).toHaveLength(1);
    const again = await Promise.all(keys.map((k, i) => acquire("idem-race", `worker-${i}`, k)));
    expect(again.map((r) => r.status)).toEqual(first.map((r) => r.status));
    const winner = first.findIndex((r) => r.status === 200);
    expect(again[winner].body).toEqual(first[winner].body);
  });

  it("a lock written before the key and expiry fields existed is still named, refused, renewed and released", async () => {
    const client = new Redis(redis.url);
    try {
      const token = "ab".repeat(16);
      await client.set("hub:lock:old-format", `${token}|old-job|${Date.now()}`, "PX", 60_000);
      const other = await acquire("old-format", "old-job", "k-old-1");
      expect(other.status).toBe(409);
      expect(other.body.holder.owner).toBe("old-job");
      expect((await call("POST", "/locks/old-format/renew", { token, ttlMs: 120_000 })).status).toBe(200);
      expect(await client.pttl("hub:lock:old-format")).toBeGreaterThan(60_000);
      expect((await call("POST", "/locks/old-format/release", { token })).status).toBe(204);
      expect(await client.exists("hub:lock:old-format")).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  it("a malformed key is a 400 naming the header; an empty one counts as none", async () => {
    for (const bad of ["has space", "a|b", "x".repeat(129), "é"]) {
      const r = await call("POST", "/locks/idem-bad/acquire", { owner: "a", ttlMs: 1000 }, { "idempotency-key": bad });
      expect(r.status, bad).toBe(400);
      expect(r.body.error.field).toBe("idempotency-key");
    }
    expect((await call("GET", "/locks/idem-bad")).status).toBe(404);
    expect((await call("POST", "/locks/idem-bad/acquire", { owner: "a", ttlMs: 1000 }, { "idempotency-key": "" })).status).toBe(200);
  });
});

describe("client helpers (startHeartbeat, withHubLock)", () => {
  it("keeps an instance registered while running and deregisters on stop", async () => {
    const { startHeartbeat } = await import("../../services/src/services/central-hub/client");
    let health: "healthy" | "degraded" = "healthy";
    // Beats every 2 s, TTL 6 s: a beat may come up to 4 s late on a loaded machine before the instance expires.
    const hbc = startHeartbeat({ baseUrl: base, service: "risk-analyzer", id: "ra-1", version: "2.0.0", address: "http://ra-1:8005", intervalMs: 2000, health: () => health });
    await expect.poll(async () => (await call("GET", "/instances/risk-analyzer")).body.instances.length).toBe(1);
    health = "degraded";
    await sleep(7000); // longer than the TTL (3 intervals, 6 s): still there because it keeps beating
    const inst = (await call("GET", "/instances/risk-analyzer")).body.instances;
    expect(inst).toHaveLength(1);
    expect(inst[0].health).toBe("degraded");
    await hbc.stop();
    expect((await call("GET", "/instances/risk-analyzer")).body.instances).toEqual([]);
  });

  it("runs a job under a lock, renews it past its TTL, rejects a second runner, releases after", async () => {
    const { withHubLock, LockHeldError } = await import("../../services/src/services/central-hub/client");
    // Renewed every 2 s, TTL 6 s: a renewal may come up to 4 s late on a loaded machine before the lock is lost.
    const opts = { baseUrl: base, name: "nightly", owner: "job-a", ttlMs: 6000 };
    const result = await withHubLock(opts, async (lock) => {
      expect(lock.fencingToken).toBeGreaterThan(0);
      await sleep(13_000); // > 2 TTLs: renewals keep it
      expect(lock.signal.aborted).toBe(false);
      await expect(withHubLock({ ...opts, owner: "job-b" }, async () => "ran")).rejects.toBeInstanceOf(LockHeldError);
      return "done";
    });
    expect(result).toBe("done");
    expect((await call("GET", "/locks/nightly")).status).toBe(404);
    expect(await withHubLock({ ...opts, owner: "job-b" }, async () => "ran")).toBe("ran");
  });
  it("an acquire whose answer is lost is retried once with the same key and gets the acquisition the hub made", async () => {
    const { withHubLock } = await import("../../services/src/services/central-hub/client");
    // A proxy that forwards every request to the hub but cuts the connection instead of relaying
    // the first acquire's answer: the hub acquired, the client never heard.
    const seen: { headers: IncomingHttpHeaders; answer: Record<string, unknown> }[] = [];
    let dropped = false;
    const proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers: Record<string, string> = {};
      for (const h of ["content-type", "idempotency-key"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h] as string;
      const upstream = await fetch(`${base}${req.url}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      const text = await upstream.text();
      if (req.url?.endsWith("/acquire")) seen.push({ headers: req.headers, answer: text ? JSON.parse(text) : {} });
      if (req.url?.endsWith("/acquire") && !dropped) {
        dropped = true;
        req.socket.destroy();
        return;
      }
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" }).end(text);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const viaProxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const held = await withHubLock({ baseUrl: viaProxy, name: "lost-answer", owner: "job-a", ttlMs: 60_000 }, async (lock) => ({ token: lock.token, fencingToken: lock.fencingToken }));
      expect(seen).toHaveLength(2);
      expect(seen[0].headers["idempotency-key"]).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      expect(seen[1].headers["idempotency-key"]).toBe(seen[0].headers["idempotency-key"]);
      expect(held).toEqual({ token: seen[0].answer.token, fencingToken: seen[0].answer.fencingToken });
      // Released after the job: free for the next run, which sends a key of its own.
      expect((await call("GET", "/locks/lost-answer")).status).toBe(404);
      await withHubLock({ baseUrl: viaProxy, name: "lost-answer", owner: "job-a", ttlMs: 60_000 }, async () => undefined);
      expect(seen[2].headers["idempotency-key"]).not.toBe(seen[0].headers["idempotency-key"]);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
  it("a job whose renewals get no answer is told the lock is lost when its TTL runs out", async () => {
    const { withHubLock } = await import("../../services/src/services/central-hub/client");
    // A proxy that relays the acquire and cuts every renewal: the hub never hears of them, so the
    // lock expires there while the job would otherwise run on, believing it holds it.
    const proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.url?.endsWith("/renew")) return void req.socket.destroy();
      const headers: Record<string, string> = {};
      for (const h of ["content-type", "idempotency-key"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h] as string;
      const upstream = await fetch(`${base}${req.url}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      res.writeHead(upstream.status, { "content-type": "application/json" }).end(await upstream.text());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const viaProxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const aborted = await withHubLock({ baseUrl: viaProxy, name: "silent-renewals", owner: "job-a", ttlMs: 1500 }, async (lock) => {
        await expect.poll(() => lock.signal.aborted, { timeout: 30_000, interval: 50 }).toBe(true);
        return true;
      });
      expect(aborted).toBe(true);
      // By then the hub had let it go: another runner gets it.
      await expect.poll(async () => (await call("POST", "/locks/silent-renewals/acquire", { owner: "job-b", ttlMs: 1000 })).status, { timeout: 30_000, interval: 100 }).toBe(200);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});
