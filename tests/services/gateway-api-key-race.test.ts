/**
 * The gateway's in-process API key cache and a revocation announced while a lookup is out: the
 * answer of that lookup is used once, never cached (it used to be, and the revoked key then worked
 * in that gateway until it restarted). Stubs for Dragonfly, user-management and the user states:
 * the order of events is the point, and no real server can be made to interleave them on demand.
 */
import { createSecretKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Authenticator } from "../../services/src/services/api-gateway/authenticate";
import { generateApiKey, hashApiKey } from "../../services/src/services/user-management/api-keys";

function setup(revokeDuringLookup: boolean) {
  const { key } = generateApiKey();
  const identity = { userId: "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", role: "trader", apiKeyId: "11111111-2222-4333-8444-555555555555" };
  const state = { status: "active", role: "trader", epoch: 0 } as const;
  const states = { subscribed: true, onApiKeyRevoked: (_h: string) => undefined, peek: () => state, get: async () => state };
  let lookups = 0;
  const peers = {
    call: async () => {
      lookups++;
      // The revocation is announced before this answer (verified before the revocation committed) arrives.
      if (revokeDuringLookup) states.onApiKeyRevoked(hashApiKey(key).toString("hex"));
      return { status: 200, body: identity };
    },
  };
  const auth = new Authenticator({
    key: createSecretKey(Buffer.alloc(64, 1)),
    maxTokenAgeS: 3600,
    redis: { get: async () => null } as never,
    peers: peers as never,
    states: states as never,
    limits: { assertKeyAttemptsLeft: async () => undefined, recordKeyFailure: async () => undefined } as never,
  });
  return { auth, key, lookups: () => lookups };
}

describe("gateway API key cache and revocations", () => {
  it("caches a verified key when no revocation overlapped its lookup", async () => {
    const { auth, key, lookups } = setup(false);
    expect((await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r1", 1000)).identity?.authMethod).toBe("api-key");
    expect(auth.cached({ "x-api-key": key })?.identity?.userId).toBeDefined();
    expect(lookups()).toBe(1);
  });

  it("does not cache a lookup that a revocation overlapped: the next request looks the key up again", async () => {
    const { auth, key, lookups } = setup(true);
    await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r1", 1000);
    expect(auth.cached({ "x-api-key": key })).toBeUndefined();
    await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r2", 1000);
    expect(lookups()).toBe(2);
  });
});
