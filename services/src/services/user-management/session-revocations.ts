/**
 * Session revocations owed to the gateways (table session_revocations_unpublished, migrations 0451,
 * 0457). Revoking a session alone (refresh-token reuse, a logout of that session) records the family
 * in the revoking transaction; after COMMIT the route tells Dragonfly (user-state.ts
 * publishSessionRevoked) and deletes the record. When Dragonfly cannot be told, the record stays
 * and the sweep below publishes it on every replica's timer until Dragonfly takes it: a reuse
 * revocation, which nobody retries, only logged before, and the gateways accepted the session's
 * access tokens until they expired. Publishing twice is harmless (a SET and a message).
 *
 * The sweep claims, then publishes, then deletes (session 42): a batch is claimed with a lease in one
 * committed statement, published with no transaction open (before, every Redis round trip of a batch
 * ran inside the transaction holding its rows, a pool connection held for as long as Dragonfly took),
 * and the rows published are deleted under the claim. A pass that dies after publishing leaves its
 * rows claimed: the next pass after the lease publishes them again.
 */
import { randomUUID } from "node:crypto";
import type { PostgresClient, Queryable } from "../../kit";
import { SESSION_REVOCATION_TTL_S } from "./user-state";

/** How long a pass holds the rows it claimed: far above a batch's Redis round trips; a dead pass's rows wait this long. */
export const REVOCATION_CLAIM_LEASE_MS = 30_000;

type Sweeper = Pick<PostgresClient, "query">;

/** In the revoking transaction: the gateways are owed this family's revocation. */
export async function recordUnpublishedRevocation(c: Queryable, familyId: string): Promise<void> {
  await c.query("INSERT INTO session_revocations_unpublished (family_id) VALUES ($1) ON CONFLICT (family_id) DO NOTHING", [familyId]);
}

/** Dragonfly has it: nothing owed any more. */
export async function markRevocationPublished(db: Queryable, familyId: string): Promise<void> {
  await db.query("DELETE FROM session_revocations_unpublished WHERE family_id = $1", [familyId]);
}

/**
 * Claims up to `batch` owed revocations, oldest first, that no other pass holds (its lease not run
 * out), for `leaseMs` under `claim`; one statement, committed on its own. Rows being written are
 * skipped, not waited for.
 */
export async function claimOwedRevocations(pg: Sweeper, claim: string, batch: number, leaseMs: number): Promise<string[]> {
  const { rows } = await pg.query<{ family_id: string }>(
    `UPDATE session_revocations_unpublished s SET claim = $1, claimed_until = now() + make_interval(secs => $3::double precision / 1000)
      WHERE s.family_id IN (
        SELECT family_id FROM session_revocations_unpublished
         WHERE claimed_until IS NULL OR claimed_until < now()
         ORDER BY revoked_at LIMIT $2 FOR UPDATE SKIP LOCKED)
      RETURNING s.family_id`,
    [claim, batch, leaseMs],
  );
  return rows.map((r) => r.family_id);
}

/** The published rows still under `claim` are owed no more (one whose lease ran out and was taken is the taker's to delete). */
export async function deletePublishedRevocations(pg: Sweeper, claim: string, familyIds: string[]): Promise<void> {
  if (familyIds.length > 0) await pg.query("DELETE FROM session_revocations_unpublished WHERE family_id = ANY($1::uuid[]) AND claim = $2", [familyIds, claim]);
}

/** Gives back rows claimed and not published, for the next pass of any replica (not after the lease). */
export async function releaseRevocationClaims(pg: Sweeper, claim: string, familyIds: string[]): Promise<void> {
  if (familyIds.length > 0) await pg.query("UPDATE session_revocations_unpublished SET claim = NULL, claimed_until = NULL WHERE family_id = ANY($1::uuid[]) AND claim = $2", [familyIds, claim]);
}

/**
 * One sweep: claims up to `batch` owed revocations, publishes them with no transaction open, deletes
 * those published; answers how many rows it settled. A publication that fails ends the pass: the rows
 * published before it are deleted, the others given back, and it rejects. Records older than an access
 * token can live are dropped unpublished (their tokens have all expired).
 */
export async function publishOwedRevocations(pg: Sweeper, publish: (familyId: string) => Promise<void>, batch: number, leaseMs = REVOCATION_CLAIM_LEASE_MS): Promise<number> {
  const stale = await pg.query(
    `DELETE FROM session_revocations_unpublished WHERE family_id IN (
       SELECT family_id FROM session_revocations_unpublished WHERE revoked_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [SESSION_REVOCATION_TTL_S, batch],
  );
  const claim = randomUUID();
  const owed = await claimOwedRevocations(pg, claim, batch, leaseMs);
  const published: string[] = [];
  try {
    for (const familyId of owed) {
      await publish(familyId);
      published.push(familyId);
    }
  } catch (e) {
    // Best effort: rows left claimed are retaken after the lease (and the published ones published again).
    await deletePublishedRevocations(pg, claim, published).catch(() => undefined);
    await releaseRevocationClaims(pg, claim, owed.slice(published.length)).catch(() => undefined);
    throw e;
  }
  await deletePublishedRevocations(pg, claim, published);
  return published.length + (stale.rowCount ?? 0);
}
