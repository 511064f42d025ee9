/**
 * A payments.events message naming an invoice billing does not have (session 57). Before, billing
 * marked it processed and logged a line: acknowledged as done, lost to an operator. Now (billing-service
 * payment-events.ts, domain/unknown-invoices.ts) a young event is looked for again for up to
 * BILLING_UNKNOWN_INVOICE_WAIT_MS (its invoice's commit may still be on its way), then set aside in
 * consumer_dead_letters with a reason naming `reference`, never marked processed; an event older than a
 * minute is set aside at once. Replayed through database-service's `POST /dead-letters/:id/replay` once
 * the invoice exists, it pays it. Real PostgreSQL and Kafka: billing-service and payment-service in
 * process (tests/helpers/billing-payment-rig.ts), database-service beside them; the events are produced
 * straight to the topic, keyed by their payer like payment-service's.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import databaseService from "../../services/src/services/database-service";
import { ensureAccount } from "../helpers/accounts";
import { useBillingPaymentRig } from "../helpers/billing-payment-rig";
import { http, waitUntil } from "../trading/e2e-helpers";

/** billing-service's log lines (warn and above), parsed. */
const billingLines: Array<Record<string, any>> = [];
/** Called with each billing log line as it is written (the race case commits the invoice from it). */
let onBillingLine: ((line: Record<string, any>) => void) | undefined;
const rig = useBillingPaymentRig({
  // A session timeout of 30 s allows a wait of 10 s (a third of it): room for the race case on a loaded host.
  billingEnv: { LOG_LEVEL: "warn", KAFKA_SESSION_TIMEOUT_MS: "30000", KAFKA_HEARTBEAT_MS: "1000", BILLING_UNKNOWN_INVOICE_WAIT_MS: "10000" },
  billingLog: {
    write(text: string) {
      for (const l of text.split("\n").filter(Boolean)) {
        const line = JSON.parse(l) as Record<string, any>;
        billingLines.push(line);
        onBillingLine?.(line);
      }
    },
  },
});
const { group: GROUP, admin } = rig;
let db: Service<any>;

beforeAll(async () => {
  db = await createService(databaseService, { env: { ...rig.env, LOG_LEVEL: "fatal" }, defaultMetrics: false });
}, 120_000);
afterAll(async () => {
  await db?.close();
});

const q = async (sql: string, args: unknown[]) => (await rig.pool.query(sql, args)).rows;
const LOOKED_AGAIN = "payment event names an invoice billing does not have (yet): looked for again shortly";

