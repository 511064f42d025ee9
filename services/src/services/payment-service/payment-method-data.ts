/**
 * payment-service's data access for saved payment methods: one processor customer per user
 * (pay_customers) and the card tokens attached to it (pay_payment_methods, migration 0415); a deleted
 * account's customer is deleted at the processor (migrations 0495, 0507, 0510: deleted-customers.ts).
 */
import { accountWasDeleted, lockAccountForWrite, type PostgresClient, type Queryable } from "../../kit";

export interface PaymentMethodRow {
  payment_method: string;
  user_id: string;
  brand: string | null;
  last4: string | null;
  created_at: Date;
  removed_at: Date | null;
}

/** The API shape of a saved method. */
export function paymentMethodView(r: PaymentMethodRow) {
  return { paymentMethod: r.payment_method, brand: r.brand, last4: r.last4, createdAt: r.created_at.toISOString() };
}

/** Key space of the per-user lock of saved methods (first half of the two-int advisory lock key; "pm"). */
const METHODS_LOCK_SPACE = 0x706d;

export class PaymentMethodData {
  constructor(private readonly pg: PostgresClient) {}

  /** Whether the account was deleted (user-management's tombstone): its requests under way are refused. */
  accountDeleted(userId: string): Promise<boolean> {
    return accountWasDeleted(this.pg, userId);
  }

  /** The user's customer, unless it was deleted at the processor (its account deleted: deleted-customers.ts). */
  async customerOf(userId: string): Promise<string | undefined> {
    return (await this.pg.query<{ customer_id: string }>("SELECT customer_id FROM pay_customers WHERE user_id = $1 AND processor_deleted_at IS NULL", [userId])).rows[0]?.customer_id;
  }

  /**
   * Takes up to `limit` tombstones (user-management's deleted_users) this service has not looked at yet
   * (migration 0507's marker: the partial index holds only those, so a pass's cost follows the new
   * deletions, not their history), marks their accounts' processor customers due for deletion and the
   * tombstones checked, in one statement; answers how many tombstones it took (`limit`: more may wait).
   * SKIP LOCKED: two replicas' passes take different ones.
   */
  async markDeletedAccountsDue(limit: number): Promise<number> {
    const { rows } = await this.pg.query<{ n: number }>(
      `WITH taken AS (SELECT user_id FROM deleted_users WHERE pay_customers_checked_at IS NULL ORDER BY deleted_at, user_id LIMIT $1 FOR UPDATE SKIP LOCKED),
            checked AS (UPDATE deleted_users d SET pay_customers_checked_at = now() FROM taken t WHERE d.user_id = t.user_id RETURNING d.user_id),
            due AS (UPDATE pay_customers c SET processor_delete_due_at = coalesce(c.processor_delete_due_at, now()) FROM checked k
                     WHERE c.user_id = k.user_id AND c.processor_deleted_at IS NULL RETURNING 1)
       SELECT (SELECT count(*) FROM checked)::int AS n, (SELECT count(*) FROM due)::int AS due`,
      [limit],
    );
    return rows[0].n;
  }

  /**
   * Claims, for `leaseMs` with the token `claim`, the customer due for deletion at the processor
   * (markDeletedAccountsDue, recordForDeletion), not deleted there yet and under no unexpired claim,
   * least recently tried first, marking it tried (migrations 0507, 0510). Committed on its own: passes
   * at once each claim a different one (SKIP LOCKED, and the claim after its commit), and no
   * transaction is held while the processor is asked.
   */
  async claimDue(claim: string, leaseMs: number): Promise<{ userId: string; customerId: string } | undefined> {
    const { rows } = await this.pg.query<{ userId: string; customerId: string }>(
      `UPDATE pay_customers SET processor_delete_tried_at = now(), processor_delete_claim = $1,
              processor_delete_claimed_until = now() + make_interval(secs => $2::double precision / 1000)
        WHERE user_id = (SELECT user_id FROM pay_customers
                          WHERE processor_delete_due_at IS NOT NULL AND processor_deleted_at IS NULL
                            AND (processor_delete_claimed_until IS NULL OR processor_delete_claimed_until < now())
                          ORDER BY processor_delete_tried_at NULLS FIRST LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING user_id AS "userId", customer_id AS "customerId"`,
      [claim, leaseMs],
    );
    return rows[0];
  }

  /** Ends the claim `claim` on the customer (not deleted at the processor: the next pass tries it again); another's claim is left. */
  async releaseDeleteClaim(customerId: string, claim: string): Promise<void> {
    await this.pg.query("UPDATE pay_customers SET processor_delete_claim = NULL, processor_delete_claimed_until = NULL WHERE customer_id = $1 AND processor_delete_claim = $2", [customerId, claim]);
  }

