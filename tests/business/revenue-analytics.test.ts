/**
 * revenue-analytics on real PostgreSQL and Kafka: billing and payment events published to the real
 * topics are consumed once per event id, and MRR, ARR, ARPU, churn, LTV and cash match figures
 * computed by hand. The events are dated in 2021 so events other test files publish on the shared
 * broker (dated now) cannot change the figures asked for.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, type KafkaJs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import revenueAnalytics from "../../services/src/services/revenue-analytics";
import { mrrChange, paymentFact, revenueMetrics } from "../../services/src/services/revenue-analytics/domain";
import { waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "kafka");
const run = randomBytes(3).toString("hex");
let svc: Service<any>;
let pool: InstanceType<typeof pg.Pool>;
let producer: KafkaJs.Producer;
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
const t = (iso: string) => Date.parse(iso);
const u = (n: string) => `ra-${run}-${n}`;

function billing(n: string, sub: string, mrr: number, at: string, currency = "usd", status = mrr > 0 ? "active" : "canceled", eventId = `${run}-${n}`) {
  return { topic: "billing.events", key: u(sub), value: { eventId, type: "subscription.updated", userId: u(sub), subscriptionId: `${run}-sub-${sub}`, planId: "p", status, currency, mrr, ts: t(at) } };
}
function payment(n: string, user: string, type: string, amount: number, at: string, refundedAmount?: number) {
  return { topic: "payments.events", key: u(user), value: { eventId: `${run}-${n}`, type, intentId: `pi-${run}-${n}`, userId: u(user), amount, currency: "usd", reference: null, ts: t(at), ...(refundedAmount !== undefined ? { refundedAmount } : {}) } };
}

beforeAll(async () => {
  const env: Record<string, string> = { ...srv.env, LOG_LEVEL: "silent", REVENUE_CONSUMER_GROUP: `revenue-${run}`, KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500" };
  pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  const kafka = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const a = kafka.admin();
  await a.connect();
  await ensureKafkaTopics(a);
  await a.disconnect();
  producer = kafka.producer();
  await producer.connect();
  svc = await createService(revenueAnalytics, { env, defaultMetrics: false });
  await svc.app.ready();
}, 240_000);

afterAll(async () => {
  await producer?.disconnect();
  await svc?.close();
  await pool?.end();
});

const metrics = async (q: string, headers: Record<string, string> = admin) => svc.app.inject({ method: "GET", url: `/?${q}`, headers });

describe("revenue-analytics", () => {
  it("computes MRR, ARR, ARPU, churn, LTV and cash from consumed events, once per event id", async () => {
    const msgs = [
      billing("a1", "A", 3000, "2021-01-05T00:00:00Z"),
      billing("b1", "B", 1000, "2021-01-10T00:00:00Z"),
      billing("c1", "C", 2000, "2021-01-20T00:00:00Z"),
      billing("f1", "F", 900, "2021-01-01T00:00:00Z", "eur"),
      billing("c2", "C", 5000, "2021-02-10T00:00:00Z"), // upgrade
      billing("b2", "B", 0, "2021-02-15T00:00:00Z"), // canceled: churned
      billing("d1", "D", 1000, "2021-02-20T00:00:00Z"), // new customer
      billing("e1", "E", 0, "2021-02-25T00:00:00Z", "usd", "incomplete"), // never paid: not a customer
      billing("dup", "A", 99_999, "2021-02-26T00:00:00Z", "usd", "active", `${run}-a1`), // redelivery of a1's id: ignored
      payment("p1", "A", "payment.succeeded", 3000, "2021-01-05T00:00:01Z"), // before the period
      payment("p2", "C", "payment.succeeded", 5000, "2021-02-10T00:00:01Z"),
      payment("p3", "D", "payment.succeeded", 1000, "2021-02-20T00:00:01Z"),
      payment("p4", "A", "payment.refunded", 3000, "2021-02-21T00:00:00Z", 500),
      payment("p5", "B", "payment.failed", 1000, "2021-02-14T00:00:00Z"),
    ];
    await producer.send({ topic: "billing.events", messages: [{ key: "x", value: "not json" }, { key: "x", value: JSON.stringify({ type: "subscription.created" }) }] });
    for (const m of msgs) await producer.send({ topic: m.topic, messages: [{ key: m.key, value: JSON.stringify(m.value) }] });
    await producer.send({ topic: "payments.events", messages: [{ key: "x", value: JSON.stringify({ ...payment("p2", "C", "payment.succeeded", 5000, "2021-02-10T00:00:01Z").value }) }] }); // duplicate

    const q = "asOf=2021-03-01T00:00:00Z&periodDays=28"; // period [2021-02-01, 2021-03-01)
    const body = await waitUntil("events consumed", async () => {
      const n = Number((await pool.query("SELECT (SELECT count(*) FROM ra_mrr_changes WHERE event_id LIKE $1) + (SELECT count(*) FROM ra_payments WHERE event_id LIKE $1) AS n", [`${run}-%`])).rows[0].n);
      return n === 13 ? (await metrics(q)).json<{ from: string; currencies: unknown[] }>() : undefined;
    }, 120_000);
    expect(body.from).toBe("2021-02-01T00:00:00.000Z");
    // Start: A 3000, B 1000, C 2000 (3 customers). End: A 3000, C 5000, D 1000 (B canceled, E never paid).
    expect(body.currencies).toEqual([
      { currency: "eur", mrr: 900, arr: 10_800, payingCustomers: 1, arpu: 900, customersAtStart: 1, churnedCustomers: 0, newCustomers: 0, churnRate: 0, ltv: null, collected: 0, refunded: 0, netRevenue: 0 },
      // ARPU 9000/3 = 3000; churn 1/3; LTV = 3000 / (1/3) = 9000; cash 5000 + 1000 collected, 500 refunded.
      { currency: "usd", mrr: 9000, arr: 108_000, payingCustomers: 3, arpu: 3000, customersAtStart: 3, churnedCustomers: 1, newCustomers: 1, churnRate: 0.333333, ltv: 9000, collected: 6000, refunded: 500, netRevenue: 5500 },
    ]);
    // Mid-January: only A (3000, 5 Jan), B (1000, 10 Jan) and F (eur) exist.
    const jan = (await metrics("asOf=2021-01-15T00:00:00Z&periodDays=14")).json();
    expect(jan.currencies.find((c: any) => c.currency === "usd")).toMatchObject({ mrr: 4000, payingCustomers: 2, arpu: 2000, collected: 3000 });
  }, 180_000);

  it("a refund that failed after it succeeded counts back where it was reversed; one that failed before moved no cash", async () => {
    // 2022: apart from the test above. March: 4000 collected, 1000 refunded, then reversed (the card was
    // closed: the money came back), and a 700 refund that failed at the processor before it succeeded.
    const msgs = [
      payment("q1", "G", "payment.succeeded", 4000, "2022-03-02T00:00:00Z"),
      payment("q2", "G", "payment.refunded", 4000, "2022-03-03T00:00:00Z", 1000),
      payment("q3", "G", "payment.refund_failed", 4000, "2022-03-04T00:00:00Z", 700),
      payment("q4", "G", "payment.refund_reversed", 4000, "2022-03-20T00:00:00Z", 1000),
      payment("q5", "H", "payment.succeeded", 2000, "2022-04-02T00:00:00Z"),
      payment("q6", "H", "payment.refunded", 2000, "2022-04-03T00:00:00Z", 2000),
      payment("q7", "H", "payment.refund_reversed", 2000, "2022-05-03T00:00:00Z", 2000),
    ];
    for (const m of msgs) await producer.send({ topic: m.topic, messages: [{ key: m.key, value: JSON.stringify(m.value) }] });
    await waitUntil("refund events consumed", async () => Number((await pool.query("SELECT count(*) AS n FROM ra_payments WHERE event_id LIKE $1", [`${run}-q%`])).rows[0].n) === 7 || undefined, 120_000);
    const cash = async (q: string) => (await metrics(q)).json().currencies.find((c: any) => c.currency === "usd");
    expect(await cash("asOf=2022-04-01T00:00:00Z&periodDays=31")).toMatchObject({ collected: 4000, refunded: 0, netRevenue: 4000 });
    expect(await cash("asOf=2022-05-01T00:00:00Z&periodDays=30")).toMatchObject({ collected: 2000, refunded: 2000, netRevenue: 0 });
    // May: only the reversal of April's refund: the 2000 came back in May (net refunds below zero).
    expect(await cash("asOf=2022-06-01T00:00:00Z&periodDays=31")).toMatchObject({ collected: 0, refunded: -2000, netRevenue: 2000 });
    expect(paymentFact({ eventId: "e", type: "payment.refund_reversed", intentId: "i", userId: "u", amount: 10, currency: "usd", ts: 1 })).toBeNull();
  }, 180_000);

  it("a refund booked again at the processor's amount moves refunds by the difference, once per event id", async () => {
    // 2023: apart from the tests above. June: 5000 collected, refunds of 1000 and 800 (usd) and 600
    // (a refund an operator settled in eur). July: the processor paid the first out at 1200 (+200), the
    // second at 500 (-300), the eur one at 650 (+50); a redelivery of the first adjustment's event id
    // (other figures) changes nothing. August: the first refund failed afterwards, reversed at 1200.
    const adjusted = (n: string, user: string, refundedAmount: number, previousRefundedAmount: number, at: string, eventId = `${run}-${n}`, currency = "usd") => {
      const m = payment(n, user, "payment.refund_adjusted", 5000, at, refundedAmount);
      return { ...m, value: { ...m.value, eventId, currency, paymentCurrency: "usd", previousRefundedAmount } };
    };
    const eurRefund = payment("r4", "J", "payment.refunded", 5000, "2023-06-11T00:00:00Z", 600);
    const msgs = [
      payment("r1", "J", "payment.succeeded", 5000, "2023-06-02T00:00:00Z"),
      payment("r2", "J", "payment.refunded", 5000, "2023-06-03T00:00:00Z", 1000),
      payment("r3", "J", "payment.refunded", 5000, "2023-06-10T00:00:00Z", 800),
      { ...eurRefund, value: { ...eurRefund.value, currency: "eur", paymentCurrency: "usd" } },
      adjusted("r5", "J", 1200, 1000, "2023-07-05T00:00:00Z"),
      adjusted("r6", "J", 500, 800, "2023-07-06T00:00:00Z"),
      adjusted("r7", "J", 650, 600, "2023-07-07T00:00:00Z", `${run}-r7`, "eur"),
      adjusted("r5-again", "J", 4000, 1000, "2023-07-08T00:00:00Z", `${run}-r5`), // redelivery of r5's id: ignored
      payment("r8", "J", "payment.refund_reversed", 5000, "2023-08-04T00:00:00Z", 1200),
    ];
    for (const m of msgs) await producer.send({ topic: m.topic, messages: [{ key: m.key, value: JSON.stringify(m.value) }] });
    await waitUntil("adjustments consumed", async () => Number((await pool.query("SELECT count(*) AS n FROM ra_payments WHERE event_id LIKE $1", [`${run}-r%`])).rows[0].n) === 8 || undefined, 120_000);
    const cash = async (q: string) => Object.fromEntries((await metrics(q)).json().currencies.map((c: any) => [c.currency, { collected: c.collected, refunded: c.refunded, netRevenue: c.netRevenue }]));
    expect(await cash("asOf=2023-07-01T00:00:00Z&periodDays=30")).toEqual({ eur: { collected: 0, refunded: 600, netRevenue: -600 }, usd: { collected: 5000, refunded: 1800, netRevenue: 3200 } });
    // July: +200 - 300 in usd, +50 in eur (the refund's currency, as its refund counted).
    expect(await cash("asOf=2023-08-01T00:00:00Z&periodDays=31")).toEqual({ eur: { collected: 0, refunded: 50, netRevenue: -50 }, usd: { collected: 0, refunded: -100, netRevenue: 100 } });
    // June to August: 1000 + 800 + 200 - 300 - 1200 = 500 refunded in usd (the second refund, at 500).
    expect((await cash("asOf=2023-09-01T00:00:00Z&periodDays=92")).usd).toEqual({ collected: 5000, refunded: 500, netRevenue: 4500 });
    // None of them set aside (before, an adjustment broke ra_payments' type check and became a dead letter).
    const setAside = await pool.query("SELECT count(*)::int AS n FROM consumer_dead_letters WHERE consumer_group = $1 AND position($2::bytea IN msg_value) > 0", [`revenue-${run}`, Buffer.from(`"${run}-r`)]);
    expect(setAside.rows[0].n).toBe(0);
    expect(paymentFact({ eventId: "e", type: "payment.refund_adjusted", intentId: "i", userId: "u", amount: 10, currency: "usd", refundedAmount: 5, ts: 1 })).toBeNull();
  }, 180_000);

  it("is admin only and names bad query fields", async () => {
    expect((await metrics("", { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" })).statusCode).toBe(403);
    const bad = await metrics("asOf=yesterday");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe("asOf");
    expect((await metrics("periodDays=0")).json().error.field).toBe("periodDays");
    expect((await metrics("bogus=1")).statusCode).toBe(400);
  });

  it("domain: rounding and validation", () => {
    const m = revenueMetrics("usd", new Map([["a", 1000n], ["b", 1000n], ["c", 1000n]]), new Map([["a", 1000n], ["b", 1001n], ["c", 0n], ["d", 0n]]), { collected: 0n, refunded: 0n });
    expect(m).toMatchObject({ mrr: 2001n, payingCustomers: 2, arpu: 1001n, churnedCustomers: 1, ltv: 3003n }); // 2001/2 = 1000.5 -> 1001
    expect(mrrChange({ eventId: "e", type: "x", userId: "u", subscriptionId: "s", planId: "p", status: "active", currency: "usd", mrr: 1.5, ts: 1 })).toBeNull();
    expect(paymentFact({ eventId: "e", type: "payment.refunded", intentId: "i", userId: "u", amount: 10, currency: "usd", ts: 1 })).toBeNull();
  });
});
