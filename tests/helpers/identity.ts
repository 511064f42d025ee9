/**
 * Signed access tokens for tests that run the api-gateway without user-management. The gateway
 * refuses a token unless it knows its user's current state (active, role, token epoch: see
 * services/src/services/user-management/user-state.ts), which user-management writes to Dragonfly
 * on register and on every change; these helpers write that state the same way, then sign.
 */
import { Redis } from "../harness";
import { jwtKey, signAccessToken } from "../../services/src/kit";
import { publishUserState } from "../../services/src/services/user-management/user-state";
import type { Role } from "../../services/src/kit/identity";

export interface TestIdentities {
  /** A token for this user, after recording the user as active with this role. */
  token(userId: string, role?: Role): Promise<string>;
  close(): Promise<void>;
}

export function testIdentities(redisUrl: string, jwtSecret: string): TestIdentities {
  const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
  const key = jwtKey(jwtSecret);
  return {
    async token(userId, role = "trader") {
      await publishUserState(redis, userId, { status: "active", role, epoch: 0, version: 0 });
      return signAccessToken(key, { userId, role, epoch: 0 }, 3600);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
