/**
 * Session revocations owed to the gateways (table session_revocations_unpublished, migration 0451).
 * Revoking a session alone (refresh-token reuse, a logout of that session) records the family in
 * the revoking transaction; after COMMIT the route tells Dragonfly (user-state.ts
 * publishSessionRevoked) and deletes the record. When Dragonfly cannot be told, the record stays
 * and the sweep below publishes it on every replica's timer until Dragonfly takes it: a reuse
 * revocation, which nobody retries, only logged before, and the gateways accepted the session's
 * access tokens until they expired. Publishing twice is harmless (a SET and a message).
 */
import type { PostgresClient, Queryable } from "../../kit";
import { SESSION_REVOCATION_TTL_S } from "./user-state";

/** In the revoking transaction: the gateways are owed this family's revocation. */
export async function recordUnpublishedRevocation(c: Queryable, familyId: string): Promise<void> {
  await c.query("INSERT INTO session_revocations_unpublished (family_id) VALUES ($1) ON CONFLICT (family_id) DO NOTHING", [familyId]);
}

/** Dragonfly has it: nothing owed any more. */
export async function markRevocationPublished(db: Queryable, familyId: string): Promise<void> {
  await db.query("DELETE FROM session_revocations_unpublished WHERE family_id = $1", [familyId]);
}

/**
 * One sweep: publishes up to `batch` owed revocations, oldest first, and deletes them; answers how
 * many. Rows another replica's sweep holds are skipped; a publication that fails rolls the pass
 * back (its rows stay for the next one) and rejects. Records older than an access token can live
 * are dropped unpublished (their tokens have all expired).
 */
export async function publishOwedRevocations(pg: Pick<PostgresClient, "transaction">, publish: (familyId: string) => Promise<void>, batch: number): Promise<number> {
  return pg.transaction(async (c) => {
    const stale = await c.query(
      `WITH due AS (SELECT family_id FROM session_revocations_unpublished WHERE revoked_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)
       DELETE FROM session_revocations_unpublished s USING due WHERE s.family_id = due.family_id`,
      [SESSION_REVOCATION_TTL_S, batch],
    );
    const owed = await c.query<{ family_id: string }>("SELECT family_id FROM session_revocations_unpublished ORDER BY revoked_at LIMIT $1 FOR UPDATE SKIP LOCKED", [batch]);
    for (const r of owed.rows) await publish(r.family_id);
    if (owed.rows.length > 0) await c.query("DELETE FROM session_revocations_unpublished WHERE family_id = ANY($1::uuid[])", [owed.rows.map((r) => r.family_id)]);
    return owed.rows.length + (stale.rowCount ?? 0);
  });
}
