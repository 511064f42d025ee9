/**
 * One subscription whose renewal throws does not stop billing for everyone. Before, every due
 * subscription renewed in one transaction: a usage bill whose total passed 2^53 minor units made
 * toJson throw, every renewal of the cycle rolled back, and the next cycle picked that subscription
 * first again (ORDER BY period_end), so nobody renewed again. Now each renewal runs under a
 * savepoint; the failing one is logged and set aside for a while, the others renew and are charged.
 * And an admin's plan above the card processor's largest charge is refused (400 naming the field).
 * Real PostgreSQL, payment-service a stand-in (tests/helpers/billing-rig.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HttpError } from "../../services/src/kit";
import { createApp, createLogger } from "../../services/src/kit/app";
import { Billing } from "../../services/src/services/billing-service/billing";
import { registerRoutes } from "../../services/src/services/billing-service/routes";
import { invoicesOf, plan, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
// A price the routes accept (the block at the processor's largest charge): 10^8 blocks of it pass 2^53.
const METERED = `metered-${run}`;
const rig = useBillingRig([plan(BASIC, 1000), plan(METERED, 1000, { included: 0, blockSize: 1, blockAmount: 99_999_999 })]);

const chargesOf = (userId: string) => rig.charges.filter((c) => c.userId === userId).length;
/** Moves the user's live subscription's period end `ago` seconds into the past. */
async function periodEnds(userId: string, ago = 1) {
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '31 days', period_end = now() - make_interval(secs => $2) WHERE user_id = $1 AND status <> 'canceled'", [userId, ago]);
}
const rowOf = async (id: string) =>
  (await rig.client.pool.query<{ period_end: Date; cycle_failures: number; cycle_retry_at: Date | null }>("SELECT period_end, cycle_failures, cycle_retry_at FROM bil_subscriptions WHERE subscription_id = $1", [id])).rows[0];

describe("one subscription whose renewal throws does not stop the others", () => {
  it("the other due subscription renews and is charged in the same cycle, and on later cycles; the failing one is logged and set aside", async () => {
    const [bad, good] = [randomUUID(), randomUUID()];
    const { subscription_id: badId } = await rig.billing.subscribe(bad, METERED, "pm_card_visa");
    const { subscription_id: goodId } = await rig.billing.subscribe(good, BASIC, "pm_card_visa");
    expect([chargesOf(bad), chargesOf(good)]).toEqual([1, 1]);
    // 10^8 units over the period: 10^8 blocks of 99,999,999 cents, about 10^16 minor units (> 2^53).
    rig.use(bad, 100_000_000, new Date(Date.now() - 86_400_000));
    await periodEnds(bad, 120); // picked first (ORDER BY period_end)
    await periodEnds(good, 1);
    const warned = rig.warnings.length;

    const first = await rig.billing.runCycle();
    expect(first.renewed).toBe(1);
    expect(chargesOf(good)).toBe(2);
    expect((await invoicesOf(rig.client, good)).map((i) => i.status)).toEqual(["paid", "paid"]);
    // The failing one: nothing of its renewal stayed (no invoice, the period as it was), it is set aside and logged by id.
    expect(chargesOf(bad)).toBe(1);
    expect(await invoicesOf(rig.client, bad)).toHaveLength(1);
    const setAside = await rowOf(badId);
    expect(setAside.period_end.getTime()).toBeLessThan(Date.now());
    expect(setAside.cycle_failures).toBe(1);
    expect(setAside.cycle_retry_at!.getTime()).toBeGreaterThan(Date.now());
    expect(JSON.stringify(rig.warnings.slice(warned))).toContain(badId);

    // A later cycle, one place only (limit 1): the failing one, due longest, does not take it.
    await periodEnds(good, 1);
    expect((await rig.billing.runCycle(1)).renewed).toBe(1);
    expect(chargesOf(good)).toBe(3);
    expect((await rowOf(goodId)).period_end.getTime()).toBeGreaterThan(Date.now());

    // Its backoff over, it is tried again, fails again, and waits twice as long.
    await rig.client.pool.query("UPDATE bil_subscriptions SET cycle_retry_at = now() - interval '1 second' WHERE subscription_id = $1", [badId]);
    expect((await rig.billing.runCycle()).renewed).toBe(0);
    const again = await rowOf(badId);
    expect(again.cycle_failures).toBe(2);
    expect(again.cycle_retry_at!.getTime() - Date.now()).toBeGreaterThan(90_000);
  });
});

