/**
 * Plan changes, cancellation and metered usage in billing-service, on a real PostgreSQL with
 * stand-ins for payment-service and usage-monitoring (tests/helpers/billing-rig.ts):
 *   - the plan does not change while an invoice of the subscription is open (409 INVOICE_OPEN):
 *     before, downgrading from an unpaid period credited its unused time, money never received,
 *     and an upgrade back was "paid" from that credit;
 *   - usage is priced by the plan in force when it happened: a plan change invoices the usage so far
 *     under the old plan (before, the renewal priced the whole period by the plan of its end, and a
 *     switch to a plan with a large allowance just before renewal made the usage free);
 *   - cancelling, at period end or now, invoices the period's usage (billed in arrears) on a final
 *     invoice, with the usage of the invoices a cancellation voids (before, it was never invoiced).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HttpError } from "../../services/src/kit";
import { invoicesOf, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const CHEAP = `cheap-${run}`;
const PRICEY = `pricey-${run}`;
/** 5 requests included, then 1.00 per started block of 5: 60 requests cost 11 blocks. */
const METERED = `metered-${run}`;
const BULK = `bulk-${run}`;
/** Made, then no longer offered (bil_plans.active false: hidden from GET /plans). */
const RETIRED = `retired-${run}`;
const SIXTY_REQUESTS = 1100;

const rig = useBillingRig([
  plan(CHEAP, 1000),
  plan(PRICEY, 100000),
  plan(METERED, 1000, { included: 5, blockSize: 5, blockAmount: 100 }),
  plan(BULK, 3000, { included: 1_000_000, blockSize: 1, blockAmount: 1 }),
  plan(RETIRED, 1),
]);

/** The error a use case threw, as the route would answer it. */
async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string; field?: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof HttpError)) throw new Error(`expected an HttpError, got ${String(err)}`);
  return { status: err.statusCode, code: err.code, field: err.field };
}

/** A paid subscription to METERED whose period is about to end, with 60 requests in it. */
async function meteredWithSixtyRequests(secondsLeft: number) {
  const userId = randomUUID();
  const { subscription_id: id } = await rig.billing.subscribe(userId, METERED, "pm_card_visa");
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '30 days' + make_interval(secs => $2), period_end = now() + make_interval(secs => $2) WHERE subscription_id = $1", [id, secondsLeft]);
  rig.use(userId, 60, new Date(Date.now() - 1000));
  return { userId, id };
}

/** Ends the subscription's period now (after what the test did in it) and runs the cycle. */
async function periodEnds(id: string) {
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_end = now() WHERE subscription_id = $1", [id]);
  await rig.billing.runCycle();
}

const linesOf = async (userId: string) => (await invoicesOf(rig.client, userId)).map((i) => [i.status, i.lines]);

/** Makes the invoice's next attempt due and runs the cycle. */
async function retryDue(invoiceId: string) {
  await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE invoice_id = $1", [invoiceId]);
  await rig.billing.runCycle();
}

describe("a plan change while an invoice is open", () => {
  it("is refused: no credit for a period never paid; once the invoice is paid the change goes through", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, PRICEY, "pm_card_chargeDeclined");
    expect((await subscriptionOf(rig.client, userId)).status).toBe("past_due");
    expect(await refusal(rig.billing.changePlan(userId, id, CHEAP))).toEqual({ status: 409, code: "INVOICE_OPEN", field: "planId" });
    expect(await subscriptionOf(rig.client, userId)).toMatchObject({ plan_id: PRICEY, credit_balance: "0" });
    expect((await invoicesOf(rig.client, userId)).length).toBe(1);

    rig.answer.set(userId, "pay");
    await retryDue((await invoicesOf(rig.client, userId))[0].invoice_id);
    expect((await subscriptionOf(rig.client, userId)).status).toBe("active");
    const down = await rig.billing.changePlan(userId, id, CHEAP);
    expect(BigInt(down.credit_balance)).toBeGreaterThan(98000n); // ~99000: the unused time of a paid period
  });

  it("an upgrade whose proration is not paid yet cannot be undone into credit", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    expect((await subscriptionOf(rig.client, userId)).status).toBe("active");
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '15 days', period_end = now() + interval '15 days' WHERE subscription_id = $1", [id]);
    rig.answer.set(userId, "decline");
    await rig.billing.changePlan(userId, id, PRICEY);
    const [, upgrade] = await invoicesOf(rig.client, userId);
    expect(upgrade).toMatchObject({ status: "open", attempts: 1 });
    expect(await refusal(rig.billing.changePlan(userId, id, CHEAP))).toMatchObject({ status: 409, code: "INVOICE_OPEN" });
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("0");
  });
});

