/** ai-orchestrator's PostgreSQL data access: strategies and decisions (0320_ai_orchestrator.sql). */
import { randomUUID } from "node:crypto";
import { accountKeyOf, lockAccountForWrite, type PostgresClient } from "../../kit";
import { backoffStateOf, type BackoffState } from "./backoff";
import { oldestDecisionBound } from "./retire";

export interface Strategy {
  strategyId: string;
  userId: string;
  name: string;
  symbols: string[];
  buyAbove: number;
  sellBelow: number;
  orderQuantity: number;
  maxPosition: number;
  stopLoss: number;
  minRegimeAgreement: number;
  everySeconds: number;
  enabled: boolean;
  status: "active" | "stopped";
  stoppedReason: string | null;
  lastEvaluatedAt: string | null;
  /** Set once deleted (soft: the strategy stays with its decisions, disabled, never evaluated). */
  deletedAt: string | null;
  /** Failed evaluations in a row and when the scheduler tries again (backoff.ts). */
  evaluationBackoff: BackoffState;
}

export type NewStrategy = Omit<Strategy, "strategyId" | "status" | "stoppedReason" | "lastEvaluatedAt" | "deletedAt" | "evaluationBackoff">;

/** What a change may set (symbols are not among them: the strategy's orders and position are per symbol). */
export type StrategySettings = Pick<Strategy, "name" | "buyAbove" | "sellBelow" | "orderQuantity" | "maxPosition" | "stopLoss" | "minRegimeAgreement" | "everySeconds" | "enabled"> & {
  /** Re-arm a strategy its loss stop stopped (an explicit enable). */
  rearm: boolean;
};

/** `key_reused`: the Idempotency-Key was used for another request; `account_deleted`: the account's tombstone, read under its lock in the creating transaction (kit lockAccountForWrite). */
export type CreateOutcome = { kind: "created" | "replayed"; strategy: Strategy } | { kind: "at_limit" } | { kind: "account_deleted" } | { kind: "key_reused" };

interface StrategyRow {
  strategy_id: string;
  user_id: string;
  name: string;
  symbols: string[];
  buy_above: number;
  sell_below: number;
  order_quantity: string;
  max_position: string;
  stop_loss: string;
  min_regime_agreement: number;
  every_seconds: number;
  enabled: boolean;
  status: "active" | "stopped";
  stopped_reason: string | null;
  last_evaluated_at: Date | null;
  deleted_at: Date | null;
  request_hash: string | null;
  eval_failures: number;
  eval_failed_at: Date | null;
  eval_retry_at: Date | null;
  eval_error_code: string | null;
}

const toStrategy = (r: StrategyRow): Strategy => ({
  strategyId: r.strategy_id,
  userId: r.user_id,
  name: r.name,
  symbols: r.symbols,
  buyAbove: r.buy_above,
  sellBelow: r.sell_below,
  orderQuantity: Number(r.order_quantity),
  maxPosition: Number(r.max_position),
  stopLoss: Number(r.stop_loss),
  minRegimeAgreement: r.min_regime_agreement,
  everySeconds: r.every_seconds,
  enabled: r.enabled,
  status: r.status,
  stoppedReason: r.stopped_reason,
  lastEvaluatedAt: r.last_evaluated_at?.toISOString() ?? null,
  deletedAt: r.deleted_at?.toISOString() ?? null,
  evaluationBackoff: backoffStateOf(r),
});

export interface DecisionRecord {
  decisionId: string;
  strategyId: string;
  userId: string;
  symbol: string;
  decidedAt: string;
  modelVersion: string | null;
  probabilityUp: number | null;
  barTime: string | null;
  decisionPrice: number | null;
  features: Record<string, number> | null;
  regimes: unknown[];
  tradingState: string;
  positionBefore: number;
  action: "buy" | "sell" | "hold" | "skip";
  quantity: number;
  reason: string;
  orderId: string | null;
  risk: Record<string, unknown> | null;
  error: string | null;
  /** The evaluation that made it (its lease's token; null for decisions made before migration 0490). */
  evaluationId: string | null;
}

export type NewDecision = Omit<DecisionRecord, "decisionId" | "decidedAt"> & { decisionId?: string };

