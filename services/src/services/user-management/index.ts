/**
 * user-management: registration, login, rotating refresh tokens, logout, roles, lockout, API keys.
 *
 * Routes (behind the gateway at /api/users/...; /register, /login, /refresh are anonymous):
 *   POST /register            {email, password, displayName?}          -> 201 {user}
 *   POST /login               {email, password}                        -> 200 {accessToken, refreshToken, ...}
 *   POST /refresh             {refreshToken}                           -> 200 new pair (old one is used up)
 *   POST /logout              {refreshToken?, all?}                    -> 204 (revokes the session / all sessions)
 *   GET  /me                                                           -> 200 {user}
 *   POST /api-keys            {name}                                   -> 201 {id, key (shown once), prefix}
 *   GET  /api-keys                                                     -> 200 {apiKeys: [...]}
 *   DELETE /api-keys/:id                                               -> 204
 *   PUT  /admin/users/:id/role {role}        (admin only)              -> 200 {user}
 *   POST /internal/api-keys/verify {key}     (gateway only, never proxied) -> 200 {userId, role, apiKeyId} | 401
 *
 * First admin: set BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD (secret); at start, when no
 * admin exists, that account is created (or the existing account with that email is promoted).
 * Later admins are made with PUT /admin/users/:id/role.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import {
  defineService,
  env,
  HttpError,
  jwtKey,
  requireIdentity,
  signAccessToken,
  Type,
  unauthorized,
  type ServiceContext,
} from "../../kit";
import type { Role } from "../../kit/identity";
import { apiKeyCacheKey, API_KEY_CACHE_TTL_S, generateApiKey, hashApiKey, parseApiKey, type ApiKeyIdentity } from "./api-keys";
import { dummyHash, hashPassword, verifyPassword } from "./passwords";

const config = {
  JWT_SECRET: env.string({ minLength: 64, secret: true, description: ">= 64 characters (e.g. 64 bytes hex)" }),
  ACCESS_TOKEN_TTL_S: env.int({ default: 900, min: 30, max: 3600 }),
  REFRESH_TOKEN_TTL_S: env.int({ default: 7 * 24 * 3600, min: 300, max: 90 * 24 * 3600 }),
  LOGIN_MAX_FAILURES: env.int({ default: 5, min: 1, max: 100 }),
  LOGIN_LOCKOUT_WINDOW_MS: env.int({ default: 15 * 60_000, min: 1_000 }),
  PASSWORD_MIN_LENGTH: env.int({ default: 12, min: 8, max: 64 }),
  BOOTSTRAP_ADMIN_EMAIL: env.string({ optional: true, pattern: /^[^\s@]+@[^\s@]+$/ }),
  BOOTSTRAP_ADMIN_PASSWORD: env.string({ optional: true, secret: true, minLength: 12 }),
};

type Ctx = ServiceContext<{
  JWT_SECRET: string;
  ACCESS_TOKEN_TTL_S: number;
  REFRESH_TOKEN_TTL_S: number;
  LOGIN_MAX_FAILURES: number;
  LOGIN_LOCKOUT_WINDOW_MS: number;
  PASSWORD_MIN_LENGTH: number;
  BOOTSTRAP_ADMIN_EMAIL: string | undefined;
  BOOTSTRAP_ADMIN_PASSWORD: string | undefined;
}>;

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  display_name: string | null;
  created_at: Date;
  disabled_at: Date | null;
}

const publicUser = (u: UserRow) => ({
  id: u.id,
  email: u.email,
  role: u.role,
  displayName: u.display_name,
  createdAt: u.created_at.toISOString(),
});

const normalizeEmail = (e: string) => e.trim().toLowerCase();
const sha256 = (s: string) => createHash("sha256").update(s).digest();

// Schemas ---------------------------------------------------------------------------------------
const Email = Type.String({ format: "email", minLength: 3, maxLength: 254 });
const DisplayName = Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f\\u007f]*$" });
const Uuid = Type.String({ format: "uuid" });
const RefreshToken = Type.String({ minLength: 43, maxLength: 43, pattern: "^[A-Za-z0-9_-]+$" });
const UserOut = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: Type.String(),
  displayName: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});

export async function bootstrapAdmin(ctx: Ctx): Promise<void> {
  const { BOOTSTRAP_ADMIN_EMAIL: email, BOOTSTRAP_ADMIN_PASSWORD: password } = ctx.config;
  if (!email || !password) return;
  const pg = ctx.datastores.postgres;
  const admins = await pg.query("SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL LIMIT 1");
  if (admins.rowCount) return;
  const hash = await hashPassword(password);
  const r = await pg.query<{ id: string }>(
    `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
     ON CONFLICT (email) DO UPDATE SET role = 'admin', updated_at = now() RETURNING id`,
    [normalizeEmail(email), hash],
  );
  ctx.log.warn({ userId: r.rows[0].id }, "bootstrap admin created or promoted (BOOTSTRAP_ADMIN_EMAIL)");
}

export default defineService({
  name: "user-management",
  config,
  async register(ctx) {
    const { app, config: cfg, log } = ctx;
    const pg = ctx.datastores.postgres;
    const redis = () => ctx.datastores.dragonfly.redis;
    const key = jwtKey(cfg.JWT_SECRET);
    const Password = Type.String({ minLength: cfg.PASSWORD_MIN_LENGTH, maxLength: 128 });

    // Lockout: failed logins per email in a fixed window (Dragonfly counter with expiry).
    const failKey = (email: string) => `um:login-fail:${sha256(email).toString("hex")}`;
    // Without the counters logins fail closed (503): no unthrottled password guessing while Dragonfly is down.
    const lockoutUnavailable = (err: Error) => {
      log.error({ err: { message: err.message } }, "lockout counters unavailable");
      return new HttpError(503, "LOGIN_UNAVAILABLE", "Login temporarily unavailable", undefined, { "retry-after": "5" });
    };
    async function lockedFor(email: string): Promise<number> {
      const k = failKey(email);
      const [count, ttl] = await Promise.all([redis().get(k), redis().pttl(k)]).catch((e: Error) => {
        throw lockoutUnavailable(e);
      });
      return Number(count ?? 0) >= cfg.LOGIN_MAX_FAILURES ? Math.max(ttl, 1000) : 0;
    }
    async function recordFailure(email: string): Promise<void> {
      const k = failKey(email);
      const r = await redis()
        .multi()
        .incr(k)
        .pttl(k)
        .exec()
        .catch((e: Error) => {
          throw lockoutUnavailable(e);
        });
      // First failure of a window: start the window (PEXPIRE without NX: works on Dragonfly and Redis < 7).
      if (Number(r?.[1]?.[1]) < 0) await redis().pexpire(k, cfg.LOGIN_LOCKOUT_WINDOW_MS).catch(() => undefined);
      const count = Number(r?.[0]?.[1] ?? 0);
      if (count === cfg.LOGIN_MAX_FAILURES) log.warn({ emailHash: sha256(email).toString("hex").slice(0, 16) }, "account locked after failed logins");
    }

    async function issueTokens(user: { id: string; role: Role }, familyId: string, client?: import("pg").PoolClient) {
      const refreshToken = randomBytes(32).toString("base64url");
      const q = client ? client.query.bind(client) : pg.query;
      await q(
        `INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))`,
        [user.id, familyId, sha256(refreshToken), cfg.REFRESH_TOKEN_TTL_S],
      );
      const accessToken = await signAccessToken(key, { userId: user.id, role: user.role }, cfg.ACCESS_TOKEN_TTL_S);
      return { tokenType: "Bearer", accessToken, expiresIn: cfg.ACCESS_TOKEN_TTL_S, refreshToken, refreshExpiresIn: cfg.REFRESH_TOKEN_TTL_S };
    }

    async function dropApiKeyCache(hashes: Buffer[]) {
      if (hashes.length === 0) return;
      await redis()
        .del(...hashes.map(apiKeyCacheKey))
        .catch((err: Error) => log.error({ err: { message: err.message } }, "could not drop api key cache entries"));
    }

    async function loadUser(id: string): Promise<UserRow> {
      const r = await pg.query<UserRow>("SELECT * FROM users WHERE id = $1 AND disabled_at IS NULL", [id]);
      if (!r.rows[0]) throw unauthorized("Unknown or disabled user");
      return r.rows[0];
    }

    // Routes --------------------------------------------------------------------------------------
    app.post(
      "/register",
      {
        schema: {
          body: Type.Object({ email: Email, password: Password, displayName: Type.Optional(DisplayName) }, { additionalProperties: false }),
          response: { 201: Type.Object({ user: UserOut }) },
        },
      },
      async (req, reply) => {
        const email = normalizeEmail(req.body.email);
        const hash = await hashPassword(req.body.password);
        const r = await pg.query<UserRow>(
          `INSERT INTO users (email, password_hash, display_name) VALUES ($1, $2, $3)
           ON CONFLICT (email) DO NOTHING RETURNING *`,
          [email, hash, req.body.displayName ?? null],
        );
        if (!r.rows[0]) throw new HttpError(409, "EMAIL_TAKEN", "An account with this email already exists", "email");
        req.log.info({ userId: r.rows[0].id }, "user registered");
        return reply.status(201).send({ user: publicUser(r.rows[0]) });
      },
    );

    app.post(
      "/login",
      { schema: { body: Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }) } },
      async (req) => {
        const email = normalizeEmail(req.body.email);
        const lockMs = await lockedFor(email);
        if (lockMs > 0)
          throw new HttpError(423, "ACCOUNT_LOCKED", "Too many failed logins; try again later", undefined, {
            "retry-after": String(Math.ceil(lockMs / 1000)),
          });
        const r = await pg.query<UserRow>("SELECT * FROM users WHERE email = $1", [email]);
        const user = r.rows[0];
        const ok = await verifyPassword(req.body.password, user?.password_hash ?? (await dummyHash()));
        if (!user || !ok || user.disabled_at) {
          await recordFailure(email);
          throw new HttpError(401, "INVALID_CREDENTIALS", "Invalid email or password");
        }
        await redis()
          .del(failKey(email))
          .catch((e: Error) => log.warn({ err: { message: e.message } }, "could not reset failed-login counter"));
        const tokens = await issueTokens(user, randomUUID());
        req.log.info({ userId: user.id }, "login");
        return { ...tokens, user: publicUser(user) };
      },
    );

    app.post("/refresh", { schema: { body: Type.Object({ refreshToken: RefreshToken }, { additionalProperties: false }) } }, async (req) => {
      const hash = sha256(req.body.refreshToken);
      const outcome = await pg.transaction(async (c) => {
        const r = await c.query<{ id: string; user_id: string; family_id: string; expired: boolean; used_at: Date | null; revoked_at: Date | null }>(
          `SELECT id, user_id, family_id, expires_at < now() AS expired, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
          [hash],
        );
        const t = r.rows[0];
        if (!t) return { error: new HttpError(401, "INVALID_REFRESH_TOKEN", "Invalid refresh token") };
        if (t.revoked_at) return { error: new HttpError(401, "INVALID_REFRESH_TOKEN", "Refresh token revoked") };
        if (t.used_at) {
          // Reuse of a rotated token: it leaked (or the legitimate client lost a race). Revoke the family.
          await c.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'reuse' WHERE family_id = $1 AND revoked_at IS NULL`, [t.family_id]);
          req.log.warn({ userId: t.user_id, familyId: t.family_id }, "refresh token reuse detected: session family revoked");
          return { error: new HttpError(401, "REFRESH_TOKEN_REUSED", "Refresh token already used; session revoked") };
        }
        if (t.expired) return { error: new HttpError(401, "REFRESH_TOKEN_EXPIRED", "Refresh token expired") };
        const u = await c.query<UserRow>("SELECT * FROM users WHERE id = $1 AND disabled_at IS NULL", [t.user_id]);
        if (!u.rows[0]) return { error: unauthorized("Unknown or disabled user") };
        await c.query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", [t.id]);
        return { tokens: await issueTokens(u.rows[0], t.family_id, c), user: u.rows[0] };
      });
      if ("error" in outcome) throw outcome.error; // thrown after COMMIT so a family revocation sticks
      return { ...outcome.tokens, user: publicUser(outcome.user) };
    });

    app.post(
      "/logout",
      { schema: { body: Type.Optional(Type.Object({ refreshToken: Type.Optional(RefreshToken), all: Type.Optional(Type.Boolean()) }, { additionalProperties: false })) } },
      async (req, reply) => {
        const who = requireIdentity(req);
        const body = req.body ?? {};
        if (body.all) {
          await pg.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'logout_all' WHERE user_id = $1 AND revoked_at IS NULL`, [who.userId]);
        } else if (body.refreshToken) {
          await pg.query(
            `UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'logout'
              WHERE revoked_at IS NULL AND user_id = $2
                AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)`,
            [sha256(body.refreshToken), who.userId],
          );
        } else {
          throw new HttpError(400, "VALIDATION_ERROR", "Give refreshToken or all: true", "refreshToken");
        }
        req.log.info({ userId: who.userId, all: !!body.all }, "logout");
        return reply.status(204).send();
      },
    );

    app.get("/me", async (req) => {
      const who = requireIdentity(req);
      const user = await loadUser(who.userId);
      return { user: publicUser(user), authMethod: who.authMethod };
    });

    app.post(
      "/api-keys",
      { schema: { body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f\\u007f]*$" }) }, { additionalProperties: false }) } },
      async (req, reply) => {
        const who = requireIdentity(req);
        if (who.authMethod !== "jwt") throw new HttpError(403, "FORBIDDEN", "API keys can only be created with a user session");
        await loadUser(who.userId);
        const { key, prefix, hash } = generateApiKey();
        const r = await pg.query<{ id: string; created_at: Date }>(
          "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4) RETURNING id, created_at",
          [who.userId, req.body.name, prefix, hash],
        );
        req.log.info({ userId: who.userId, apiKeyId: r.rows[0].id }, "api key created");
        return reply.status(201).send({ id: r.rows[0].id, name: req.body.name, prefix, key, createdAt: r.rows[0].created_at.toISOString() });
      },
    );

    app.get("/api-keys", async (req) => {
      const who = requireIdentity(req);
      const r = await pg.query<{ id: string; name: string; prefix: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE user_id = $1 ORDER BY created_at",
        [who.userId],
      );
      return {
        apiKeys: r.rows.map((k) => ({
          id: k.id,
          name: k.name,
          prefix: k.prefix,
          createdAt: k.created_at.toISOString(),
          lastUsedAt: k.last_used_at?.toISOString() ?? null,
          revokedAt: k.revoked_at?.toISOString() ?? null,
        })),
      };
    });

    app.delete("/api-keys/:id", { schema: { params: Type.Object({ id: Uuid }) } }, async (req, reply) => {
      const who = requireIdentity(req);
      const r = await pg.query<{ key_hash: Buffer }>(
        `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = $1 AND (user_id = $2 OR $3) RETURNING key_hash`,
        [req.params.id, who.userId, who.role === "admin"],
      );
      if (!r.rows[0]) throw new HttpError(404, "NOT_FOUND", "No such API key");
      await dropApiKeyCache([r.rows[0].key_hash]);
      req.log.info({ userId: who.userId, apiKeyId: req.params.id }, "api key revoked");
      return reply.status(204).send();
    });

    app.put(
      "/admin/users/:id/role",
      { schema: { params: Type.Object({ id: Uuid }), body: Type.Object({ role: Type.Union([Type.Literal("trader"), Type.Literal("admin")]) }, { additionalProperties: false }) } },
      async (req) => {
        const who = requireIdentity(req, "admin");
        if (who.authMethod !== "jwt") throw new HttpError(403, "FORBIDDEN", "Role changes need a user session");
        const r = await pg.query<UserRow>("UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING *", [req.params.id, req.body.role]);
        if (!r.rows[0]) throw new HttpError(404, "NOT_FOUND", "No such user", "id");
        const keys = await pg.query<{ key_hash: Buffer }>("SELECT key_hash FROM api_keys WHERE user_id = $1", [req.params.id]);
        await dropApiKeyCache(keys.rows.map((k) => k.key_hash));
        req.log.warn({ by: who.userId, userId: req.params.id, role: req.body.role }, "role changed");
        return { user: publicUser(r.rows[0]) };
      },
    );

    // Service-to-service: the gateway verifies API keys here on a Dragonfly cache miss.
    app.post("/internal/api-keys/verify", { schema: { body: Type.Object({ key: Type.String({ maxLength: 200 }) }, { additionalProperties: false }) } }, async (req) => {
      return verifyApiKey(req, req.body.key);
    });

    async function verifyApiKey(req: FastifyRequest, key: string): Promise<ApiKeyIdentity> {
      const parsed = parseApiKey(key);
      if (!parsed) throw new HttpError(401, "INVALID_API_KEY", "Invalid API key");
      const hash = hashApiKey(key);
      const r = await pg.query<{ id: string; user_id: string; role: Role; key_hash: Buffer }>(
        `UPDATE api_keys k SET last_used_at = now() FROM users u
          WHERE k.prefix = $1 AND k.revoked_at IS NULL AND u.id = k.user_id AND u.disabled_at IS NULL
          RETURNING k.id, k.user_id, u.role, k.key_hash`,
        [parsed.prefix],
      );
      const row = r.rows[0];
      const { timingSafeEqual } = await import("node:crypto");
      if (!row || row.key_hash.length !== hash.length || !timingSafeEqual(row.key_hash, hash)) {
        throw new HttpError(401, "INVALID_API_KEY", "Invalid API key");
      }
      const identity: ApiKeyIdentity = { userId: row.user_id, role: row.role, apiKeyId: row.id };
      await redis()
        .set(apiKeyCacheKey(hash), JSON.stringify(identity), "EX", API_KEY_CACHE_TTL_S)
        .catch((err: Error) => req.log.warn({ err: { message: err.message } }, "api key cache write failed"));
      return identity;
    }

    try {
      await bootstrapAdmin(ctx as unknown as Ctx);
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, "admin bootstrap failed (migrations applied?)");
    }
  },
});