describe("usage around a plan change", () => {
  it("is priced by the plan in force when it happened: switching just before renewal saves nothing", async () => {
    const control = await meteredWithSixtyRequests(20);
    const evader = await meteredWithSixtyRequests(20);
    await rig.billing.changePlan(evader.userId, evader.id, BULK);
    await periodEnds(control.id);
    await periodEnds(evader.id);
    const first = ["paid", [["subscription", 1000]]];
    expect(await linesOf(control.userId)).toEqual([first, ["paid", [["subscription", 1000], ["usage", SIXTY_REQUESTS]]]]);
    // The change's invoice has the 60 requests on METERED (its prorations round to 0 with 20 s left);
    // BULK's renewal has none: they were invoiced.
    expect(await linesOf(evader.userId)).toEqual([first, ["paid", [["proration", 0], ["proration", 0], ["usage", SIXTY_REQUESTS]]], ["paid", [["subscription", 3000]]]]);
  });
});

describe("cancelling a metered subscription", () => {
  it("at period end: the renewal that ends it invoices the period's usage", async () => {
    const { userId, id } = await meteredWithSixtyRequests(10);
    await rig.billing.cancel(userId, id, true);
    await periodEnds(id);
    expect((await subscriptionOf(rig.client, userId)).status).toBe("canceled");
    expect(await linesOf(userId)).toEqual([["paid", [["subscription", 1000]]], ["paid", [["usage", SIXTY_REQUESTS]]]]);
  });

  it("now: a final invoice of the usage so far, the period's whole allowance counted (its price is not refunded)", async () => {
    const { userId, id } = await meteredWithSixtyRequests(3600);
    const canceled = await rig.billing.cancel(userId, id, false);
    expect(canceled.status).toBe("canceled");
    expect(await linesOf(userId)).toEqual([["paid", [["subscription", 1000]]], ["paid", [["usage", SIXTY_REQUESTS]]]]);
  });

  it("now, with a renewal open: it is voided, and its usage goes on the final invoice with the usage since", async () => {
    const { userId, id } = await meteredWithSixtyRequests(10);
    rig.answer.set(userId, "decline");
    await periodEnds(id);
    rig.use(userId, 12, new Date()); // 7 over the 5 included: 2 blocks
    await new Promise((r) => setTimeout(r, 20)); // the cancellation comes after them ([start, end) windows)
    await rig.billing.cancel(userId, id, false);
    expect(await linesOf(userId)).toEqual([
      ["paid", [["subscription", 1000]]],
      ["void", [["subscription", 1000], ["usage", SIXTY_REQUESTS]]],
      ["open", [["usage", SIXTY_REQUESTS], ["usage", 200]]],
    ]);
    const [, , final] = await invoicesOf(rig.client, userId);
    expect(final.attempts).toBe(1); // charged (declined: dunning goes on for it)
  });
});