export const SELECT_DECISION = `SELECT decision_id AS "decisionId", strategy_id AS "strategyId", user_id AS "userId", symbol, decided_at AS "decidedAt",
    model_version AS "modelVersion", probability_up AS "probabilityUp", bar_time AS "barTime", decision_price AS "decisionPrice",
    features, regimes, trading_state AS "tradingState", position_before::float8 AS "positionBefore", action,
    quantity::float8 AS quantity, reason, order_id AS "orderId", risk, error, evaluation_id AS "evaluationId"
  FROM ai_decisions`;

/** When a strategy is next due (NULL: never evaluated). */
const DUE_AT = `(last_evaluated_at + every_seconds * interval '1 second')`;
/** `u` is the owner's account (user-management's users row, by primary key; a user id is a lower-case UUID): absent once deleted. */
const OWNER = `u.id = ${accountKeyOf("ai_strategies.user_id")}`;
/** Whether it is due at $1: enabled, not deleted, its owner's account active (neither disabled nor deleted), its interval elapsed, and not before eval_retry_at (a failed evaluation's backoff, backoff.ts). */
const IS_DUE = `enabled AND deleted_at IS NULL AND EXISTS (SELECT 1 FROM users u WHERE ${OWNER} AND u.disabled_at IS NULL) AND (last_evaluated_at IS NULL OR ${DUE_AT} <= $1) AND (eval_retry_at IS NULL OR eval_retry_at <= $1)`;

/** Key space of the per-user strategy-creation lock (first half of the two-int advisory lock key; "as"). */
const STRATEGY_LOCK_SPACE = 0x6173;

export class OrchestratorStore {
  constructor(private readonly pg: PostgresClient) {}

