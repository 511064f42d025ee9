/**
 * Evaluation leases (PostgreSQL `ai_evaluation_leases`, migration 0456): what a disable or DELETE of
 * a strategy waits for, across every ai-orchestrator process. The in-process map of running
 * evaluations (index.ts) saw only its own process's: a disable answered by one replica while another
 * was submitting the strategy's order was followed by that order.
 *
 * The handshake: an evaluation commits its lease, then reads the strategy's lifecycle (enabled?); a
 * disable commits `enabled = false`, then looks for live leases. Each statement reads what was
 * committed before it started, so either the evaluation's read sees the disable (no order), or the
 * disable's look sees the lease and waits until it is dropped or expires. No connection is held
 * while waiting or evaluating (an advisory lock would pin one per running evaluation, from a pool
 * of 10 shared with the API).
 *
 * A lease lasts EVALUATION_LEASE_MS from before it was taken. It must outlast the order it covers:
 * the evaluation submits only while LEASE_SUBMIT_WINDOW_MS have not passed since the lease, so the
 * lease ends at least SETTLE_AFTER_MS after the decision is recorded, past which that submit can no
 * longer commit (recover.ts). A submit that got an answer drops the lease with the evaluation's end;
 * one without an answer keeps it to its expiry.
 *
 * A lease is also what makes an evaluation of a strategy exclusive across replicas (the in-process
 * map of index.ts joins only one process's calls): it is taken before the evaluation reads the book,
 * and every take or renewal runs in a short transaction under the strategy's advisory lock that looks
 * for another live lease first. One is found: "busy", the caller evaluates nothing (409
 * EVALUATION_IN_PROGRESS through the API; the scheduler skips the strategy). Its own lease expired
 * (an evaluation longer than EVALUATION_LEASE_MS between renewals): "lapsed", another may have run
 * meanwhile, so no order of it is submitted. A killed replica's lease blocks until its expiry only;
 * one kept after a submit without an answer (keep()) makes a disable wait, not an evaluation.
 *
 * The token is also the evaluation's id: its decisions carry it (`evaluation_id`, migration 0490),
 * and its row, once the evaluation ends, keeps what its callers were answered (`answer`) for
 * ANSWER_KEPT_MS, no longer live: a caller that met it "busy" in another replica waits for that
 * answer and gives the same (evaluation-answer.ts).
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { HttpError, shuttingDown, type PostgresClient } from "../../kit";
import type { EvaluationAnswer } from "./evaluation-answer";
import { SETTLE_AFTER_MS } from "./recover";

/** Time from taking a lease to the start of the order submit it covers, at most (the decision's record, a pool wait). */
export const LEASE_SUBMIT_WINDOW_MS = 15_000;
export const EVALUATION_LEASE_MS = LEASE_SUBMIT_WINDOW_MS + SETTLE_AFTER_MS + 2_000;
/** How often a waiting disable, or a caller waiting for another replica's evaluation, looks again. */
export const POLL_MS = 50;
/** How long an ended evaluation's row keeps its answer for the callers waiting for it (more than ORCH_EVALUATION_WAIT_MS at its maximum). */
export const ANSWER_KEPT_MS = 120_000;

/** Key space of the per-strategy evaluation lease lock (first half of the two-int advisory lock key; "ae"). */
const LEASE_LOCK_SPACE = 0x6165;

/** What a take or renewal found: held (taken or renewed), or why not. */
export type LeaseTake =
  | { kind: "held" }
  /** The strategy is disabled or deleted: no lease (its evaluation records refusals, no order). */
  | { kind: "closed" }
  /** Another evaluation of the strategy (`evaluationId`), in any replica, holds a live lease until `until` at the latest. */
  | { kind: "busy"; until: Date; evaluationId: string }
  /** This lease expired before its renewal, or was never taken: another evaluation may have run meanwhile. */
  | { kind: "lapsed" };

/** One evaluation's lease (taken at its start, renewed before each lifecycle read, dropped at its end). */
export class EvaluationLease {
  readonly token = randomUUID();
  /** performance.now() before the last renewal that held, or undefined while none did. */
  private heldFrom: number | undefined;
  /** Whether renew() was called: only the first call, before the book is read, may take a lease. */
  private tried = false;

  constructor(
    private readonly pg: PostgresClient,
    readonly strategyId: string,
  ) {}