describe("an invoice owing less than the processor charges (0.50 USD)", () => {
  it("is carried to the next invoice, not charged: an upgrade minutes before renewal leaves the subscription active", async () => {
    // Before, the few cents of the upgrade's proration were charged, the processor refused them
    // (amount_too_small) every time, and dunning made the subscription past_due, then unpaid; the
    // open invoice also refused every plan change meanwhile (INVOICE_OPEN).
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '30 days' + interval '10 minutes', period_end = now() + interval '10 minutes' WHERE subscription_id = $1", [id]);
    const charges = () => rig.charges.filter((c) => c.userId === userId).length;
    const before = charges();
    await rig.billing.changePlan(userId, id, PRICEY); // 100000 - 1000 for 10 minutes of 30 days: 23 cents
    const [, change] = await invoicesOf(rig.client, userId);
    expect(change).toMatchObject({ status: "carried", amountDue: 23, attempts: 0, next_attempt_at: null });
    expect(charges()).toBe(before);
    expect(await subscriptionOf(rig.client, userId)).toMatchObject({ status: "active", plan_id: PRICEY });
    await rig.billing.runCycle(); // not charged by the cycle either
    expect(charges()).toBe(before);
    await periodEnds(id);
    const renewal = (await invoicesOf(rig.client, userId)).at(-1)!;
    expect(renewal).toMatchObject({ status: "paid", amountDue: 100023, lines: [["subscription", 100000], ["carried", 23]] });
    expect(await subscriptionOf(rig.client, userId)).toMatchObject({ status: "active" });
    expect((await rig.client.pool.query("SELECT carried FROM bil_subscriptions WHERE subscription_id = $1", [id])).rows[0].carried).toBe("0");
  });

  it("what a voided renewal carried goes on the final invoice when the user cancels now", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '30 days' + interval '10 minutes', period_end = now() + interval '10 minutes' WHERE subscription_id = $1", [id]);
    await rig.billing.changePlan(userId, id, PRICEY);
    rig.answer.set(userId, "decline");
    await periodEnds(id);
    await rig.billing.cancel(userId, id, false);
    expect(await linesOf(userId)).toEqual([
      ["paid", [["subscription", 1000]]],
      ["carried", [["proration", 0], ["proration", 23]]],
      ["void", [["subscription", 100000], ["carried", 23]]],
      ["carried", [["carried", 23]]],
    ]);
    // The final invoice was carried in turn, and its subscription has no next invoice: the user's next
    // subscription in that currency has it on its first (session 43; before, it was dropped).
    rig.answer.delete(userId);
    await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    expect((await linesOf(userId)).at(-1)).toEqual(["paid", [["subscription", 1000], ["carried", 23]]]);
  });

  it("what a subscription carried when it ends with nothing else to invoice goes on the user's next subscription (session 43)", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '30 days' + interval '10 minutes', period_end = now() + interval '10 minutes' WHERE subscription_id = $1", [id]);
    await rig.billing.changePlan(userId, id, PRICEY); // 23 cents carried
    await rig.billing.cancel(userId, id, false); // no usage: no final invoice
    expect(await linesOf(userId)).toEqual([
      ["paid", [["subscription", 1000]]],
      ["carried", [["proration", 0], ["proration", 23]]],
    ]);
    // Before: the new subscription's first invoice was 1000 and the 23 cents were owed on nothing.
    const { subscription_id: again } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    expect((await linesOf(userId)).at(-1)).toEqual(["paid", [["subscription", 1000], ["carried", 23]]]);
    const carried = async (sub: string) => (await rig.client.pool.query("SELECT carried FROM bil_subscriptions WHERE subscription_id = $1", [sub])).rows[0].carried;
    expect([await carried(id), await carried(again)]).toEqual(["0", "0"]);
    // Taken once: the next subscription after this one has nothing carried.
    await rig.billing.cancel(userId, again, false);
    await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    expect((await linesOf(userId)).at(-1)).toEqual(["paid", [["subscription", 1000]]]);
  });
});

describe("a plan no longer offered (session 42)", () => {
  it("takes no new subscription nor plan change by its id; a subscription already on it keeps it and renews", async () => {
    const early = randomUUID();
    const { subscription_id: earlyId } = await rig.billing.subscribe(early, RETIRED, "pm_card_visa");
    await rig.client.pool.query("UPDATE bil_plans SET active = false WHERE plan_id = $1", [RETIRED]);
    expect((await rig.repo.plans()).map((p) => p.id)).not.toContain(RETIRED);
    // Before: a retired (say, mispriced at 0.01 a month) plan stayed open to anyone who knew its id.
    const late = randomUUID();
    expect(await refusal(rig.billing.subscribe(late, RETIRED, "pm_card_visa"))).toEqual({ status: 409, code: "PLAN_NOT_OFFERED", field: "planId" });
    expect(await subscriptionOf(rig.client, late)).toBeUndefined();
    const other = randomUUID();
    const { subscription_id: otherId } = await rig.billing.subscribe(other, CHEAP, "pm_card_visa");
    expect(await refusal(rig.billing.changePlan(other, otherId, RETIRED))).toEqual({ status: 409, code: "PLAN_NOT_OFFERED", field: "planId" });
    expect(await subscriptionOf(rig.client, other)).toMatchObject({ plan_id: CHEAP });
    // The subscription made while it was offered renews on it, and may leave it.
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '31 days', period_end = now() - interval '1 second' WHERE subscription_id = $1", [earlyId]);
    await rig.billing.runCycle();
    expect(await subscriptionOf(rig.client, early)).toMatchObject({ plan_id: RETIRED, status: "active" });
    expect((await rig.billing.changePlan(early, earlyId, CHEAP)).plan_id).toBe(CHEAP);
  });
});
