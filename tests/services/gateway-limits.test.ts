/**
 * The gateway's leased rate-limit counter (services/src/services/api-gateway/leased-counter.ts)
 * against a real Redis: replicas sharing a key never admit more than the limit in a window, a
 * spent window is refused without a round trip, a new window starts over, an unreachable
 * Dragonfly rejects (the callers fail open).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, Redis, type RedisServer } from "../harness";
import { LeasedCounter, leaseSize } from "../../services/src/services/api-gateway/leased-counter";

let redis: RedisServer;
const clients: InstanceType<typeof Redis>[] = [];
const client = () => {
  const c = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: false });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

describe("LeasedCounter", () => {
  it("three replicas hammering one key admit exactly the limit, then refuse", async () => {
    const max = 1_000;
    const replicas = [new LeasedCounter(client()), new LeasedCounter(client()), new LeasedCounter(client())];
    const hits = await Promise.all(Array.from({ length: 1_500 }, (_, i) => replicas[i % 3].hit("t:shared", max, 600_000)));
    const admitted = hits.filter((h) => h.current <= max).length;
    // Never more than the limit; at most (replicas - 1) unspent leases fewer.
    expect(admitted).toBeLessThanOrEqual(max);
    expect(admitted).toBeGreaterThanOrEqual(max - 2 * leaseSize(max));
    expect(Number(await client().get(`t:shared:${max}`))).toBeLessThanOrEqual(max);
    for (const h of hits) expect(h.ttl).toBeGreaterThan(0);
  });

  it("a small limit is counted request by request, with exact counts", async () => {
    const c = new LeasedCounter(client());
    const currents = [];
    for (let i = 0; i < 5; i++) currents.push((await c.hit("t:small", 3, 600_000)).current);
    expect(currents.slice(0, 3)).toEqual([1, 2, 3]);
    expect(currents[3]).toBeGreaterThan(3);
    expect(currents[4]).toBeGreaterThan(3);
  });

  it("a spent window is refused locally: a flood beyond the limit sends nothing to Dragonfly", async () => {
    const r = client();
    const c = new LeasedCounter(r);
    for (let i = 0; i < 3; i++) await c.hit("t:flood", 2, 600_000);
    const sent: string[] = [];
    const orig = r.sendCommand.bind(r);
    r.sendCommand = (cmd, stream) => {
      sent.push(cmd.name);
      return orig(cmd, stream);
    };
    const flood = await Promise.all(Array.from({ length: 200 }, () => c.hit("t:flood", 2, 600_000)));
    expect(flood.every((h) => h.current > 2)).toBe(true);
    expect(sent).toEqual([]);
  });

  it("a new window starts over (a lease never outlives its Dragonfly window)", async () => {
    const r = client();
    const c = new LeasedCounter(r);
    for (let i = 0; i < 3; i++) await c.hit("t:window", 2, 300);
    while ((await r.pttl("t:window:2")) !== -2) await new Promise((res) => setTimeout(res, 50));
    expect((await c.hit("t:window", 2, 300)).current).toBe(1);
  });

  it("a lease live at canHit's instant is live at tryHit's given the same instant (session 59: a lease ending between the two left the fast lane's count undefined, and the gateway's process ended)", async () => {
    const c = new LeasedCounter(client());
    await c.lease("t:edge", 100, 1_000);
    expect(c.canHit("t:edge")).toBe(true);
    // The lease's end, found from the instants at which it is live and not.
    let live = Date.now();
    let ended = live + 2_000;
    while (ended - live > 1) {
      const mid = Math.floor((live + ended) / 2);
      if (c.canHit("t:edge", mid)) live = mid;
      else ended = mid;
    }
    // Decided at its last live millisecond, counted a millisecond later: nothing to count (the old clock read each).
    expect(c.canHit("t:edge", live)).toBe(true);
    expect(c.tryHit("t:edge", 100, ended)).toBeUndefined();
    // Counted at the instant it was decided at: counted.
    const hit = c.tryHit("t:edge", 100, live);
    expect(hit).toBeDefined();
    expect(hit!.current).toBeGreaterThan(0);
    expect(hit!.ttl).toBeGreaterThanOrEqual(0);
  });

  it("a lease asked for in a window's last milliseconds is asked again: the caller finds a live lease, not the old window's tail (session 60: ~30 fast-lane requests a window turn went to Fastify so)", async () => {
    const r = client();
    const c = new LeasedCounter(r);
    // Each round: a window with 0-3 ms left in Dragonfly, then a lease, as the fast lane's warm-up asks for one.
    let tails = 0;
    for (let i = 0; i < 60; i++) {
      const key = `t:tail-${i}`;
      await r.set(`${key}:100`, "10", "PX", 1 + (i % 3));
      await c.lease(key, 100, 1_000);
      if (c.canHit(key)) continue;
      tails++;
    }
    expect(tails).toBe(0);
  });

  it("rejects when Dragonfly is unreachable", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
    clients.push(dead);
    await expect(new LeasedCounter(dead).hit("t:dead", 10, 1_000)).rejects.toThrow();
  });
});
