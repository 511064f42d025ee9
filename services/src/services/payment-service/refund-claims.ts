/**
 * payment-service's data access for the refund reconciler's claims (pay_refunds' reconcile_claim,
 * reconcile_claimed_until: migration 0432). A claim is committed on its own, so no transaction is
 * open while the reconciler asks the processor: the refund's and the payment's rows stay free for
 * refund() and webhooks, and no pool connection is held per lookup.
 */
import type { PostgresClient, Queryable } from "../../kit";


/** A refund claimed by one reconciler pass (pending, or succeeded for a re-check), with its payment's processor id. */
export interface ClaimedRefund {
  refund_id: string;
  intent_id: string;
  processor_intent_id: string | null;
  processor_refund_id: string | null;
  /** Milliseconds since its request was last sent, by the database's clock. */
  since_sent_ms: number;
}

export class RefundClaims {
  constructor(private readonly pg: PostgresClient) {}

  /**
   * Claims the oldest refund pending since its last send more than `olderThanMs` ago, not one of
   * `skip`, and not under another pass's unexpired claim, with the token `claim` for `leaseMs`.
   * Rows being written (refund() resending it, another pass claiming it) are skipped, not waited for.
   */
  claimStale(p: { olderThanMs: number; leaseMs: number; claim: string; skip: string[] }): Promise<ClaimedRefund | undefined> {
    return this.claimOne("status = 'pending' AND sent_at < now() - make_interval(secs => $4::double precision / 1000)", "sent_at", [p.olderThanMs], p);
  }

  /**
   * Claims, as claimStale does, the succeeded refund checked longest ago (never: since it succeeded)
   * among those that succeeded less than `withinDays` ago and were not checked in the last `everyMs`.
   */
  claimSettled(p: { withinDays: number; everyMs: number; leaseMs: number; claim: string; skip: string[] }): Promise<ClaimedRefund | undefined> {
    return this.claimOne(
      `status = 'succeeded' AND succeeded_at > now() - make_interval(days => $4::integer)
       AND coalesce(rechecked_at, succeeded_at) < now() - make_interval(secs => $5::double precision / 1000)`,
      "coalesce(rechecked_at, succeeded_at)",
      [p.withinDays, p.everyMs],
      p,
    );
  }

  /** The first refund by `order` meeting `which` (its parameters from $4), claimed unless skipped, claimed by another pass, or being written. */
  private async claimOne(which: string, order: string, args: unknown[], p: { leaseMs: number; claim: string; skip: string[] }): Promise<ClaimedRefund | undefined> {
    const { rows } = await this.pg.query<ClaimedRefund>(
      `UPDATE pay_refunds r SET reconcile_claim = $2, reconcile_claimed_until = now() + make_interval(secs => $3::double precision / 1000)
         FROM pay_intents i
        WHERE i.intent_id = r.intent_id
          AND r.refund_id = (
            SELECT refund_id FROM pay_refunds
             WHERE ${which}
               AND (reconcile_claimed_until IS NULL OR reconcile_claimed_until < now()) AND NOT (refund_id = ANY($1::uuid[]))
             ORDER BY ${order} LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING r.refund_id, r.intent_id, i.processor_intent_id, r.processor_refund_id, (extract(epoch FROM now() - r.sent_at) * 1000)::float8 AS since_sent_ms`,
      [p.skip, p.claim, p.leaseMs, ...args],
    );
    return rows[0];
  }

  /**
   * In `c`, locks the payment and then the refund (refund()'s order), and answers the refund's time
   * since its last send, or undefined when it is no longer `status` (pending; succeeded for a re-check)
   * or no longer carries `claim` (the request path or a webhook settled it, a retry sent it again, or
   * the lease ran out and another pass took it).
   */
  async lockClaimed(c: Queryable, refundId: string, intentId: string, claim: string, status: "pending" | "succeeded" = "pending"): Promise<{ since_sent_ms: number } | undefined> {
    await c.query("SELECT 1 FROM pay_intents WHERE intent_id = $1 FOR UPDATE", [intentId]);
    const { rows } = await c.query<{ since_sent_ms: number }>(
      `SELECT (extract(epoch FROM now() - sent_at) * 1000)::float8 AS since_sent_ms FROM pay_refunds
        WHERE refund_id = $1 AND status = $3 AND reconcile_claim = $2 FOR UPDATE`,
      [refundId, claim, status],
    );
    return rows[0];
  }

  /** Ends this pass's claim (the refund is left for the next pass, of any replica); `rechecked`: its processor record was just read. */
  async release(refundId: string, claim: string, c: Queryable = this.pg.pool, rechecked = false): Promise<void> {
    await c.query(
      `UPDATE pay_refunds SET reconcile_claim = NULL, reconcile_claimed_until = NULL, rechecked_at = CASE WHEN $3 THEN now() ELSE rechecked_at END
        WHERE refund_id = $1 AND reconcile_claim = $2`,
      [refundId, claim, rechecked],
    );
  }
}
