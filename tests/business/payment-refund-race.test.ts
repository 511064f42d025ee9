/**
 * Concurrent refunds of one payment (found by session 37's hunt): the check against what is left read
 * only the succeeded refunds, so refunds sent at once (two admins, or an admin and billing's automatic
 * refund over `/internal`) all passed it and only the processor's refusal bounded them. Here the
 * processor refuses nothing (`refusesExcessRefunds = false`), so the bound is payment-service's own:
 * the check and the reservation are one transaction with the intent locked, pending refunds counted.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts through the `stripe` SDK.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
fake.refusesExcessRefunds = false;
const rig = usePaymentService(fake, { env: { POSTGRES_POOL_MAX: "20" }, webhooks: false });
let visa: string;
const user = randomUUID();
const trader = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

beforeAll(async () => {
  visa = await rig.saveCard(trader);
});

afterEach(() => rig.expectLedgerBalanced());

const payment = (amount: number) => rig.payment(trader, visa, amount);

/** Through the admin route (as an admin through the gateway) or the internal one (as billing-service). */
const refund = (intentId: string, route: "admin" | "internal", key: string, amount?: number) =>
  route === "admin"
    ? http("POST", `${rig.base}/intents/${intentId}/refunds`, { body: amount === undefined ? {} : { amount }, headers: { ...admin, "idempotency-key": key } })
    : http("POST", `${rig.base}/internal/intents/${intentId}/refunds`, { body: amount === undefined ? {} : { amount }, headers: { "idempotency-key": key } });

/** What was refunded, by the processor and by our books, and what the intent row says. */
async function refunded(p: { id: string; processorIntentId: string }) {
  const processor = fake.refunds.filter((r) => r.payment_intent === p.processorIntentId).reduce((a, r) => a + r.amount, 0);
  const ours = await rig.pool.query<{ succeeded: string; pending: string }>(
    "SELECT coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0)::text AS succeeded, coalesce(sum(amount) FILTER (WHERE status = 'pending'), 0)::text AS pending FROM pay_refunds WHERE intent_id = $1",
    [p.id],
  );
  const intent = await rig.pool.query<{ refunded: string }>("SELECT refunded::text FROM pay_intents WHERE intent_id = $1", [p.id]);
  const ledger = await rig.pool.query<{ total: string }>("SELECT coalesce(sum(amount), 0)::text AS total FROM pay_ledger_entries WHERE account = $1", [`customer:${user}`]);
  return { processor, succeeded: Number(ours.rows[0].succeeded), pending: Number(ours.rows[0].pending), intent: Number(intent.rows[0].refunded), customerBalance: Number(ledger.rows[0].total) };
}

describe("concurrent refunds of one payment are bounded by payment-service itself", () => {
  it("10 refunds of 40 % at once, half through the admin route and half through the internal one: two pay, eight get 409 naming amount", async () => {
    for (let round = 0; round < 3; round++) {
      const p = await payment(10_000);
      const balanceBefore = (await refunded(p)).customerBalance;
      const keys = Array.from({ length: 10 }, (_, i) => ({ key: `race-${round}-${i}-${randomUUID()}`, route: i % 2 === 0 ? ("admin" as const) : ("internal" as const) }));
      const rs = await Promise.all(keys.map((k) => refund(p.id, k.route, k.key, 4_000)));
      for (const r of rs) expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
      const won = rs.filter((r) => r.status === 200);
      const lost = rs.filter((r) => r.status !== 200);
      expect(won).toHaveLength(2);
      for (const r of lost) expect([r.status, r.body.error.code, r.body.error.field]).toEqual([409, "REFUND_EXCEEDS_PAYMENT", "amount"]);
      const after = await refunded(p);
      expect(after).toMatchObject({ processor: 8_000, succeeded: 8_000, pending: 0, intent: 8_000 });
      expect(after.customerBalance - balanceBefore).toBe(8_000);
      // The losers never reached the processor: two refunds there, the winners'.
      expect(fake.refunds.filter((r) => r.payment_intent === p.processorIntentId)).toHaveLength(2);

      // Retries answer as the first time: a winner's key refunds nothing more, a loser's is still refused.
      for (const [i, r] of rs.entries()) {
        const again = await refund(p.id, keys[i].route, keys[i].key, 4_000);
        if (r.status === 200) expect([again.status, again.body.refunded]).toEqual([200, 8_000]);
        else expect([again.status, again.body.error.code, again.body.error.field]).toEqual([409, "REFUND_EXCEEDS_PAYMENT", "amount"]);
      }
      expect(await refunded(p)).toMatchObject({ processor: 8_000, succeeded: 8_000, intent: 8_000 });
    }
  }, 120_000);

  it("10 full refunds (no amount) at once with different keys refund the payment once", async () => {
    const p = await payment(5_000);
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => refund(p.id, i % 2 === 0 ? "admin" : "internal", `all-${i}-${randomUUID()}`)));
    for (const r of rs) expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
    expect(rs.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of rs.filter((x) => x.status !== 200)) expect([r.status, r.body.error.code, r.body.error.field]).toEqual([409, "REFUND_EXCEEDS_PAYMENT", "amount"]);
    expect(await refunded(p)).toMatchObject({ processor: 5_000, succeeded: 5_000, pending: 0, intent: 5_000 });
  }, 60_000);
});
