/**
 * payment-service's deleted-customers pass (deleted-customers.ts, migration 0507, session 54): each
 * reconciliation pass joined every tombstone ever written (deleted_users) with pay_customers, so its
 * cost grew with the history of deletions. It now takes only the tombstones it has not checked yet
 * (a marker on the tombstone), marks their customers due, and deletes the due ones: an account deleted
 * after a pass is handled by the next one, one handled is not done again, and a tombstone checked is
 * not read again (a customer row appearing later beside it, which no save makes, is not touched).
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deleteUser } from "../../services/src/services/user-management/data";
import { FakeCardProcessor } from "../fakes/card-processor";
import { ensureAccount } from "../helpers/accounts";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake);
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

const pass = async (): Promise<number> => {
  const r = await http("POST", `${rig.base}/reconcile`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.customersDeleted as number;
};

/** A trader with an account and a saved card: its processor customer's id. */
async function traderWithCard(): Promise<{ userId: string; customer: string }> {
  const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  await ensureAccount(rig.pool, user["x-user-id"]);
  const card = await rig.saveCard(user);
  return { userId: user["x-user-id"], customer: fake.paymentMethods.get(card)!.customer! };
}

const customerRow = async (userId: string) =>
  (await rig.pool.query("SELECT processor_deleted_at, processor_delete_tried_at FROM pay_customers WHERE user_id = $1", [userId])).rows[0] as { processor_deleted_at: Date | null; processor_delete_tried_at: Date | null };

describe("payment-service: the deleted-customers pass is incremental", () => {
  it("handles an account deleted after a pass, does not redo one handled, and reads a checked tombstone no more", async () => {
    const a = await traderWithCard();
    // An account with no customer here: its tombstone is checked all the same (and never read again).
    const noCard = randomUUID();
    await ensureAccount(rig.pool, noCard);
    expect(await deleteUser(rig.pool, a.userId)).toBe(true);
    expect(await deleteUser(rig.pool, noCard)).toBe(true);
    expect(await pass()).toBe(1);
    expect(fake.customers.has(a.customer)).toBe(false);
    const handled = await customerRow(a.userId);
    expect(handled.processor_deleted_at).not.toBeNull();
    const unchecked = await rig.pool.query("SELECT user_id FROM deleted_users WHERE pay_customers_checked_at IS NULL");
    expect(unchecked.rows).toEqual([]);

    // Deleted after that pass: the next one handles it; the one handled is not tried again.
    const b = await traderWithCard();
    expect(await deleteUser(rig.pool, b.userId)).toBe(true);
    expect(await pass()).toBe(1);
    expect(fake.customers.has(b.customer)).toBe(false);
    expect((await customerRow(b.userId)).processor_deleted_at).not.toBeNull();
    expect(await pass()).toBe(0);
    expect(await customerRow(a.userId)).toEqual(handled);

    // A customer row beside a tombstone checked already (no save makes one: a save of a deleted account
    // records its customer due itself) is not found by a later pass: the pass reads no old tombstone.
    await rig.pool.query("INSERT INTO pay_customers (user_id, customer_id) VALUES ($1, $2)", [noCard, `cus_history_${noCard.slice(0, 8)}`]);
    expect(await pass()).toBe(0);
    expect(await customerRow(noCard)).toEqual({ processor_deleted_at: null, processor_delete_tried_at: null });
  });
});
