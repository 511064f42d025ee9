/**
 * payment-service's edges of a charge and of the processor's webhooks, against real PostgreSQL and
 * Kafka and the local card processor (tests/fakes/card-processor.ts): what the processor signs about a
 * PaymentIntent that is not one of ours, a retried charge whose card was removed meanwhile, an
 * amount the processor can never charge, and how many cards one user may save.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_RECONCILE_GRACE_MS: "0" }, poolMax: 4 });
const user = randomUUID();
const trader = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };

const saveCard = (token = "pm_card_visa", headers = trader): Promise<string> => rig.saveCard(headers, token);
const postWebhook = async (event: unknown) => {
  const body = JSON.stringify(event);
  const r = await fetch(`${rig.base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body });
  return { status: r.status, body: await r.json() };
};

describe("processor webhooks about PaymentIntents that are not ours", () => {
  // The processor signs events for every PaymentIntent of the account: one made on its dashboard or by
  // another integration carries whatever `intent_id` metadata it was given. Taken for our id, a text
  // that is no UUID reached PostgreSQL's uuid column: a 500, the event forgotten, and the processor
  // retried it for days.
  it("an event whose intent_id metadata is not an id of ours is acknowledged and ignored, not a 500", async () => {
    const id = `evt_foreign_${randomUUID().slice(0, 8)}`;
    for (const intentId of ["order-123", "", "x".repeat(300), "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e'--"]) {
      const event = { id: `${id}_${intentId.length}`, object: "event", type: "payment_intent.succeeded", created: Math.floor(Date.now() / 1000), data: { object: { id: `pi_foreign_${randomUUID().slice(0, 8)}`, object: "payment_intent", status: "succeeded", amount: 2500, currency: "usd", metadata: { intent_id: intentId } } } };
      const r = await postWebhook(event);
      expect([r.status, r.body], intentId).toEqual([200, { received: true, outcome: "ignored" }]);
      // Recorded as processed: the processor's retry of it is a duplicate.
      expect((await postWebhook(event)).body.outcome).toBe("duplicate");
    }
    // Ours still apply.
    fake.mode = "async";
    try {
      const card = await saveCard();
      const p = await http("POST", `${rig.base}/intents`, { body: { amount: 3100, currency: "usd", paymentMethod: card }, headers: { ...trader, "idempotency-key": `k-${randomUUID()}` } });
      expect(p.body.status).toBe("processing");
      await fake.settle((i) => i.metadata.intent_id === p.body.id);
      expect((await http("GET", `${rig.base}/intents/${p.body.id}`, { headers: trader })).body.status).toBe("succeeded");
    } finally {
      fake.mode = "sync";
    }
  });
});

describe("a retried charge whose card was removed meanwhile", () => {
  // The card was checked before the key: a retry (a lost answer, billing's next cycle) after the user
  // removed the card was a 404 PAYMENT_METHOD_NOT_FOUND for a payment that was made, and billing took
  // that refusal for a failed attempt of its invoice.
  it("is answered the first request (200 idempotent-replay, same intent), another body under the key a 409; client and internal alike", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await saveCard("pm_card_visa", other);
    const key = `k-${randomUUID()}`;
    const body = { amount: 2900, currency: "usd", paymentMethod: card };
    const internalBody = { ...body, userId: other["x-user-id"], amount: 1500, reference: `invoice:${randomUUID()}` };
    const first = await http("POST", `${rig.base}/intents`, { body, headers: { ...other, "idempotency-key": key } });
    expect([first.status, first.body.status]).toEqual([201, "succeeded"]);
    const firstInternal = await http("POST", `${rig.base}/internal/intents`, { body: internalBody, headers: { "idempotency-key": key } });
    expect([firstInternal.status, firstInternal.body.status]).toEqual([201, "succeeded"]);
    expect((await http("DELETE", `${rig.base}/payment-methods/${card}`, { headers: other })).status).toBe(204);

    const again = await http("POST", `${rig.base}/intents`, { body, headers: { ...other, "idempotency-key": key } });
    expect([again.status, again.body.id, again.headers.get("idempotent-replay")], JSON.stringify(again.body)).toEqual([200, first.body.id, "true"]);
    const againInternal = await http("POST", `${rig.base}/internal/intents`, { body: internalBody, headers: { "idempotency-key": key } });
    expect([againInternal.status, againInternal.body.id], JSON.stringify(againInternal.body)).toEqual([200, firstInternal.body.id]);
    const reused = await http("POST", `${rig.base}/intents`, { body: { ...body, amount: 2901 }, headers: { ...other, "idempotency-key": key } });
    expect([reused.status, reused.body.error?.code, reused.body.error?.field]).toEqual([409, "IDEMPOTENCY_KEY_REUSED", "idempotency-key"]);
    // A new key still needs a saved card.
    const fresh = await http("POST", `${rig.base}/intents`, { body, headers: { ...other, "idempotency-key": `k-${randomUUID()}` } });
    expect([fresh.status, fresh.body.error?.code, fresh.body.error?.field]).toEqual([404, "PAYMENT_METHOD_NOT_FOUND", "paymentMethod"]);
    expect(fake.chargesFor(first.body.id)).toBe(1);
    expect(fake.chargesFor(firstInternal.body.id)).toBe(1);
  });
});

describe("an amount the card processor can never charge", () => {
  // Below its smallest charge (50 cents, 30 pence, 50 yen) the processor refuses it every time, and above
  // its largest (99,999,999 in the currency's smallest unit) too: the request was stored as a failed
  // payment (201, status failed, failure code "StripeInvalidRequestError") instead of a 400 naming amount.
  it("is a 400 naming amount on the client and the internal route: nothing stored, the processor not asked", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await saveCard("pm_card_visa", other);
    const rows = async () => Number((await rig.pool.query("SELECT count(*) FROM pay_intents WHERE user_id = $1", [other["x-user-id"]])).rows[0].count);
    const asked = fake.intents.size;
    const cases: Array<[number, string]> = [[1, "usd"], [49, "usd"], [49, "eur"], [29, "gbp"], [49, "chf"], [49, "jpy"], [100_000_000, "usd"], [100_000_000, "jpy"], [1_000_000_000_000, "eur"]];
    for (const [amount, currency] of cases) {
      const client = await http("POST", `${rig.base}/intents`, { body: { amount, currency, paymentMethod: card }, headers: { ...other, "idempotency-key": `k-${randomUUID()}` } });
      expect([client.status, client.body.error?.code, client.body.error?.field], `${amount} ${currency}: ${JSON.stringify(client.body)}`).toEqual([400, "VALIDATION_ERROR", "amount"]);
      const internal = await http("POST", `${rig.base}/internal/intents`, { body: { userId: other["x-user-id"], amount, currency, paymentMethod: card, reference: `invoice:${randomUUID()}` }, headers: { "idempotency-key": `k-${randomUUID()}` } });
      expect([internal.status, internal.body.error?.field], `${amount} ${currency} internal`).toEqual([400, "amount"]);
    }
    expect(await rows()).toBe(0);
    expect(fake.intents.size).toBe(asked);
    // The bounds themselves are charged.
    for (const amount of [50, 99_999_999]) {
      const ok = await http("POST", `${rig.base}/intents`, { body: { amount, currency: "usd", paymentMethod: card }, headers: { ...other, "idempotency-key": `k-${randomUUID()}` } });
      expect([ok.status, ok.body.status, ok.body.amount]).toEqual([201, "succeeded", amount]);
    }
  });
});

describe("a charge the processor refuses without an error code", () => {
  // The failure code was `err.code ?? err.type`, and the SDK's `type` is its own class name: a refusal
  // without a code (here a card detached at the processor, on its dashboard, while still saved here)
  // showed the payer "StripeInvalidRequestError" as the payment's failureCode, and in its notice.
  it("fails the payment with the processor's error type, never the SDK's class name", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await saveCard("pm_card_visa", other);
    const m = fake.paymentMethods.get(card)!;
    m.customer = null;
    m.spent = true;
    const r = await http("POST", `${rig.base}/intents`, { body: { amount: 2900, currency: "usd", paymentMethod: card }, headers: { ...other, "idempotency-key": `k-${randomUUID()}` } });
    expect([r.status, r.body.status, r.body.failureCode], JSON.stringify(r.body)).toEqual([201, "failed", "invalid_request_error"]);
    expect(JSON.stringify(r.body)).not.toMatch(/Stripe[A-Za-z]*Error/);
  });
});

// Session 52: the charges of saved cards were sent without `off_session`, so a card whose bank asks
// for 3D Secure left the PaymentIntent `requires_action`, waiting for a cardholder our API never hands
// the challenge to: the payment stayed `processing` for ever (looked up by every reconciliation pass),
// and billing's invoice was neither paid nor failed into dunning. Sent off-session, the processor
// declines it at once: failed, `authentication_required`, as any decline.
describe("a saved card whose bank asks for authentication (3D Secure)", () => {
  it("is declined at once, authentication_required, on the client and the internal route: nothing left processing", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await saveCard("pm_card_authenticationRequired", other);
    const client = await http("POST", `${rig.base}/intents`, { body: { amount: 2900, currency: "usd", paymentMethod: card }, headers: { ...other, "idempotency-key": `k-${randomUUID()}` } });
    expect([client.status, client.body.status, client.body.failureCode], JSON.stringify(client.body)).toEqual([201, "failed", "authentication_required"]);
    const internal = await http("POST", `${rig.base}/internal/intents`, { body: { userId: other["x-user-id"], amount: 1500, currency: "usd", paymentMethod: card, reference: `invoice:${randomUUID()}` }, headers: { "idempotency-key": `k-${randomUUID()}` } });
    expect([internal.status, internal.body.status, internal.body.failureCode], JSON.stringify(internal.body)).toEqual([201, "failed", "authentication_required"]);
    // Nothing charged, nothing left waiting for a cardholder at the processor.
    expect([...fake.intents.values()].filter((i) => i.payment_method === card).map((i) => i.status)).toEqual(["requires_payment_method", "requires_payment_method"]);
    const open = await rig.pool.query("SELECT count(*)::int AS n FROM pay_intents WHERE user_id = $1 AND status IN ('created', 'processing')", [other["x-user-id"]]);
    expect(open.rows[0].n).toBe(0);
  });
});

describe("how many payment methods one user may save", () => {
  // Card tokens are free to make in a browser: without a bound, one user's saves grew their rows, their
  // customer at the processor and GET /payment-methods (which lists them all) without end.
  it("at most PAYMENT_MAX_METHODS_PER_USER (20), concurrent saves included: then 409 naming paymentMethod, the card not kept at the processor", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const saved: string[] = [];
    for (let i = 0; i < 18; i++) saved.push(await saveCard("pm_card_visa", other));
    const save = () => http("POST", `${rig.base}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: other });
    const burst = await Promise.all(Array.from({ length: 5 }, save));
    expect(burst.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409]);
    for (const r of burst.filter((x) => x.status === 409)) expect([r.body.error.code, r.body.error.field]).toEqual(["PAYMENT_METHODS_LIMIT", "paymentMethod"]);
    const listed = (await http("GET", `${rig.base}/payment-methods`, { headers: other })).body.paymentMethods;
    expect(listed).toHaveLength(20);
    // The refused ones are not left attached to the user's customer at the processor.
    const customer = fake.paymentMethods.get(saved[0])!.customer;
    expect([...fake.paymentMethods.values()].filter((m) => m.customer === customer)).toHaveLength(20);
    // One's own card again is still answered; a removal makes room.
    expect((await http("POST", `${rig.base}/payment-methods`, { body: { paymentMethod: saved[0] }, headers: other })).status).toBe(200);
    expect((await http("DELETE", `${rig.base}/payment-methods/${saved[1]}`, { headers: other })).status).toBe(204);
    expect((await save()).status).toBe(201);
    expect((await save()).status).toBe(409);
  });
});

describe("reconciling a charge whose answer was lost, while the processor's search lags", () => {
  // Reconciliation found the processor's PaymentIntent by our id through Stripe's search, which is
  // eventually consistent (indexed within a minute, later in an outage: when answers get lost). An
  // intent charged at the processor but not indexed yet was taken for one that never reached it and
  // failed for good: a webhook's success can no longer move it, the money taken was in no journal, and
  // billing charged the invoice again. The processor's list of the payer's PaymentIntents is read now.
  it("settles it succeeded from the processor's list, with its journal, not failed as never received", async () => {
    const other = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await saveCard("pm_card_visa", other);
    const customer = fake.paymentMethods.get(card)!.customer!;
    // The service charged and died before recording the answer: our row `created`, the processor's intent succeeded.
    const intentId = randomUUID();
    await rig.pool.query(
      `INSERT INTO pay_intents (intent_id, user_id, origin, idempotency_key, request_hash, amount, currency, payment_method, status, processor, created_at)
       VALUES ($1, $2, 'client', $3, 'h', 4200, 'usd', $4, 'created', 'stripe', now() - interval '10 seconds')`,
      [intentId, other["x-user-id"], `k-${randomUUID()}`, card],
    );
    const pi = `pi_lost_${randomUUID().replace(/-/g, "").slice(0, 20)}`;
    fake.intents.set(pi, { id: pi, object: "payment_intent", amount: 4200, amount_received: 4200, currency: "usd", status: "succeeded", payment_method: card, description: null, metadata: { intent_id: intentId, user_id: other["x-user-id"] }, customer, created: Math.floor(Date.now() / 1000) - 9, livemode: false, last_payment_error: null });
    fake.unindexed.add(pi);
    const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
    const r = await http("POST", `${rig.base}/reconcile`, { headers: admin });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.actions.find((a: { intentId: string }) => a.intentId === intentId)).toMatchObject({ kind: "settle", to: "succeeded", processorIntentId: pi });
    const row = await http("GET", `${rig.base}/intents/${intentId}`, { headers: other });
    expect([row.body.status, row.body.processorIntentId]).toEqual(["succeeded", pi]);
    expect(Number((await rig.pool.query("SELECT count(*) FROM pay_journals WHERE journal_id = $1", [`payment:${intentId}`])).rows[0].count)).toBe(1);
  });
});
