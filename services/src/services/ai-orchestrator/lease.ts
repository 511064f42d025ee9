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
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { PostgresClient } from "../../kit";
import { SETTLE_AFTER_MS } from "./recover";

/** Time from taking a lease to the start of the order submit it covers, at most (the decision's record, a pool wait). */
export const LEASE_SUBMIT_WINDOW_MS = 15_000;
export const EVALUATION_LEASE_MS = LEASE_SUBMIT_WINDOW_MS + SETTLE_AFTER_MS + 2_000;
/** How often a waiting disable looks again. */
const POLL_MS = 50;

/** One evaluation's lease (renewed before each lifecycle read, dropped at its end). */
export class EvaluationLease {
  readonly token = randomUUID();
  /** performance.now() before the last renewal that held, or undefined while none did. */
  private heldFrom: number | undefined;

  constructor(
    private readonly pg: PostgresClient,
    readonly strategyId: string,
  ) {}

  /** Takes or renews the lease, only while the strategy is enabled and not deleted; whether it holds now. */
  async renew(): Promise<boolean> {
    const from = performance.now();
    const { rows } = await this.pg.query(
      `INSERT INTO ai_evaluation_leases (token, strategy_id, expires_at)
       SELECT $1, strategy_id, clock_timestamp() + $3 * interval '1 millisecond' FROM ai_strategies
        WHERE strategy_id = $2 AND enabled AND deleted_at IS NULL
       ON CONFLICT (token) DO UPDATE SET expires_at = EXCLUDED.expires_at
       RETURNING token`,
      [this.token, this.strategyId, EVALUATION_LEASE_MS],
    );
    if (rows.length > 0) this.heldFrom = from;
    return rows.length > 0;
  }

  /** Whether an order submit may start now: the last renewal held and its submit window is not over. */
  coversSubmit(): boolean {
    return this.heldFrom !== undefined && performance.now() - this.heldFrom < LEASE_SUBMIT_WINDOW_MS;
  }

  /** Drops the lease (and the strategy's leases long expired: a crashed replica's). */
  async release(): Promise<void> {
    await this.pg.query(
      `DELETE FROM ai_evaluation_leases WHERE token = $1 OR (strategy_id = $2 AND expires_at < clock_timestamp() - interval '1 hour')`,
      [this.token, this.strategyId],
    );
  }
}

/**
 * Resolves once no live lease of the strategy is left, in any process. Called after the disable or
 * delete committed: no lease is taken after it, and each one taken before has expired within
 * EVALUATION_LEASE_MS (the bound also ends the wait when the strategy was enabled again meanwhile).
 */
export async function leasesGone(pg: PostgresClient, strategyId: string): Promise<void> {
  const until = performance.now() + EVALUATION_LEASE_MS + 1_000;
  while (performance.now() < until) {
    const { rows } = await pg.query(`SELECT 1 FROM ai_evaluation_leases WHERE strategy_id = $1 AND expires_at > clock_timestamp() LIMIT 1`, [strategyId]);
    if (rows.length === 0) return;
    await sleep(POLL_MS);
  }
}
