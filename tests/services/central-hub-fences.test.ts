/**
 * central-hub's fence counters (`hub:lock-fence:<name>`) on a real Redis (Dragonfly stand-in): a
 * counter expires (twice HUB_LOCK_MAX_TTL_MS after the name's last acquisition) and fencing still
 * holds across it: every acquisition's fencing number is above every earlier one of that name,
 * whether the counter expired, was lost, ran ahead of the clock or was written by older code. Before
 * (found by session 38's hunt), the counters never expired; one that went (an expiry, a flush) would
 * have restarted fences at 1, below those the jobs' systems had already seen.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis, startRedis, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import centralHub from "../../services/src/services/central-hub";

let redis: RedisServer;
let client: InstanceType<typeof Redis>;
let svc: Service;
const MAX_LOCK_TTL_MS = 1000;

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  client = new Redis(redis.url);
  svc = await createService(centralHub, { env: { LOG_LEVEL: "silent", DRAGONFLY_URL: redis.url, HUB_LOCK_MAX_TTL_MS: String(MAX_LOCK_TTL_MS) }, defaultMetrics: false });
});
afterAll(async () => {
  await svc?.close();
  client?.disconnect();
  await redis?.stop();
});

async function call(method: string, url: string, payload?: unknown) {
  const r = await svc.app.inject({ method, url, payload: payload as Record<string, unknown> | undefined });
  return { status: r.statusCode, body: r.body ? r.json() : undefined };
}
const acquire = async (name: string, ttlMs = 200) => {
  const r = await call("POST", `/locks/${name}/acquire`, { owner: "job", ttlMs });
  expect(r.status).toBe(200);
  return r.body as { token: string; fencingToken: number };
};
const release = async (name: string, token: string) => expect((await call("POST", `/locks/${name}/release`, { token })).status).toBeLessThan(300);
const fenceKey = (name: string) => `hub:lock-fence:${name}`;

describe("fence counters expire and fencing holds", () => {
  it("a counter lives at most twice HUB_LOCK_MAX_TTL_MS after an acquisition, refreshed by each, then is gone", async () => {
    const first = await acquire("expiring");
    const pttl = await client.pttl(fenceKey("expiring"));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2 * MAX_LOCK_TTL_MS);
    await release("expiring", first.token);
    // Bounded wait on the outcome (a loaded machine can pause a process), not a sleep-and-assert.
    await expect.poll(() => client.exists(fenceKey("expiring")), { timeout: 30_000, interval: 100 }).toBe(0);
    // Expired: the next acquisition's fence is still above the last one, and the counter is back with a lifetime.
    const next = await acquire("expiring");
    expect(next.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(await client.pttl(fenceKey("expiring"))).toBeGreaterThan(0);
    await release("expiring", next.token);
  });

  it("fences keep increasing across acquire / counter-gone cycles, and across a lock that expired unreleased", async () => {
    const fences: number[] = [];
    for (let i = 0; i < 6; i++) {
      const a = await acquire("cycled");
      fences.push(a.fencingToken);
      if (i % 2 === 0) await release("cycled", a.token);
      else await expect.poll(() => client.exists("hub:lock:cycled"), { timeout: 30_000, interval: 50 }).toBe(0); // the stale holder's lock expires
      await client.del(fenceKey("cycled")); // the counter gone, as at its expiry or a flush
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]);
    for (const f of fences) expect(Number.isSafeInteger(f)).toBe(true);
  });

  it("while it lives, the counter keeps fences above a clock that is behind it; a counter of older code is passed too", async () => {
    const ahead = (Date.now() + 86_400_000) * 1000; // a day of microseconds ahead: a clock stepped back
    await client.set(fenceKey("ahead"), String(ahead));
    const a = await acquire("ahead");
    expect(a.fencingToken).toBe(ahead + 1);
    await release("ahead", a.token);
    expect((await acquire("ahead")).fencingToken).toBe(ahead + 2);
    // A counter written by INCR before this change (small numbers, no lifetime).
    await client.set(fenceKey("legacy"), "41");
    const l = await acquire("legacy");
    expect(l.fencingToken).toBeGreaterThan(41);
    expect(await client.pttl(fenceKey("legacy"))).toBeGreaterThan(0);
    // A replayed acquisition (same idempotency key and owner) answers the stored fence exactly.
    await release("legacy", l.token);
    const keyed = await svc.app.inject({ method: "POST", url: "/locks/keyed/acquire", payload: { owner: "job", ttlMs: MAX_LOCK_TTL_MS }, headers: { "idempotency-key": "k-1" } });
    const again = await svc.app.inject({ method: "POST", url: "/locks/keyed/acquire", payload: { owner: "job", ttlMs: MAX_LOCK_TTL_MS }, headers: { "idempotency-key": "k-1" } });
    expect([keyed.statusCode, again.statusCode, again.json().fencingToken]).toEqual([200, 200, keyed.json().fencingToken]);
    expect(Number.isSafeInteger(keyed.json().fencingToken)).toBe(true);
  });
});

describe("the caller's clock is a floor too (Dragonfly's TIME inside a script answers 0)", () => {
  it("a counter gone and a caller's clock ahead of the server's: the fence is at least the caller's microsecond", async () => {
    // ACQUIRE run as locks.ts runs it, with the caller's now a day ahead of the server's: what a
    // datastore whose TIME answers 0 leaves to the caller's clock, and the fence must still come from a clock.
    const { ACQUIRE } = await import("../../services/src/services/central-hub/lock-scripts");
    const now = Date.now() + 86_400_000;
    const reply = (await client.eval(ACQUIRE, 2, "hub:lock:floor", fenceKey("floor"), "tok", "job", String(now), "200", String(now + 200), "", String(2 * MAX_LOCK_TTL_MS))) as string[];
    expect(reply[0]).toBe("acquired");
    expect(Number(reply[2])).toBeGreaterThanOrEqual(now * 1000);
    expect(Number.isSafeInteger(Number(reply[2]))).toBe(true);
  });
});
