/**
 * User accounts (user-management's `users` rows) for tests that run a service without
 * user-management: ai-orchestrator acts only for a user whose account exists and is not disabled
 * (OrchestratorStore: an admin's disable or delete stops the user's strategies).
 */
/** Records `userId` as an active account (a no-op when it exists). */
export async function ensureAccount(db: { query(text: string, values: unknown[]): Promise<unknown> }, userId: string): Promise<void> {
  await db.query("INSERT INTO users (id, email, password_hash) VALUES ($1::uuid, $1::text || '@accounts.test', 'not a hash') ON CONFLICT (id) DO NOTHING", [userId]);
}