  /**
   * Inserts the strategy unless the user already keeps `max` live (not deleted) ones. Creations of
   * one user take turns under an advisory lock, so concurrent requests cannot pass the cap together,
   * nor make two strategies of one Idempotency-Key: the key is looked up under that lock first (a
   * retry of a creation at the cap is answered the strategy it made, not refused).
   */
  async createStrategy(s: NewStrategy, max: number, idempotency: { key: string; requestHash: string } | null): Promise<CreateOutcome> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, s.userId)) === "deleted") return { kind: "account_deleted" };
      if (idempotency) {
        const prior = await c.query<StrategyRow>(`SELECT * FROM ai_strategies WHERE user_id = $1 AND idempotency_key = $2`, [s.userId, idempotency.key]);
        if (prior.rows[0]) return prior.rows[0].request_hash === idempotency.requestHash ? { kind: "replayed", strategy: toStrategy(prior.rows[0]) } : { kind: "key_reused" };
      }
      const { rows } = await c.query<StrategyRow>(
        `INSERT INTO ai_strategies (strategy_id, user_id, name, symbols, buy_above, sell_below, order_quantity, max_position, stop_loss,
           min_regime_agreement, every_seconds, enabled, idempotency_key, request_hash)
         SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14,$15
         WHERE (SELECT count(*) FROM ai_strategies WHERE user_id = $2 AND deleted_at IS NULL) < $13 RETURNING *`,
        [randomUUID(), s.userId, s.name, s.symbols, s.buyAbove, s.sellBelow, s.orderQuantity, s.maxPosition, s.stopLoss, s.minRegimeAgreement, s.everySeconds, s.enabled, max,
          idempotency?.key ?? null, idempotency?.requestHash ?? null],
      );
      return rows[0] ? { kind: "created", strategy: toStrategy(rows[0]) } : { kind: "at_limit" };
    }, { lock: { space: STRATEGY_LOCK_SPACE, key: s.userId } });
  }

  /** The user's live strategies (deleted ones are left out), newest first. */
  async listStrategies(userId: string): Promise<Strategy[]> {
    const { rows } = await this.pg.query<StrategyRow>(`SELECT * FROM ai_strategies WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC`, [userId]);
    return rows.map(toStrategy);
  }

  /** A strategy, deleted ones included (their decisions stay readable). */
  async getStrategy(strategyId: string, userId?: string): Promise<Strategy | undefined> {
    const { rows } = await this.pg.query<StrategyRow>(
      `SELECT * FROM ai_strategies WHERE strategy_id = $1 AND ($2::text IS NULL OR user_id = $2)`,
      [strategyId, userId ?? null],
    );
    return rows[0] ? toStrategy(rows[0]) : undefined;
  }

  /**
   * Changes the user's strategy: `change` gets the row as it is (locked, so two changes cannot each
   * pass a check the other breaks) and answers the new settings, or throws to refuse. Enabling re-arms
   * a strategy its loss stop stopped (the user has seen the stop). Undefined: no such strategy; "account_deleted":
   * the owner's account was deleted (read under its lock, kit lockAccountForWrite, as a creation reads it).
   */
  async updateStrategy(strategyId: string, userId: string, change: (current: Strategy) => StrategySettings): Promise<Strategy | undefined | "account_deleted"> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, userId)) === "deleted") return "account_deleted";
      const cur = await c.query<StrategyRow>(`SELECT * FROM ai_strategies WHERE strategy_id = $1 AND user_id = $2 FOR UPDATE`, [strategyId, userId]);
      if (!cur.rows[0]) return undefined;
      const n = change(toStrategy(cur.rows[0]));
      const { rows } = await c.query<StrategyRow>(
        `UPDATE ai_strategies SET name = $2, buy_above = $3, sell_below = $4, order_quantity = $5, max_position = $6, stop_loss = $7,
           min_regime_agreement = $8, every_seconds = $9, enabled = $10, updated_at = now(),
           status = CASE WHEN $11 THEN 'active' ELSE status END, stopped_reason = CASE WHEN $11 THEN NULL ELSE stopped_reason END
         WHERE strategy_id = $1 RETURNING *`,
        [strategyId, n.name, n.buyAbove, n.sellBelow, n.orderQuantity, n.maxPosition, n.stopLoss, n.minRegimeAgreement, n.everySeconds, n.enabled, n.enabled && n.rearm],
      );
      return toStrategy(rows[0]);
    });
  }

  /**
   * Soft delete: the row stays (its decisions reference it and ai-chain-analytics reads them), disabled, no longer listed nor counted against the
   * per-user limit, never evaluated again, with its oldest decision's bound (retire.ts). Deleting a deleted strategy changes nothing. Undefined: none.
   */
  async deleteStrategy(strategyId: string, userId: string): Promise<Strategy | undefined> {
    const { rows } = await this.pg.query<StrategyRow>(
      `UPDATE ai_strategies SET deleted_at = coalesce(deleted_at, now()), enabled = false, updated_at = CASE WHEN deleted_at IS NULL THEN now() ELSE updated_at END,
         oldest_decision_at = CASE WHEN deleted_at IS NULL THEN ${oldestDecisionBound("$1::uuid", "now()")} ELSE oldest_decision_at END
       WHERE strategy_id = $1 AND user_id = $2 RETURNING *`, [strategyId, userId]);
    return rows[0] ? toStrategy(rows[0]) : undefined;
  }

  /** Whether the strategy may still act: read right before each decision (a disable or delete, of it or of its owner's account, during an evaluation applies to it). */
  async lifecycle(strategyId: string): Promise<"enabled" | "disabled" | "deleted" | "account disabled" | "account deleted"> {
    const { rows } = await this.pg.query<{ enabled: boolean; deleted: boolean; account: "active" | "disabled" | "deleted" }>(
      `SELECT ai_strategies.enabled, ai_strategies.deleted_at IS NOT NULL AS deleted, CASE WHEN u.id IS NULL THEN 'deleted' WHEN u.disabled_at IS NOT NULL THEN 'disabled' ELSE 'active' END AS account
         FROM ai_strategies LEFT JOIN users u ON ${OWNER} WHERE ai_strategies.strategy_id = $1`,
      [strategyId],
    );
    const r = rows[0];
    return !r || r.deleted ? "deleted" : r.account !== "active" ? `account ${r.account}` : r.enabled ? "enabled" : "disabled";
  }

  async stop(strategyId: string, reason: string): Promise<void> {
    await this.pg.query(`UPDATE ai_strategies SET status = 'stopped', stopped_reason = $2, updated_at = now() WHERE strategy_id = $1`, [strategyId, reason]);
  }

  /**
   * At most `limit` enabled strategies whose interval has elapsed, in the order the scheduler starts
   * them: round robin by user (each user's most overdue first, then each user's second, ...), within
   * a round the most overdue first. The limit cuts the later rounds, those of the users with the most
   * due strategies, never a user's first one while another user has several. (Unbounded and in no
   * order, it was every due row in the table's order: one user's strategies one after another.)
   */
  async due(limit: number, now = new Date()): Promise<Strategy[]> {
    const { rows } = await this.pg.query<StrategyRow>(
      `SELECT * FROM (
         SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ${DUE_AT} NULLS FIRST, strategy_id) AS turn
         FROM ai_strategies WHERE ${IS_DUE}
       ) d ORDER BY turn, ${DUE_AT} NULLS FIRST, strategy_id LIMIT $2`,
      [now, limit],
    );
    return rows.map(toStrategy);
  }

  /** The strategy as it is now if it is still due (not evaluated, disabled nor deleted since `due` read it). */
  async stillDue(strategyId: string, now = new Date()): Promise<Strategy | undefined> {
    const { rows } = await this.pg.query<StrategyRow>(`SELECT * FROM ai_strategies WHERE strategy_id = $2 AND ${IS_DUE}`, [now, strategyId]);
    return rows[0] ? toStrategy(rows[0]) : undefined;
  }

  /** An evaluation ended: due again in everySeconds, and a failure backoff (backoff.ts) is over. */
  async markEvaluated(strategyId: string): Promise<void> {
    await this.pg.query(`UPDATE ai_strategies SET last_evaluated_at = now(), eval_failures = 0, eval_retry_at = NULL WHERE strategy_id = $1`, [strategyId]);
  }

  /**
   * Records a decision the moment it is made, under its owner's account lock (kit lockAccountForWrite): "account_deleted",
   * nothing recorded, once the account was deleted; a deletion otherwise waits for this commit. decided_at is this insert's
   * clock_timestamp(): order-management's created_at, on the same server's clock after this commit, is never earlier. */
  async recordDecision(d: NewDecision): Promise<DecisionRecord | "account_deleted"> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, d.userId)) === "deleted") return "account_deleted";
      const { rows } = await c.query<{ decision_id: string; decided_at: Date }>(
        `INSERT INTO ai_decisions (decision_id, strategy_id, user_id, symbol, model_version, probability_up, bar_time, decision_price, features,
           regimes, trading_state, position_before, action, quantity, reason, order_id, risk, error, evaluation_id, decided_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19, clock_timestamp()) RETURNING decision_id, decided_at`,
        [
          d.decisionId ?? randomUUID(), d.strategyId, d.userId, d.symbol, d.modelVersion, d.probabilityUp, d.barTime, d.decisionPrice, d.features === null ? null : JSON.stringify(d.features),
          JSON.stringify(d.regimes), d.tradingState, d.positionBefore, d.action, d.quantity, d.reason, d.orderId, d.risk === null ? null : JSON.stringify(d.risk), d.error, d.evaluationId ?? null,
        ],
      );
      return { ...d, decisionId: rows[0].decision_id, decidedAt: rows[0].decided_at.toISOString() };
    });
  }

  /** What order-management answered to the decision's order: its id, the risk answer, an error. */
  async recordOrderOutcome(
    d: DecisionRecord,
    o: { orderId: string | null; risk: Record<string, unknown>; error: string | null },
  ): Promise<DecisionRecord> {
    await this.pg.query(`UPDATE ai_decisions SET order_id = $2, risk = $3, error = $4 WHERE decision_id = $1`, [
      d.decisionId, o.orderId, JSON.stringify(o.risk), o.error,
    ]);
    return { ...d, ...o };
  }

  async decision(decisionId: string, userId: string): Promise<DecisionRecord | undefined> {
    const { rows } = await this.pg.query(`${SELECT_DECISION} WHERE decision_id = $1 AND user_id = $2`, [decisionId, userId]);
    return rows[0] as DecisionRecord | undefined;
  }

  async decisions(strategyId: string, limit = 100): Promise<DecisionRecord[]> {
    const { rows } = await this.pg.query(`${SELECT_DECISION} WHERE strategy_id = $1 ORDER BY decided_at DESC, decision_id LIMIT $2`, [strategyId, limit]);
    return rows as DecisionRecord[];
  }

  /**
   * Decisions recorded at or after `since` (keyset on decided_at, decision_id), oldest first: what
   * ai-chain-analytics pulls. The caller re-reads a few seconds back, as a transaction that
   * committed late may carry an earlier decided_at; it dedupes by decision id.
   */
  async decisionsSince(since: Date, limit: number): Promise<DecisionRecord[]> {
    const { rows } = await this.pg.query(`${SELECT_DECISION} WHERE decided_at >= $1 ORDER BY decided_at, decision_id LIMIT $2`, [since, limit]);
    return rows as DecisionRecord[];
  }
}
