/**
 * The kill switch's record in PostgreSQL (migrations/postgres/0196): the current state of each scope
 * (`global` or `user:<id>`) in `trading_states`, every change in the append-only
 * `trading_state_changes`. Functions take the pool or a transaction's client.
 */
import type { AuthMethod, Queryable } from "../../kit";
import { KILL_SWITCH_LOCK, type TradingState } from "../../trading/tradingState";

export interface ChangeRow {
  id: string;
  scope: string;
  user_id: string | null;
  from_state: TradingState;
  to_state: TradingState;
  reason: string;
  changed_by: string;
  auth_method: AuthMethod;
  changed_at: Date;
}

export interface NewChange {
  scope: string;
  userId: string | null;
  to: TradingState;
  reason: string;
  changedBy: string;
  authMethod: AuthMethod;
}

/**
 * The scope's recorded state, its row locked for the rest of the transaction (created `active` when
 * the scope was never set): concurrent changes of one scope, and the reconciler's re-apply, take
 * turns, so `from` is exact and the Dragonfly key is written in the order of the commits. First the
 * kill switch's advisory lock, exclusively (KILL_SWITCH_LOCK): the change waits for the engine
 * batches that read the state before it, and the batches after it wait for its commit.
 */
export async function lockScope(tx: Queryable, scope: string): Promise<TradingState> {
  await tx.query("SELECT pg_advisory_xact_lock($1, $2)", [KILL_SWITCH_LOCK.space, KILL_SWITCH_LOCK.key]);
  await tx.query("INSERT INTO trading_states (scope, state) VALUES ($1, 'active') ON CONFLICT (scope) DO NOTHING", [scope]);
  const { rows } = await tx.query<{ state: TradingState }>("SELECT state FROM trading_states WHERE scope = $1 FOR UPDATE", [scope]);
  return rows[0].state;
}

/** Records the change and makes it the scope's state (inside the transaction holding `lockScope`). */
export async function recordChange(tx: Queryable, from: TradingState, c: NewChange): Promise<ChangeRow> {
  await tx.query("UPDATE trading_states SET state = $2, updated_at = now() WHERE scope = $1", [c.scope, c.to]);
  const { rows } = await tx.query<ChangeRow>(
    `INSERT INTO trading_state_changes (scope, user_id, from_state, to_state, reason, changed_by, auth_method)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
    [c.scope, c.userId, from, c.to, c.reason, c.changedBy, c.authMethod],
  );
  return rows[0];
}

/** Recorded states of these scopes (missing: never set); `lock` takes their rows for share. */
export async function recordedStates(db: Queryable, scopes: string[] | "all", lock = false): Promise<Map<string, TradingState>> {
  const where = scopes === "all" ? "" : "WHERE scope = ANY($1::text[])";
  const { rows } = await db.query<{ scope: string; state: TradingState }>(
    `SELECT scope, state FROM trading_states ${where} ORDER BY scope${lock ? " FOR SHARE" : ""}`,
    scopes === "all" ? [] : [scopes],
  );
  return new Map(rows.map((r) => [r.scope, r.state]));
}

/** The scope's changes, newest first, older than the `before` id when given. */
export async function changesOf(db: Queryable, scope: string, limit: number, before: string | null): Promise<ChangeRow[]> {
  const { rows } = await db.query<ChangeRow>(
    `SELECT * FROM trading_state_changes WHERE scope = $1 AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
    [scope, before, limit],
  );
  return rows;
}

export async function lastChangeOf(db: Queryable, scope: string): Promise<ChangeRow | undefined> {
  return (await changesOf(db, scope, 1, null))[0];
}

/** Whether the platform has this account (user-management's `users`). */
export async function userExists(db: Queryable, userId: string): Promise<boolean> {
  return ((await db.query("SELECT 1 FROM users WHERE id = $1", [userId])).rowCount ?? 0) > 0;
}