  /**
   * Records the customer a save made for an account deleted meanwhile (no locked write: it is recorded
   * only to be deleted at the processor), claimed by the save (`claim`, for `leaseMs`: it deletes it
   * itself, and no pass sends the same delete meanwhile), unless the user has one recorded already.
   */
  async recordForDeletion(userId: string, customerId: string, claim: string, leaseMs: number): Promise<void> {
    await this.pg.query(
      `INSERT INTO pay_customers (user_id, customer_id, processor_delete_tried_at, processor_delete_due_at, processor_delete_claim, processor_delete_claimed_until)
       VALUES ($1, $2, now(), now(), $3, now() + make_interval(secs => $4::double precision / 1000)) ON CONFLICT DO NOTHING`,
      [userId, customerId, claim, leaseMs],
    );
  }

  /** Records that the processor deleted the customer (or has none such). */
  async customerDeletedAtProcessor(customerId: string): Promise<boolean> {
    const r = await this.pg.query("UPDATE pay_customers SET processor_deleted_at = now(), processor_delete_claim = NULL, processor_delete_claimed_until = NULL WHERE customer_id = $1 AND processor_deleted_at IS NULL", [customerId]);
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Records the user's customer; a concurrent first save may have recorded it already: that one is kept
   * and answered. "account_deleted" (nothing recorded) when the account was deleted: kit lockAccountForWrite.
   */
  async saveCustomer(userId: string, customerId: string): Promise<string | "account_deleted"> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, userId)) === "deleted") return "account_deleted";
      // ON CONFLICT without a target: every unique index is an arbiter. Two first saves at once get the
      // same customer from the processor (its Idempotency-Key is the user's), and `ON CONFLICT (user_id)`
      // arbitrated only user_id: when both passed its check before either's row was indexed, the second
      // failed on customer_id's index (23505, a 500; session 55, the race suite on a loaded host).
      const inserted = await c.query<{ customer_id: string }>(
        `INSERT INTO pay_customers (user_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING customer_id`,
        [userId, customerId],
      );
      if (inserted.rows[0]) return inserted.rows[0].customer_id;
      // The conflicting row committed before DO NOTHING decided: this statement's snapshot sees it.
      const kept = await c.query<{ customer_id: string }>("SELECT customer_id FROM pay_customers WHERE user_id = $1", [userId]);
      if (!kept.rows[0]) throw new Error(`the processor's customer ${customerId} is recorded for another user`);
      return kept.rows[0].customer_id;
    });
  }

  /** How many methods the user has saved (not removed); `db`: insert's transaction, which holds the user's turn. */
  async countFor(userId: string, db: Queryable = this.pg): Promise<number> {
    return (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pay_payment_methods WHERE user_id = $1 AND removed_at IS NULL", [userId])).rows[0].n;
  }

  /**
   * Records a method attached to the user's customer, unless the user has `max` saved already ("full");
   * undefined when the token is already recorded (for anyone). One user's saves take turns (an advisory
   * lock held to the end of the transaction), so concurrent ones cannot pass the bound together.
   * "account_deleted" when the account was deleted meanwhile (its tombstone, read under that lock and the
   * account's: kit lockAccountForWrite).
   */
  async insert(userId: string, m: { id: string; brand: string | null; last4: string | null }, max: number): Promise<PaymentMethodRow | undefined | "full" | "account_deleted"> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, userId)) === "deleted") return "account_deleted";
      if ((await this.countFor(userId, c)) >= max) return "full";
      const { rows } = await c.query<PaymentMethodRow>(
        `INSERT INTO pay_payment_methods (payment_method, user_id, brand, last4) VALUES ($1, $2, $3, $4) ON CONFLICT (payment_method) DO NOTHING RETURNING *`,
        [m.id, userId, m.brand, m.last4],
      );
      return rows[0];
    }, { lock: { space: METHODS_LOCK_SPACE, key: userId } });
  }

  /** The user's method with this token, unless removed. */
  async owned(userId: string, paymentMethod: string): Promise<PaymentMethodRow | undefined> {
    return (await this.pg.query<PaymentMethodRow>("SELECT * FROM pay_payment_methods WHERE payment_method = $1 AND user_id = $2 AND removed_at IS NULL", [paymentMethod, userId])).rows[0];
  }

  async listFor(userId: string): Promise<PaymentMethodRow[]> {
    return (await this.pg.query<PaymentMethodRow>("SELECT * FROM pay_payment_methods WHERE user_id = $1 AND removed_at IS NULL ORDER BY created_at DESC, payment_method", [userId])).rows;
  }

  /** Marks the user's method removed; false when it is not theirs or already removed. */
  async remove(userId: string, paymentMethod: string): Promise<boolean> {
    const r = await this.pg.query("UPDATE pay_payment_methods SET removed_at = now() WHERE payment_method = $1 AND user_id = $2 AND removed_at IS NULL", [paymentMethod, userId]);
    return (r.rowCount ?? 0) > 0;
  }
}
