/**
 * Plan changes, cancellation and metered usage in billing-service, on a real PostgreSQL with
 * stand-ins for payment-service and usage-monitoring (tests/helpers/billing-rig.ts):
 *   - the plan does not change while an invoice of the subscription is open (409 INVOICE_OPEN):
 *     before, downgrading from an unpaid period credited its unused time, money never received,
 *     and an upgrade back was "paid" from that credit.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { HttpError } from "../../services/src/kit";
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import { billingRig, type BillingRig, invoicesOf, plan, subscriptionOf } from "../helpers/billing-rig";

const srv = useServers("postgres");
const run = randomBytes(3).toString("hex");
const CHEAP = `cheap-${run}`;
const PRICEY = `pricey-${run}`;
const log = { info() {}, warn() {}, error() {}, debug() {} };
let client: PostgresClient;
let rig: BillingRig;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as never, 4);
  rig = billingRig(client);
  await rig.repo.createPlan(plan(CHEAP, 1000));
  await rig.repo.createPlan(plan(PRICEY, 100000));
}, 300_000);

afterAll(async () => {
  await client?.close();
});

/** The error a use case threw, as the route would answer it. */
async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string; field?: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof HttpError)) throw new Error(`expected an HttpError, got ${String(err)}`);
  return { status: err.statusCode, code: err.code, field: err.field };
}

/** Makes the invoice's next attempt due and runs the cycle. */
async function retryDue(invoiceId: string) {
  await client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE invoice_id = $1", [invoiceId]);
  await rig.billing.runCycle();
}

describe("a plan change while an invoice is open", () => {
  it("is refused: no credit for a period never paid; once the invoice is paid the change goes through", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, PRICEY, "pm_card_chargeDeclined");
    expect((await subscriptionOf(client, userId)).status).toBe("past_due");
    expect(await refusal(rig.billing.changePlan(userId, id, CHEAP))).toEqual({ status: 409, code: "INVOICE_OPEN", field: "planId" });
    expect(await subscriptionOf(client, userId)).toMatchObject({ plan_id: PRICEY, credit_balance: "0" });
    expect((await invoicesOf(client, userId)).length).toBe(1);

    rig.answer.set(userId, "pay");
    await retryDue((await invoicesOf(client, userId))[0].invoice_id);
    expect((await subscriptionOf(client, userId)).status).toBe("active");
    const down = await rig.billing.changePlan(userId, id, CHEAP);
    expect(BigInt(down.credit_balance)).toBeGreaterThan(98000n); // ~99000: the unused time of a paid period
  });

  it("an upgrade whose proration is not paid yet cannot be undone into credit", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, CHEAP, "pm_card_visa");
    expect((await subscriptionOf(client, userId)).status).toBe("active");
    await client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '15 days', period_end = now() + interval '15 days' WHERE subscription_id = $1", [id]);
    rig.answer.set(userId, "decline");
    await rig.billing.changePlan(userId, id, PRICEY);
    const [, upgrade] = await invoicesOf(client, userId);
    expect(upgrade).toMatchObject({ status: "open", attempts: 1 });
    expect(await refusal(rig.billing.changePlan(userId, id, CHEAP))).toMatchObject({ status: 409, code: "INVOICE_OPEN" });
    expect((await subscriptionOf(client, userId)).credit_balance).toBe("0");
  });
});
