/**
 * Whose card a charge lands on, through the gateway against real PostgreSQL, Redis and Kafka with
 * user-management, payment-service, billing-service (tests/helpers/platform.ts) and the local card
 * processor (tests/fakes/card-processor.ts, which keeps Stripe's rules on customers and tokens):
 * a user charges and subscribes only with a method saved to them (POST /api/payments/payment-methods,
 * attached to their processor customer). Before, payment-service charged any `pm_...` string sent,
 * without a customer: Alice's POST /intents with a card token Bob's browser had made was 201
 * `succeeded` on Bob's card, and billing stored it for Alice's subscription.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServersWith } from "../harness/shared";
import { FakeCardProcessor } from "../fakes/card-processor";
import { startPlatform, type Platform } from "../helpers/platform";
import { http } from "../trading/e2e-helpers";

const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const fake = new FakeCardProcessor();
const PASSWORD = "correct horse battery staple";
let p: Platform;
type User = { id: string; token: string };
let alice: User;
let bob: User;
let planId: string;

const gw = (method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) => http(method, `${p.gatewayUrl}/api${path}`, { token, body, headers });
const charge = (u: User, paymentMethod: string, amount = 2900) => gw("POST", "/payments/intents", u.token, { amount, currency: "usd", paymentMethod }, { "idempotency-key": `k-${randomUUID()}` });
const notSaved = (r: { status: number; body: any }, label: string) => {
  expect(r.status, `${label}: ${JSON.stringify(r.body)}`).toBe(404);
  expect(r.body.error, label).toMatchObject({ code: "PAYMENT_METHOD_NOT_FOUND", field: "paymentMethod" });
};

async function register(name: string): Promise<User> {
  const email = `${name}-${randomBytes(3).toString("hex")}@example.com`;
  const reg = await http("POST", `${p.gatewayUrl}/api/users/register`, { body: { email, password: PASSWORD } });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  const login = await http("POST", `${p.gatewayUrl}/api/users/login`, { body: { email, password: PASSWORD } });
  return { id: reg.body.user.id, token: login.body.accessToken };
}

beforeAll(async () => {
  await fake.start();
  const adminCreds = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
  p = await startPlatform(
    srv.env,
    {
      BOOTSTRAP_ADMIN_EMAIL: adminCreds.email,
      BOOTSTRAP_ADMIN_PASSWORD: adminCreds.password,
      ...fake.env,
      PAYMENT_RECONCILE_INTERVAL_MS: "0",
      BILLING_CYCLE_INTERVAL_MS: "0",
    },
    { only: ["api-gateway", "user-management", "payment-service", "billing-service"] },
  );
  alice = await register("alice");
  bob = await register("bob");
  const admin = (await http("POST", `${p.gatewayUrl}/api/users/login`, { body: adminCreds })).body.accessToken;
  // No trial: subscribing invoices and charges at once.
  const plan = await gw("POST", "/billing/plans", admin, { id: `pro-${randomBytes(3).toString("hex")}`, name: "Pro", currency: "usd", amount: 2900, interval: "month" });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  planId = plan.body.id;
}, 900_000);

afterAll(async () => {
  await p?.close();
  await fake.stop();
}, 120_000);

describe("payment methods belong to one user", () => {
  it("another user's card token, a made-up one and one never saved are charged to nobody", async () => {
    const bobsCard = fake.newCard(); // made by Stripe.js in Bob's browser, not saved yet
    const calls = fake.created;
    notSaved(await charge(alice, bobsCard), "alice charges bob's unsaved card");
    notSaved(await charge(alice, "pm_madeUpByTheClient"), "a made-up token");
    notSaved(await charge(alice, "pm_card_visa"), "a test token never saved");
    expect(fake.created).toBe(calls); // the processor was not even asked
    expect(fake.chargesOf(bobsCard)).toEqual([]);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM pay_intents WHERE user_id = $1", [alice.id])).rows[0].n).toBe(0);

    // Bob saves it: it is his, attached to his customer; Alice can neither use, save, see nor remove it.
    const saved = await gw("POST", "/payments/payment-methods", bob.token, { paymentMethod: bobsCard });
    expect(saved.status, JSON.stringify(saved.body)).toBe(201);
    expect(saved.body).toMatchObject({ paymentMethod: bobsCard, last4: "4242" });
    expect((await gw("POST", "/payments/payment-methods", bob.token, { paymentMethod: bobsCard })).status).toBe(200);
    notSaved(await charge(alice, bobsCard), "alice charges bob's saved card");
    const steal = await gw("POST", "/payments/payment-methods", alice.token, { paymentMethod: bobsCard });
    expect(steal.status, JSON.stringify(steal.body)).toBe(422);
    expect(steal.body.error).toMatchObject({ code: "PAYMENT_METHOD_REFUSED", field: "paymentMethod" });
    expect((await gw("GET", "/payments/payment-methods", alice.token)).body.paymentMethods).toEqual([]);
    notSaved(await gw("DELETE", `/payments/payment-methods/${bobsCard}`, alice.token), "alice removes bob's card");
    expect((await gw("GET", "/payments/payment-methods", bob.token)).body.paymentMethods.map((m: { paymentMethod: string }) => m.paymentMethod)).toEqual([bobsCard]);
    expect(fake.chargesOf(bobsCard)).toEqual([]);

    // Bob's own charge goes through, to his customer.
    const own = await charge(bob, bobsCard);
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    expect(own.body.status).toBe("succeeded");
    expect(fake.chargesOf(bobsCard)).toHaveLength(1);

    // A peer (billing's route) is held to the same rule.
    const internal = await http("POST", `${p.urls.get("payment-service")}/internal/intents`, {
      body: { userId: alice.id, amount: 1500, currency: "usd", paymentMethod: bobsCard, reference: `invoice:${randomUUID()}` },
      headers: { "idempotency-key": `invoice-${randomUUID()}-1` },
    });
    notSaved(internal, "an internal charge of bob's card for alice");
    expect(fake.chargesOf(bobsCard)).toHaveLength(1);
  });

  it("billing subscribes only with the subscriber's saved method; a removed method is charged no more", async () => {
    const bobsCard = fake.newCard();
    expect((await gw("POST", "/payments/payment-methods", bob.token, { paymentMethod: bobsCard })).status).toBe(201);
    for (const pm of [bobsCard, fake.newCard(), "pm_madeUpByTheClient"]) notSaved(await gw("POST", "/billing/subscriptions", alice.token, { planId, paymentMethod: pm }), `alice subscribes with ${pm}`);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM bil_subscriptions WHERE user_id = $1", [alice.id])).rows[0].n).toBe(0);
    expect(fake.chargesOf(bobsCard)).toEqual([]);

    // Saving a test token makes a method of Alice's own (its own id), which billing then charges.
    const mine = await gw("POST", "/payments/payment-methods", alice.token, { paymentMethod: "pm_card_visa" });
    expect(mine.status, JSON.stringify(mine.body)).toBe(201);
    expect(mine.body.paymentMethod).not.toBe("pm_card_visa");
    const sub = await gw("POST", "/billing/subscriptions", alice.token, { planId, paymentMethod: mine.body.paymentMethod });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    expect(fake.chargesOf(mine.body.paymentMethod)).toHaveLength(1);
    expect(fake.chargesOf(bobsCard)).toEqual([]);

    expect((await gw("DELETE", `/payments/payment-methods/${mine.body.paymentMethod}`, alice.token)).status).toBe(204);
    expect(fake.paymentMethods.get(mine.body.paymentMethod)?.customer).toBeNull();
    notSaved(await charge(alice, mine.body.paymentMethod), "a removed method");
    notSaved(await gw("DELETE", `/payments/payment-methods/${mine.body.paymentMethod}`, alice.token), "removed twice");
    expect((await gw("GET", "/payments/payment-methods", alice.token)).body.paymentMethods).toEqual([]);
  });
});
