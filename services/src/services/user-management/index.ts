/**
 * user-management: registration, login, rotating refresh tokens, logout, roles, lockout, API keys.
 *
 * Routes (routes.ts; behind the gateway at /api/users/...; /register, /login, /refresh are anonymous):
 *   POST /register            {email, password, displayName?}          -> 201 {user}
 *   POST /login               {email, password}                        -> 200 {accessToken, refreshToken, ...}
 *   POST /refresh             {refreshToken}                           -> 200 new pair (old one is used up)
 *   POST /logout              {refreshToken?, all?}                    -> 204 (revokes the session and its access tokens / all sessions)
 *   GET  /me                                                           -> 200 {user}
 *   POST /api-keys            {name, expiresInDays?, scopes?}          -> 201 {id, key (shown once), prefix, scopes, expiresAt}
 *   GET  /api-keys?limit=&before=                                      -> 200 {apiKeys: [...] newest first, nextBefore}
 *   DELETE /api-keys/:id                                               -> 204
 *   PUT  /admin/users/:id/role {role}        (admin only)              -> 200 {user}
 *   POST /internal/api-keys/verify {key}     (gateway only, never proxied) -> 200 {userId, role, apiKeyId, scopes, expiresAt} | 401
 *
 * Layers: routes.ts, api-key-routes.ts (HTTP) -> sessions.ts (token issuance and rotation) -> domain.ts
 * (rules, no I/O), data.ts and api-key-data.ts (SQL), dragonfly.ts (lockout counters, API key cache),
 * session-revocations.ts (revocations of one session owed to the gateways, swept every
 * SESSION_REVOCATION_SWEEP_MS until Dragonfly takes them); passwords.ts and api-keys.ts hold
 * the hashing of each secret; bootstrap.ts the first admin.
 *
 * First admin (./bootstrap.ts): set BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD (secret); at
 * start, when no admin exists, that account is created, or an existing account with that email is
 * promoted when its password is BOOTSTRAP_ADMIN_PASSWORD (never one a stranger registered).
 * Later admins are made with PUT /admin/users/:id/role.
 */
import { defineService, PeriodicDelete } from "../../kit";
import { bootstrapAdmin } from "./bootstrap";
import { config } from "./config";
import { deleteExpiredRefreshTokens } from "./data";
import { registerRoutes } from "./routes";
import { publishOwedRevocations } from "./session-revocations";
import { publishSessionRevoked } from "./user-state";

export default defineService({
  name: "user-management",
  config,
  async register(ctx) {
    registerRoutes(ctx.app, ctx);
    // Every refresh adds a row (rotation): expired ones go after the retention, 5,000 at a time.
    const retentionS = ctx.config.REFRESH_TOKEN_RETENTION_DAYS * 86_400;
    const expired = new PeriodicDelete("expired refresh tokens", () => deleteExpiredRefreshTokens(ctx.app.pg, retentionS, 5_000), ctx.log);
    expired.start();
    ctx.onClose(() => expired.stop());
    // Session revocations Dragonfly could not be told of when made: published until it takes them.
    const owed = new PeriodicDelete("owed session revocations", () => publishOwedRevocations(ctx.app.pg, (familyId) => publishSessionRevoked(ctx.app.redis, familyId), 100), ctx.log, { intervalMs: ctx.config.SESSION_REVOCATION_SWEEP_MS, backlogPauseMs: Math.min(1_000, ctx.config.SESSION_REVOCATION_SWEEP_MS) });
    owed.start();
    ctx.onClose(() => owed.stop());
    try {
      await bootstrapAdmin(ctx);
    } catch (err) {
      ctx.log.error({ err: { message: (err as Error).message } }, "admin bootstrap failed (migrations applied?)");
    }
  },
});
