/**
 * billing-service data access: the open invoices whose charge payment-service holds for an operator
 * (charge_held_at, migration 0508), as billing-metrics.ts's gauges show them. One read of the partial
 * index bil_invoices_charge_held (migration 0509).
 */
import type { Queryable } from "../../kit/datastores/postgres";

export interface HeldCharges {
  held: number;
  /** Held longer than the bound asked for. */
  overdue: number;
  /** The oldest hold's age; null when none is held. */
  oldestAgeSeconds: number | null;
}

export async function heldCharges(db: Queryable, overdueDays: number): Promise<HeldCharges> {
  const { rows } = await db.query<{ held: number; overdue: number; oldest: number | null }>(
    `SELECT count(*)::int AS held,
            (count(*) FILTER (WHERE charge_held_at <= now() - make_interval(days => $1)))::int AS overdue,
            extract(epoch FROM now() - min(charge_held_at))::float8 AS oldest
     FROM bil_invoices WHERE status = 'open' AND charge_held_at IS NOT NULL`,
    [overdueDays],
  );
  return { held: rows[0].held, overdue: rows[0].overdue, oldestAgeSeconds: rows[0].oldest === null ? null : Math.floor(rows[0].oldest) };
}
