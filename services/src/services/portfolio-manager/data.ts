/**
 * portfolio-manager's data access: `pm_accounts`, `pm_positions`, `pm_fills` (set-based statements:
 * one statement per step for a whole batch of fills). Functions take the pool or a transaction's client.
 */
import { cursorPage, type Queryable } from "../../kit";
import { executeWith, type PreparedStatement } from "../../kit/datastores/postgres";
import { D } from "../../trading/decimal";
import type { FillRecord, PositionKey, PositionState, SymbolTotalsRow } from "./domain";
import { positionKey } from "./domain";

/**
 * The statements of a batch of fills (fills.ts), prepared on the connection so that the consumer's
 * transaction is two round trips whatever the batch holds: ENSURE_ACCOUNTS, ENSURE_POSITIONS,
 * LOCK_POSITIONS and APPLIED_FILLS travel with BEGIN (each statement of that message reads with its
 * own snapshot, so the lock sees the rows created before it and the applied fills are read under
 * the lock), INSERT_FILLS, UPDATE_POSITIONS and ADD_CASH with COMMIT (EXECUTEd with their parameters
 * written as literals: the kit's executeWith). The functions below run them one at a time, in a
 * transaction of the caller's.
 */
export const ENSURE_ACCOUNTS: PreparedStatement = {
  name: "pm_ensure_accounts",
  params: ["text[]", "numeric"],
  text: "INSERT INTO pm_accounts (user_id, cash) SELECT u, $2::numeric FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING",
};
export const ENSURE_POSITIONS: PreparedStatement = {
  name: "pm_ensure_positions",
  params: ["text[]", "text[]"],
  text: "INSERT INTO pm_positions (user_id, symbol) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
};
export const LOCK_POSITIONS: PreparedStatement = {
  name: "pm_lock_positions",
  params: ["text[]", "text[]"],
  text: `SELECT p.user_id, p.symbol, p.quantity::text, p.avg_price::text, p.realized_pnl::text, p.fees::text
       FROM pm_positions p JOIN unnest($1::text[], $2::text[]) AS k(u, s) ON p.user_id = k.u AND p.symbol = k.s
      ORDER BY p.user_id, p.symbol FOR UPDATE OF p`,
};
export const APPLIED_FILLS: PreparedStatement = { name: "pm_applied_fills", params: ["text[]"], text: "SELECT fill_id FROM pm_fills WHERE fill_id = ANY($1::text[])" };
export const INSERT_FILLS: PreparedStatement = {
  name: "pm_insert_fills",
  params: ["text[]", "text[]", "text[]", "text[]", "text[]", "numeric[]", "numeric[]", "numeric[]", "numeric[]", "numeric[]", "bigint[]"],
  // In the order they were applied (their applied_seq, the listing's tie-breaker: migration 0467).
  text: `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
     SELECT f, o, u, s, sd, q, p, fe, rp, cd, to_timestamp(ts::double precision / 1000)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::bigint[])
         WITH ORDINALITY AS x(f, o, u, s, sd, q, p, fe, rp, cd, ts, n)
      ORDER BY n`,
};
export const UPDATE_POSITIONS: PreparedStatement = {
  name: "pm_update_positions",
  params: ["text[]", "text[]", "numeric[]", "numeric[]", "numeric[]", "numeric[]"],
  text: `UPDATE pm_positions p SET quantity = x.q, avg_price = x.a, realized_pnl = x.r, fees = x.f, updated_at = now()
       FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[]) AS x(u, s, q, a, r, f)
      WHERE p.user_id = x.u AND p.symbol = x.s`,
};
export const ADD_CASH: PreparedStatement = {
  name: "pm_add_cash",
  params: ["text[]", "numeric[]"],
  text: "UPDATE pm_accounts a SET cash = a.cash + x.d FROM unnest($1::text[], $2::numeric[]) AS x(u, d) WHERE a.user_id = x.u",
};
/** What a batch's transaction prepares (the kit's `transaction(fn, { prepared })`). */
export const FILLS_PREPARED = [ENSURE_ACCOUNTS, ENSURE_POSITIONS, LOCK_POSITIONS, APPLIED_FILLS, INSERT_FILLS, UPDATE_POSITIONS, ADD_CASH];

type LockedRow = { user_id: string; symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string };
const usersOf = (keys: PositionKey[]) => [...new Set(keys.map((k) => k[0]))].sort();
const keyParams = (keys: PositionKey[]) => [keys.map((k) => k[0]), keys.map((k) => k[1])];
const fillParams = (records: FillRecord[]) => Array.from({ length: 11 }, (_, i) => records.map((r) => r[i]));
const positionParams = (positions: Array<{ key: PositionKey; state: PositionState }>) => [
  positions.map((p) => p.key[0]),
  positions.map((p) => p.key[1]),
  ...(["quantity", "avgPrice", "realizedPnl", "fees"] as const).map((field) => positions.map((p) => p.state[field].toFixed())),
];
const cashParams = (deltas: Array<{ userId: string; delta: string }>) => [deltas.map((d) => d.userId), deltas.map((d) => d.delta)];

/** LOCK_POSITIONS' rows by `positionKey`. */
export function lockedPositions(rows: LockedRow[]): Map<string, PositionState> {
  return new Map(rows.map((r) => [positionKey(r.user_id, r.symbol), { quantity: D(r.quantity), avgPrice: D(r.avg_price), realizedPnl: D(r.realized_pnl), fees: D(r.fees) }]));
}