  /**
   * Takes or renews the lease, only while the strategy is enabled and not deleted and no other
   * evaluation of it holds a live one. A short transaction: the advisory lock orders it with the
   * other replicas' takes, and no connection is held between them.
   */
  async renew(): Promise<LeaseTake> {
    const from = performance.now();
    const first = !this.tried;
    this.tried = true;
    const take = await this.pg.transaction(async (c): Promise<LeaseTake> => {
      await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [LEASE_LOCK_SPACE, this.strategyId]);
      const { rows: found } = await c.query<{ token: string; mine: boolean; live: boolean; expires_at: Date }>(
        `SELECT token, token = $1 AS mine, expires_at > clock_timestamp() AS live, expires_at FROM ai_evaluation_leases
          WHERE strategy_id = $2 AND (token = $1 OR (expires_at > clock_timestamp() AND NOT kept))`,
        [this.token, this.strategyId],
      );
      const [other] = found.filter((r) => !r.mine).sort((a, b) => b.expires_at.getTime() - a.expires_at.getTime());
      if (other) return { kind: "busy", until: other.expires_at, evaluationId: other.token };
      // Expired, or never taken (the strategy was disabled at the start): the book read was not exclusive.
      if (found.some((r) => r.mine && !r.live) || (!first && !found.some((r) => r.mine))) return { kind: "lapsed" };
      const { rows } = await c.query(
        `INSERT INTO ai_evaluation_leases (token, strategy_id, expires_at)
         SELECT $1, strategy_id, clock_timestamp() + $3 * interval '1 millisecond' FROM ai_strategies
          WHERE strategy_id = $2 AND enabled AND deleted_at IS NULL
         ON CONFLICT (token) DO UPDATE SET expires_at = EXCLUDED.expires_at
         RETURNING token`,
        [this.token, this.strategyId, EVALUATION_LEASE_MS],
      );
      return rows.length > 0 ? { kind: "held" } : { kind: "closed" };
    });
    if (take.kind === "held") this.heldFrom = from;
    // Exclusivity was lost: no submit on what this evaluation read before.
    else if (take.kind !== "closed") this.heldFrom = undefined;
    return take;
  }

  /** Whether an order submit may start now: the last renewal held and its submit window is not over. */
  coversSubmit(): boolean {
    return this.heldFrom !== undefined && performance.now() - this.heldFrom < LEASE_SUBMIT_WINDOW_MS;
  }

  /**
   * Keeps the lease to its expiry for the disable's wait only (a submit without an answer may still
   * commit its order): no longer exclusive, as the next evaluation's settleUnrecordedOrders answers
   * ORDER_OUTCOME_PENDING until that order is found or can no longer commit (recover.ts). Marked
   * `kept` (migration 0482). The evaluation has ended: its answer is recorded.
   */
  keep(answer: EvaluationAnswer | null = null): Promise<void> {
    return this.end(answer, true);
  }

  /** Drops the lease (no longer live) and records the evaluation's answer; the strategy's rows past use go (a crashed replica's, answers kept long enough). */
  release(answer: EvaluationAnswer | null = null): Promise<void> {
    return this.end(answer, false);
  }

  private async end(answer: EvaluationAnswer | null, kept: boolean): Promise<void> {
    await this.pg.query(
      `WITH ended AS (
         UPDATE ai_evaluation_leases SET ended_at = clock_timestamp(), answer = $3, kept = kept OR $4,
           expires_at = CASE WHEN $4 THEN expires_at ELSE least(expires_at, clock_timestamp()) END
         WHERE token = $1 RETURNING token)
       DELETE FROM ai_evaluation_leases WHERE strategy_id = $2 AND token <> $1 AND expires_at < clock_timestamp()
         AND (expires_at < clock_timestamp() - interval '1 hour' OR ended_at < clock_timestamp() - $5 * interval '1 millisecond')`,
      [this.token, this.strategyId, answer === null ? null : JSON.stringify(answer), kept, ANSWER_KEPT_MS],
    );
  }
}

/**
 * Resolves once no live lease of the strategy is left, in any process. Called after the disable or
 * delete committed: no lease is taken after it, and each one taken before has expired within
 * EVALUATION_LEASE_MS (the bound also ends the wait when the strategy was enabled again meanwhile).
 * Once `closing` (the kit's: this replica shuts down) is aborted, the wait ends at once with a 503
 * SHUTTING_DOWN: the change is committed, the other replica's evaluation not waited for (up to 28 s, past
 * SHUTDOWN_TIMEOUT_MS); the request sent again waits for it.
 */
export async function leasesGone(pg: PostgresClient, strategyId: string, closing: AbortSignal): Promise<void> {
  const until = performance.now() + EVALUATION_LEASE_MS + 1_000;
  while (performance.now() < until) {
    const { rows } = await pg.query(`SELECT 1 FROM ai_evaluation_leases WHERE strategy_id = $1 AND expires_at > clock_timestamp() LIMIT 1`, [strategyId]);
    if (rows.length === 0) return;
    await sleep(POLL_MS, undefined, { signal: closing }).catch(() => undefined);
    if (closing.aborted)
      throw shuttingDown(`strategy ${strategyId}'s change is made, but its evaluation running in another replica of this service, which may still place an order, was not waited for`);
  }
}

/**
 * The answer to an evaluation asked while another one of the strategy (`evaluationId`) runs in
 * another replica, when its answer did not come within the wait (evaluation-answer.ts), or the
 * scheduler's cue to skip the strategy.
 */
export class EvaluationInProgress extends HttpError {
  constructor(
    readonly strategyId: string,
    readonly until: Date,
    readonly evaluationId: string,
    /** Set once a caller waited this long (ms) for the evaluation's answer in vain. */
    waitedMs?: number,
  ) {
    // Retry-After 1: most evaluations end within seconds; the lease's end is only the bound.
    super(
      409, "EVALUATION_IN_PROGRESS",
      `strategy ${strategyId} is being evaluated by another replica of this service (evaluation ${evaluationId}; its lease ends by ${until.toISOString()} at the latest)` +
        `${waitedMs === undefined ? "" : `, whose answer did not come (waited ${waitedMs} ms)`}: ask again after it`,
      undefined, { "retry-after": "1" },
    );
  }
}

export const isEvaluationInProgress = (e: unknown): e is EvaluationInProgress => e instanceof EvaluationInProgress;
