/**
 * payment-service against real PostgreSQL and Kafka, with a local card processor speaking Stripe's
 * HTTP API (tests/fakes/card-processor.ts) driven by the real `stripe` SDK. Money safety: one
 * charge for 50 concurrent attempts with one idempotency key; a service SIGKILLed after the
 * processor charged but before its own commit is settled by reconciliation exactly once; forged,
 * tampered, stale and replayed webhooks change nothing; the ledger sums to zero after every test.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, kafkajs, type KafkaJs } from "../harness";
import { FakeCardProcessor } from "../fakes/card-processor";
import { pushJson } from "../helpers/kafka-json";
import { ChildService, http, waitUntil } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_RECONCILE_GRACE_MS: "0" }, poolMax: 4 });
const events: { type: string; intentId: string; eventId: string }[] = [];
let consumer: KafkaJs.Consumer | undefined;
let stopped = false;

const user = randomUUID();
/** The user's saved cards (beforeAll): one the processor pays, one it declines. */
let visa: string;
let declining: string;
const trader = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
const charge = (body: Record<string, unknown>, key: string | undefined, headers: Record<string, string> = trader) =>
  http("POST", `${rig.base}/intents`, { body, headers: { ...headers, ...(key ? { "idempotency-key": key } : {}) } });

async function ledgerTotals(): Promise<Record<string, string>> {
  const { rows } = await rig.pool.query("SELECT currency, sum(amount)::text AS total FROM pay_ledger_entries GROUP BY currency");
  return Object.fromEntries(rows.map((r) => [r.currency, r.total]));
}
const journalsFor = async (intentId: string) => Number((await rig.pool.query("SELECT count(*) FROM pay_journals WHERE journal_id = $1", [`payment:${intentId}`])).rows[0].count);

