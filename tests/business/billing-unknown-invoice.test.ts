/**
 * A payments.events message naming an invoice billing does not have (session 57, redone in sessions 58 and 60).
 * Before session 57, billing marked it processed and logged a line: acknowledged as done, lost to an operator.
 * Sessions 57-59 waited for the invoice inside the consumer's batch (up to BILLING_UNKNOWN_INVOICE_WAIT_MS),
 * every later event of the partition waiting behind it. Now (session 60: billing-service payment-events.ts,
 * parked-payment-events.ts, migration 0516) a young event is parked and the batch goes on; the periodic pass
 * applies it once its invoice exists (the invoice's creation by billing applies it in its own transaction), or
 * sets it aside in consumer_dead_letters, the reason naming `reference`, once parked the wait; never marked
 * processed until applied. An event older than a minute is set aside at once. Replayed through
 * database-service's `POST /dead-letters/:id/replay` once the invoice exists, it pays it.
 *
 * The held-row case (session 58): another transaction holding the subscription's row (an open insert of another
 * of its invoices: its foreign key) is waited for within the wait (lock_timeout), then the batch is retried.
 *
 * Real PostgreSQL and Kafka: billing-service and payment-service in process
 * (tests/helpers/billing-payment-rig.ts), database-service beside them; the events are produced straight
 * to the topic, keyed by their payer like payment-service's. No timing is asserted: each case waits for
 * billing's log line or the rows it writes.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import { createPostgres, type PostgresClient } from "../../services/src/kit/datastores/postgres";
import { Invoicing } from "../../services/src/services/billing-service/invoicing";
import { BillingRepo } from "../../services/src/services/billing-service/repo";
import { PARKED_LINE } from "../../services/src/services/billing-service/payment-events";
import databaseService from "../../services/src/services/database-service";
import { ensureAccount } from "../helpers/accounts";
import { useBillingPaymentRig } from "../helpers/billing-payment-rig";
import { http, waitUntil } from "../trading/e2e-helpers";

/** billing-service's log lines (warn and above), parsed. */
const billingLines: Array<Record<string, any>> = [];
/** Called with each billing log line as it is written (the race and held-row cases end their transaction from it). */
let onBillingLine: ((line: Record<string, any>) => void) | undefined;
const rig = useBillingPaymentRig({
  // A session timeout of 30 s allows a wait of 10 s (a third of it); 5 s: an event parked that long is set aside.
  billingEnv: { LOG_LEVEL: "warn", KAFKA_SESSION_TIMEOUT_MS: "30000", KAFKA_HEARTBEAT_MS: "1000", BILLING_UNKNOWN_INVOICE_WAIT_MS: "5000" },
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
const PARKED = PARKED_LINE;
const HELD = "payment event's rows held by another transaction: looked at again shortly";
/** billing's line when the batch's wait ran out on a held row (the batch retried later). */
const HELD_PAST = "payment event's rows held by another transaction past the wait: the batch is retried later";

/** A user subscribed to the rig's plan (its first invoice paid at once: the processor answers synchronously): its id and subscription. */
async function subscribed(): Promise<{ userId: string; subscriptionId: string }> {
  const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  await ensureAccount(rig.pool, user["x-user-id"]);
  const card = await http("POST", `${rig.payments}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: user });
  expect(card.status, JSON.stringify(card.body)).toBe(201);
  const sub = await http("POST", `${rig.billing}/subscriptions`, { body: { planId: rig.plan, paymentMethod: card.body.paymentMethod }, headers: user });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  const subscriptionId = sub.body.id as string;
  // Its first invoice's payment applied: nothing of the subscription's is left in the partition for billing
  // (an event of it waiting behind a case's open transaction would hold up the case's own event).
  await waitUntil("the first invoice paid", async () => (await q("SELECT 1 FROM bil_invoices WHERE subscription_id = $1 AND status = 'paid'", [subscriptionId])).length === 1, 120_000);
  return { userId: user["x-user-id"], subscriptionId };
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

const invoiceIdOfEvent = (ev: { reference: string }) => ev.reference.slice("invoice:".length);

/** The dead letters of billing's group holding the event `eventId`. */
const lettersOf = async (eventId: string) =>
  (await q("SELECT id::text, reason, replayed_at FROM consumer_dead_letters WHERE consumer_group = $1 AND convert_from(msg_value, 'UTF8') LIKE $2 ORDER BY id", [GROUP, `%"eventId":"${eventId}"%`])) as { id: string; reason: string; replayed_at: Date | null }[];
const parked = async (eventId: string) => (await q("SELECT 1 FROM bil_parked_payment_events WHERE event_id = $1", [eventId])).length === 1;
const processed = async (eventId: string) => (await q("SELECT 1 FROM bil_processed_events WHERE event_id = $1", [eventId])).length === 1;
const invoiceStatus = async (invoiceId: string) => (await q("SELECT status FROM bil_invoices WHERE invoice_id = $1", [invoiceId]))[0]?.status as string | undefined;

describe("a payment event naming an invoice billing does not have", () => {
  it("is parked, then set aside naming reference once parked the wait (not marked processed); replayed once the invoice exists, it pays it", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    const ev = succeeded(userId, invoiceId);
    await publish(ev);
    const [letter] = await waitUntil("the event set aside", async () => ((await lettersOf(ev.eventId)).length ? lettersOf(ev.eventId) : undefined), 120_000);
    expect(letter.reason).toMatch(/reference: names invoice [0-9a-f-]{36}, which billing does not have \(parked \d+ ms\): replay it once the invoice exists/);
    expect(letter.reason).toContain(invoiceId);
    expect(billingLines.some((l) => l.msg === PARKED && l.eventId === ev.eventId)).toBe(true);
    expect(await processed(ev.eventId)).toBe(false);
    expect(await parked(ev.eventId)).toBe(false);
    // The invoice appears (an operator restored it, say): the letter replayed pays it.
    await q(INSERT_INVOICE, [invoiceId, subscriptionId, userId]);
    const replay = await db.app.inject({ method: "POST", url: `/dead-letters/${letter.id}/replay`, headers: admin });
    expect(replay.statusCode, replay.body).toBe(200);
    await waitUntil("the replayed event paid the invoice", async () => (await invoiceStatus(invoiceId)) === "paid", 120_000);
    expect(await processed(ev.eventId)).toBe(true);
    expect((await lettersOf(ev.eventId)).length).toBe(1);
  }, 300_000);

  it("two of one batch naming missing invoices are both parked, then both set aside, each naming its own invoice", async () => {
    const { userId } = await subscribed();
    const [first, second] = [succeeded(userId, randomUUID()), succeeded(userId, randomUUID())];
    // One send, one key: one record batch of the partition, fetched together.
    const producer = rig.kafka.producer();
    await producer.connect();
    await producer.send({ topic: "payments.events", messages: [first, second].map((ev) => ({ key: userId, value: JSON.stringify(ev) })) });
    await producer.disconnect();
    const [a] = await waitUntil("the first set aside", async () => ((await lettersOf(first.eventId)).length ? lettersOf(first.eventId) : undefined), 180_000);
    const [b] = await waitUntil("the second set aside", async () => ((await lettersOf(second.eventId)).length ? lettersOf(second.eventId) : undefined), 180_000);
    expect(a.reason).toContain(invoiceIdOfEvent(first));
    expect(b.reason).toContain(invoiceIdOfEvent(second));
    expect(billingLines.filter((l) => l.msg === PARKED && (l.eventId === first.eventId || l.eventId === second.eventId))).toHaveLength(2);
    expect([await processed(first.eventId), await processed(second.eventId)]).toEqual([false, false]);
  }, 300_000);

  it("an event older than a minute is set aside at once, not waited for", async () => {
    const { userId } = await subscribed();
    const ev = succeeded(userId, randomUUID(), 5 * 60_000);
    await publish(ev);
    const [letter] = await waitUntil("the old event set aside", async () => ((await lettersOf(ev.eventId)).length ? lettersOf(ev.eventId) : undefined), 120_000);
    expect(letter.reason).toMatch(/reference: names invoice .*, which billing does not have: replay it/);
    expect(billingLines.some((l) => l.msg === PARKED && l.eventId === ev.eventId)).toBe(false);
    expect(await processed(ev.eventId)).toBe(false);
  }, 300_000);

  it("one whose invoice commits while it is parked (the event before the invoice's commit) is applied, not set aside", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    const ev = succeeded(userId, invoiceId);
    // The invoice written in a transaction left open: billing cannot see it until the commit.
    const tx = await rig.pool.connect();
    let committed: Promise<unknown> | undefined;
    try {
      await tx.query("BEGIN");
      await tx.query(INSERT_INVOICE, [invoiceId, subscriptionId, userId]);
      // Committed as soon as billing has parked the event.
      onBillingLine = (l) => {
        if (l.msg === PARKED && l.eventId === ev.eventId) committed ??= tx.query("COMMIT");
      };
      await publish(ev);
      await waitUntil("billing parked the event and the test committed the invoice", async () => committed !== undefined, 180_000);
      await committed;
    } finally {
      onBillingLine = undefined;
      if (!committed) await tx.query("ROLLBACK").catch(() => undefined);
      tx.release();
    }
    await waitUntil("the payment applied", async () => (await invoiceStatus(invoiceId)) === "paid", 120_000);
    expect(await processed(ev.eventId)).toBe(true);
    expect(await parked(ev.eventId)).toBe(false);
    expect(await lettersOf(ev.eventId)).toEqual([]);
  }, 300_000);

  it("one parked for an invoice billing then creates is applied in the creating transaction: rolled back, it stays parked; committed, applied once", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    const ev = succeeded(userId, invoiceId);
    await publish(ev);
    await waitUntil("the event parked", async () => parked(ev.eventId), 120_000);
    // billing's invoice creation (invoicing.ts create), with the invoice's id given, on a pool of the test's.
    const log = rig.billingService.ctx.log;
    const pg = createPostgres({ POSTGRES_URL: rig.env.POSTGRES_URL, POSTGRES_POOL_MAX: 2, POSTGRES_CONNECT_TIMEOUT_MS: 30_000 }, log);
    try {
      const repo = new BillingRepo(pg);
      const refuse = async () => Promise.reject(new Error("no payment-service call expected"));
      const invoicing = new Invoicing(repo, { charge: refuse, refund: refuse, isSaved: refuse }, log, { retryAfterDays: [1] }, () => undefined);
      const plan = (await repo.plan(rig.plan))!;
      const line = { kind: "subscription" as const, description: "test", quantity: 1n, amount: 500n, periodStart: new Date(), periodEnd: new Date(Date.now() + 86_400_000) };
      type Tx = Parameters<Parameters<PostgresClient["transaction"]>[0]>[0];
      const create = (c: Tx) => repo.subscription(subscriptionId, c, true).then((sub) => invoicing.create(c, sub!, plan, [line], invoiceId));
      // A crash before the creation's commit (here its rollback): nothing applied, the event still parked.
      await expect(
        pg.transaction(async (c: Tx) => {
          // The invoice as the parked event left it (paid), not as it was first written (open).
          expect((await create(c)).status).toBe("paid");
          expect((await c.query("SELECT status FROM bil_invoices WHERE invoice_id = $1", [invoiceId])).rows[0].status).toBe("paid");
          throw new Error("rolled back");
        }),
      ).rejects.toThrow("rolled back");
      expect([await invoiceStatus(invoiceId), await processed(ev.eventId), await parked(ev.eventId)]).toEqual([undefined, false, true]);
      // Committed: paid by the parked event, applied once and unparked.
      await pg.transaction((c: Tx) => create(c));
      expect([await invoiceStatus(invoiceId), await processed(ev.eventId), await parked(ev.eventId)]).toEqual(["paid", true, false]);
      expect(await lettersOf(ev.eventId)).toEqual([]);
    } finally {
      await pg.close();
    }
  }, 300_000);

  it("does not delay a later event for a known invoice on the same partition: that one is applied while it is still parked", async () => {
    const { userId, subscriptionId } = await subscribed();
    const knownInvoice = randomUUID();
    await q(INSERT_INVOICE, [knownInvoice, subscriptionId, userId]);
    const [unknown, known] = [succeeded(userId, randomUUID()), succeeded(userId, knownInvoice)];
    // One send, one key: the same partition, the unknown one first.
    const producer = rig.kafka.producer();
    await producer.connect();
    await producer.send({ topic: "payments.events", messages: [unknown, known].map((ev) => ({ key: userId, value: JSON.stringify(ev) })) });
    await producer.disconnect();
    await waitUntil("the known invoice paid", async () => (await invoiceStatus(knownInvoice)) === "paid", 120_000);
    // Before session 60 the known one waited behind the unknown one until that was set aside (the batch's wait, then its dead letter).
    expect(await lettersOf(unknown.eventId)).toEqual([]);
    expect(await parked(unknown.eventId)).toBe(true);
    expect(await processed(known.eventId)).toBe(true);
    // Then, parked the wait, the unknown one is set aside as ever.
    await waitUntil("the unknown one set aside", async () => (await lettersOf(unknown.eventId)).length === 1, 120_000);
    expect(await parked(unknown.eventId)).toBe(false);
  }, 300_000);

  it("one whose subscription's row another transaction holds is looked at again within the wait, not waited on for good, and applied once the row is free", async () => {
    const { userId, subscriptionId } = await subscribed();
    const invoiceId = randomUUID();
    await q(INSERT_INVOICE, [invoiceId, subscriptionId, userId]);
    const ev = succeeded(userId, invoiceId);
    // Session 57's hang: another invoice of the subscription inserted in a transaction left open; its
    // foreign key holds the subscription's row against billing's lock of it (the invoice's payment).
    const tx = await rig.pool.connect();
    let ended: Promise<unknown> | undefined;
    try {
      await tx.query("BEGIN");
      await tx.query(INSERT_INVOICE, [randomUUID(), subscriptionId, userId]);
      // Ended as soon as billing has given up waiting for the row once (before, it waited as long as this transaction lasted).
      onBillingLine = (l) => {
        if ((l.msg === HELD || l.msg === HELD_PAST) && l.eventId === ev.eventId) ended ??= tx.query("ROLLBACK");
      };
      await publish(ev);
      await waitUntil("billing's wait for the row ran out and the test ended its transaction", async () => ended !== undefined, 180_000);
      await ended;
    } finally {
      onBillingLine = undefined;
      if (!ended) await tx.query("ROLLBACK").catch(() => undefined);
      tx.release();
    }
    const held = billingLines.find((l) => (l.msg === HELD || l.msg === HELD_PAST) && l.eventId === ev.eventId)!;
    expect(held).toMatchObject({ reference: `invoice:${invoiceId}` });
    // Applied once the row is free (on a later look of the batch, or, past the wait, when the batch is retried: never set aside).
    await waitUntil("the payment applied", async () => (await invoiceStatus(invoiceId)) === "paid", 180_000);
    expect(await processed(ev.eventId)).toBe(true);
    expect(await lettersOf(ev.eventId)).toEqual([]);
  }, 300_000);
});
