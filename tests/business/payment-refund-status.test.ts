/**
 * A refund's status follows the processor (found by session 48's hunt: refund webhooks were ignored,
 * so a refund the processor reported pending or succeeded and then failed stayed pending or succeeded
 * here: its amount held or counted refunded, money the platform still had). The processor's refund
 * events (refund.created, refund.updated, refund.failed, charge.refund.updated) now move it forward
 * only: a refund that fails after succeeding is reversed (refunded total, a reversal journal,
 * `payment.refund_reversed`), a pending one that fails is released (`payment.refund_failed`), events
 * out of order never move it back, replays are duplicates, unknown refunds are acknowledged and
 * ignored; the user sees each refund's status on GET /intents/:id; reconciliation settles a refund
 * left pending at the processor whose webhooks were lost.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts through the `stripe` SDK.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, type KafkaJs } from "../harness";
import { useServers } from "../harness/shared";
import { ensureKafkaTopics } from "../../services/src/migrations";
import { FakeCardProcessor, type FakeRefund, type WebhookDelivery } from "../fakes/card-processor";
import { pushJson } from "../helpers/kafka-json";
import { http, waitUntil } from "../trading/e2e-helpers";
import { usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, { env: {}, webhooksToFirst: true, resetFake: () => (fake.refundStatus = "succeeded") });
const { bases, payment, refund, trader } = replicas;

const broker = useServers("kafka");
// payments.events as published (the outbox relay), read from the beginning by a group of this file's own.
const published: { eventId: string; type: string; refundId?: string; refundedAmount?: number }[] = [];
let consumer: KafkaJs.Consumer | undefined;
beforeAll(async () => {
  const kafka = new kafkajs.Kafka({ brokers: broker.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  consumer = kafka.consumer({ groupId: `pay-refund-status-${randomBytes(4).toString("hex")}` });
  await consumer.connect();
  await consumer.subscribe({ topic: "payments.events", fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void pushJson(published, message.value) });
}, 120_000);
afterAll(async () => {
  await consumer?.disconnect();
});
const refundEvents = (refundId: string) => fake.webhooks.filter((w) => (w.event.data.object as FakeRefund).metadata?.refund_id === refundId);
const view = async (intentId: string) => (await http("GET", `${bases[0]}/intents/${intentId}`, { headers: trader })).body;

async function money(refundId: string) {
  const q = async (sql: string, args: unknown[]) => Number((await replicas.pool.query(sql, args)).rows[0].n);
  return {
    booked: await q("SELECT count(*) AS n FROM pay_journals WHERE journal_id = $1", [`refund:${refundId}`]),
    reversed: await q("SELECT count(*) AS n FROM pay_journals WHERE journal_id = $1", [`refund-reversal:${refundId}`]),
    events: (await replicas.pool.query<{ event_id: string }>("SELECT event_id FROM pay_outbox WHERE event_id LIKE $1 ORDER BY id", [`refund:${refundId}%`])).rows.map((r) => r.event_id),
  };
}

describe("refund status from the processor's events", () => {
  it("a refund that succeeded and then failed is reversed: refunded total, ledger, payments.events and the user's view", async () => {
    const p = await payment(10_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 4_000);
    expect([r.status, r.body.refunded], JSON.stringify(r.body)).toEqual([200, 4_000]);
    expect(r.body.refunds).toMatchObject([{ amount: 4_000, status: "succeeded", processorStatus: "succeeded", failureCode: null }]);
    const refundId: string = r.body.refunds[0].id;
    // The processor's refund.created (succeeded, as answered) changes nothing.
    expect(await fake.deliverAll(refundEvents(refundId))).toEqual(["applied"]);

    const failed = fake.updateRefund(fake.refundOf(refundId).id, "failed", { failureReason: "expired_or_canceled_card" });
    expect(failed.map((w) => w.event.type)).toEqual(["charge.refund.updated", "refund.updated", "refund.failed"]);
    expect(await fake.deliverAll(failed)).toEqual(["applied", "applied", "applied"]);
    const v = await view(p.id);
    expect(v.refunded).toBe(0);
    expect(v.refunds).toMatchObject([{ id: refundId, amount: 4_000, status: "failed", processorStatus: "failed", failureCode: "expired_or_canceled_card" }]);
    expect(await money(refundId)).toEqual({ booked: 1, reversed: 1, events: [`refund:${refundId}`, `refund:${refundId}:reversed`] });
    // The customer's account is back to the whole payment (credit), as before the refund.
    const ledger = await http("GET", `${bases[0]}/ledger?account=customer:${trader["x-user-id"]}`, { headers: { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" } });
    const before = ledger.body.accounts.find((a: { currency: string }) => a.currency === "usd").balance;
    // Replays of every event: duplicates, nothing moves.
    expect(await fake.deliverAll([...refundEvents(refundId)])).toEqual(["duplicate", "duplicate", "duplicate", "duplicate"]);
    expect(await money(refundId)).toMatchObject({ booked: 1, reversed: 1 });

    // The money is owed again: the whole payment can be refunded.
    const again = await refund(p.id, `r2-${randomUUID()}`);
    expect([again.status, again.body.refunded], JSON.stringify(again.body)).toEqual([200, 10_000]);
    const after = (await http("GET", `${bases[0]}/ledger?account=customer:${trader["x-user-id"]}`, { headers: { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" } })).body;
    expect(after.accounts.find((a: { currency: string }) => a.currency === "usd").balance).toBe(before + 10_000);
    const reversal = await waitUntil("payment.refund_reversed on payments.events", async () => published.find((e) => e.eventId === `refund:${refundId}:reversed`), 150_000);
    expect(reversal).toMatchObject({ type: "payment.refund_reversed", refundId, refundedAmount: 4_000, intentId: p.id, failureCode: "expired_or_canceled_card" });
  }, 180_000);

  it("a pending refund stays held until the processor settles it; an older event arriving late never moves it back; replays are duplicates", async () => {
    fake.refundStatus = "pending";
    const p = await payment(10_000);
    const key = `r-${randomUUID()}`;
    const r = await refund(p.id, key, 3_000);
    expect([r.status, r.body.refunded]).toEqual([200, 0]);
    expect(r.body.refunds).toMatchObject([{ amount: 3_000, status: "pending", processorStatus: "pending" }]);
    const refundId: string = r.body.refunds[0].id;
    expect(r.body.refund).toMatchObject({ id: refundId, status: "pending" });
    // Held: the rest of the payment is 7,000; a retry of the key answers it without a second refund.
    const rest = await refund(p.id, `rest-${randomUUID()}`, 10_000);
    expect([rest.status, rest.body.error?.code, rest.body.error?.field]).toEqual([409, "REFUND_EXCEEDS_PAYMENT", "amount"]);
    expect((await refund(p.id, key, 3_000)).body.refunds).toMatchObject([{ id: refundId, status: "pending" }]);
    expect(fake.refunds.filter((x) => x.payment_intent === p.processorIntentId)).toHaveLength(1);

    const now = Math.floor(Date.now() / 1000);
    const re = fake.refundOf(refundId).id;
    const created = refundEvents(refundId);
    const succeeded = fake.updateRefund(re, "succeeded", { created: now - 60 });
    const failed = fake.updateRefund(re, "failed", { created: now - 30, failureReason: "lost_or_stolen_card" });
    // Newest first: refund.failed, then the older succeeded ones and the first pending one, late.
    expect(await fake.deliver(failed[2])).toBe("applied");
    expect(await fake.deliverAll([...succeeded, ...created])).toEqual(["stale", "stale", "stale"]);
    expect(await fake.deliverAll(failed.slice(0, 2))).toEqual(["applied", "applied"]);
    expect(await fake.deliverAll([...failed, ...succeeded])).toEqual(Array(5).fill("duplicate"));
    const v = await view(p.id);
    expect(v.refunded).toBe(0);
    expect(v.refunds).toMatchObject([{ id: refundId, status: "failed", processorStatus: "failed", failureCode: "lost_or_stolen_card" }]);
    // Never booked, so nothing to reverse: released, and told once.
    expect(await money(refundId)).toEqual({ booked: 0, reversed: 0, events: [`refund:${refundId}:failed`] });
    const whole = await refund(p.id, `whole-${randomUUID()}`);
    expect(whole.body.refunds.map((x: { status: string }) => x.status)).toEqual(["failed", "pending"]);
    const told = await waitUntil("payment.refund_failed on payments.events", async () => published.find((e) => e.eventId === `refund:${refundId}:failed`), 150_000);
    expect(told).toMatchObject({ type: "payment.refund_failed", refundId, refundedAmount: 3_000 });
  }, 180_000);

  it("a pending refund the processor later pays is booked once, whichever of its events arrives first", async () => {
    fake.refundStatus = "pending";
    const p = await payment(5_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 5_000);
    const refundId: string = r.body.refunds[0].id;
    const ws = fake.updateRefund(fake.refundOf(refundId).id, "succeeded");
    expect(await fake.deliverAll([ws[1], ws[0], ...refundEvents(refundId).slice(0, 1)])).toEqual(["applied", "applied", "stale"]);
    expect((await view(p.id)).refunded).toBe(5_000);
    expect(await money(refundId)).toEqual({ booked: 1, reversed: 0, events: [`refund:${refundId}`] });
  }, 60_000);

  it("a refund's succeeded and failed events at once on two replicas: it ends failed, booked and reversed or never booked, never half", async () => {
    fake.refundStatus = "pending";
    const made: { p: { id: string }; refundId: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await payment(2_000);
      const r = await refund(p.id, `r-${randomUUID()}`, 2_000);
      made.push({ p, refundId: r.body.refunds[0].id });
    }
    const post = (base: string, w: WebhookDelivery) => {
      const body = JSON.stringify(w.event);
      return fetch(`${base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body }).then(async (res) => [res.status, ((await res.json()) as { outcome: string }).outcome]);
    };
    await Promise.all(
      made.map(async ({ refundId }) => {
        const re = fake.refundOf(refundId).id;
        const [succeeded] = fake.updateRefund(re, "succeeded");
        const [failed] = fake.updateRefund(re, "failed");
        const outcomes = await Promise.all([post(bases[0], succeeded), post(bases[1], failed)]);
        expect(outcomes.map(([status]) => status)).toEqual([200, 200]);
      }),
    );
    for (const { p, refundId } of made) {
      const v = await view(p.id);
      expect([v.refunded, v.refunds[0].status]).toEqual([0, "failed"]);
      const m = await money(refundId);
      expect([
        { booked: 0, reversed: 0, events: [`refund:${refundId}:failed`] },
        { booked: 1, reversed: 1, events: [`refund:${refundId}`, `refund:${refundId}:reversed`] },
      ]).toContainEqual(m);
    }
  }, 60_000);

  it("a refund the processor answers failed is refused, 409 naming amount, and nothing stays held", async () => {
    fake.refundStatus = "failed";
    const p = await payment(3_000);
    const key = `r-${randomUUID()}`;
    const r = await refund(p.id, key, 3_000);
    expect([r.status, r.body.error?.code, r.body.error?.field], JSON.stringify(r.body)).toEqual([409, "REFUND_REJECTED", "amount"]);
    expect((await view(p.id)).refunds).toMatchObject([{ status: "failed", processorStatus: "failed", failureCode: "unknown" }]);
    expect((await refund(p.id, key, 3_000)).status).toBe(409);
    fake.refundStatus = "succeeded";
    const next = await refund(p.id, `r2-${randomUUID()}`);
    expect([next.status, next.body.refunded]).toEqual([200, 3_000]);
  }, 60_000);

  it("signed events for a refund that is not ours, or not as ours is, are acknowledged (ignored, or an operator's mismatch), never a 5xx", async () => {
    const p = await payment(2_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 1_000);
    const refundId: string = r.body.refunds[0].id;
    const mine = fake.refundOf(refundId);
    const send = async (object: unknown, type = "refund.updated") => {
      const body = JSON.stringify({ id: `evt_${randomBytes(8).toString("hex")}`, object: "event", type, created: Math.floor(Date.now() / 1000), data: { object } });
      const res = await fetch(`${bases[0]}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body });
      return [res.status, ((await res.json()) as { outcome: string }).outcome];
    };
    const base = { object: "refund", id: `re_${randomBytes(8).toString("hex")}`, amount: 1_000, currency: "usd", status: "failed", payment_intent: p.processorIntentId };
    // Made on the dashboard (or by another integration), failed there already: recorded failed, nothing moves (payment-refund-recheck.test.ts).
    expect(await send({ ...base, metadata: { refund_id: randomUUID() } })).toEqual([200, "applied"]);
    expect(await send({ ...base, id: `re_${randomBytes(8).toString("hex")}`, metadata: { refund_id: "not-a-uuid" } })).toEqual([200, "applied"]);
    // Not our amount or currency: not applied, an operator's issue (payment-refund-mismatch.test.ts).
    expect(await send({ ...base, id: mine.id, amount: 999, metadata: mine.metadata })).toEqual([200, "mismatch"]);
    expect(await send({ ...base, id: mine.id, currency: "eur", metadata: mine.metadata })).toEqual([200, "mismatch"]);
    expect(await send({ ...base, id: mine.id, payment_intent: "pi_other", metadata: mine.metadata })).toEqual([200, "ignored"]);
    expect(await send({ ...base, id: mine.id, status: "bounced", metadata: mine.metadata })).toEqual([200, "ignored"]);
    expect(await send({ ...base, id: mine.id, amount: "1000", metadata: mine.metadata })).toEqual([200, "mismatch"]);
    expect(await send({ ...base, id: mine.id, metadata: mine.metadata }, "charge.refunded")).toEqual([200, "ignored"]);
    expect((await view(p.id)).refunds).toMatchObject([{ id: refundId, status: "succeeded" }, { status: "failed" }, { status: "failed" }]);
    expect((await view(p.id)).refunded).toBe(1_000);
  }, 60_000);

  it("reconciliation settles a refund left pending at the processor whose webhooks were lost", async () => {
    fake.refundStatus = "pending";
    const p = await payment(6_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 6_000);
    const refundId: string = r.body.refunds[0].id;
    await replicas.pool.query("UPDATE pay_refunds SET sent_at = now() - interval '1 hour' WHERE refund_id = $1", [refundId]);
    const mineOf = (rec: { body: { refunds: { refundId: string }[] } }) => rec.body.refunds.filter((x) => x.refundId === refundId);
    expect(mineOf(await replicas.reconcile())).toEqual([{ refundId, intentId: p.id, outcome: "wait" }]);
    fake.updateRefund(fake.refundOf(refundId).id, "canceled"); // its events never arrive
    expect(mineOf(await replicas.reconcile())).toEqual([{ refundId, intentId: p.id, outcome: "failed" }]);
    expect((await view(p.id)).refunds).toMatchObject([{ status: "failed", processorStatus: "canceled", failureCode: "processor_canceled" }]);
    expect(await money(refundId)).toEqual({ booked: 0, reversed: 0, events: [`refund:${refundId}:failed`] });
    // The lost events arriving at last change nothing.
    expect(await fake.deliverAll(refundEvents(refundId))).toEqual(["stale", "applied", "applied"]);
  }, 60_000);
});
