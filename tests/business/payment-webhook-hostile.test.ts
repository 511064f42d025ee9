/**
 * Every webhook type the processor may sign, with hostile-but-signed field values: amounts 0,
 * negative, fractional, huge or not numbers; currencies of another case or length; ids of other
 * objects (another payment's processor id, another refund's, our refund id on another payment);
 * missing fields and a missing event id or type. A signed event is acknowledged whatever it carries:
 * never a 5xx (the processor retries a 5xx for days), and the ledger still balances (payment-replicas.ts).
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "2000" },
  resetFake: () => {
    fake.refundStatus = "succeeded";
    fake.refundRequests = "ok";
  },
});
const { bases, payment, refund, trader } = replicas;
const hex = () => randomBytes(8).toString("hex");

async function send(event: Record<string, unknown>): Promise<[number, string]> {
  const body = JSON.stringify(event);
  const res = await fetch(`${bases[0]}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body });
  const text = await res.text();
  return [res.status, res.ok ? (JSON.parse(text) as { outcome: string }).outcome : text];
}
/** Each event sent; those not answered as `ok` wants, with their answer (all of them, not the first). */
async function failing(events: Record<string, unknown>[], ok: (status: number) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const ev of events) {
    const [status, outcome] = await send(ev);
    if (!ok(status)) out.push(`${status} ${String(ev.type)} ${JSON.stringify((ev.data as { object?: unknown } | undefined)?.object ?? ev)?.slice(0, 160)}: ${outcome.slice(0, 200)}`);
  }
  return out;
}
const event = (type: string, object: unknown, extra: Record<string, unknown> = {}) => ({ id: `evt_${hex()}`, object: "event", type, created: Math.floor(Date.now() / 1000), data: { object }, ...extra });

const AMOUNTS: unknown[] = [0, -1, -5_000, 1.5, 2 ** 53, 1e21, "1000", null, undefined, {}, true];
const CURRENCIES: unknown[] = ["USD", "Usd", "us", "usdd", "", "eur", 1, null, undefined, "x".repeat(5_000)];
const INTENT_TYPES = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing", "payment_intent.canceled", "payment_intent.requires_action", "payment_intent.created"];
const REFUND_TYPES = ["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"];
const STATUSES: unknown[] = ["succeeded", "failed", "pending", "canceled", "requires_action", "SUCCEEDED", "", 7, null, undefined];

