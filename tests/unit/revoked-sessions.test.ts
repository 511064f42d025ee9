/**
 * The gateway's record of sessions ended alone (api-gateway/revoked-sessions.ts): the orders of events
 * no real server interleaves on demand. A stub stands for Dragonfly's EXISTS.
 */
import { describe, expect, it } from "vitest";
import { RevokedSessions } from "../../services/src/services/api-gateway/revoked-sessions";

function setup(opts: { subscribed?: boolean; max?: number } = {}) {
  let subscribed = opts.subscribed ?? true;
  const inDragonfly = new Set<string>();
  let reads = 0;
  let duringRead: () => void = () => undefined;
  const redis = {
    exists: async (key: string) => {
      reads++;
      const answer = inDragonfly.has(key.slice("auth:session-revoked:".length)) ? 1 : 0;
      duringRead(); // what happens while the answer is on its way back
      return answer;
    },
  };
  const sessions = new RevokedSessions(redis as never, () => subscribed, 30_000, opts.max);
  return {
    sessions,
    inDragonfly,
    reads: () => reads,
    setSubscribed: (v: boolean) => (subscribed = v),
    onRead: (f: () => void) => (duringRead = f),
  };
}

describe("the gateway's revoked sessions", () => {
  it("a revocation heard while a read was out wins over the read's 'live' answer", async () => {
    const t = setup();
    t.onRead(() => t.sessions.heard("s1")); // SET after the read, message before its answer
    expect(await t.sessions.isRevoked("s1")).toBe(true);
    expect(t.sessions.peek("s1")).toBe(true);
  });

  it("a live answer is reused only while subscribed; a dropped subscription forgets it and reads through", async () => {
    const t = setup();
    expect(await t.sessions.isRevoked("s2")).toBe(false);
    expect(t.sessions.peek("s2")).toBe(false);
    t.sessions.heard("*"); // subscription down: a revocation may be missed
    t.setSubscribed(false);
    t.inDragonfly.add("s2");
    expect(t.sessions.peek("s2")).toBeUndefined();
    expect(await t.sessions.isRevoked("s2")).toBe(true);
    expect(t.reads()).toBe(2);
  });

  it("a read that a resubscription overlapped is not kept", async () => {
    const t = setup();
    t.onRead(() => t.sessions.heard("*"));
    expect(await t.sessions.isRevoked("s3")).toBe(false);
    expect(t.sessions.peek("s3")).toBeUndefined();
  });

  it("stays bounded; a revocation forgotten to make room is read from Dragonfly again", async () => {
    const t = setup({ max: 100 });
    for (let i = 0; i < 1_000; i++) {
      t.inDragonfly.add(`r${i}`);
      t.sessions.heard(`r${i}`);
    }
    expect(t.sessions.size.revoked).toBeLessThanOrEqual(100);
    expect(await t.sessions.isRevoked("r0")).toBe(true);
  });
});