beforeAll(async () => {
  const kafka = new kafkajs.Kafka({ brokers: rig.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  // Collects payments.events in the background; a consumer that crashes while the fresh broker's
  // group coordinator is still loading is replaced (kafkajs does not restart it by itself).
  const collect = async (): Promise<void> => {
    if (stopped) return;
    const c = kafka.consumer({ groupId: `pay-test-${randomBytes(4).toString("hex")}` });
    consumer = c;
    c.on(c.events.CRASH, ({ payload }) => {
      if (!payload.restart && !stopped) setTimeout(() => void collect().catch(() => undefined), 1000);
    });
    await c.connect();
    await c.subscribe({ topic: "payments.events", fromBeginning: true });
    await c.run({ eachMessage: async ({ message }) => void pushJson(events, message.value) });
  };
  void collect().catch(() => setTimeout(() => void collect().catch(() => undefined), 1000));
  // Only a method saved to the payer is charged (tests/business/payment-methods.test.ts).
  visa = await rig.saveCard(trader, "pm_card_visa");
  declining = await rig.saveCard(trader, "pm_card_chargeDeclined");
}, 240_000);

afterEach(async () => {
  // The ledger balances after every test, in every currency.
  for (const total of Object.values(await ledgerTotals())) expect(total).toBe("0");
});

afterAll(async () => {
  stopped = true;
  await consumer?.disconnect();
});

describe("charges with idempotency keys", () => {
  it("charges, replays the same key, rejects the key with another body, validates input by field", async () => {
    const key = `k-${randomUUID()}`;
    const body = { amount: 2900, currency: "usd", paymentMethod: visa, reference: "order:abc" };
    const first = await charge(body, key);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ status: "succeeded", amount: 2900, currency: "usd", userId: user });
    const again = await charge(body, key);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replay")).toBe("true");
    expect(again.body.id).toBe(first.body.id);
    expect((await charge({ ...body, amount: 2901 }, key)).body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(fake.chargesFor(first.body.id)).toBe(1);
    const bal = await http("GET", `${rig.base}/ledger?account=customer:${user}`, { headers: admin });
    expect(bal.body.accounts).toEqual([{ account: `customer:${user}`, currency: "usd", balance: -2900 }]);

    for (const [b, field] of [
      [{ ...body, amount: 19.99 }, "amount"],
      [{ ...body, amount: "2900" }, "amount"],
      [{ ...body, amount: 0 }, "amount"],
      [{ ...body, currency: "xxx" }, "currency"],
      [{ ...body, paymentMethod: "4242424242424242" }, "paymentMethod"],
      [{ ...body, cardNumber: "4242424242424242" }, undefined],
      // Billing would take it for the invoice's own charge.
      [{ ...body, reference: `invoice:${randomUUID()}` }, "reference"],
      [{ ...body, reference: `INVOICE:${randomUUID()}` }, "reference"],
    ] as const) {
      const r = await charge(b, `k-${randomUUID()}`);
      expect(r.status).toBe(400);
      if (field) expect(r.body.error.field).toBe(field);
    }
    const noKey = await charge(body, undefined);
    expect([noKey.status, noKey.body.error.field]).toEqual([400, "idempotency-key"]);
    expect((await charge(body, "bad key with spaces")).status).toBe(400);
    expect((await http("POST", `${rig.base}/intents`, { body })).status).toBe(401);
  });

  it("50 concurrent attempts with one key charge exactly once", async () => {
    const key = `k-${randomUUID()}`;
    const before = fake.created;
    const body = { amount: 4999, currency: "eur", paymentMethod: visa };
    const rs = await Promise.all(Array.from({ length: 50 }, () => charge(body, key)));
    expect(rs.map((r) => r.status).sort()).toEqual([...Array(49).fill(200), 201].sort());
    const ids = new Set(rs.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(fake.created - before).toBe(1);
    const [id] = ids;
    expect(fake.chargesFor(id)).toBe(1);
    expect(await journalsFor(id)).toBe(1);
  });

  it("a declined card fails the intent with the processor's code and posts nothing", async () => {
    const r = await charge({ amount: 1000, currency: "usd", paymentMethod: declining }, `k-${randomUUID()}`);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: "failed", failureCode: "card_declined" });
    expect(await journalsFor(r.body.id)).toBe(0);
  });

  it("a client's idempotency key and billing's are apart: a user taking billing's next key blocks no invoice charge", async () => {
    // Billing's key for an invoice's next attempt can be read off the user's invoices.
    const key = `invoice-${randomUUID()}-2`;
    const squat = await charge({ amount: 100, currency: "usd", paymentMethod: declining }, key);
    expect([squat.status, squat.body.status]).toEqual([201, "failed"]);
    const invoiceCharge = { userId: user, amount: 1500, currency: "usd", paymentMethod: visa, reference: `invoice:${randomUUID()}` };
    const internal = () => http("POST", `${rig.base}/internal/intents`, { body: invoiceCharge, headers: { "idempotency-key": key } });
    const billed = await internal();
    expect([billed.status, billed.body.status, billed.body.amount]).toEqual([201, "succeeded", 1500]);
    expect(billed.body.id).not.toBe(squat.body.id);
    // Each namespace still answers its own retries as the first time.
    const again = await internal();
    expect([again.status, again.body.id]).toEqual([200, billed.body.id]);
    const clientAgain = await charge({ amount: 100, currency: "usd", paymentMethod: declining }, key);
    expect([clientAgain.status, clientAgain.body.id]).toEqual([200, squat.body.id]);
    expect(fake.chargesFor(billed.body.id)).toBe(1);
  });

  it("refunds partially, then refuses more than is left", async () => {
    const p = await charge({ amount: 5000, currency: "usd", paymentMethod: visa }, `k-${randomUUID()}`);
    const refund = (amount: number, key: string, headers = admin) => http("POST", `${rig.base}/intents/${p.body.id}/refunds`, { body: { amount }, headers: { ...headers, "idempotency-key": key } });
    expect((await refund(2000, "r1", trader)).status).toBe(403);
    const r1 = await refund(2000, "r1");
    expect(r1.status).toBe(200);
    expect(r1.body.refunded).toBe(2000);
    expect((await refund(2000, "r1")).body.refunded).toBe(2000); // same key: no second refund
    const over = await refund(3001, "r2");
    expect([over.status, over.body.error.code]).toEqual([409, "REFUND_EXCEEDS_PAYMENT"]);
    expect(fake.refunds.filter((r) => r.payment_intent === p.body.processorIntentId)).toHaveLength(1);
  });

  it("a retried full refund answers as the first time (its key, with or without the amount); another amount under it is refused", async () => {
    const p = await charge({ amount: 3000, currency: "usd", paymentMethod: visa }, `k-${randomUUID()}`);
    const refund = (body: object, key: string) => http("POST", `${rig.base}/intents/${p.body.id}/refunds`, { body, headers: { ...admin, "idempotency-key": key } });
    const first = await refund({}, "all");
    expect([first.status, first.body.refunded]).toEqual([200, 3000]);
    for (const again of [await refund({}, "all"), await refund({ amount: 3000 }, "all")]) expect([again.status, again.body.refunded]).toEqual([200, 3000]);
    const other = await refund({ amount: 10 }, "all");
    expect([other.status, other.body.error.code, other.body.error.field]).toEqual([409, "IDEMPOTENCY_KEY_REUSED", "idempotency-key"]);
    const more = await refund({}, "more");
    expect([more.status, more.body.error.code]).toEqual([409, "REFUND_EXCEEDS_PAYMENT"]);
    expect(fake.refunds.filter((r) => r.payment_intent === p.body.processorIntentId)).toHaveLength(1);
  });

  it("a partial refund's key retried as `{}` (the rest) or with another reason is refused: it was answered the partial refund, as if the rest had gone back (session 64b)", async () => {
    const p = await charge({ amount: 3000, currency: "usd", paymentMethod: visa }, `k-${randomUUID()}`);
    const refund = (body: object, key: string) => http("POST", `${rig.base}/intents/${p.body.id}/refunds`, { body, headers: { ...admin, "idempotency-key": key } });
    const first = await refund({ amount: 1000, reason: "damaged" }, "part");
    expect([first.status, first.body.refunded]).toEqual([200, 1000]);
    for (const body of [{}, { amount: 1000 }, { amount: 1000, reason: "another" }, { reason: "damaged" }]) {
      const again = await refund(body, "part");
      expect([again.status, again.body.error?.code, again.body.error?.field], JSON.stringify(body)).toEqual([409, "IDEMPOTENCY_KEY_REUSED", "idempotency-key"]);
    }
    const same = await refund({ reason: "damaged", amount: 1000 }, "part");
    expect([same.status, same.body.refund.id]).toEqual([200, first.body.refund.id]);
    expect(fake.refunds.filter((r) => r.payment_intent === p.body.processorIntentId)).toHaveLength(1);
  });
});

