/**
 * user-management's service-to-service routes (never proxied by the gateway):
 *   POST /internal/api-keys/verify   { key }  the gateway on a Dragonfly cache miss
 *   GET  /internal/users/:id/state           the gateway on a user-state cache miss (user-state.ts)
 */
import { timingSafeEqual } from "node:crypto";
import { Type, UserIdSchema, type App } from "../../kit";
import * as keyData from "./api-key-data";
import { apiKeyExpired, hashApiKey, parseApiKey, type ApiKeyIdentity } from "./api-keys";
import * as data from "./data";
import type { ApiKeyCache } from "./dragonfly";
import { invalidApiKey } from "./domain";
import { fillUserState, userStateOf } from "./user-state";

export function registerInternalRoutes(app: App, deps: { apiKeyCache: ApiKeyCache }): void {
  // Compare first (constant time), write only for a key that matched: a flood of guesses costs
  // one indexed read each and changes nothing. The gateway rate-limits failures per client IP.
  app.post("/internal/api-keys/verify", { schema: { body: Type.Object({ key: Type.String({ maxLength: 200 }) }, { additionalProperties: false }) } }, async (req) => {
    const parsed = parseApiKey(req.body.key);
    if (!parsed) throw invalidApiKey();
    const hash = hashApiKey(req.body.key);
    const row = await keyData.findLiveApiKey(app.pg, parsed.prefix);
    if (!row || row.key_hash.length !== hash.length || !timingSafeEqual(row.key_hash, hash)) throw invalidApiKey();
    const identity: ApiKeyIdentity = { userId: row.user_id, role: row.role, apiKeyId: row.id, scopes: row.scopes, expiresAt: row.expires_at?.getTime() ?? null };
    // PostgreSQL's clock said live, this one may already say expired (the caches judge by it): refused alike.
    if (apiKeyExpired(identity)) throw invalidApiKey();
    await keyData.touchApiKey(app.pg, row.id);
    await deps.apiKeyCache.put(hash, identity, req.log);
    // A revocation may have committed since the read above, and dropped the cache entry before the
    // put: looked again after it, so either that revocation's drop comes after the put, or this sees
    // it and drops the entry itself. Otherwise a revoked key stayed cached for API_KEY_CACHE_TTL_S.
    if (!(await keyData.isApiKeyLive(app.pg, row.id))) {
      await deps.apiKeyCache.drop([hash]);
      throw invalidApiKey();
    }
    return identity;
  });

  // Canonical only: the id names the Dragonfly entry the gateway reads and invalidations drop.
  app.get("/internal/users/:id/state", { schema: { params: Type.Object({ id: UserIdSchema }) } }, async (req) => {
    const state = userStateOf(await data.findUser(app.pg, req.params.id));
    await fillUserState(app.redis, req.params.id, state).catch((err: Error) => req.log.warn({ err: { message: err.message } }, "user state cache write failed"));
    return state;
  });
}
