/**
 * A subscription's cancel asked again (session 65). Before, cancelling an ended subscription answered
 * 200 as if it had done something. Now it answers as the platform does a repeated transition (order
 * cancels: a second cancel while pending_cancel returns the order as it is, of a cancelled order a
 * 409 ORDER_NOT_CANCELLABLE; a refund of what is refunded already a 409): while the first is pending
 * (set to end at the period's end) the first request stands, 200 unchanged, no second event; of an
 * ended one, 409 SUBSCRIPTION_CANCELED naming `id`, as its plan and card changes answer, nothing
 * written. Real PostgreSQL, payment-service a stand-in (tests/helpers/billing-rig.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, plan, useBillingRig } from "../helpers/billing-rig";

const BASIC = `basic-${randomBytes(3).toString("hex")}`;
const rig = useBillingRig([plan(BASIC, 1000, { included: 0, blockSize: 1, blockAmount: 100 })]);

const events = async (subscriptionId: string) =>
  (await rig.client.pool.query<{ type: string }>("SELECT payload->>'type' AS type FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [subscriptionId])).rows.map((r) => r.type);

async function subscriber(): Promise<{ userId: string; id: string }> {
  const userId = randomUUID();
  const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
  // Metered units billed at a cancel now: a repeated one would show as a second final invoice.
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '10 days' WHERE subscription_id = $1", [id]);
  rig.use(userId, 5, new Date(Date.now() - 60_000));
  return { userId, id };
}

describe("a subscription's cancel asked again", () => {
  it("of an ended subscription, now or at the period's end: 409 SUBSCRIPTION_CANCELED naming id; nothing written, no event, no invoice", async () => {
    const s = await subscriber();
    const ended = await rig.billing.cancel(s.userId, s.id, false);
    expect(ended.status).toBe("canceled");
    const [row, invoices, sent] = [await rig.repo.subscription(s.id), await invoicesOf(rig.client, s.userId), await events(s.id)];
    expect(sent).toContain("subscription.canceled");
    for (const atPeriodEnd of [false, true]) {
      const again = await rig.billing.cancel(s.userId, s.id, atPeriodEnd).catch((e: unknown) => e);
      expect(again, `atPeriodEnd ${atPeriodEnd}`).toMatchObject({ statusCode: 409, code: "SUBSCRIPTION_CANCELED", field: "id" });
      expect((again as Error).message).toMatch(/has ended \(canceled at \d{4}-.*\): nothing left to cancel/);
    }
    expect(await rig.repo.subscription(s.id)).toEqual(row);
    expect(await invoicesOf(rig.client, s.userId)).toEqual(invoices);
    expect(await events(s.id)).toEqual(sent);
  });

  it("at the period's end, twice: the first request stands, 200 with the subscription unchanged and one subscription.updated", async () => {
    const s = await subscriber();
    const before = await events(s.id);
    const first = await rig.billing.cancel(s.userId, s.id, true);
    expect([first.status, first.cancel_at_period_end]).toEqual(["active", true]);
    const sent = await events(s.id);
    expect(sent).toEqual([...before, "subscription.updated"]);
    const second = await rig.billing.cancel(s.userId, s.id, true);
    expect(second).toEqual(first);
    expect(await rig.repo.subscription(s.id)).toEqual(first);
    expect(await events(s.id)).toEqual(sent);
  });

  it("now, after one at the period's end: a change of its end, not a repeat; it ends now, and then a third is the 409", async () => {
    const s = await subscriber();
    await rig.billing.cancel(s.userId, s.id, true);
    const now = await rig.billing.cancel(s.userId, s.id, false);
    expect(now.status).toBe("canceled");
    expect(await events(s.id)).toContain("subscription.canceled");
    await expect(rig.billing.cancel(s.userId, s.id, false)).rejects.toMatchObject({ statusCode: 409, code: "SUBSCRIPTION_CANCELED", field: "id" });
  });

  it("another user's subscription, ended or not, stays a 404 (its state is not told)", async () => {
    const s = await subscriber();
    await rig.billing.cancel(s.userId, s.id, false);
    await expect(rig.billing.cancel(randomUUID(), s.id, false)).rejects.toMatchObject({ statusCode: 404 });
  });
});
