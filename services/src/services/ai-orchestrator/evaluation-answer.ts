/**
 * One answer for every caller of an evaluation, in whichever replica they asked. A manual evaluation
 * (POST /strategies/:id/evaluate) arriving while the strategy is evaluated joins that evaluation:
 * in the same process, the running promise (index.ts); in another replica, it met the evaluation's
 * lease "busy" and was a 409 EVALUATION_IN_PROGRESS while the same call on the first replica got the
 * decisions. The evaluation now records what it answered on its lease row when it ends (lease.ts,
 * migration 0490: its decisions were recorded, or the error), and such a caller waits for that
 * answer, polling, at most ORCH_EVALUATION_WAIT_MS (the kit's withTimeout), then answers the same:
 * the evaluation's decisions (each names it: `evaluationId`) or its error. The 409 is left for a wait
 * that ends without an answer: an evaluation longer than the wait, or a lease that expired unanswered
 * (its replica killed mid-evaluation, or an evaluation that overran it, which submits nothing more):
 * asked again, the call evaluates. No connection is held while waiting. The wait ends at once when
 * this replica starts shutting down (the kit's `closing`): a 503 SHUTTING_DOWN naming the evaluation,
 * as the wait (ORCH_EVALUATION_WAIT_MS, 20 s) held the shutdown past SHUTDOWN_TIMEOUT_MS (10 s).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { datastoreUnavailable, HttpError, isTransientError, shuttingDown, unavailable, withTimeout, type PostgresClient } from "../../kit";
import { EvaluationInProgress, POLL_MS } from "./lease";
import { SELECT_DECISION, type DecisionRecord } from "./store";

/** What an ended evaluation answered its callers: its decisions (recorded under its id), or an error. */
export type EvaluationAnswer =
  | { decided: true }
  | { error: { statusCode: number; code: string; message: string; field?: string; headers?: Record<string, string> } };

export const DECIDED: EvaluationAnswer = { decided: true };

/** The answer recorded for an evaluation that failed with `e`, as its callers in this process get it (index.ts). */
export function failedAnswer(e: unknown): EvaluationAnswer {
  const http =
    e instanceof HttpError ? e
    : isTransientError(e) ? datastoreUnavailable("the evaluation was cut short")
    // What the kit would answer is a 500 naming nothing: a caller elsewhere is told as little.
    : unavailable("EVALUATION_FAILED", "the evaluation failed in another replica of this service; ask again", 1);
  return { error: { statusCode: http.statusCode, code: http.code, message: http.message, field: http.field, headers: http.headers } };
}

/** The error an ended evaluation's answer says, for a caller in another replica. */
const errorOf = (a: Extract<EvaluationAnswer, { error: unknown }>["error"]) => new HttpError(a.statusCode, a.code, a.message, a.field, a.headers);

/** The evaluation's answer once it has one; undefined once its lease expired without one, or its row is gone (its strategy purged). */
async function answerRecorded(pg: PostgresClient, evaluationId: string, stop: AbortSignal): Promise<EvaluationAnswer | undefined> {
  for (;;) {
    const { rows } = await pg.query<{ answer: EvaluationAnswer | null; expired: boolean }>(
      `SELECT answer, expires_at <= clock_timestamp() AS expired FROM ai_evaluation_leases WHERE token = $1`,
      [evaluationId],
    );
    if (!rows[0]) return undefined;
    if (rows[0].answer) return rows[0].answer;
    if (rows[0].expired) return undefined;
    await sleep(POLL_MS, undefined, { signal: stop });
  }
}

/** The decisions of one evaluation, in the order it made them (ai_decisions_evaluation, migration 0490). */
export async function decisionsOfEvaluation(pg: PostgresClient, evaluationId: string): Promise<DecisionRecord[]> {
  const { rows } = await pg.query(`${SELECT_DECISION} WHERE evaluation_id = $1 ORDER BY decided_at, decision_id`, [evaluationId]);
  return rows as DecisionRecord[];
}

/** The answer to a caller whose wait this replica's shutdown ended: nothing was evaluated for it. */
const notAwaited = (busy: EvaluationInProgress) =>
  shuttingDown(`strategy ${busy.strategyId} is being evaluated by another replica of this service (evaluation ${busy.evaluationId}), whose answer was not waited for; nothing was evaluated for this request`);

/**
 * What the evaluation another replica runs (`busy`, from its lease) answers, waited for at most
 * `waitMs`: its decisions, or its error thrown; a 409 naming the wait when the wait ends first (or
 * the lease expires unanswered), `busy` itself at once when `waitMs` is 0; a 503 SHUTTING_DOWN once
 * `closing` (the kit's, this replica's shutdown) is aborted, at once.
 */
export async function awaitEvaluation(pg: PostgresClient, busy: EvaluationInProgress, waitMs: number, closing: AbortSignal): Promise<DecisionRecord[]> {
  if (waitMs <= 0) throw busy;
  if (closing.aborted) throw notAwaited(busy);
  const from = performance.now();
  const stop = new AbortController();
  // A datastore error while polling is told apart from the bound: the poll's outcome is wrapped, and withTimeout's rejection is the bound.
  // The shutdown aborts the poll's pause: its rejection ends the wait, told apart below by `closing`.
  const polled = await withTimeout(
    answerRecorded(pg, busy.evaluationId, AbortSignal.any([stop.signal, closing])).then((answer) => ({ answer }), (err: unknown) => ({ err })),
    waitMs,
    `evaluation ${busy.evaluationId}`,
  )
    .catch(() => undefined)
    .finally(() => stop.abort());
  if (closing.aborted && !(polled && "answer" in polled && polled.answer)) throw notAwaited(busy);
  if (polled && "err" in polled) throw polled.err;
  const answer = polled?.answer;
  if (!answer) throw new EvaluationInProgress(busy.strategyId, busy.until, busy.evaluationId, Math.round(performance.now() - from));
  if ("error" in answer) throw errorOf(answer.error);
  return decisionsOfEvaluation(pg, busy.evaluationId);
}
