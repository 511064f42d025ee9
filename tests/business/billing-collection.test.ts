/**
 * How billing collects an invoice, on a real PostgreSQL with stand-ins for payment-service
 * (tests/helpers/billing-rig.ts):
 *   - a charge payment-service refuses (a 4xx: IDEMPOTENCY_KEY_REUSED, a validation error) is a
 *     failed attempt, so dunning moves on to the next attempt and, at the end, to uncollectible.
 *     Before, billing logged it and sent the same request at every cycle: a user who had taken the
 *     key of the next attempt (`invoice-<id>-2`, read off their invoices) kept the invoice open, the
 *     subscription past_due (counted as paying), for ever.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import { billingRig, type BillingRig, invoicesOf, plan, subscriptionOf } from "../helpers/billing-rig";
import { refusesCharge } from "../../services/src/services/billing-service/domain/invoices";

const srv = useServers("postgres");
const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const DAY_MS = 86_400_000;
const log = { info() {}, warn() {}, error() {}, debug() {} };
let client: PostgresClient;
let rig: BillingRig;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as never, 4);
  rig = billingRig(client);
  await rig.repo.createPlan(plan(BASIC, 1000));
}, 300_000);

afterAll(async () => {
  await client?.close();
});

/** Makes the invoice's next attempt due and runs the cycle. */
async function retryDue(invoiceId: string) {
  await client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE invoice_id = $1", [invoiceId]);
  await rig.billing.runCycle();
}

describe("a charge payment-service refuses", () => {
  it("is a failed attempt: dunning schedules the next one with its own key, then gives up", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    let [inv] = await invoicesOf(client, userId);
    expect(inv).toMatchObject({ status: "open", attempts: 1 });
    // From now on payment-service refuses the request (e.g. the user holds attempt 2's key).
    rig.answer.set(userId, "refuse");
    for (const [attempt, daysToNext] of [[2, 3], [3, 5]] as const) {
      const t0 = Date.now();
      await retryDue(inv.invoice_id);
      [inv] = await invoicesOf(client, userId);
      expect(inv).toMatchObject({ status: "open", attempts: attempt });
      expect(inv.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(t0 + daysToNext * DAY_MS - 1000);
      expect((await subscriptionOf(client, userId)).status).toBe("past_due");
    }
    await retryDue(inv.invoice_id);
    [inv] = await invoicesOf(client, userId);
    expect(inv).toMatchObject({ status: "uncollectible", attempts: 4, next_attempt_at: null });
    expect((await subscriptionOf(client, userId)).status).toBe("unpaid");
    // One request per attempt, each with the attempt's key.
    expect(rig.charges.filter((c) => c.userId === userId).map((c) => c.idempotencyKey)).toEqual([1, 2, 3, 4].map((n) => `invoice-${inv.invoice_id}-${n}`));
    const events = (await client.pool.query("SELECT payload->>'type' AS type, payload->>'attempts' AS attempts FROM bil_outbox WHERE payload->>'invoiceId' = $1 ORDER BY id", [inv.invoice_id])).rows;
    expect(events.map((e) => `${e.type}:${e.attempts ?? ""}`)).toEqual(["invoice.created:", "invoice.payment_failed:1", "invoice.payment_failed:2", "invoice.payment_failed:3", "invoice.uncollectible:4"]);
  });

  it("a refusal is a 4xx about the request; in progress, throttled, unconfigured and 5xx are retried as they are", () => {
    expect(refusesCharge(409, "IDEMPOTENCY_KEY_REUSED")).toBe(true);
    expect(refusesCharge(400, "VALIDATION_ERROR")).toBe(true);
    expect(refusesCharge(409, "IDEMPOTENCY_KEY_IN_USE")).toBe(false);
    expect(refusesCharge(429, "RATE_LIMITED")).toBe(false);
    expect(refusesCharge(404, "PROCESSOR_NOT_CONFIGURED")).toBe(false);
    expect(refusesCharge(502, "UPSTREAM_UNAVAILABLE")).toBe(false);
    expect(refusesCharge(201, undefined)).toBe(false);
  });
});
