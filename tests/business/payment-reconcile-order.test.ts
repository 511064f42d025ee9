/**
 * payment-service's reconciliation pass and the intents it takes (session 52, migration 0499): 200 a
 * pass, once oldest first, so 200 intents that stay open (`processing` for days, a mismatch waiting for
 * an operator) took every pass and an intent a crash left `created` behind them, charged at the
 * processor with its webhook lost, was never looked up nor booked. Now least recently looked up first.
 * And one intent the processor refuses to look up is left to a later pass, the others still looked up;
 * a pass deletes the processor customers of deleted accounts (deleted-customers.ts).
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deleteUser } from "../../services/src/services/user-management/data";
import { FakeCardProcessor, type FakeIntent } from "../fakes/card-processor";
import { ensureAccount } from "../helpers/accounts";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_RECONCILE_GRACE_MS: "0" } });
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

const pass = async () => {
  const r = await http("POST", `${rig.base}/reconcile`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.actions as { kind: string; intentId: string; to?: string }[];
};

/** Our intent row, `status`, created `age` ago, with `processorIntentId` recorded (null: none). */
async function intentRow(p: { intentId?: string; userId: string; amount: number; status: string; age: string; processorIntentId: string | null; card?: string }): Promise<string> {
  const intentId = p.intentId ?? randomUUID();
  await rig.pool.query(
    `INSERT INTO pay_intents (intent_id, user_id, origin, idempotency_key, request_hash, amount, currency, payment_method, status, processor, processor_intent_id, created_at)
     VALUES ($1, $2, 'client', $3, 'h', $4, 'usd', $5, $6, 'stripe', $7, now() - $8::interval)`,
    [intentId, p.userId, `k-${randomUUID()}`, p.amount, p.card ?? "pm_x", p.status, p.processorIntentId, p.age],
  );
  return intentId;
}

/** The processor's PaymentIntent of our intent (no webhook queued: as if it was lost). */
function atProcessor(intentId: string, o: { amount: number; status: string; customer: string | null; card?: string }): FakeIntent {
  const id = `pi_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
  const pi: FakeIntent = { id, object: "payment_intent", amount: o.amount, amount_received: o.status === "succeeded" ? o.amount : 0, currency: "usd", status: o.status, payment_method: o.card ?? "pm_x", description: null, metadata: { intent_id: intentId }, customer: o.customer, created: Math.floor(Date.now() / 1000), livemode: false, last_payment_error: null };
  fake.intents.set(id, pi);
  return pi;
}

/** An intent a crash left `created` an hour ago, charged at the processor (listed by its customer). */
async function crashLeft(amount: number) {
  const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  const card = await rig.saveCard(user);
  const intentId = await intentRow({ userId: user["x-user-id"], amount, status: "created", age: "1 hour", processorIntentId: null, card });
  atProcessor(intentId, { amount, status: "succeeded", customer: fake.paymentMethods.get(card)!.customer, card });
  return intentId;
}

describe("a reconciliation pass", () => {
  it("takes the intents least recently looked up first: 200 that stay processing do not keep a crash-left charge from being booked", async () => {
    const stuck: string[] = [];
    for (let i = 0; i < 200; i++) {
      const intentId = randomUUID();
      const pi = atProcessor(intentId, { amount: 1_000, status: "processing", customer: null });
      stuck.push(await intentRow({ intentId, userId: randomUUID(), amount: 1_000, status: "processing", age: "2 days", processorIntentId: pi.id }));
    }
    const lost = await crashLeft(2_500);
    // The first pass takes the 200 older ones (each `none`: still processing there)...
    const first = await pass();
    expect(first.filter((a) => stuck.includes(a.intentId)).map((a) => a.kind)).toEqual(Array(200).fill("none"));
    // ...the next the one left behind them (before: the same 200 again, every pass).
    const second = await pass();
    expect(second.find((a) => a.intentId === lost)).toMatchObject({ kind: "settle", to: "succeeded" });
    const row = (await rig.pool.query("SELECT status FROM pay_intents WHERE intent_id = $1", [lost])).rows[0];
    expect(row.status).toBe("succeeded");
    expect(Number((await rig.pool.query("SELECT count(*) FROM pay_journals WHERE journal_id = $1", [`payment:${lost}`])).rows[0].count)).toBe(1);
    await rig.pool.query("UPDATE pay_intents SET status = 'canceled' WHERE intent_id = ANY($1::uuid[])", [stuck]);
  });

  it("leaves an intent the processor refuses to look up to a later pass (lookup_refused), and books the others", async () => {
    // A processor id the processor does not know (404 resource_missing when read by id).
    const refused = await intentRow({ userId: randomUUID(), amount: 1_200, status: "processing", age: "3 hours", processorIntentId: `pi_gone_${randomUUID().slice(0, 8)}` });
    const lost = await crashLeft(2_600);
    const actions = await pass();
    expect(actions.find((a) => a.intentId === refused)).toMatchObject({ kind: "lookup_refused" });
    expect(actions.find((a) => a.intentId === lost)).toMatchObject({ kind: "settle", to: "succeeded" });
    expect((await rig.pool.query("SELECT status FROM pay_intents WHERE intent_id = $1", [refused])).rows[0].status).toBe("processing");
  });

  it("deletes the processor customer of an account deleted since its first card save (customersDeleted)", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    await ensureAccount(rig.pool, user["x-user-id"]);
    const card = await rig.saveCard(user);
    const customer = fake.paymentMethods.get(card)!.customer!;
    expect(await deleteUser(rig.pool, user["x-user-id"])).toBe(true);
    const r = await http("POST", `${rig.base}/reconcile`, { headers: admin });
    expect([r.status, r.body.customersDeleted]).toEqual([200, 1]);
    expect([fake.customers.has(customer), fake.paymentMethods.get(card)!.customer]).toEqual([false, null]);
    expect((await http("POST", `${rig.base}/reconcile`, { headers: admin })).body.customersDeleted).toBe(0);
  });
});
