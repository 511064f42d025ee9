/**
 * Backoff of a strategy whose evaluation fails (an exception: an answer of ml-predictor that cannot
 * be read, order-management unreachable while reading the book, PostgreSQL errors). Such an
 * evaluation is not marked evaluated, so the strategy stays due; without a backoff the scheduler
 * started it again at every tick (ORCH_TICK_MS), forever. Each failure in a row doubles the wait
 * before the scheduler starts it again: ORCH_EVAL_RETRY_MS after the first, then twice that, ...,
 * never more than the strategy's own everySeconds (a failing strategy is still tried once per
 * interval, as a working one is evaluated). A success (markEvaluated) resets it. The columns
 * (0392_ai_orchestrator_recovery.sql, 0393) also keep when the last failure happened and why.
 *
 * A manual evaluation (POST /strategies/:id/evaluate) is the user asking for one now: it is not held
 * back by the wait, and it is an evaluation like a scheduled one, so its failure counts (the wait
 * doubles) and its success resets the backoff. Its failure is answered as a 503 whose retry-after is
 * the time left before the scheduler tries again (evaluationFailed), not as a 500 the caller cannot
 * act on; an HttpError the evaluation raised (ORDER_OUTCOME_PENDING, ...) keeps its own answer.
 */
import { HttpError, isTransientError, unavailable, type PostgresClient } from "../../kit";

/** Doublings at most: 2^40 times any base is past every everySeconds cap. */
const MAX_DOUBLINGS = 40;

/** The backoff as the API shows it (no message: eval_error may quote a peer's answer). */
export interface BackoffState {
  /** Evaluations failed in a row (0 after a success). */
  consecutiveFailures: number;
  /** Earliest the scheduler starts the strategy again; null when the last evaluation did not fail. */
  nextAttemptAt: string | null;
  lastFailedAt: string | null;
  /** Code of the last failure's error (HttpError code, DATASTORE_UNAVAILABLE or INTERNAL_ERROR). */
  lastErrorCode: string | null;
}

/** The error's code as kept and shown: never a message, never a peer's body. */
export function errorCodeOf(e: unknown): string {
  if (e instanceof HttpError) return e.code;
  return isTransientError(e) ? "DATASTORE_UNAVAILABLE" : "INTERNAL_ERROR";
}

const EVALUATION_FAILED = "EVALUATION_FAILED";

/** Whether `e` is evaluationFailed's answer (its cause already logged where it was made). */
export const isEvaluationFailed = (e: unknown): boolean => e instanceof HttpError && e.code === EVALUATION_FAILED;

/**
 * What the caller of a failed evaluation is answered: an HttpError as it was raised; anything else a
 * 503 EVALUATION_FAILED with retry-after the seconds until the scheduler's next attempt.
 */
export function evaluationFailed(e: unknown, state: BackoffState | undefined, now = Date.now()): unknown {
  if (e instanceof HttpError || !state?.nextAttemptAt) return e;
  const wait = Math.max(1, Math.ceil((Date.parse(state.nextAttemptAt) - now) / 1000));
  return unavailable(
    EVALUATION_FAILED,
    `the evaluation failed (${state.lastErrorCode}; ${state.consecutiveFailures} in a row): nothing was decided; the scheduler tries again at ${state.nextAttemptAt}`,
    wait,
  );
}

export class EvaluationBackoff {
  constructor(
    private readonly pg: PostgresClient,
    /** Wait after the first failure (ORCH_EVAL_RETRY_MS). */
    private readonly firstRetryMs: number,
  ) {}

  /** Records a failed evaluation and when the scheduler may start the strategy again; answers the new state. */
  async failed(strategyId: string, error: unknown): Promise<BackoffState | undefined> {
    const message = error instanceof Error ? error.message : String(error);
    // eval_failures on the right is the count before this failure: the first waits 2^0 times the base.
    const { rows } = await this.pg.query<{ eval_failures: number; eval_retry_at: Date | null; eval_failed_at: Date | null; eval_error_code: string | null }>(
      `UPDATE ai_strategies SET eval_failures = eval_failures + 1, eval_failed_at = now(), eval_error = left($2, 2000), eval_error_code = $4,
         eval_retry_at = now() + least(every_seconds * 1000.0, $3 * power(2, least(eval_failures, ${MAX_DOUBLINGS}))) * interval '1 millisecond'
       WHERE strategy_id = $1 RETURNING eval_failures, eval_retry_at, eval_failed_at, eval_error_code`,
      [strategyId, message, this.firstRetryMs, errorCodeOf(error)],
    );
    return rows[0] ? backoffStateOf(rows[0]) : undefined;
  }
}

/** The backoff columns of an ai_strategies row as the API shows them. */
export function backoffStateOf(r: { eval_failures: number; eval_retry_at: Date | null; eval_failed_at: Date | null; eval_error_code: string | null }): BackoffState {
  return {
    consecutiveFailures: r.eval_failures,
    nextAttemptAt: r.eval_retry_at?.toISOString() ?? null,
    lastFailedAt: r.eval_failed_at?.toISOString() ?? null,
    lastErrorCode: r.eval_error_code,
  };
}
