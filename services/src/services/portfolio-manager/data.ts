/**
 * portfolio-manager's data access: `pm_accounts`, `pm_positions`, `pm_fills` (set-based statements
 * for a whole batch of fills, in two round trips: readStatements, writeStatements). Functions take the
 * pool or a transaction's client.
 */
import { cursorPage, type Queryable } from "../../kit";
import { parameterLiteral, textLiteral } from "../../kit/datastores/postgres";
import { D } from "../../trading/decimal";
import type { FillRecord, PositionKey, PositionState, SymbolTotalsRow } from "./domain";
import { positionKey } from "./domain";

/**
 * An array as one literal of its parameter's text (kit parameterLiteral), cast to `type`[]: PostgreSQL
 * reads what it would have read as the parameter, and the statement's text is the same whatever the
 * batch's size (one pg_stat_statements entry, not one per length).
 */
const arrayOf = (values: string[], type: "text" | "numeric" | "bigint") => `${parameterLiteral(values)}::${type}[]`;

/**
 * The statements of a batch's first round trip, written with literals (arrayOf; quoted with pg's escapeLiteral)
 * so they travel together, with BEGIN: the missing accounts (with the initial cash) and positions
 * created, the positions locked in key order (FOR UPDATE), then which of the fills are already
 * recorded. Each is a statement of its own: the last reads after the lock was granted, so a
 * concurrent duplicate is seen. Their answers: lockedPositionsOf(each[2]), appliedFillIdsOf(each[3]).
 */
export function readStatements(keys: PositionKey[], fillIds: string[], initialCash: string): string[] {
  const users = [...new Set(keys.map((k) => k[0]))].sort();
  const [u, s] = [arrayOf(keys.map((k) => k[0]), "text"), arrayOf(keys.map((k) => k[1]), "text")];
  return [
    `INSERT INTO pm_accounts (user_id, cash) SELECT u, ${textLiteral(initialCash)}::numeric FROM unnest(${arrayOf(users, "text")}) AS u ON CONFLICT DO NOTHING`,
    `INSERT INTO pm_positions (user_id, symbol) SELECT * FROM unnest(${u}, ${s}) ON CONFLICT DO NOTHING`,
    `SELECT p.user_id, p.symbol, p.quantity::text, p.avg_price::text, p.realized_pnl::text, p.fees::text
       FROM pm_positions p JOIN unnest(${u}, ${s}) AS k(u, s) ON p.user_id = k.u AND p.symbol = k.s
      ORDER BY p.user_id, p.symbol FOR UPDATE OF p`,
    `SELECT fill_id FROM pm_fills WHERE fill_id = ANY(${arrayOf(fillIds, "text")})`,
  ];
}

/** The locked positions (readStatements' third answer) by `positionKey`. */
export function lockedPositionsOf(rows: unknown[]): Map<string, PositionState> {
  const locked = rows as { user_id: string; symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string }[];
  return new Map(locked.map((r) => [positionKey(r.user_id, r.symbol), { quantity: D(r.quantity), avgPrice: D(r.avg_price), realizedPnl: D(r.realized_pnl), fees: D(r.fees) }]));
}

/** The fills already recorded (readStatements' fourth answer). */
export const appliedFillIdsOf = (rows: unknown[]): Set<string> => new Set((rows as { fill_id: string }[]).map((r) => r.fill_id));

/**
 * The writes of a batch, written with literals to travel in one round trip (with COMMIT): the applied
 * fills in the order they were applied (their applied_seq, the listing's tie-breaker: migration 0467),
 * the positions they changed, each user's cash.
 */
export function writeStatements(records: FillRecord[], positions: Array<{ key: PositionKey; state: PositionState }>, cash: Array<{ userId: string; delta: string }>): string[] {
  const ts = records.map((r) => {
    if (!Number.isSafeInteger(r[10])) throw new Error(`fill ${r[0]}: a time that is not an integer (${r[10]})`);
    return String(r[10]);
  });
  const col = (i: number, type: "text" | "numeric") => arrayOf(records.map((r) => r[i] as string), type);
  const fields = (["quantity", "avgPrice", "realizedPnl", "fees"] as const).map((field) => arrayOf(positions.map((p) => p.state[field].toFixed()), "numeric"));
  return [
    `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
     SELECT f, o, u, s, sd, q, p, fe, rp, cd, to_timestamp(ts::double precision / 1000)
       FROM unnest(${col(0, "text")}, ${col(1, "text")}, ${col(2, "text")}, ${col(3, "text")}, ${col(4, "text")}, ${col(5, "numeric")}, ${col(6, "numeric")}, ${col(7, "numeric")}, ${col(8, "numeric")}, ${col(9, "numeric")}, ${arrayOf(ts, "bigint")})
         WITH ORDINALITY AS x(f, o, u, s, sd, q, p, fe, rp, cd, ts, n)
      ORDER BY n`,
    `UPDATE pm_positions p SET quantity = x.q, avg_price = x.a, realized_pnl = x.r, fees = x.f, updated_at = now()
       FROM unnest(${arrayOf(positions.map((p) => p.key[0]), "text")}, ${arrayOf(positions.map((p) => p.key[1]), "text")}, ${fields.join(", ")}) AS x(u, s, q, a, r, f)
      WHERE p.user_id = x.u AND p.symbol = x.s`,
    `UPDATE pm_accounts a SET cash = a.cash + x.d FROM unnest(${arrayOf(cash.map((c) => c.userId), "text")}, ${arrayOf(cash.map((c) => c.delta), "numeric")}) AS x(u, d) WHERE a.user_id = x.u`,
  ];
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
