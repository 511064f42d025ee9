/**
 * A user's API keys (behind the gateway at /api/users/api-keys): created only with a user session,
 * with an expiry (default API_KEY_DEFAULT_EXPIRY_DAYS) and scopes (default: all), at most
 * API_KEY_MAX_ACTIVE_PER_USER active at once; listed newest first in pages; revoked by id.
 */
import { HttpError, pageOf, requireIdentity, unknownCursor, Type, type App } from "../../kit";
import * as keyData from "./api-key-data";
import { API_KEY_DEFAULT_EXPIRY_DAYS, API_KEY_DEFAULT_SCOPES, generateApiKey } from "./api-keys";
import type { ApiKeyCache } from "./dragonfly";
import { unknownOrDisabledUser } from "./domain";
import { ApiKeyCreated, ApiKeyList, ApiKeyListQuery, NewApiKeyBody, NoContent, Uuid } from "./schemas";

export interface ApiKeyRouteDeps {
  apiKeyCache: ApiKeyCache;
  maxActivePerUser: number;
  /** Throws unless the user exists and is enabled. */
  assertActiveUser: (userId: string) => Promise<unknown>;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function registerApiKeyRoutes(app: App, deps: ApiKeyRouteDeps): void {
  app.post("/api-keys", { schema: { body: NewApiKeyBody, response: { 201: ApiKeyCreated } } }, async (req, reply) => {
    const who = requireIdentity(req);
    if (who.authMethod !== "jwt") throw new HttpError(403, "FORBIDDEN", "API keys can only be created with a user session");
    await deps.assertActiveUser(who.userId);
    const { key, prefix, hash } = generateApiKey();
    // Stored in one order whatever order the request gave (the set is what counts).
    const scopes = [...(req.body.scopes ?? API_KEY_DEFAULT_SCOPES)].sort();
    const row = await keyData.insertApiKey(
      app.pg,
      { userId: who.userId, name: req.body.name, prefix, keyHash: hash, scopes, expiresInDays: req.body.expiresInDays ?? API_KEY_DEFAULT_EXPIRY_DAYS },
      deps.maxActivePerUser,
    );
    if (row === "inactive-user") throw unknownOrDisabledUser();
    if (row === "limit") {
      throw new HttpError(409, "API_KEY_LIMIT", `At most ${deps.maxActivePerUser} active API keys per user: revoke one first`);
    }
    req.log.info({ userId: who.userId, apiKeyId: row.id, scopes, expiresAt: row.expires_at }, "api key created");
    return reply.status(201).send({ id: row.id, name: req.body.name, prefix, key, scopes, createdAt: row.created_at.toISOString(), expiresAt: row.expires_at.toISOString() });
  });

  app.get("/api-keys", { schema: { querystring: ApiKeyListQuery, response: { 200: ApiKeyList } } }, async (req) => {
    const who = requireIdentity(req);
    const limit = req.query.limit ?? 50;
    const rows = await keyData.listApiKeys(app.pg, who.userId, limit + 1, req.query.before ?? null);
    if (!rows) throw unknownCursor("API keys");
    const { page, nextBefore } = pageOf(rows, limit, (last) => last.id);
    return {
      apiKeys: page.map((k) => ({
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes,
        createdAt: k.created_at.toISOString(),
        expiresAt: iso(k.expires_at),
        lastUsedAt: iso(k.last_used_at),
        revokedAt: iso(k.revoked_at),
      })),
      nextBefore,
    };
  });

  app.delete("/api-keys/:id", { schema: { params: Type.Object({ id: Uuid }), response: { 204: NoContent } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const hash = await keyData.revokeApiKey(app.pg, req.params.id, who.userId, who.role === "admin");
    if (!hash) throw new HttpError(404, "NOT_FOUND", "No such API key");
    await deps.apiKeyCache.drop([hash]);
    req.log.info({ userId: who.userId, apiKeyId: req.params.id }, "api key revoked");
    return reply.status(204).send();
  });
}