describe("signed webhooks with hostile field values are acknowledged, never a 5xx", () => {
  it("payment intent events: amounts, currencies, statuses, ids of other payments, missing fields", async () => {
    const p = await payment(3_000);
    const other = await payment(4_000);
    const pi = (o: Record<string, unknown> = {}) => ({ object: "payment_intent", id: p.processorIntentId, amount: 3_000, currency: "usd", status: "succeeded", metadata: { intent_id: p.id }, ...o });
    const variants: unknown[] = [
      ...AMOUNTS.map((amount) => pi({ amount })),
      ...CURRENCIES.map((currency) => pi({ currency })),
      ...STATUSES.map((status) => pi({ status })),
      pi({ id: other.processorIntentId }), // another payment's processor id, our intent id
      pi({ metadata: { intent_id: other.id } }), // our processor id, another intent id
      pi({ id: `pi_${hex()}`, metadata: { intent_id: randomUUID() } }),
      pi({ metadata: { intent_id: "not-a-uuid" } }),
      pi({ metadata: null }),
      pi({ id: undefined }),
      pi({ id: 12 }),
      pi({ last_payment_error: { code: { nested: 1 }, message: 5 } }),
      { object: "payment_intent" },
      { object: "refund" },
      null,
      "a string",
    ];
    const types = [...INTENT_TYPES, ...REFUND_TYPES, "charge.succeeded", "customer.created"];
    expect(await failing(types.flatMap((t) => variants.map((v) => event(t, v))), (s) => s === 200)).toEqual([]);
    // The payment is as it was: the hostile events moved nothing of it.
    const v = (await http("GET", `${bases[0]}/intents/${p.id}`, { headers: trader })).body;
    expect([v.status, v.amount, v.refunded, v.processorIntentId]).toEqual(["succeeded", 3_000, 0, p.processorIntentId]);
  }, 300_000);

  it("refund events: amounts, currencies, statuses, ids of other refunds and payments, missing fields", async () => {
    const p = await payment(5_000);
    const other = await payment(6_000);
    const ours = await refund(p.id, `r-${randomUUID()}`, 1_000);
    expect(ours.status).toBe(200);
    const theirs = await refund(other.id, `r-${randomUUID()}`, 1_000);
    // A refund whose answer was lost: pending here with no processor refund id yet.
    fake.refundRequests = "answer-lost";
    const lost = await refund(p.id, `r-${randomUUID()}`, 500);
    fake.refundRequests = "ok";
    expect(lost.status).toBeGreaterThanOrEqual(500);
    const unanswered = (await replicas.pool.query("SELECT refund_id FROM pay_refunds WHERE intent_id = $1 AND amount = 500", [p.id])).rows[0].refund_id;
    const r0 = ours.body.refund;
    const r1 = theirs.body.refund;
    const re = (o: Record<string, unknown> = {}) => ({ object: "refund", id: r0.processorRefundId, amount: 1_000, currency: "usd", status: "succeeded", payment_intent: p.processorIntentId, metadata: { refund_id: r0.id }, ...o });
    const variants: Record<string, unknown>[] = [
      ...AMOUNTS.map((amount) => re({ amount })),
      ...CURRENCIES.map((currency) => re({ currency })),
      ...STATUSES.map((status) => re({ status })),
      // Ids of other objects: another refund's processor id with our refund id, our refund's on another payment...
      re({ id: r1.processorRefundId }),
      re({ metadata: { refund_id: r1.id } }),
      // Our refund id, still unanswered (no processor id here), with another refund's processor id.
      re({ id: r1.processorRefundId, metadata: { refund_id: unanswered }, amount: 500 }),
      re({ payment_intent: other.processorIntentId }),
      re({ payment_intent: { id: other.processorIntentId } }),
      re({ payment_intent: { nope: 1 } }),
      re({ id: `re_${hex()}`, metadata: { refund_id: r1.id }, payment_intent: other.processorIntentId }),
      // Refunds made at the processor (none of our metadata): odd amounts, no id, repeated with no id.
      ...AMOUNTS.map((amount) => re({ id: `re_${hex()}`, metadata: {}, amount })),
      ...CURRENCIES.map((currency) => re({ id: `re_${hex()}`, metadata: {}, currency })),
      re({ id: undefined, metadata: {}, amount: 10 }),
      re({ id: undefined, metadata: {}, amount: 10 }),
      re({ id: null, metadata: {}, amount: 10 }),
      re({ id: 42, metadata: {}, amount: 10 }),
      re({ id: `re_${hex()}`, metadata: {}, amount: 10, status: "failed", failure_reason: { x: 1 } }),
      re({ metadata: "x" }),
      re({ payment_intent: undefined }),
    ];
    const types = [...REFUND_TYPES, ...INTENT_TYPES];
    expect(await failing(types.flatMap((t) => variants.map((v) => event(t, v))), (s) => s === 200)).toEqual([]);
    // Another refund's object moved neither it nor the refund whose processor id it carries.
    const rows = (await replicas.pool.query("SELECT refund_id, status, processor_refund_id FROM pay_refunds WHERE refund_id = ANY($1::uuid[]) ORDER BY amount", [[unanswered, r1.id]])).rows;
    expect(rows).toEqual([{ refund_id: unanswered, status: "pending", processor_refund_id: null }, { refund_id: r1.id, status: "succeeded", processor_refund_id: r1.processorRefundId }]);
  }, 300_000);

  it("events with no id, no type, another type's shape or odd created times", async () => {
    const p = await payment(2_000);
    const pi = { object: "payment_intent", id: p.processorIntentId, amount: 2_000, currency: "usd", status: "succeeded", metadata: { intent_id: p.id } };
    const odd: Record<string, unknown>[] = [
      { ...event("payment_intent.succeeded", pi), id: undefined },
      { ...event("payment_intent.succeeded", pi), id: "" },
      { ...event("payment_intent.succeeded", pi), id: 5 },
      { ...event("payment_intent.succeeded", pi), id: { a: 1 } },
      { ...event("payment_intent.succeeded", pi), type: undefined },
      { ...event("payment_intent.succeeded", pi), type: 7 },
      { ...event("payment_intent.succeeded", pi), type: "" },
      { ...event("refund.created", pi), created: -1 },
      { ...event("refund.created", pi), created: 1e300 },
      { ...event("refund.created", pi), created: "yesterday" },
      { ...event("payment_intent.succeeded", pi), data: undefined },
      { ...event("payment_intent.succeeded", pi), data: null },
      { ...event("payment_intent.succeeded", pi), data: [] },
      { ...event("payment_intent.succeeded", pi), id: `evt_${"x".repeat(10_000)}` },
    ];
    expect(await failing(odd, (s) => s === 200)).toEqual([]);
  }, 120_000);
});

/** POSTs `body` to the webhook route with each of `signatures` as a Stripe-Signature line of its own; answers the status and JSON body. */
function withSignatureLines(body: string, signatures: string[]): Promise<{ status: number; body: { error?: { code: string; field?: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request(`${bases[0]}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": signatures } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the Stripe-Signature header sent twice", () => {
  it("is a 400 naming stripe-signature, the event not recorded; sent once, the same event is taken", async () => {
    // Before, Node joined the two lines with ", " and the route verified them as one header.
    const p = await payment(2_500);
    const ev = event("payment_intent.succeeded", { object: "payment_intent", id: p.processorIntentId, amount: 2_500, currency: "usd", status: "succeeded", metadata: { intent_id: p.id } });
    const body = JSON.stringify(ev);
    const recorded = async () => Number((await replicas.pool.query("SELECT count(*) FROM pay_webhook_events WHERE event_id = $1", [ev.id])).rows[0].count);
    for (const lines of [[fake.sign(body), fake.sign(body)], [fake.sign(body), fake.sign(body, undefined, "whsec_forged")]]) {
      const r = await withSignatureLines(body, lines);
      expect([r.status, r.body.error?.code, r.body.error?.field]).toEqual([400, "BAD_REQUEST", "stripe-signature"]);
    }
    expect(await recorded()).toBe(0);
    const once = await withSignatureLines(body, [fake.sign(body)]);
    expect(once.status).toBe(200);
    expect(await recorded()).toBe(1);
  });
});
