/**
 * Backoff of a strategy whose evaluation fails (an exception: an answer of ml-predictor that cannot
 * be read, order-management unreachable while reading the book, PostgreSQL errors). Such an
 * evaluation is not marked evaluated, so the strategy stays due; without a backoff the scheduler
 * started it again at every tick (ORCH_TICK_MS), forever. Each failure in a row doubles the wait
 * before the scheduler starts it again: ORCH_EVAL_RETRY_MS after the first, then twice that, ...,
 * never more than the strategy's own everySeconds (a failing strategy is still tried once per
 * interval, as a working one is evaluated). A success (markEvaluated) resets it. The columns
 * (0392_ai_orchestrator_recovery.sql) also keep when the last failure happened and why.
 * A manual evaluation (the API) is not held back; its failure counts like a scheduled one.
 */
import type { PostgresClient } from "../../kit";

/** Doublings at most: 2^40 times any base is past every everySeconds cap. */
const MAX_DOUBLINGS = 40;

export class EvaluationBackoff {
  constructor(
    private readonly pg: PostgresClient,
    /** Wait after the first failure (ORCH_EVAL_RETRY_MS). */
    private readonly firstRetryMs: number,
  ) {}

  /** Records a failed evaluation and when the scheduler may start the strategy again. */
  async failed(strategyId: string, error: string): Promise<void> {
    // eval_failures on the right is the count before this failure: the first waits 2^0 times the base.
    await this.pg.query(
      `UPDATE ai_strategies SET eval_failures = eval_failures + 1, eval_failed_at = now(), eval_error = left($2, 2000),
         eval_retry_at = now() + least(every_seconds * 1000.0, $3 * power(2, least(eval_failures, ${MAX_DOUBLINGS}))) * interval '1 millisecond'
       WHERE strategy_id = $1`,
      [strategyId, error, this.firstRetryMs],
    );
  }
}
