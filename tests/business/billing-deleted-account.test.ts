/**
 * An admin deletes an account (user-management removes its users row; only the api-gateway hears
 * of it). Before, billing's cycle went on renewing the user's live subscription and charging the
 * saved card, dunning retries included, for ever. Now the cycle ends it as "cancel now" does (its
 * open invoices void, the same events) with nothing charged; a disabled account is not charged
 * while disabled, and is once enabled again. Real PostgreSQL, payment-service a stand-in
 * (tests/helpers/billing-rig.ts: its subscribers have accounts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Billing, type PaymentGateway } from "../../services/src/services/billing-service/billing";
import { ensureAccount } from "../helpers/accounts";
import { deletionWindow, tableGate } from "../helpers/deletion-window";
import { invoicesOf, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const rig = useBillingRig([plan(BASIC, 1000)]);

const chargesOf = (userId: string) => rig.charges.filter((c) => c.userId === userId).length;
/** Moves the subscription's period end (and the due retries of its invoices) into the past. */
async function periodEnds(userId: string) {
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '31 days', period_end = now() - interval '1 second' WHERE user_id = $1 AND status <> 'canceled'", [userId]);
  await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE user_id = $1 AND status = 'open'", [userId]);
}
const eventsOf = async (subscriptionId: string) =>
  (await rig.client.pool.query<{ type: string }>("SELECT payload->>'type' AS type FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [subscriptionId])).rows.map((r) => r.type);

describe("a deleted account is never charged again", () => {
  it("its paid-up subscription ends at the next cycle past its period end: no renewal, no charge", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    expect(chargesOf(userId)).toBe(1);
    await rig.client.pool.query("DELETE FROM users WHERE id = $1", [userId]);
    await periodEnds(userId);
    await rig.billing.runCycle();
    await periodEnds(userId);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(1);
    const sub = (await rig.repo.subscription(id))!;
    expect(sub.status).toBe("canceled");
    expect(sub.canceled_at).not.toBeNull();
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid"]);
    expect((await eventsOf(id)).filter((t) => t === "subscription.canceled")).toHaveLength(1);
  });

  it("its invoice in dunning is not retried: it is voided and the subscription ends, as cancelling now leaves them", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    const [inv] = await invoicesOf(rig.client, userId);
    expect(inv).toMatchObject({ status: "open", attempts: 1 });
    rig.answer.set(userId, "pay");
    await rig.client.pool.query("DELETE FROM users WHERE id = $1", [userId]);
    await periodEnds(userId);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(1);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["void"]);
    expect((await subscriptionOf(rig.client, userId)).status).toBe("canceled");
    expect(await eventsOf(id)).toEqual(expect.arrayContaining(["subscription.canceled", "invoice.voided"]));
    await periodEnds(userId);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(1);
  });

  it("an ended subscription's invoice still in dunning is voided, not retried", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    rig.answer.set(userId, "decline");
    // A renewal declined, then the user cancels at period end: the subscription ends with the invoice open.
    await periodEnds(userId);
    await rig.billing.runCycle();
    await rig.billing.cancel(userId, id, true);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "open"]);
    await periodEnds(userId);
    await rig.billing.runCycle();
    expect((await subscriptionOf(rig.client, userId)).status).toBe("canceled");
    const before = chargesOf(userId);
    rig.answer.set(userId, "pay");
    await rig.client.pool.query("DELETE FROM users WHERE id = $1", [userId]);
    await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE user_id = $1 AND status = 'open'", [userId]);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(before);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "void"]);
  });
});

describe("a disabled account is not charged while disabled", () => {
  it("its due invoice stays open, its dunning clock as it was, and is charged once the account is enabled again", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    rig.answer.set(userId, "pay");
    await rig.client.pool.query("UPDATE users SET disabled_at = now() WHERE id = $1", [userId]);
    await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE user_id = $1", [userId]);
    const [held] = await invoicesOf(rig.client, userId);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(1);
    expect((await invoicesOf(rig.client, userId))[0]).toMatchObject({ status: "open", attempts: 1, next_attempt_at: held.next_attempt_at });
    expect((await subscriptionOf(rig.client, userId)).status).toBe("past_due");
    await rig.client.pool.query("UPDATE users SET disabled_at = NULL WHERE id = $1", [userId]);
    await rig.billing.runCycle();
    expect(chargesOf(userId)).toBe(2);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid"]);
    expect((await rig.repo.subscription(id))!.status).toBe("active");
  });
});

