/**
 * central-hub: service registry with TTL heartbeats, a fleet view, and locks for singleton jobs.
 * Layers: routes.ts (HTTP), domain.ts (write rule, idempotency key form, fleet view; no I/O),
 * registry.ts and locks.ts (Dragonfly data access; lock-scripts.ts holds the locks' Lua scripts and
 * value format); client.ts is the helper other services use to heartbeat and lock.
 */
import { defineService, Type } from "../../kit";
import { LockManager } from "./locks";
import { InstanceRegistry } from "./registry";
import { registerRoutes } from "./routes";

/** A lock name's fence counter lives this many times HUB_LOCK_MAX_TTL_MS after its last acquisition. */
const FENCE_TTL_FACTOR = 2;

export default defineService({
  name: "central-hub",
  config: {
    HUB_INSTANCE_TTL_MS: Type.Integer({ default: 15_000, minimum: 100, maximum: 86_400_000, description: "TTL of a heartbeat without ttlMs", atMost: { key: "HUB_MAX_TTL_MS", why: "a heartbeat without ttlMs would be kept longer than one asking for it may be (400 beyond HUB_MAX_TTL_MS)" } }),
    HUB_MAX_TTL_MS: Type.Integer({ default: 300_000, minimum: 100, maximum: 86_400_000 }),
    HUB_LOCK_MAX_TTL_MS: Type.Integer({ default: 3_600_000, minimum: 100, maximum: 604_800_000, description: "Longest lock TTL a client may ask (7 days at most)" }),
  },
  register({ app, config }) {
    registerRoutes(app, {
      registry: new InstanceRegistry(app.redis),
      // A fence counter outlives twice the longest lock (FENCE_TTL_FACTOR): kept only to guard
      // against the datastore's clock stepping back (lock-scripts.ts ACQUIRE), not for fencing itself.
      locks: new LockManager(app.redis, FENCE_TTL_FACTOR * config.HUB_LOCK_MAX_TTL_MS),
      limits: { instanceTtlMs: config.HUB_INSTANCE_TTL_MS, maxInstanceTtlMs: config.HUB_MAX_TTL_MS, maxLockTtlMs: config.HUB_LOCK_MAX_TTL_MS },
    });
  },
});
