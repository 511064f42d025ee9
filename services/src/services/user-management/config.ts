/** user-management's environment (validated at start; see kit/config.ts). */
import { env, type ConfigOf, type ServiceContext } from "../../kit";

export const config = {
  JWT_SECRET: env.string({ minLength: 64, secret: true, description: ">= 64 characters (e.g. 64 bytes hex)" }),
  ACCESS_TOKEN_TTL_S: env.int({ default: 900, min: 30, max: 3600 }),
  REFRESH_TOKEN_TTL_S: env.int({ default: 7 * 24 * 3600, min: 300, max: 90 * 24 * 3600 }),
  LOGIN_MAX_FAILURES: env.int({ default: 5, min: 1, max: 100 }),
  LOGIN_LOCKOUT_WINDOW_MS: env.int({ default: 15 * 60_000, min: 1_000 }),
  PASSWORD_MIN_LENGTH: env.int({ default: 12, min: 8, max: 64 }),
  BOOTSTRAP_ADMIN_EMAIL: env.string({ optional: true, pattern: /^[^\s@]+@[^\s@]+$/ }),
  BOOTSTRAP_ADMIN_PASSWORD: env.string({ optional: true, secret: true, minLength: 12 }),
};

export type UserManagementContext = ServiceContext<ConfigOf<typeof config>>;