/**
 * A subscription request passes the gateway (the account exists), and the account is deleted before
 * billing charges its first invoice. Before session 40 only the cycle's charges asked whether the
 * owner still existed: the subscribe charged the deleted account's card (found by session 40's race hunt).
 */
describe("an account deleted while its subscription request is under way", () => {
  it("is not charged: the invoice waits, and the next cycle voids it and ends the subscription", async () => {
    const userId = randomUUID();
    await ensureAccount(rig.client.pool, userId);
    const charged: string[] = [];
    const payments: PaymentGateway = {
      // The request's first step (the card is the user's) is where the admin's delete lands.
      isSaved: async (u) => (await rig.client.pool.query("DELETE FROM users WHERE id = $1", [u]), true),
      refund: async () => ({ refundId: null, status: "succeeded" as const }),
      charge: async (p) => (charged.push(p.reference), { intentId: randomUUID(), status: "processing" }),
    };
    const log = { info() {}, debug() {}, warn() {}, error() {} };
    const billing = new Billing(rig.repo, payments, { units: async () => 0n }, log as never, { retryAfterDays: [1] }, () => undefined);
    const { subscription_id: id } = await billing.subscribe(userId, BASIC, "pm_card_visa");
    expect(charged).toEqual([]);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["open"]);
    await billing.runCycle();
    expect(charged).toEqual([]);
    expect((await rig.repo.subscription(id))!.status).toBe("canceled");
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["void"]);
  });
});

/**
 * The subscribe's transaction against user-management's deletion (its tombstone too, data.deleteUser),
 * each interleaving forced by held transactions (tests/helpers/deletion-window.ts): the subscribe takes
 * the account's lock first (kit lockAccountForWrite). Before, it read nothing of the account.
 */
describe("a subscribe racing the account's deletion (session 50)", () => {
  const log = { info() {}, debug() {}, warn() {}, error() {} };
  const billingCharging = (charged: string[]) =>
    new Billing(rig.repo, { isSaved: async () => true, refund: async () => ({ refundId: null, status: "succeeded" as const }), charge: async (p) => (charged.push(p.userId), { intentId: randomUUID(), status: "processing" }) }, { units: async () => 0n }, log as never, { retryAfterDays: [1] }, () => undefined);
  const url = () => (rig.client.pool as unknown as { options: { connectionString: string } }).options.connectionString;

  it("checked before the deletion ran: the deletion waits for its commit, and the next cycle ends the subscription", async () => {
    const userId = randomUUID();
    await ensureAccount(rig.client.pool, userId);
    const r = await deletionWindow(url()).writeFirst(userId, tableGate("bil_subscriptions"), () => billingCharging([]).subscribe(userId, BASIC, "pm_card_visa"));
    expect(r.deletionWaited, "the deletion waited for the subscribe's transaction").toBe(true);
    expect(r.deleted).toBe(true);
    await rig.billing.runCycle();
    expect((await rig.repo.subscription(r.write.subscription_id))!.status).toBe("canceled");
  });

  it("run while the deletion is not committed: it waits for it, then answers 403 ACCOUNT_DELETED naming userId; nothing made or charged", async () => {
    const userId = randomUUID();
    await ensureAccount(rig.client.pool, userId);
    const charged: string[] = [];
    const r = await deletionWindow(url()).deletionFirst(userId, () => billingCharging(charged).subscribe(userId, BASIC, "pm_card_visa").catch((e: unknown) => e));
    expect(r.writeWaited, "the subscribe waited for the deletion").toBe(true);
    expect(r.write).toMatchObject({ statusCode: 403, code: "ACCOUNT_DELETED", field: "userId" });
    expect(await invoicesOf(rig.client, userId)).toEqual([]);
    expect((await rig.client.pool.query("SELECT 1 FROM bil_subscriptions WHERE user_id = $1", [userId])).rowCount).toBe(0);
    expect(charged).toEqual([]);
  });
});
