/**
 * A user's change of their subscription (plan, cancel) against their account's deletion, each
 * interleaving forced by held transactions (tests/helpers/deletion-window.ts), real PostgreSQL,
 * payment-service a stand-in (tests/helpers/billing-rig.ts). A change takes the account's lock before
 * the subscription's (billing.ts owned, kit lockAccountForWrite), as the subscribe does. Before, only
 * the subscribe did: a change committed after the deletion had answered (a plan change's invoice and
 * `subscription.updated`, a cancel's final invoice and events), and neither order was waited for.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deletionWindow, tableGate } from "../helpers/deletion-window";
import { invoicesOf, plan, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const PRO = `pro-${run}`;
const rig = useBillingRig([plan(BASIC, 1000, { included: 0, blockSize: 1, blockAmount: 100 }), plan(PRO, 3000)]);
const url = () => (rig.client.pool as unknown as { options: { connectionString: string } }).options.connectionString;

/** The user's changes racing the deletion: what each does, and what the subscription is once it was made. */
const CHANGES = {
  "a plan change": { write: (userId: string, id: string) => rig.billing.changePlan(userId, id, PRO), made: { plan_id: PRO } },
  "a cancel now": { write: (userId: string, id: string) => rig.billing.cancel(userId, id, false), made: { status: "canceled" } },
  "a cancel at the period's end": { write: (userId: string, id: string) => rig.billing.cancel(userId, id, true), made: { cancel_at_period_end: true } },
} as const;

async function subscriber(): Promise<{ userId: string; id: string; invoices: number }> {
  const userId = randomUUID();
  const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
  // Metered units billed at a cancel now: its final invoice has a line.
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '10 days' WHERE subscription_id = $1", [id]);
  rig.use(userId, 5, new Date(Date.now() - 60_000));
  return { userId, id, invoices: (await invoicesOf(rig.client, userId)).length };
}

describe("a change of a subscription racing its account's deletion", () => {
  for (const [name, c] of Object.entries(CHANGES)) {
    it(`${name}, checked before the deletion ran: the deletion waits for its commit; the next cycle leaves nothing open`, async () => {
      const s = await subscriber();
      const r = await deletionWindow(url()).writeFirst(s.userId, tableGate("bil_subscriptions"), () => c.write(s.userId, s.id));
      expect(r.deletionWaited, "the deletion waited for the change's transaction").toBe(true);
      expect([r.deleted, r.write]).toEqual([true, expect.objectContaining(c.made)]);
      await rig.billing.runCycle();
      expect((await rig.repo.subscription(s.id))!.status).toBe("canceled");
      expect((await invoicesOf(rig.client, s.userId)).filter((i) => i.status === "open")).toEqual([]);
    });

    it(`${name}, run while the deletion is not committed: it waits, then answers 403 ACCOUNT_DELETED naming userId and changes nothing`, async () => {
      const s = await subscriber();
      const before = (await rig.repo.subscription(s.id))!;
      const r = await deletionWindow(url()).deletionFirst(s.userId, () => c.write(s.userId, s.id).catch((e: unknown) => e));
      expect(r.writeWaited, "the change waited for the deletion").toBe(true);
      expect(r.write).toMatchObject({ statusCode: 403, code: "ACCOUNT_DELETED", field: "userId" });
      expect(await rig.repo.subscription(s.id)).toEqual(before);
      expect(await invoicesOf(rig.client, s.userId)).toHaveLength(s.invoices);
      await rig.billing.runCycle();
      expect((await rig.repo.subscription(s.id))!.status).toBe("canceled");
      expect((await invoicesOf(rig.client, s.userId)).filter((i) => i.status === "open")).toEqual([]);
    });
  }
});
