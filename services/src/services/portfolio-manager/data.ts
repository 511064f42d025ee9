/**
 * portfolio-manager's data access: `pm_accounts`, `pm_positions`, `pm_fills` (set-based statements:
 * one round trip per step for a whole batch of fills). Functions take the pool or a transaction's client.
 */
import { cursorPage, type Queryable } from "../../kit";
import { D } from "../../trading/decimal";
import type { FillRecord, PositionKey, PositionState, SymbolTotalsRow } from "./domain";
import { positionKey } from "./domain";

/** Creates the missing accounts (with the initial cash) and positions of a batch. */
export async function ensureAccountsAndPositions(tx: Queryable, keys: PositionKey[], initialCash: string): Promise<void> {
  const users = [...new Set(keys.map((k) => k[0]))].sort();
  await tx.query("INSERT INTO pm_accounts (user_id, cash) SELECT u, $2::numeric FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING", [users, initialCash]);
  await tx.query("INSERT INTO pm_positions (user_id, symbol) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING", [keys.map((k) => k[0]), keys.map((k) => k[1])]);
}

/** Locks the positions in key order (FOR UPDATE) and returns them by `positionKey`. */
export async function lockPositions(tx: Queryable, keys: PositionKey[]): Promise<Map<string, PositionState>> {
  const locked = await tx.query<{ user_id: string; symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string }>(
    `SELECT p.user_id, p.symbol, p.quantity::text, p.avg_price::text, p.realized_pnl::text, p.fees::text
       FROM pm_positions p JOIN unnest($1::text[], $2::text[]) AS k(u, s) ON p.user_id = k.u AND p.symbol = k.s
      ORDER BY p.user_id, p.symbol FOR UPDATE OF p`,
    [keys.map((k) => k[0]), keys.map((k) => k[1])],
  );
  return new Map(locked.rows.map((r) => [positionKey(r.user_id, r.symbol), { quantity: D(r.quantity), avgPrice: D(r.avg_price), realizedPnl: D(r.realized_pnl), fees: D(r.fees) }]));
}

/** Which of these fills are already recorded (read after the lock, so a concurrent duplicate is seen). */
export async function appliedFillIds(tx: Queryable, fillIds: string[]): Promise<Set<string>> {
  const r = await tx.query<{ fill_id: string }>("SELECT fill_id FROM pm_fills WHERE fill_id = ANY($1::text[])", [fillIds]);
  return new Set(r.rows.map((row) => row.fill_id));
}

/** Records the applied fills, in the order they were applied (their applied_seq, the listing's tie-breaker: migration 0467). */
export async function insertFills(tx: Queryable, records: FillRecord[]): Promise<void> {
  const col = (i: number) => records.map((r) => r[i]);
  await tx.query(
    `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
     SELECT f, o, u, s, sd, q, p, fe, rp, cd, to_timestamp(ts::double precision / 1000)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::bigint[])
         WITH ORDINALITY AS x(f, o, u, s, sd, q, p, fe, rp, cd, ts, n)
      ORDER BY n`,
    Array.from({ length: 11 }, (_, i) => col(i)),
  );
}

export async function updatePositions(tx: Queryable, positions: Array<{ key: PositionKey; state: PositionState }>): Promise<void> {
  await tx.query(
    `UPDATE pm_positions p SET quantity = x.q, avg_price = x.a, realized_pnl = x.r, fees = x.f, updated_at = now()
       FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[]) AS x(u, s, q, a, r, f)
      WHERE p.user_id = x.u AND p.symbol = x.s`,
    [
      positions.map((p) => p.key[0]),
      positions.map((p) => p.key[1]),
      ...(["quantity", "avgPrice", "realizedPnl", "fees"] as const).map((field) => positions.map((p) => p.state[field].toFixed())),
    ],
  );
}

export async function addCash(tx: Queryable, deltas: Array<{ userId: string; delta: string }>): Promise<void> {
  await tx.query("UPDATE pm_accounts a SET cash = a.cash + x.d FROM unnest($1::text[], $2::numeric[]) AS x(u, d) WHERE a.user_id = x.u", [
    deltas.map((d) => d.userId),
    deltas.map((d) => d.delta),
  ]);
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
