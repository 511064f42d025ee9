/**
 * The billing cycle's selections (PostgreSQL): which subscriptions are due for renewal, which
 * invoices for a charge, which subscriptions belong to deleted accounts, and whether an account is
 * active. The cycle reads user-management's `users` table (one database; only the gateway hears
 * `auth:user-changes`): an admin's delete removes the row, a disable sets `disabled_at`. Rows whose
 * step failed lately are skipped until `cycle_retry_at` (isolation.ts).
 */
import type { PoolClient } from "pg";
import { accountKeyOf } from "../../kit";
import type { InvoiceRow, SubscriptionRow } from "./repo";

type Q = Pick<PoolClient, "query">;

/**
 * The account of the row's user (`u`, user-management's users row by primary key; a user id is a
 * lower-case UUID, as ai-orchestrator's store reads it): absent once an admin deleted it.
 */
const owner = (t: string) => `u.id = ${accountKeyOf(`${t}.user_id`)}`;
/** The row's user has an account that is not disabled. */
const OWNER_ACTIVE = (t: string) => `EXISTS (SELECT 1 FROM users u WHERE ${owner(t)} AND u.disabled_at IS NULL)`;
/** The row's user has no account any more. */
const OWNER_DELETED = (t: string) => `NOT EXISTS (SELECT 1 FROM users u WHERE ${owner(t)})`;

/** A due subscription, with whether its owner's account is active now (not disabled). */
export type DueSubscription = SubscriptionRow & { owner_active: boolean };

/**
 * Subscriptions whose period has ended, locked for this worker (other replicas skip them). Not one
 * of a deleted account (lockOfDeletedOwners ends it instead). A disabled account's comes once, to be
 * paused (`owner_active` false); once paused it waits here until the account is enabled again, so a
 * disable that lasts takes none of the list's places and renews nothing.
 */
export async function lockDue(c: Q, limit: number): Promise<DueSubscription[]> {
  const sql = `SELECT s.*, ${OWNER_ACTIVE("s")} AS owner_active FROM bil_subscriptions s
                WHERE status NOT IN ('canceled','unpaid') AND period_end <= now() AND NOT ${OWNER_DELETED("s")}
                  AND (s.paused_at IS NULL OR ${OWNER_ACTIVE("s")}) AND (s.cycle_retry_at IS NULL OR s.cycle_retry_at <= now())
                ORDER BY period_end LIMIT $1 FOR UPDATE OF s SKIP LOCKED`;
  return (await c.query<DueSubscription>(sql, [limit])).rows;
}

/**
 * Open invoices due for a (re)try: never attempted, or their dunning retry time has come, and whose
 * charge payment-service does not hold for an operator (charge_held_at, migration 0508); only
 * those of a user whose account exists and is not disabled (the others, left here, would take the
 * list's places of everyone else's for as long as they stay open).
 */
export async function dueInvoices(q: Q, limit: number): Promise<InvoiceRow[]> {
  const sql = `SELECT * FROM bil_invoices i WHERE status = 'open' AND i.charge_held_at IS NULL AND ((attempts = 0 AND last_payment_id IS NULL) OR next_attempt_at <= now()) AND ${OWNER_ACTIVE("i")} AND (i.cycle_retry_at IS NULL OR i.cycle_retry_at <= now()) ORDER BY created_at LIMIT $1`;
  return (await q.query<InvoiceRow>(sql, [limit])).rows;
}

/** Whether the user's account exists and is not disabled (checked again just before a charge the cycle makes). */
export async function ownerActive(q: Q, userId: string): Promise<boolean> {
  return (await q.query<{ ok: boolean }>(`SELECT ${OWNER_ACTIVE("x")} AS ok FROM (SELECT $1::text AS user_id) x`, [userId])).rows[0].ok;
}

/**
 * Subscriptions of deleted accounts that are live or still have an open invoice, locked for this
 * worker (other replicas skip them): the cycle ends them.
 */
export async function lockOfDeletedOwners(c: Q, limit: number): Promise<SubscriptionRow[]> {
  const sql = `SELECT * FROM bil_subscriptions s
                WHERE (status <> 'canceled' OR EXISTS (SELECT 1 FROM bil_invoices i WHERE i.subscription_id = s.subscription_id AND i.status = 'open'))
                  AND ${OWNER_DELETED("s")} AND (s.cycle_retry_at IS NULL OR s.cycle_retry_at <= now()) ORDER BY created_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED`;
  return (await c.query<SubscriptionRow>(sql, [limit])).rows;
}
