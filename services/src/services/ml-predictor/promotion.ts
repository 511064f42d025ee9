/**
 * The train job's promotion of the model it registered, through a busy model switch lock.
 *
 * A promotion is one transaction that first takes the registry's model switch lock (ml/registry.ts
 * MODEL_SWITCH_LOCK), and the kit waits for a lock at most POSTGRES_LOCK_WAIT_MS (kit
 * datastores/postgres-contention.ts): past it, the kit's LockWaitError for the wait in this process,
 * or PostgreSQL's own lock_timeout error for the wait on the lock, both SQLSTATE 55P03. An admin's promotion or rollback, or another run's, holds it
 * for milliseconds; a holder past that bound is a stall (a slow statement, a stalled connection, a
 * failover), most often transient. The job failed its run on the first LockWaitError before (session
 * 59): minutes of training lost, the model left a candidate, for a lock free a moment later. Now the
 * promotion is tried again, each attempt waiting the kit's bound, while another whole attempt fits in
 * ML_PROMOTE_WAIT_MS (so the waits end within it; 0: one attempt, as before); each wait is logged. Past
 * it the run fails with PromotionLockError. Nothing is half promoted either way: an attempt whose wait
 * passed its bound ran nothing (the transaction's first statement, the lock, failed and it rolled back),
 * so the model stays a candidate and the model served is unchanged, for an admin to promote.
 */
import type { Logger } from "pino";
import { LOCK_NOT_AVAILABLE, LockWaitError } from "../../kit/datastores/postgres-contention";
import type { ModelRecord, ModelRegistry } from "../../ml/registry";

/** After a lock wait refused at once (`crowded`, `full`: nothing waited), the pause before the next attempt. */
export const PAUSE_AFTER_REFUSAL_MS = 1_000;

export interface PromotionBudget {
  /** ML_PROMOTE_WAIT_MS: the most the attempts may wait together. */
  budgetMs: number;
  /** The kit's POSTGRES_LOCK_WAIT_MS: the longest one attempt waits for the lock. */
  attemptMs: number;
}

/** The train job's promotion found the model switch lock held through its whole budget. */
export class PromotionLockError extends Error {
  constructor(
    readonly version: string,
    readonly attempts: number,
    readonly waitedMs: number,
    budgetMs: number,
    options?: ErrorOptions,
  ) {
    super(
      `model ${version} was registered but not promoted: the model switch lock stayed held (another promotion or rollback, or a stalled one) ` +
        `through ${attempts} attempt${attempts === 1 ? "" : "s"} over ${waitedMs} ms (ML_PROMOTE_WAIT_MS ${budgetMs}); the model served is unchanged. ` +
        `Promote it with POST /models/${version}/promote once the switch holding the lock has ended`,
      options,
    );
    this.name = "PromotionLockError";
  }
}

/** The lock not taken within its bound (above); any other error is no wait for the lock. */
const lockNotTaken = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === LOCK_NOT_AVAILABLE;
/** How it was not taken: waited past the bound, or refused at once (LockWaitError `crowded`, `full`). */
const refusalOf = (e: unknown) => (e instanceof LockWaitError ? e.reason : "waited");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Promotes `version` as the train job, trying again while the model switch lock is held and another
 * attempt fits in `o.budgetMs` (see above); any other error ends it at once.
 */
export async function promoteWithinBudget(registry: Pick<ModelRegistry, "promote">, version: string, reason: string, o: PromotionBudget & { log: Logger }): Promise<ModelRecord> {
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await registry.promote(version, "train-job", reason);
    } catch (e) {
      if (!lockNotTaken(e)) throw e;
      const waitedMs = Math.round(performance.now() - started);
      const refusal = refusalOf(e);
      const pauseMs = refusal === "waited" ? 0 : PAUSE_AFTER_REFUSAL_MS;
      const leftMs = o.budgetMs - waitedMs;
      const waited = { modelVersion: version, lock: "the model switch lock", attempt, refusal, waitedMs, budgetMs: o.budgetMs };
      if (pauseMs + o.attemptMs > leftMs) {
        o.log.error({ ...waited, err: e }, "promotion failed: the model switch lock stayed held through the promotion's budget; the model stays a candidate");
        throw new PromotionLockError(version, attempt, waitedMs, o.budgetMs, { cause: e });
      }
      o.log.warn({ ...waited, leftMs }, "promotion waited for the model switch lock (another promotion or rollback holds it): trying again");
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }
}
