/**
 * Each user's budget of evaluations asked through the API (migration 0465): a token bucket of
 * `perMinute` tokens, refilled at `perMinute` a minute, one taken per POST /strategies/:id/evaluate
 * of any of the user's strategies. An evaluation records a decision per symbol, kept for good: the
 * API ran one at each call, so one user asking in a loop filled ai_decisions, and a bound per strategy
 * alone would be passed by creating strategies. The scheduler's evaluations are not counted (their
 * bound is the schedule: everySeconds, ORCH_MAX_STRATEGIES_PER_USER). A request answered with nothing
 * evaluated for it (503 SHUTTING_DOWN: this replica's shutdown cut its wait for another replica's
 * evaluation; 409 EVALUATION_IN_PROGRESS: that evaluation's answer did not come) gets its token back.
 */
import type { PostgresClient } from "../../kit";
import { HttpError } from "../../kit";

/** The tokens the user's bucket holds now ($2 a minute, at most $2). */
const REFILLED = `least($2::float8, b.tokens + extract(epoch FROM now() - b.refilled_at) * $2::float8 / 60)`;

export class EvaluationBudget {
  constructor(
    private readonly pg: PostgresClient,
    private readonly perMinute: number,
  ) {}

  /**
   * Takes a token of the user's bucket, or throws 429 EVALUATION_LIMIT naming the limit, with
   * retry-after the seconds until a token is back. One statement: the upsert locks the user's row, so
   * concurrent requests take turns and never pass the bound together.
   */
  async take(userId: string): Promise<void> {
    const taken = await this.pg.query(
      `INSERT INTO ai_evaluation_budgets AS b (user_id, tokens, refilled_at) VALUES ($1, $2::float8 - 1, now())
       ON CONFLICT (user_id) DO UPDATE SET tokens = ${REFILLED} - 1, refilled_at = now() WHERE ${REFILLED} >= 1
       RETURNING tokens`,
      [userId, this.perMinute],
    );
    if (taken.rowCount) return;
    const { rows } = await this.pg.query<{ left: number }>(`SELECT ${REFILLED} AS left FROM ai_evaluation_budgets b WHERE user_id = $1`, [userId, this.perMinute]);
    const wait = Math.max(1, Math.ceil(((1 - (rows[0]?.left ?? 0)) * 60) / this.perMinute));
    throw new HttpError(
      429,
      "EVALUATION_LIMIT",
      `at most ${this.perMinute} evaluations a minute per user through the API, whatever the strategy: retry in ${wait} s (the schedule evaluates each enabled strategy every everySeconds)`,
      undefined,
      { "retry-after": String(wait) },
    );
  }

  /**
   * Runs `evaluate` on a token taken (take: 429 past the budget), and gives the token back when the
   * answer is that nothing was evaluated for the request (`nothingEvaluated`); the answer is the same.
   */
  async spend<T>(userId: string, evaluate: () => Promise<T>): Promise<T> {
    await this.take(userId);
    try {
      return await evaluate();
    } catch (e) {
      // A failed give-back leaves the answer as it is: the token comes back by the refill, within a minute.
      if (nothingEvaluated(e)) await this.giveBack(userId).catch(() => undefined);
      throw e;
    }
  }

  /** Puts a token back in the user's bucket (never above `perMinute`). */
  private async giveBack(userId: string): Promise<void> {
    await this.pg.query(`UPDATE ai_evaluation_budgets b SET tokens = least($2::float8, ${REFILLED} + 1), refilled_at = now() WHERE user_id = $1`, [userId, this.perMinute]);
  }
}

/** Whether an evaluation request's error says nothing was evaluated for it: its wait for another replica's evaluation was cut or went unanswered. */
export const nothingEvaluated = (e: unknown): boolean => e instanceof HttpError && (e.code === "SHUTTING_DOWN" || e.code === "EVALUATION_IN_PROGRESS");
