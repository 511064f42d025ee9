/**
 * compliance-monitor's data access: the append-only audit trail (`cm_audit`) and alerts
 * (`cm_alerts`; triggers forbid UPDATE/TRUNCATE, and DELETE but of rows past the retention: 0424), and the positions the position-limit rule
 * reads (`cm_positions`, moved once per fill id by a trigger on cm_audit: migration 0199).
 * Functions take the pool or a transaction's client.
 */
import { deleteOlderThanDays, type Queryable } from "../../kit";
import type { ComplianceAlert } from "../../trading/compliance";
import type { Audited } from "./domain";

/** The audited events of the last `windowMs`, in order. */
export async function recentAudit(db: Queryable, windowMs: number): Promise<Audited[]> {
  const r = await db.query<{ payload: Audited }>("SELECT payload FROM cm_audit WHERE recorded_at > now() - make_interval(secs => $1::double precision / 1000) ORDER BY id", [windowMs]);
  return r.rows.map((row) => row.payload);
}

/** Records the event once; false when it was already recorded (redelivery). */
export async function recordAudit(db: Queryable, eventId: string, topic: string, subject: { userId: string; symbol: string; kind: string }, a: Audited): Promise<boolean> {
  const ins = await db.query("INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (event_id) DO NOTHING", [
    eventId,
    topic,
    subject.kind,
    subject.userId,
    subject.symbol,
    JSON.stringify(a),
  ]);
  return (ins.rowCount ?? 0) > 0;
}

/**
 * The user's position in the fill's symbol once the fill's audit row is in (the trigger moved it in
 * the same statement), and whether this event moved it: false when the same fill id was recorded
 * before under another event id. Undefined when the fill has no position row (migration 0199 missing).
 */
export async function positionAfterFill(db: Queryable, fillId: string, eventId: string): Promise<{ quantity: string; applied: boolean } | undefined> {
  const r = await db.query<{ quantity: string; applied: boolean }>(
    `SELECT p.quantity::text AS quantity, f.event_id = $2 AS applied
       FROM cm_position_fills f JOIN cm_positions p ON p.user_id = f.user_id AND p.symbol = f.symbol
      WHERE f.fill_id = $1`,
    [fillId, eventId],
  );
  return r.rows[0];
}

export async function alertsById(db: Queryable, alertIds: string[]): Promise<ComplianceAlert[]> {
  const again = await db.query<{ alert_id: string; rule: ComplianceAlert["rule"]; user_id: string; symbol: string; severity: ComplianceAlert["severity"]; message: string; evidence: string[]; ts: string; order_id: string | null }>(
    `SELECT alert_id, rule, user_id, symbol, severity, message, evidence, (extract(epoch FROM event_ts) * 1000)::bigint::text AS ts, order_id FROM cm_alerts WHERE alert_id = ANY($1::text[])`,
    [alertIds],
  );
  return again.rows.map((r) => ({
    alertId: r.alert_id, rule: r.rule, userId: r.user_id, symbol: r.symbol, severity: r.severity, message: r.message, evidence: r.evidence, ts: Number(r.ts),
    ...(r.order_id === null ? {} : { orderId: r.order_id }),
  }));
}

export async function insertAlert(db: Queryable, al: ComplianceAlert): Promise<void> {
  await db.query(
    "INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts, order_id) VALUES ($1,$2,$3,$4,$5,$6,$7, to_timestamp($8::double precision / 1000), $9) ON CONFLICT DO NOTHING",
    [al.alertId, al.rule, al.userId, al.symbol, al.severity, al.message, JSON.stringify(al.evidence), al.ts, al.orderId ?? null],
  );
}

/** Alerts in full (the admins' view; a trader's goes through trading/complianceAlertView.ts), newest first; of one user when `userId` is given. */
export async function listAlerts(db: Queryable, userId: string | null, limit: number) {
  const r = await db.query<{ alertId: string; rule: string; userId: string; symbol: string; severity: string; message: string; evidence: string[]; orderId: string | null; ts: Date; raisedAt: Date }>(
    `SELECT alert_id AS "alertId", rule, user_id AS "userId", symbol, severity, message, evidence, order_id AS "orderId", event_ts AS "ts", raised_at AS "raisedAt"
       FROM cm_alerts WHERE ($1::text IS NULL OR user_id = $1) ORDER BY raised_at DESC LIMIT $2`,
    [userId, limit],
  );
  return r.rows;
}

/**
 * Deletes one batch of `table`'s rows older than `days`, oldest first; answers how many. Only
 * cm_delete_expired may (migration 0424: the triggers refuse any other DELETE, and any row younger
 * than 5 years).
 */
export async function deleteExpired(db: Queryable, table: "cm_audit" | "cm_alerts", days: number, batch: number): Promise<number> {
  const r = await db.query<{ n: number }>("SELECT cm_delete_expired($1, $2, $3) AS n", [table, days, batch]);
  return r.rows[0].n;
}

/**
 * Deletes one batch of cm_position_fills rows applied longer ago than `days`, oldest first (index of
 * migration 0429), skipping rows another replica's pass holds; answers how many. Positions do not
 * change: cm_positions is a running total, not a sum over these rows (migration 0199).
 */
export async function deletePositionFillsPastRetention(db: Queryable, days: number, batch: number): Promise<number> {
  return deleteOlderThanDays(db, { table: "cm_position_fills", key: "fill_id", at: "applied_at" }, days, batch);
}
