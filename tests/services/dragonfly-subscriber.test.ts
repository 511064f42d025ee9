/**
 * kit subscribeDragonfly against a real Redis (Dragonfly stand-in) that is killed and restarted:
 * messages flow again after a restart, onDown/onLive bracket the outage, and closing right after a
 * reconnect leaves no unhandled rejection (ioredis' own re-subscription left one, which ends a
 * Node process: it failed the CI once through the gateway's user-state subscription).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, Redis, type RedisServer, type IORedis } from "../harness";
import { subscribeDragonfly } from "../../services/src/kit";

let server: RedisServer;
let client: IORedis.Redis;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  server = await startRedis({ persistent: false });
  client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on("error", () => undefined);
  process.on("unhandledRejection", onUnhandled);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  client?.disconnect();
  await server?.stop();
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Publishes until the subscriber has seen a message on `channel` (a publish before the SUBSCRIBE lands is lost). */
async function publishUntilSeen(channel: string, seen: string[]): Promise<void> {
  const before = seen.length;
  await until(`a message on ${channel}`, async () => {
    await client.publish(channel, `m${seen.length}`).catch(() => 0);
    await new Promise((r) => setTimeout(r, 50));
    return seen.length > before;
  });
}

describe("subscribeDragonfly", () => {
  it("delivers on channels and patterns, again after a restart, and reports the outage", async () => {
    const seen: string[] = [];
    const events: string[] = [];
    const errors: Error[] = [];
    const sub = subscribeDragonfly(client, {
      channels: ["sub-test:a"],
      patterns: ["sub-test:p:*"],
      onMessage: (channel, message) => void seen.push(`${channel}=${message}`),
      onError: (e) => void errors.push(e),
      onLive: () => void events.push("live"),
      onDown: () => void events.push("down"),
    });
    try {
      await sub.ready;
      expect(sub.live).toBe(true);
      await publishUntilSeen("sub-test:a", seen);
      await publishUntilSeen("sub-test:p:x", seen);
      expect(seen.some((s) => s.startsWith("sub-test:p:x="))).toBe(true);

      await server.kill();
      await until("the subscriber to notice the outage", () => !sub.live);
      await server.restart();
      await until("the subscriber to be live again", () => sub.live);
      await publishUntilSeen("sub-test:a", seen);
      await publishUntilSeen("sub-test:p:y", seen);
      expect(events.slice(0, 3)).toEqual(["live", "down", "live"]);
    } finally {
      await sub.close();
    }
    expect(sub.live).toBe(false);
  });

  it("closing during re-subscription after a restart leaves no unhandled rejection", async () => {
    // Many subscribers, closed the moment their connection is ready again, so that some close
    // while their SUBSCRIBE is still in flight (the window ioredis' autoResubscribe left unhandled).
    const connections: IORedis.Redis[] = [];
    const watched = Object.assign(Object.create(client) as IORedis.Redis, {
      duplicate: (...args: Parameters<IORedis.Redis["duplicate"]>) => {
        const c = client.duplicate(...args);
        connections.push(c);
        return c;
      },
    });
    const subs = Array.from({ length: 20 }, (_, i) =>
      subscribeDragonfly(watched, { channels: [`sub-race:${i}`], onMessage: () => undefined, onError: () => undefined }),
    );
    await Promise.all(subs.map((s) => s.ready));
    await server.kill();
    await until("every subscriber to notice the outage", () => subs.every((s) => !s.live));
    await server.restart();
    await until("a first subscriber back", () => subs.some((s) => s.live), 20_000);
    await Promise.all(subs.map((s) => s.close()));
    // close() resolved once each connection had ended (or, waiting to reconnect, was dropped with
    // nothing left that can settle): every command sent on them has been answered or refused.
    expect(connections).toHaveLength(20);
    expect(connections.map((c) => c.status).filter((s) => s !== "end" && s !== "reconnecting")).toEqual([]);
    // Node reports a rejection nobody handled once the microtasks after it have run: one turn of the event loop.
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  });

  it("refuses a subscription to nothing", () => {
    expect(() => subscribeDragonfly(client, { onMessage: () => undefined, onError: () => undefined })).toThrow("no channel and no pattern");
  });
});