describe("webhooks", () => {
  it("async confirmation arrives by signed webhook; forged, tampered, stale and replayed ones change nothing", async () => {
    fake.mode = "async";
    try {
      const p = await charge({ amount: 7500, currency: "usd", paymentMethod: visa, reference: "order:w1" }, `k-${randomUUID()}`);
      expect(p.body.status).toBe("processing");
      await fake.settle((i) => i.metadata.intent_id === p.body.id);
      const delivered = fake.webhooks.find((w) => (w.event.data.object as { metadata: { intent_id: string } }).metadata.intent_id === p.body.id && w.event.type === "payment_intent.succeeded")!;
      expect(delivered.lastStatus).toBe(200);
      expect((await http("GET", `${rig.base}/intents/${p.body.id}`, { headers: trader })).body.status).toBe("succeeded");
      expect(await journalsFor(p.body.id)).toBe(1);

      const body = JSON.stringify(delivered.event);
      const post = (b: string, sig?: string) =>
        fetch(`${rig.base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", ...(sig ? { "stripe-signature": sig } : {}) }, body: b }).then(async (r) => ({ status: r.status, body: await r.json() }));
      // Replay of the genuine delivery (fresh timestamp, valid signature): acknowledged, not applied.
      expect((await post(body, fake.sign(body))).body.outcome).toBe("duplicate");
      // Forged: another secret. Tampered: amount changed after signing. Stale: older than the tolerance. Unsigned.
      const forged = await post(body.replace(delivered.event.id, "evt_forged"), fake.sign(body.replace(delivered.event.id, "evt_forged"), undefined, "whsec_attacker"));
      expect([forged.status, forged.body.error.code]).toEqual([400, "INVALID_SIGNATURE"]);
      const tampered = body.replace(delivered.event.id, "evt_tampered");
      expect((await post(tampered, fake.sign(body))).status).toBe(400);
      const stale = body.replace(delivered.event.id, "evt_stale");
      expect((await post(stale, fake.sign(stale, Math.floor(Date.now() / 1000) - 3600))).status).toBe(400);
      expect(await journalsFor(p.body.id)).toBe(1);
      expect((await post(body)).body.error.field).toBe("stripe-signature");
      expect(await journalsFor(p.body.id)).toBe(1);
    } finally {
      fake.mode = "sync";
    }
  });

  // Session 40's outbound-request hunt: the SDK's tolerance refuses old timestamps only, so an event
  // signed with a timestamp an hour ahead was taken (and would be for that hour and the tolerance after).
  it("a signed webhook whose timestamp is more than the tolerance (300 s) ahead is refused, 400 naming the header", async () => {
    const p = await charge({ amount: 2500, currency: "usd", paymentMethod: visa }, `k-${randomUUID()}`);
    const event = { id: `evt_future_${randomUUID().slice(0, 8)}`, object: "event", type: "payment_intent.payment_failed", created: Math.floor(Date.now() / 1000), data: { object: { id: p.body.processorIntentId, object: "payment_intent", status: "requires_payment_method", amount: 2500, currency: "usd", metadata: { intent_id: p.body.id } } } };
    const body = JSON.stringify(event);
    const post = (sig: string) => fetch(`${rig.base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": sig }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const ahead = await post(fake.sign(body, Math.floor(Date.now() / 1000) + 3600));
    expect([ahead.status, ahead.body.error.code, ahead.body.error.field]).toEqual([400, "INVALID_SIGNATURE", "stripe-signature"]);
    expect(ahead.body.error.message).toContain("in the future");
    expect((await http("GET", `${rig.base}/intents/${p.body.id}`, { headers: trader })).body.status).toBe("succeeded");
    // A clock a little ahead (within the tolerance) is still taken; the event names a settled intent, so it changes nothing.
    expect((await post(fake.sign(body, Math.floor(Date.now() / 1000) + 60))).status).toBe(200);
  });

  it("publishes payment events through the outbox", async () => {
    const p = await charge({ amount: 1234, currency: "usd", paymentMethod: visa }, `k-${randomUUID()}`);
    const ev = await waitUntil("payment.succeeded on Kafka", async () => events.find((e) => e.intentId === p.body.id && e.type === "payment.succeeded"), 170_000);
    expect(ev).toMatchObject({ eventId: `${p.body.id}:payment.succeeded`, amount: 1234, userId: user });
  }, 180_000);
});

describe("crash between the processor's answer and our commit", () => {
  it("neither loses nor double-counts the payment: reconciliation settles it once", async () => {
    const child = new ChildService("payment-service", await freePort(), rig.env);
    await child.start();
    const intentIds: string[] = [];
    fake.beforeAnswer = async (intent) => {
      intentIds.push(intent.metadata.intent_id);
      await child.kill(); // the processor charged; our process dies before it reads the answer
    };
    try {
      const key = `k-${randomUUID()}`;
      const body = { amount: 9900, currency: "usd", paymentMethod: visa };
      await expect(http("POST", `${child.url}/intents`, { body, headers: { ...trader, "idempotency-key": key } })).rejects.toThrow();
      fake.beforeAnswer = undefined;
      const [intentId] = intentIds;
      expect(fake.chargesFor(intentId)).toBe(1);
      const row = (await rig.pool.query("SELECT status FROM pay_intents WHERE intent_id = $1", [intentId])).rows[0];
      expect(row.status).toBe("created"); // our side never committed the answer
      expect(await journalsFor(intentId)).toBe(0);

      await child.start(); // restart
      const rec = await http("POST", `${child.url}/reconcile`, { headers: admin });
      if (!rec.body.actions) console.error(rec.status, rec.body, child.logs.slice(-20).join("\n"));
      expect(rec.body.actions).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "settle", intentId, to: "succeeded" })]));
      // The client's retry with the same key gets the settled payment, no new charge.
      const retry = await http("POST", `${child.url}/intents`, { body, headers: { ...trader, "idempotency-key": key } });
      expect([retry.status, retry.body.id, retry.body.status]).toEqual([200, intentId, "succeeded"]);
      // The processor's own webhook arrives late: still one journal.
      await fake.redeliver();
      await http("POST", `${child.url}/reconcile`, { headers: admin });
      expect(fake.chargesFor(intentId)).toBe(1);
      expect(await journalsFor(intentId)).toBe(1);
    } finally {
      fake.beforeAnswer = undefined;
      await child.stop();
    }
  }, 180_000);
});
