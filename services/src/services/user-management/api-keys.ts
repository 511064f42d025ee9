/**
 * API keys: `atk_<prefix>_<secret>` where prefix = 12 hex chars (lookup, shown in listings) and
 * secret = 32 random bytes (base64url). Only SHA-256(key) is stored (a fast hash is fine: the key
 * has 256 bits of entropy, unlike a password).
 *
 * Verification for the gateway: user-management caches verified keys in Dragonfly under
 * `apikey:<sha256 hex>` -> {userId, role, apiKeyId, scopes, expiresAt} (TTL); the gateway reads that
 * entry directly (one GET, no extra hop on the hot path) and on a miss calls user-management's
 * POST /internal/api-keys/verify, which checks Postgres and fills the cache. Revocation and role
 * changes delete the cache entries, so they take effect immediately. Expiry needs no message: every
 * cache holds the key's expiry and refuses it from that instant (the Dragonfly entry's TTL ends there).
 */
import { createHash, randomBytes } from "node:crypto";
import { API_KEY_SCOPES, canonicalUserId, isApiKeyScope, ROLES, type ApiKeyScope, type Role } from "../../kit/identity";

export const API_KEY_RE = /^atk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_CACHE_TTL_S = 300;
/** A new key's lifetime unless the request says otherwise (`expiresInDays`, 1..365): a leaked key
 * stops working on its own, and a bot's owner rotates keys a few times a year. */
export const API_KEY_DEFAULT_EXPIRY_DAYS = 90;
export const API_KEY_MAX_EXPIRY_DAYS = 365;
/** What a key may do unless the request says otherwise: both scopes, as every key had before scopes. */
export const API_KEY_DEFAULT_SCOPES: readonly ApiKeyScope[] = API_KEY_SCOPES;

export interface ApiKeyIdentity {
  userId: string;
  role: Role;
  apiKeyId: string;
  scopes: ApiKeyScope[];
  /** Epoch milliseconds after which the key is refused; null: never expires (keys made before expiry existed). */
  expiresAt: number | null;
}

/** A cached or answered identity as JSON, or undefined when it is not one (an entry of an older version: looked up again). */
export function parseApiKeyIdentity(v: unknown): ApiKeyIdentity | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  // The id keys the gateway's user-state cache and rate limits and is forwarded as x-user-id: its one spelling.
  const userId = canonicalUserId(o.userId);
  if (userId === undefined || typeof o.apiKeyId !== "string" || !(ROLES as readonly unknown[]).includes(o.role)) return undefined;
  if (!Array.isArray(o.scopes) || o.scopes.length === 0 || !o.scopes.every(isApiKeyScope)) return undefined;
  if (o.expiresAt !== null && !Number.isFinite(o.expiresAt)) return undefined;
  return { userId, role: o.role as Role, apiKeyId: o.apiKeyId, scopes: o.scopes, expiresAt: o.expiresAt as number | null };
}

/** Whether the key has expired at `nowMs` (the same instant PostgreSQL's `expires_at > now()` turns false). */
export function apiKeyExpired(id: Pick<ApiKeyIdentity, "expiresAt">, nowMs = Date.now()): boolean {
  return id.expiresAt !== null && id.expiresAt <= nowMs;
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
