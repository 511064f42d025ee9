/** user-management's environment (validated at start; see kit/config.ts). */
import { setting } from "../../catalog";
import { type ConfigOf, type ServiceContext, Type } from "../../kit";

export const config = {
  JWT_SECRET: Type.String({ minLength: 64, secret: true, description: ">= 64 characters (e.g. 64 bytes hex)" }),
  // At most the gateway's ACCESS_TOKEN_MAX_AGE_S: the stack refuses the other order (catalog/service-settings.ts).
  ACCESS_TOKEN_TTL_S: Type.Integer(setting("user-management", "ACCESS_TOKEN_TTL_S")),
  REFRESH_TOKEN_TTL_S: Type.Integer({ default: 7 * 24 * 3600, minimum: 300, maximum: 90 * 24 * 3600 }),
  /** Days an expired refresh token is kept (a used one presented again meanwhile still revokes its session), then deleted. */
  REFRESH_TOKEN_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 0, maximum: 3_650 }),
  /** How often owed session revocations (Dragonfly unreachable when they were made) are published again: the longest a gateway keeps accepting such a session's tokens once Dragonfly is back. */
  SESSION_REVOCATION_SWEEP_MS: Type.Integer({ default: 5_000, minimum: 100, maximum: 60_000 }),
  /** Failed logins to one account from one client address per window (the address the gateway determined). */
  LOGIN_MAX_FAILURES: Type.Integer({ default: 5, minimum: 1, maximum: 100 }),
  /** Failed logins to one account from all addresses together per window: only these lock the owner out too. */
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
  /** 1 s to 1 day: the owner waits out a lockout of the whole account (a longer one locks them out for days). */
  LOGIN_LOCKOUT_WINDOW_MS: Type.Integer({ default: 15 * 60_000, minimum: 1_000, maximum: 86_400_000 }),
  /** Active (not revoked, not expired) API keys a user may hold at once; creating one more answers 409. */
  API_KEY_MAX_ACTIVE_PER_USER: Type.Integer({ default: 20, minimum: 1, maximum: 1000 }),
  PASSWORD_MIN_LENGTH: Type.Integer({ default: 12, minimum: 8, maximum: 64 }),
  BOOTSTRAP_ADMIN_EMAIL: Type.Optional(Type.String({ pattern: "^[^\\s@]+@[^\\s@]+$" })),
  BOOTSTRAP_ADMIN_PASSWORD: Type.Optional(Type.String({ secret: true, minLength: 12 })),
};

export type UserManagementContext = ServiceContext<ConfigOf<typeof config>>;
