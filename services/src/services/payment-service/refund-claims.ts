/**
 * payment-service's data access for the refund reconciler's claims (pay_refunds' reconcile_claim,
 * reconcile_claimed_until: migration 0432). A claim is committed on its own, so no transaction is
 * open while the reconciler asks the processor: the refund's and the payment's rows stay free for
 * refund() and webhooks, and no pool connection is held per lookup.
 */
import type { PoolClient } from "pg";
import type { PostgresClient } from "../../kit";

type Queryable = Pick<PoolClient, "query">;

/** A pending refund claimed by one reconciler pass, with its payment's processor id. */
export interface ClaimedRefund {
  refund_id: string;
  intent_id: string;
  processor_intent_id: string | null;
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
  async claimStale(p: { olderThanMs: number; leaseMs: number; claim: string; skip: string[] }): Promise<ClaimedRefund | undefined> {
    const { rows } = await this.pg.query<ClaimedRefund>(
      `UPDATE pay_refunds r SET reconcile_claim = $3, reconcile_claimed_until = now() + make_interval(secs => $4::double precision / 1000)
         FROM pay_intents i
        WHERE i.intent_id = r.intent_id
          AND r.refund_id = (
            SELECT refund_id FROM pay_refunds
             WHERE status = 'pending' AND sent_at < now() - make_interval(secs => $1::double precision / 1000)
               AND (reconcile_claimed_until IS NULL OR reconcile_claimed_until < now()) AND NOT (refund_id = ANY($2::uuid[]))
             ORDER BY sent_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING r.refund_id, r.intent_id, i.processor_intent_id, (extract(epoch FROM now() - r.sent_at) * 1000)::float8 AS since_sent_ms`,
      [p.olderThanMs, p.skip, p.claim, p.leaseMs],
    );
    return rows[0];
  }

  /**
   * In `c`, locks the payment and then the refund (refund()'s order), and answers the refund's time
   * since its last send, or undefined when it is no longer pending or no longer carries `claim`
   * (the request path settled it or sent it again, or the lease ran out and another pass took it).
   */
  async lockClaimed(c: Queryable, refundId: string, intentId: string, claim: string): Promise<{ since_sent_ms: number } | undefined> {
    await c.query("SELECT 1 FROM pay_intents WHERE intent_id = $1 FOR UPDATE", [intentId]);
    const { rows } = await c.query<{ since_sent_ms: number }>(
      `SELECT (extract(epoch FROM now() - sent_at) * 1000)::float8 AS since_sent_ms FROM pay_refunds
        WHERE refund_id = $1 AND status = 'pending' AND reconcile_claim = $2 FOR UPDATE`,
      [refundId, claim],
    );
    return rows[0];
  }

  /** Ends this pass's claim (the refund is left for the next pass, of any replica). */
  async release(refundId: string, claim: string, c: Queryable = this.pg.pool): Promise<void> {
    await c.query("UPDATE pay_refunds SET reconcile_claim = NULL, reconcile_claimed_until = NULL WHERE refund_id = $1 AND reconcile_claim = $2", [refundId, claim]);
  }
}
