/**
 * user-management's HTTP routes (behind the gateway at /api/users/...; /register, /login, /refresh
 * are anonymous; POST /password changes the caller's password, ending every session). Handlers validate, call domain and data functions, and shape responses.
 */
import { randomUUID } from "node:crypto";
import { addressBucketOf, clientAddressOf, HttpError, jwtKey, requireIdentity, Type, unavailable, type App } from "../../kit";
import { registerAdminRoutes } from "./admin-routes";
import { registerApiKeyRoutes } from "./api-key-routes";
import type { UserManagementContext } from "./config";
import * as data from "./data";
import { registerInternalRoutes } from "./internal-routes";
import {
  invalidCredentials,
  normalizeEmail,
  publicUser,
  sha256,
  unknownOrDisabledUser,
} from "./domain";
import { ApiKeyCache, LoginCounters } from "./dragonfly";
import { dummyHash, hashedForm, hashPassword, shortPasswordIssue, verifyPassword } from "./passwords";
import { AnyPassword, DisplayName, Email, MeOut, NewPassword, NoContent, RefreshToken, SessionOut, UserEnvelope } from "./schemas";
import { markRevocationPublished } from "./session-revocations";
import { issueTokens, rotateRefreshToken, type TokenSettings } from "./sessions";
import { publishSessionRevoked, publishUserState, userStateOf } from "./user-state";

