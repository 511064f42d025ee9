/**
 * payment-service's reconciler and a charge whose create request is still on its way (session 51):
 * PAYMENT_RECONCILE_GRACE_MS (120 s by default) is shorter than one processor call can take (3 attempts
 * of PAYMENT_PROCESSOR_TIMEOUT_MS and the SDK's retry sleeps: about 430 s at the maximum), so the
 * reconciler closed an intent whose create was still in flight as `never_reached_processor`, the
 * processor charged it after, and the answer (a transition from failed refused) was never booked:
 * money taken for a payment we considered closed. Now an intent unknown to the processor is closed
 * only past the in-flight bound, never while its create is being sent (the send lock), and a charge
 * the processor reports of one closed so (its answer, its webhook, the next passes) is booked.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts, stalling the create.
 * The grace is 0 here, as in payment-service.test.ts: every open intent is looked up at once.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_RECONCILE_GRACE_MS: "0" }, poolMax: 4 });
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
const payer = () => ({ "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" });

afterAll(() => {
  fake.beforeCreate = undefined;
});

const saveCard = (headers: Record<string, string>): Promise<string> => rig.saveCard(headers);
const reconcile = async (intentId: string) => {
  const r = await http("POST", `${rig.base}/reconcile`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.actions as { kind: string; intentId: string; to?: string }[]).find((a) => a.intentId === intentId);
};
const intent = async (intentId: string) => (await rig.pool.query("SELECT status, failure_code, processor_intent_id FROM pay_intents WHERE intent_id = $1", [intentId])).rows[0];
const journals = async (intentId: string) => Number((await rig.pool.query("SELECT count(*) AS n FROM pay_journals WHERE journal_id = $1", [`payment:${intentId}`])).rows[0].n);
const announced = async (intentId: string) => (await rig.pool.query("SELECT event_id FROM pay_outbox WHERE event_id LIKE $1 ORDER BY id", [`${intentId}:%`])).rows.map((r) => r.event_id as string);

describe("a charge whose create request is stalled at the processor past the grace", () => {
  it("is neither closed as never_reached_processor nor left unbooked: the answer, when it comes, is booked once", async () => {
    const user = payer();
    const card = await saveCard(user);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const before = fake.createsReceived;
    fake.beforeCreate = () => held;
    const key = `k-${randomUUID()}`;
    const charging = http("POST", `${rig.base}/intents`, { body: { amount: 4_400, currency: "usd", paymentMethod: card }, headers: { ...user, "idempotency-key": key } });
    try {
      await waitUntil("the create at the processor", async () => fake.createsReceived > before, 10_000, 20);
      const { intent_id: intentId } = (await rig.pool.query("SELECT intent_id FROM pay_intents WHERE user_id = $1 AND idempotency_key = $2", [user["x-user-id"], key])).rows[0];
      // Older than the grace (0), unknown to the processor, within the in-flight bound: looked at, not closed.
      expect(await reconcile(intentId)).toMatchObject({ kind: "none" });
      // Past the in-flight bound too (its row made an hour older), its create still being sent: not closed either.
      await rig.pool.query("UPDATE pay_intents SET created_at = now() - interval '1 hour' WHERE intent_id = $1", [intentId]);
      expect(await reconcile(intentId)).toMatchObject({ kind: "in_flight" });
      expect(await intent(intentId)).toMatchObject({ status: "created", failure_code: null });
      release();
      const answered = await charging;
      expect([answered.status, answered.body.id, answered.body.status], JSON.stringify(answered.body)).toEqual([201, intentId, "succeeded"]);
      expect([fake.chargesFor(intentId), await journals(intentId)]).toEqual([1, 1]);
      expect(await announced(intentId)).toEqual([`${intentId}:payment.succeeded`]);
    } finally {
      fake.beforeCreate = undefined;
      release();
    }
  }, 60_000);
});

describe("a charge the processor reports after its intent was closed as never_reached_processor", () => {
  /** Our intent row an hour old, `created`, of a payer with a saved card, unknown to the processor: closed by the next pass. */
  async function closedIntent(amount: number) {
    const user = payer();
    const card = await saveCard(user);
    const customer = fake.paymentMethods.get(card)!.customer!;
    const intentId = randomUUID();
    await rig.pool.query(
      `INSERT INTO pay_intents (intent_id, user_id, origin, idempotency_key, request_hash, amount, currency, payment_method, status, processor, created_at)
       VALUES ($1, $2, 'client', $3, 'h', $4, 'usd', $5, 'created', 'stripe', now() - interval '1 hour')`,
      [intentId, user["x-user-id"], `k-${randomUUID()}`, amount, card],
    );
    expect(await reconcile(intentId)).toMatchObject({ kind: "never_reached_processor" });
    expect(await intent(intentId)).toMatchObject({ status: "failed", failure_code: "never_reached_processor" });
    // The processor charges it all the same (a request it received just before our client gave up).
    const pi = `pi_late_${randomUUID().replace(/-/g, "").slice(0, 20)}`;
    const charged = { id: pi, object: "payment_intent" as const, amount, amount_received: amount, currency: "usd", status: "succeeded", payment_method: card, description: null, metadata: { intent_id: intentId, user_id: user["x-user-id"] }, customer, created: Math.floor(Date.now() / 1000), livemode: false as const, last_payment_error: null };
    fake.intents.set(pi, charged);
    return { intentId, pi, charged };
  }

  it("is booked by the next reconciliation pass (webhook lost): succeeded, one journal, announced", async () => {
    const { intentId, pi } = await closedIntent(5_100);
    expect(await reconcile(intentId)).toMatchObject({ kind: "settle", to: "succeeded" });
    expect(await intent(intentId)).toMatchObject({ status: "succeeded", processor_intent_id: pi });
    expect(await journals(intentId)).toBe(1);
    expect(await announced(intentId)).toEqual([`${intentId}:payment.failed`, `${intentId}:payment.succeeded`]);
    // Passes after: nothing more.
    expect(await reconcile(intentId)).toBeUndefined();
    expect(await journals(intentId)).toBe(1);
  });

  /** The processor's signed `payment_intent.succeeded` of `charged`: `post` delivers it (again). */
  function webhookOf(charged: unknown) {
    const body = JSON.stringify({ id: `evt_${randomUUID().replace(/-/g, "")}`, type: "payment_intent.succeeded", created: Math.floor(Date.now() / 1000), data: { object: charged } });
    return async () => (await fetch(`${rig.base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body })).json();
  }

  it("is booked by its webhook, once however often it is delivered", async () => {
    const { intentId, pi, charged } = await closedIntent(5_200);
    const post = webhookOf(charged);
    expect(await post()).toMatchObject({ outcome: "applied" });
    expect(await post()).toMatchObject({ outcome: "duplicate" });
    expect(await intent(intentId)).toMatchObject({ status: "succeeded", processor_intent_id: pi });
    expect(await journals(intentId)).toBe(1);
    expect(await reconcile(intentId)).toBeUndefined();
  });

  // Session 52: looked up again only for the in-flight bound after the close, an intent the processor
  // reported later (or while every lookup of that window failed), its webhook lost, was never booked.
  it("reported past the in-flight bound, its webhook lost: booked by a later pass (at most hourly, for PAYMENT_NEVER_REACHED_RECHECK_DAYS), once, a late webhook after it included", async () => {
    const { intentId, pi, charged } = await closedIntent(5_300);
    const asOf = (closed: string, lookedUp: string) => rig.pool.query(`UPDATE pay_intents SET updated_at = now() - interval '${closed}', reconciled_at = now() - interval '${lookedUp}' WHERE intent_id = $1`, [intentId]);
    // Closed longer ago than the re-check days (30 by default): not asked.
    await asOf("31 days", "2 hours");
    expect(await reconcile(intentId)).toBeUndefined();
    // Closed 6 hours ago, past the in-flight bound: not asked within the hour of its last lookup...
    await asOf("6 hours", "10 minutes");
    expect(await reconcile(intentId)).toBeUndefined();
    // ...and booked by the first pass after it.
    await asOf("6 hours", "61 minutes");
    expect(await reconcile(intentId)).toMatchObject({ kind: "settle", to: "succeeded" });
    expect(await intent(intentId)).toMatchObject({ status: "succeeded", processor_intent_id: pi });
    expect(await journals(intentId)).toBe(1);
    expect(await announced(intentId)).toEqual([`${intentId}:payment.failed`, `${intentId}:payment.succeeded`]);
    // Its webhook delivered after all, and the passes after: nothing more.
    expect(await webhookOf(charged)()).toMatchObject({ outcome: "applied" });
    expect(await reconcile(intentId)).toBeUndefined();
    expect(await journals(intentId)).toBe(1);
    expect(await announced(intentId)).toEqual([`${intentId}:payment.failed`, `${intentId}:payment.succeeded`]);
  });
});