describe("an invoice too large to send, built by a user's own request", () => {
  it("is a 409 INVOICE_TOO_LARGE, not a 500, and changes nothing", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, METERED, "pm_card_visa");
    // A plan change invoices the usage so far under the old plan: 10^8 blocks of 99,999,999 cents.
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '10 days' WHERE subscription_id = $1", [id]);
    rig.use(userId, 100_000_000, new Date(Date.now() - 86_400_000));
    const refused = await rig.billing.changePlan(userId, id, BASIC).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HttpError);
    expect(refused).toMatchObject({ statusCode: 409, code: "INVOICE_TOO_LARGE" });
    expect((await rig.repo.subscription(id))!.plan_id).toBe(METERED);
    expect(await invoicesOf(rig.client, userId)).toHaveLength(1);
  });
});

describe("one deleted account whose ending throws does not keep the others from ending", () => {
  it("the other deleted account's subscription ends in the same cycle; the failing one is set aside", async () => {
    const [bad, good] = [randomUUID(), randomUUID()];
    const { subscription_id: badId } = await rig.billing.subscribe(bad, BASIC, "pm_card_visa");
    const { subscription_id: goodId } = await rig.billing.subscribe(good, BASIC, "pm_card_visa");
    // An open invoice beyond 2^53 minor units (stored before the bound): voiding it emits its amount, which throws.
    await rig.client.pool.query(
      "INSERT INTO bil_invoices (invoice_id, subscription_id, user_id, currency, status, subtotal, credit_applied, amount_due, created_at) VALUES ($1,$2,$3,'usd','open',$4,0,$4, now() - interval '1 day')",
      [randomUUID(), badId, bad, (2n ** 53n + 1n).toString()],
    );
    await rig.client.pool.query("DELETE FROM users WHERE id = ANY($1::uuid[])", [[bad, good]]);
    const warned = rig.warnings.length;
    await rig.billing.runCycle();
    expect((await rig.repo.subscription(goodId))!.status).toBe("canceled");
    expect((await rig.repo.subscription(badId))!.status).toBe("active");
    expect((await rowOf(badId)).cycle_failures).toBe(1);
    expect(JSON.stringify(rig.warnings.slice(warned))).toContain(badId);
  });
});

describe("an outage is not one bad row", () => {
  it("a transient datastore error, or usage-monitoring not answering, ends the cycle (retried later) and sets nothing aside", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, METERED, "pm_card_visa");
    await periodEnds(userId, 1);
    for (const outage of [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }), new HttpError(502, "USAGE_UNAVAILABLE", "usage-monitoring answered 503")]) {
      const usage = { units: async (u: string) => (u === userId ? Promise.reject(outage) : 0n) };
      const payments = { charge: () => Promise.reject(new Error("no charge expected")), isSaved: async () => true, refund: async () => ({ refundId: null, status: "succeeded" as const }) };
      const log = { info() {}, debug() {}, warn() {}, error() {} };
      const down = new Billing(rig.repo, payments, usage, log as never, { retryAfterDays: [1] }, () => undefined);
      await expect(down.runCycle()).rejects.toBe(outage);
      expect(await rowOf(id)).toMatchObject({ cycle_failures: 0, cycle_retry_at: null });
    }
    expect((await rig.billing.runCycle()).renewed).toBeGreaterThanOrEqual(1);
    expect((await rowOf(id)).period_end.getTime()).toBeGreaterThan(Date.now());
  });
});

describe("a plan the card processor cannot charge is refused", () => {
  const ADMIN = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
  const app = () => {
    const a = createApp({ log: createLogger("billing-plan-bounds-test", "silent"), bodyLimit: 1 << 20, trustProxy: undefined, jsonMaxDepth: 64, receiveTimeoutMs: 10_000 });
    registerRoutes(a, { billing: rig.billing, repo: rig.repo });
    return a;
  };
  const body = (id: string, currency: string, amount: number, usage?: object) => ({ id: `${id}-${run}`, name: id, currency, amount, interval: "month", ...(usage ? { usage } : {}) });

  it("an amount above the processor's largest charge (99,999,999 in the smallest unit, yen included) is a 400 naming the field; at it, 201", async () => {
    const a = app();
    for (const [id, currency] of [["big-usd", "usd"], ["big-jpy", "jpy"]]) {
      const r = await a.inject({ method: "POST", url: "/plans", headers: ADMIN, payload: body(id, currency, 100_000_000) });
      expect(r.statusCode).toBe(400);
      expect(r.json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "amount" });
    }
    const blocks = await a.inject({ method: "POST", url: "/plans", headers: ADMIN, payload: body("big-block", "usd", 1000, { metric: "api_requests", included: 0, blockSize: 1, blockAmount: 100_000_000 }) });
    expect(blocks.statusCode).toBe(400);
    expect(blocks.json().error).toMatchObject({ field: "usage.blockAmount" });
    expect((await a.inject({ method: "POST", url: "/plans", headers: ADMIN, payload: body("max-usd", "usd", 99_999_999) })).statusCode).toBe(201);
    expect(await rig.repo.plan(`big-usd-${run}`)).toBeUndefined();
    await a.close();
  });
});