/** The statements sent with BEGIN, in this order: the accounts and positions created, the positions locked, the applied fills read. */
export function lockStatements(keys: PositionKey[], initialCash: string, fillIds: string[]): string[] {
  return [
    executeWith(ENSURE_ACCOUNTS, [usersOf(keys), initialCash]),
    executeWith(ENSURE_POSITIONS, keyParams(keys)),
    executeWith(LOCK_POSITIONS, keyParams(keys)),
    executeWith(APPLIED_FILLS, [fillIds]),
  ];
}

/** The statements sent with COMMIT: the fills recorded, the positions and cash written. */
export function writeStatements(records: FillRecord[], positions: Array<{ key: PositionKey; state: PositionState }>, cash: Array<{ userId: string; delta: string }>): string[] {
  return [executeWith(INSERT_FILLS, fillParams(records)), executeWith(UPDATE_POSITIONS, positionParams(positions)), executeWith(ADD_CASH, cashParams(cash))];
}

/** Creates the missing accounts (with the initial cash) and positions of a batch. */
export async function ensureAccountsAndPositions(tx: Queryable, keys: PositionKey[], initialCash: string): Promise<void> {
  await tx.query(ENSURE_ACCOUNTS.text, [usersOf(keys), initialCash]);
  await tx.query(ENSURE_POSITIONS.text, keyParams(keys));
}

/** Locks the positions in key order (FOR UPDATE) and returns them by `positionKey`. */
export async function lockPositions(tx: Queryable, keys: PositionKey[]): Promise<Map<string, PositionState>> {
  return lockedPositions((await tx.query<LockedRow>(LOCK_POSITIONS.text, keyParams(keys))).rows);
}

/** Which of these fills are already recorded (read after the lock, so a concurrent duplicate is seen). */
export async function appliedFillIds(tx: Queryable, fillIds: string[]): Promise<Set<string>> {
  const r = await tx.query<{ fill_id: string }>(APPLIED_FILLS.text, [fillIds]);
  return new Set(r.rows.map((row) => row.fill_id));
}

/** Records the applied fills, in the order they were applied (their applied_seq, the listing's tie-breaker: migration 0467). */
export async function insertFills(tx: Queryable, records: FillRecord[]): Promise<void> {
  await tx.query(INSERT_FILLS.text, fillParams(records));
}

export async function updatePositions(tx: Queryable, positions: Array<{ key: PositionKey; state: PositionState }>): Promise<void> {
  await tx.query(UPDATE_POSITIONS.text, positionParams(positions));
}

export async function addCash(tx: Queryable, deltas: Array<{ userId: string; delta: string }>): Promise<void> {
  await tx.query(ADD_CASH.text, cashParams(deltas));
}

export async function accountCash(db: Queryable, userId: string): Promise<string | undefined> {
  return (await db.query<{ cash: string }>("SELECT cash::text FROM pm_accounts WHERE user_id = $1", [userId])).rows[0]?.cash;
}

export async function positionsOf(db: Queryable, userId: string) {
  const r = await db.query<{ symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string }>(
    "SELECT symbol, quantity::text, avg_price::text, realized_pnl::text, fees::text FROM pm_positions WHERE user_id = $1",
    [userId],
  );
  return r.rows.map((row) => ({ symbol: row.symbol, quantity: D(row.quantity), avgPrice: D(row.avg_price), realizedPnl: D(row.realized_pnl), fees: D(row.fees) }));
}

/**
 * The user's fills, newest first, at most `limit`, older than the fill `before` when given (undefined
 * when `before` is not one of the user's fills; read in the page's statement, kit cursorPage). Ordered
 * by (fill_ts, applied_seq, fill_id), all descending: fill_ts is market time, which every market
 * fill between two bars shares, so among fills of one time the order portfolio-manager applied them
 * in (applied_seq, migration 0467; 0 for fills recorded before it) says which is newer, and the
 * fill id orders what is left (a page boundary among them neither repeats nor skips one). Compared
 * in SQL: the cursor's fill_ts keeps its microseconds, which a JavaScript Date would lose. Read by
 * pm_fills_user_ts_seq_id (migration 0467).
 */
export async function fillsOf(db: Queryable, userId: string, limit: number, before: string | null) {
  const rows = await cursorPage<FillListed & { appliedSeq?: string }>(db, {
    cursor: "SELECT c.fill_ts, c.applied_seq, c.fill_id FROM pm_fills c WHERE c.fill_id = $2 AND c.user_id = $1",
    page: `SELECT f.fill_id AS "fillId", f.order_id AS "orderId", f.symbol, f.side, f.quantity::text, f.price::text, f.fee::text,
                  f.realized_pnl::text AS "realizedPnl", f.fill_ts AS "ts", f.applied_seq AS "appliedSeq"
             FROM pm_fills f
            WHERE f.user_id = $1 AND ($2::text IS NULL OR (f.fill_ts, f.applied_seq, f.fill_id) < (SELECT * FROM before_row))`,
    order: `"ts" DESC, "appliedSeq" DESC, "fillId" DESC`,
    limit,
    values: [userId, before],
    given: before !== null,
  });
  // The sequence orders the page; it is no part of a fill's answer.
  return rows?.map(({ appliedSeq: _, ...fill }): FillListed => fill);
}

/** A fill as the listing answers it. */
export type FillListed = { fillId: string; orderId: string; symbol: string; side: string; quantity: string; price: string; fee: string; realizedPnl: string; ts: Date };

/** Realized PnL, fees and open positions (non-zero quantity) of all accounts, per symbol. */
export async function totalsBySymbol(db: Queryable): Promise<SymbolTotalsRow[]> {
  const r = await db.query<SymbolTotalsRow>(
    `SELECT symbol, sum(realized_pnl)::text AS realized_pnl, sum(fees)::text AS fees, count(*) FILTER (WHERE quantity <> 0)::int AS open_positions
       FROM pm_positions GROUP BY symbol ORDER BY symbol`,
  );
  return r.rows;
}
