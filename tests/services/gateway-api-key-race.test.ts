/**
 * The gateway's in-process API key cache and a revocation announced while a lookup is out: the
 * answer of that lookup is used once, never cached (it used to be, and the revoked key then worked
 * in that gateway until it restarted). Expiry: a cached key is refused from its expiry on, by the
 * synchronous path too (no request gets through on the cache after that instant). Stubs for
 * Dragonfly, user-management and the user states: the order of events is the point, and no real
 * server can be made to interleave them on demand.
 */
import { createSecretKey } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Authenticator } from "../../services/src/services/api-gateway/authenticate";
import { generateApiKey, hashApiKey, type ApiKeyIdentity } from "../../services/src/services/user-management/api-keys";

function setup(revokeDuringLookup: boolean, opts: { expiresAt?: number | null; scopes?: ApiKeyIdentity["scopes"]; dragonflyEntry?: string } = {}) {
  const { key } = generateApiKey();
  const identity: ApiKeyIdentity = {
    userId: "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e",
    role: "trader",
    apiKeyId: "11111111-2222-4333-8444-555555555555",
    scopes: opts.scopes ?? ["read", "trade"],
    expiresAt: opts.expiresAt ?? null,
  };
  const state = { status: "active", role: "trader", epoch: 0 } as const;
  const states = { subscribed: true, onApiKeyRevoked: (_h: string) => undefined, peek: () => state, get: async () => state, refreshAhead: () => undefined };
  let lookups = 0;
  const peers = {
    call: async () => {
      lookups++;
      // The revocation is announced before this answer (verified before the revocation committed) arrives.
      if (revokeDuringLookup) states.onApiKeyRevoked(hashApiKey(key).toString("hex"));
      // user-management refuses an expired key as it refuses a revoked one.
      if (identity.expiresAt !== null && identity.expiresAt <= Date.now()) return { status: 401, body: { error: { code: "INVALID_API_KEY" } } };
      return { status: 200, body: identity };
    },
  };
  const auth = new Authenticator({
    key: createSecretKey(Buffer.alloc(64, 1)),
    maxTokenAgeS: 3600,
    redis: { get: async () => opts.dragonflyEntry ?? null } as never,
    peers: peers as never,
    states: states as never,
    limits: { admitKeyAttempt: async () => async () => undefined } as never,
  });
  return { auth, key, identity, lookups: () => lookups };
}

afterEach(() => {
  vi.useRealTimers();
});

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

  it("refuses a cached key from the instant it expires, in the synchronous path too, like a revoked one", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.parse("2026-12-01T12:00:00Z");
    vi.setSystemTime(t0);
    const { auth, key, lookups } = setup(false, { expiresAt: t0 + 60_000 });
    expect((await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r1", 1000)).identity?.apiKeyId).toBeDefined();
    vi.setSystemTime(t0 + 59_999);
    expect(auth.cached({ "x-api-key": key })?.identity?.apiKeyId).toBeDefined();
    vi.setSystemTime(t0 + 60_000);
    // Not answered from the cache: the full path looks the key up again and user-management refuses it.
    expect(auth.cached({ "x-api-key": key })).toBeUndefined();
    const after = await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r2", 1000);
    expect(after.identity).toBeUndefined();
    expect(after.error).toMatchObject({ statusCode: 401, code: "INVALID_API_KEY", message: "Invalid API key" });
    expect(lookups()).toBe(2);
  });

  it("does not take an expired key from a Dragonfly entry: user-management is asked", async () => {
    const expiresAt = Date.now() - 1;
    const template = setup(false).identity;
    const expired = setup(false, { expiresAt, dragonflyEntry: JSON.stringify({ ...template, expiresAt }) });
    const r = await expired.auth.authenticate({ "x-api-key": expired.key }, "127.0.0.1", "r1", 1000);
    expect(r.error).toMatchObject({ statusCode: 401, code: "INVALID_API_KEY" });
    expect(expired.lookups()).toBe(1);
    // An entry of the version before scopes and expiry is looked up again too, not trusted.
    const old = setup(false, { dragonflyEntry: JSON.stringify({ userId: template.userId, role: "trader", apiKeyId: template.apiKeyId }) });
    expect((await old.auth.authenticate({ "x-api-key": old.key }, "127.0.0.1", "r1", 1000)).identity?.scopes).toEqual(["read", "trade"]);
    expect(old.lookups()).toBe(1);
  });

  it("carries the key's scopes in the identity, from the cache too", async () => {
    const { auth, key } = setup(false, { scopes: ["read"] });
    const first = await auth.authenticate({ "x-api-key": key }, "127.0.0.1", "r1", 1000);
    expect(first.identity).toMatchObject({ authMethod: "api-key", scopes: ["read"] });
    expect(auth.cached({ "x-api-key": key })?.identity?.scopes).toEqual(["read"]);
  });
});
