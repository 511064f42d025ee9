/**
 * The bound on committing an order submit, shared by order-management, which enforces it
 * (order-management/submit.ts, OM_SUBMIT_DEADLINE_MS), and by the callers that must know when a
 * submit whose answer they never got can no longer commit (ai-orchestrator/recover.ts: an order not
 * found after that is never placed). A submit's transaction sends its COMMIT only while the deadline,
 * counted from when order-management read the request, has not passed; past it the transaction is
 * rolled back and the request answered 503 SUBMIT_DEADLINE_PASSED.
 *
 * OM_SUBMIT_DEADLINE_MS may not exceed SUBMIT_COMMIT_DEADLINE_MAX_MS: the config schema's maximum, so
 * a larger value stops order-management at start-up with a ConfigError naming the variable (the
 * callers' windows are computed from this maximum, never from a value they cannot see).
 */
export const SUBMIT_COMMIT_DEADLINE_MAX_MS = 3_000;

/** OM_SUBMIT_DEADLINE_MS's default: room for a busy host's group commit under the maximum. */
export const SUBMIT_COMMIT_DEADLINE_DEFAULT_MS = 2_000;
