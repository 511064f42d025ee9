/**
 * API keys: `atk_<prefix>_<secret>` where prefix = 12 hex chars (lookup, shown in listings) and
 * secret = 32 random bytes (base64url). Only SHA-256(key) is stored (a fast hash is fine: the key
 * has 256 bits of entropy, unlike a password).
 *
 * Verification for the gateway: user-management caches verified keys in Dragonfly under
 * `apikey:<sha256 hex>` -> {userId, role, apiKeyId} (TTL); the gateway reads that entry directly
 * (one GET, no extra hop on the hot path) and on a miss calls user-management's
 * POST /internal/api-keys/verify, which checks Postgres and fills the cache. Revocation and role
 * changes delete the cache entries, so they take effect immediately.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Role } from "../../kit/identity";

export const API_KEY_RE = /^atk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_CACHE_TTL_S = 300;

export interface ApiKeyIdentity {
  userId: string;
  role: Role;
  apiKeyId: string;
}

export function generateApiKey(): { key: string; prefix: string; hash: Buffer } {
  const prefix = randomBytes(6).toString("hex");
  const key = `atk_${prefix}_${randomBytes(32).toString("base64url")}`;
  return { key, prefix, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

export function apiKeyCacheKey(hash: Buffer): string {
  return `apikey:${hash.toString("hex")}`;
}

export function parseApiKey(key: string): { prefix: string } | undefined {
  const m = API_KEY_RE.exec(key);
  return m ? { prefix: m[1] } : undefined;
}