/** A user subscribed to the rig's plan (its first invoice paid at once: the processor answers synchronously): its id and subscription. */
async function subscribed(): Promise<{ userId: string; subscriptionId: string }> {
  const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  await ensureAccount(rig.pool, user["x-user-id"]);
  const card = await http("POST", `${rig.payments}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: user });
  expect(card.status, JSON.stringify(card.body)).toBe(201);
  const sub = await http("POST", `${rig.billing}/subscriptions`, { body: { planId: rig.plan, paymentMethod: card.body.paymentMethod }, headers: user });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  return { userId: user["x-user-id"], subscriptionId: sub.body.id as string };
}

/** An open invoice of 5.00 usd of the subscription, as billing writes one (no lines: the payment path reads none). */
const INSERT_INVOICE = "INSERT INTO bil_invoices (invoice_id, subscription_id, user_id, currency, status, subtotal, credit_applied, amount_due) VALUES ($1, $2, $3, 'usd', 'open', 500, 0, 500)";

/** payment.succeeded of 5.00 usd for `invoiceId`, paid by `userId`, made `ageMs` ago. */
const succeeded = (userId: string, invoiceId: string, ageMs = 0) => ({
  eventId: `unknown-invoice-${randomUUID()}`, type: "payment.succeeded", intentId: randomUUID(), userId, amount: 500, currency: "usd", reference: `invoice:${invoiceId}`, failureCode: null, ts: Date.now() - ageMs,
});

async function publish(ev: { userId: string }): Promise<void> {
  const producer = rig.kafka.producer();
  await producer.connect();
  await producer.send({ topic: "payments.events", messages: [{ key: ev.userId, value: JSON.stringify(ev) }] });
  await producer.disconnect();
}

/** The dead letters of billing's group holding the event `eventId`. */
const lettersOf = async (eventId: string) =>
  (await q("SELECT id::text, reason, replayed_at FROM consumer_dead_letters WHERE consumer_group = $1 AND convert_from(msg_value, 'UTF8') LIKE $2 ORDER BY id", [GROUP, `%"eventId":"${eventId}"%`])) as { id: string; reason: string; replayed_at: Date | null }[];
const processed = async (eventId: string) => (await q("SELECT 1 FROM bil_processed_events WHERE event_id = $1", [eventId])).length === 1;
const invoiceStatus = async (invoiceId: string) => (await q("SELECT status FROM bil_invoices WHERE invoice_id = $1", [invoiceId]))[0]?.status as string | undefined;

describe("a payment event naming an invoice billing does not have", () => {
  it("is looked for again, then set aside naming reference (not marked processed); replayed once the invoice exists, it pays it", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    const ev = succeeded(userId, invoiceId);
    await publish(ev);
    const [letter] = await waitUntil("the event set aside", async () => ((await lettersOf(ev.eventId)).length ? lettersOf(ev.eventId) : undefined), 120_000);
    expect(letter.reason).toMatch(/reference: names invoice [0-9a-f-]{36}, which billing does not have \(looked for \d+ times over \d+ ms\)/);
    expect(letter.reason).toContain(invoiceId);
    expect(billingLines.some((l) => l.msg === LOOKED_AGAIN && l.eventId === ev.eventId)).toBe(true);
    expect(await processed(ev.eventId)).toBe(false);
    // The invoice appears (an operator restored it, say): the letter replayed pays it.
    await q(INSERT_INVOICE, [invoiceId, subscriptionId, userId]);
    const replay = await db.app.inject({ method: "POST", url: `/dead-letters/${letter.id}/replay`, headers: admin });
    expect(replay.statusCode, replay.body).toBe(200);
    await waitUntil("the replayed event paid the invoice", async () => (await invoiceStatus(invoiceId)) === "paid", 120_000);
    expect(await processed(ev.eventId)).toBe(true);
    expect((await lettersOf(ev.eventId)).length).toBe(1);
  }, 240_000);

  it("an event older than a minute is set aside at once, not waited for", async () => {
    const { userId } = await subscribed();
    const ev = succeeded(userId, randomUUID(), 5 * 60_000);
    await publish(ev);
    const [letter] = await waitUntil("the old event set aside", async () => ((await lettersOf(ev.eventId)).length ? lettersOf(ev.eventId) : undefined), 120_000);
    expect(letter.reason).toMatch(/reference: names invoice .*, which billing does not have: replay it/);
    expect(billingLines.some((l) => l.msg === LOOKED_AGAIN && l.eventId === ev.eventId)).toBe(false);
    expect(await processed(ev.eventId)).toBe(false);
  }, 240_000);

  it("one whose invoice commits while billing looks for it (the event before the invoice's commit) is applied, not set aside", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    const ev = succeeded(userId, invoiceId);
    // The invoice written in a transaction left open: billing cannot see it until the commit.
    const tx = await rig.pool.connect();
    let committed: Promise<unknown> | undefined;
    try {
      await tx.query("BEGIN");
      await tx.query(INSERT_INVOICE, [invoiceId, subscriptionId, userId]);
      // Committed as soon as billing has looked once and not found it.
      onBillingLine = (l) => {
        if (l.msg === LOOKED_AGAIN && l.eventId === ev.eventId) committed ??= tx.query("COMMIT");
      };
      await publish(ev);
      await waitUntil("billing looked for the invoice and the test committed it", async () => committed !== undefined, 120_000);
      await committed;
    } finally {
      onBillingLine = undefined;
      if (!committed) await tx.query("ROLLBACK").catch(() => undefined);
      tx.release();
    }
    await waitUntil("the payment applied", async () => (await invoiceStatus(invoiceId)) === "paid", 120_000);
    expect(await processed(ev.eventId)).toBe(true);
    expect(await lettersOf(ev.eventId)).toEqual([]);
  }, 240_000);
});
