/**
 * Credential values that are known to everyone (pure): the deployment guide's published literals and
 * placeholders, and the well-known weak passwords.
 *
 * One list for two judges: the stack config (stacks/config.ts `checkSecretValues`) refuses them as
 * the value of a credential the user sets (`pulumi config set --secret`) on every stack but dev, and
 * the policy pack's `no-default-credentials` (policies/lib/credentials.ts) finds them wherever they
 * land in a deployed resource. It lives in catalog/ because that is the module every package
 * compiles (the pack is loaded by the Pulumi CLI from policies/, with its own package).
 */

/**
 * Literals published in the deployment guide (and its `.env.plan2`): its passwords, its JWT secret,
 * its placeholders for the exchange keys and the Telegram bot token, Grafana's admin123. They are
 * public, so any occurrence in a deployed resource is a leaked credential, whatever the key around it.
 */
export const GUIDE_DEFAULT_SECRETS: readonly string[] = [
  "ai_trading_secure_pass_2024",
  "dragonfly_secure_pass_2024",
  "clickhouse_secure_pass_2024",
  "ai_trading_graph_pass_2024",
  "ai_trading_jwt_super_secret_key_change_in_production_2024",
  "your_binance_api_key_here",
  "your_binance_secret_key_here",
  "your_telegram_bot_token_here",
  "admin123",
];

/**
 * Weak values that are only suspicious as the whole value of a credential (checked by exact,
 * case-insensitive match so that e.g. an image called "postgres" is not flagged).
 */
export const WEAK_SECRET_VALUES: readonly string[] = [
  "admin", "admin123", "password", "passw0rd", "password123", "changeme", "change_me", "secret",
  "root", "toor", "postgres", "default", "test", "guest", "123456", "12345678", "qwerty",
  "letmein", "pass", "clickhouse", "arangodb", "grafana",
];

/** Guide literals contained in a string (case-insensitive substring match). */
export function guideSecretsIn(value: string, extra: readonly string[] = []): string[] {
  const lower = value.toLowerCase();
  return [...GUIDE_DEFAULT_SECRETS, ...extra].filter((s) => s.length > 0 && lower.includes(s.toLowerCase()));
}

/** A weak credential value: a well-known one, or none at all (an empty password lets anyone in). */
export function isWeakValue(value: string, extra: readonly string[] = []): boolean {
  const v = value.trim().toLowerCase();
  return v === "" || [...WEAK_SECRET_VALUES, ...extra].some((w) => w.toLowerCase() === v);
}