export function registerRoutes(app: App, ctx: UserManagementContext): void {
  const { config: cfg, log } = ctx;
  const tokens: TokenSettings = { key: jwtKey(cfg.JWT_SECRET), accessTtlS: cfg.ACCESS_TOKEN_TTL_S, refreshTtlS: cfg.REFRESH_TOKEN_TTL_S };
  const counters = new LoginCounters(() => app.redis, log, cfg.LOGIN_LOCKOUT_WINDOW_MS, { perAddress: cfg.LOGIN_MAX_FAILURES, perAccount: cfg.LOGIN_MAX_FAILURES_PER_ACCOUNT });
  // Only the session's holder reaches these: one count per account.
  const passwordChanges = new LoginCounters(() => app.redis, log, cfg.LOGIN_LOCKOUT_WINDOW_MS, { perAccount: cfg.LOGIN_MAX_FAILURES }, "password-change");
  const apiKeyCache = new ApiKeyCache(() => app.redis, log);

  /** After a committed change of a user: the new state to every gateway (503 if it cannot be told; the caller retries). */
  async function propagateUserState(userId: string, row: data.UserRow | undefined): Promise<void> {
    try {
      await publishUserState(app.redis, userId, userStateOf(row));
    } catch (err) {
      log.error({ err: { message: (err as Error).message }, userId }, "user state change not propagated");
      throw unavailable("REVOCATION_PENDING", "Saved, but the change could not be propagated yet; retry the request", 1);
    }
  }

  /** After a session's revocation committed: the gateways refuse its access tokens (503 if they cannot be told; the caller retries). */
  async function propagateSessionRevoked(familyId: string): Promise<void> {
    try {
      await publishSessionRevoked(app.redis, familyId);
    } catch (err) {
      log.error({ err: { message: (err as Error).message }, familyId }, "session revocation not propagated yet; the sweep retries it");
      throw unavailable("REVOCATION_PENDING", "Saved, but the change could not be propagated yet; retry the request", 1);
    }
    // Told: no longer owed (a failure here only means the sweep publishes it once more).
    await markRevocationPublished(app.pg, familyId).catch((err: Error) => log.warn({ err: { message: err.message }, familyId }, "published session revocation not cleared"));
  }

  async function activeUser(id: string): Promise<data.UserRow> {
    const user = await data.findActiveUser(app.pg, id);
    if (!user) throw unknownOrDisabledUser();
    return user;
  }

  app.post(
    "/register",
    {
      schema: {
        body: Type.Object({ email: Email, password: NewPassword(cfg.PASSWORD_MIN_LENGTH), displayName: Type.Optional(DisplayName) }, { additionalProperties: false }),
        response: { 201: UserEnvelope },
      },
    },
    async (req, reply) => {
      const short = shortPasswordIssue(req.body.password, cfg.PASSWORD_MIN_LENGTH, "password");
      if (short) throw short;
      const hash = await hashPassword(req.body.password);
      const user = await data.insertUser(app.pg, normalizeEmail(req.body.email), hash, req.body.displayName ?? null);
      if (!user) throw new HttpError(409, "EMAIL_TAKEN", "An account with this email already exists", "email");
      req.log.info({ userId: user.id }, "user registered");
      return reply.status(201).send({ user: publicUser(user) });
    },
  );

  app.post("/login", { schema: { body: Type.Object({ email: Email, password: AnyPassword }, { additionalProperties: false }), response: { 200: SessionOut } } }, async (req) => {
    const email = normalizeEmail(req.body.email);
    // Counted per address bucket: an IPv6 client by its /64, or each guess came from a fresh address.
    const address = addressBucketOf(clientAddressOf(req));
    const attempts = await counters.admit(email, address);
    const user = await data.findUserByEmail(app.pg, email);
    // Unknown users cost a hash too, so timing does not tell which emails exist.
    const ok = await verifyPassword(req.body.password, user?.password_hash ?? (await dummyHash()));
    if (!user || !ok || user.disabled_at) {
      if (attempts === cfg.LOGIN_MAX_FAILURES) log.warn({ emailHash: sha256(email).toString("hex").slice(0, 16) }, "account locked after failed logins");
      throw invalidCredentials();
    }
    await counters.reset(email, address);
    // The password checked may have been changed meanwhile (every session ended): no session then.
    const pair = await issueTokens(app.pg, tokens, user, randomUUID(), invalidCredentials);
    req.log.info({ userId: user.id }, "login");
    return { ...pair, user: publicUser(user) };
  });

  app.post("/refresh", { schema: { body: Type.Object({ refreshToken: RefreshToken }, { additionalProperties: false }), response: { 200: SessionOut } } }, async (req) => {
    // A reused token's 401 stands even if the gateways cannot be told now: nobody retries a reuse, so
    // the revocation is owed in PostgreSQL and the sweep publishes it once Dragonfly answers.
    const familyRevoked = (familyId: string) => propagateSessionRevoked(familyId).catch(() => undefined);
    const { tokens: pair, user } = await rotateRefreshToken(app.pg, tokens, req.body.refreshToken, req.log, familyRevoked);
    return { ...pair, user: publicUser(user) };
  });

  app.post(
    "/logout",
    { schema: { body: Type.Optional(Type.Object({ refreshToken: Type.Optional(RefreshToken), all: Type.Optional(Type.Boolean()) }, { additionalProperties: false })), response: { 204: NoContent } } },
    async (req, reply) => {
      const who = requireIdentity(req);
      const body = req.body ?? {};
      if (body.all) {
        // Every session and every access token issued so far: the gateway refuses older epochs.
        await propagateUserState(who.userId, await data.revokeEverything(app.pg, who.userId));
      }
      else if (body.refreshToken) {
        // That session's access tokens too (claim `sid`), at every gateway.
        const familyId = await data.revokeSessionOf(app.pg, who.userId, sha256(body.refreshToken));
        if (familyId) await propagateSessionRevoked(familyId);
      }
      else throw new HttpError(400, "VALIDATION_ERROR", "Give refreshToken or all: true", "refreshToken");
      req.log.info({ userId: who.userId, all: !!body.all }, "logout");
      return reply.status(204).send();
    },
  );

  // The current password is checked like a login, with a lockout of its own (a guessing oracle too,
  // but one that must not lock the owner out of logging in); the change ends every other session and
  // access token, and answers a new session.
  app.post(
    "/password",
    { schema: { body: Type.Object({ currentPassword: AnyPassword, newPassword: NewPassword(cfg.PASSWORD_MIN_LENGTH) }, { additionalProperties: false }), response: { 200: SessionOut } } },
    async (req) => {
      const short = shortPasswordIssue(req.body.newPassword, cfg.PASSWORD_MIN_LENGTH, "newPassword");
      if (short) throw short;
      const who = requireIdentity(req);
      if (who.authMethod !== "jwt") throw new HttpError(403, "FORBIDDEN", "Changing the password needs a user session, not an API key");
      const user = await activeUser(who.userId);
      await passwordChanges.admit(user.email);
      if (!(await verifyPassword(req.body.currentPassword, user.password_hash))) {
        throw new HttpError(403, "INVALID_CREDENTIALS", "The current password is not correct", "currentPassword");
      }
      // The current password given is no guess: its attempts are forgotten even when the new one is refused.
      await passwordChanges.reset(user.email);
      // Judged as hashed: the current password spelt in NFD (or full-width) is the current password.
      if (hashedForm(req.body.newPassword) === hashedForm(req.body.currentPassword)) throw new HttpError(400, "VALIDATION_ERROR", "The new password must differ from the current one", "newPassword");
      // The new session is stored in the change's transaction: a logout-all committed after the
      // change ends it like any other, and never turns the change, made, into a 401.
      const changed = await data.changePassword(app.pg, user.id, await hashPassword(req.body.newPassword), user.password_hash, (c, row) => issueTokens(c, tokens, row, randomUUID()));
      if (changed === "changed") throw new HttpError(409, "PASSWORD_CHANGED", "The password was changed by another request meanwhile; nothing was changed by this one", "currentPassword");
      if (!changed) throw unknownOrDisabledUser();
      await propagateUserState(changed.user.id, changed.user);
      req.log.info({ userId: changed.user.id }, "password changed; every session revoked");
      return { ...changed.result, user: publicUser(changed.user) };
    },
  );

  app.get("/me", { schema: { response: { 200: MeOut } } }, async (req) => {
    const who = requireIdentity(req);
    return { user: publicUser(await activeUser(who.userId)), authMethod: who.authMethod, ...(who.scopes ? { scopes: [...who.scopes] } : {}) };
  });

  registerApiKeyRoutes(app, { apiKeyCache, maxActivePerUser: cfg.API_KEY_MAX_ACTIVE_PER_USER, assertActiveUser: activeUser });
  registerAdminRoutes(app, { apiKeyCache, propagateUserState });
  registerInternalRoutes(app, { apiKeyCache });
}
