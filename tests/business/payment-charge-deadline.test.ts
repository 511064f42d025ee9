/**
 * A card charge's processor call bounded by one deadline (session 53, PAYMENT_CHARGE_DEADLINE_MS):
 * the SDK retried a stalled create up to 3 x PAYMENT_PROCESSOR_TIMEOUT_MS with sleeps between (70 s
 * at the defaults), past the gateway's PROXY_TIMEOUT_MS (30 s), so the client got a 504 for a charge
 * the processor made. Now every attempt is cut at the deadline and none starts after it, the SDK's
 * retries inside it; the charge answers then with its outcome unknown (201, the intent `created`),
 * and the processor's late record of it is booked by reconciliation as for any unknown outcome.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts, stalling every create.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

/** One attempt's bound, and the deadline of the whole call: one attempt and a retry's sleep fit, a third attempt never. */
const ATTEMPT_MS = 4_000;
const DEADLINE_MS = 5_000;
/** Without the deadline: 3 attempts of ATTEMPT_MS, and the SDK's sleeps between them (0.5-1 s at these counts). */
const SDK_WORST_CASE_MS = 3 * ATTEMPT_MS + 2 * 1_000;

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_PROCESSOR_TIMEOUT_MS: String(ATTEMPT_MS), PAYMENT_CHARGE_DEADLINE_MS: String(DEADLINE_MS), PAYMENT_RECONCILE_GRACE_MS: "0" }, poolMax: 4 });
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a charge at a processor that stalls", () => {
  it("answers at its deadline with the outcome unknown (201, created), sends no attempt after it, and is booked once the processor's record appears", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await rig.saveCard(user);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const before = fake.createsReceived;
    fake.beforeCreate = () => held;
    try {
      const started = Date.now();
      const r = await http("POST", `${rig.base}/intents`, { body: { amount: 6_100, currency: "usd", paymentMethod: card }, headers: { ...user, "idempotency-key": `k-${randomUUID()}` } });
      const answeredAfterMs = Date.now() - started;
      // The state machine's unknown outcome: our row committed, the processor's answer not had.
      expect([r.status, r.body.status], JSON.stringify(r.body)).toEqual([201, "created"]);
      const intentId = r.body.id as string;
      expect((await rig.pool.query("SELECT status, failure_code, processor_intent_id FROM pay_intents WHERE intent_id = $1", [intentId])).rows[0]).toEqual({ status: "created", failure_code: null, processor_intent_id: null });
      // Not a timing bound on this machine: before, the call could not end before its 3 attempts had.
      expect(answeredAfterMs).toBeLessThan(3 * ATTEMPT_MS);
      // Past where the SDK's own schedule would have sent its third attempt: it was never sent.
      await sleep(Math.max(0, SDK_WORST_CASE_MS + 1_000 - (Date.now() - started)));
      const attempts = fake.createsReceived - before;
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(2);

      // The processor finishes what it received (as Stripe may, after our client gave up): booked once,
      // by its webhook or by reconciliation, whichever comes first.
      release();
      await waitUntil("the late charge booked", async () => {
        await http("POST", `${rig.base}/reconcile`, { headers: admin });
        const { rows } = await rig.pool.query("SELECT status FROM pay_intents WHERE intent_id = $1", [intentId]);
        return rows[0].status === "succeeded";
      }, 30_000, 200);
      expect(Number((await rig.pool.query("SELECT count(*) AS n FROM pay_journals WHERE journal_id = $1", [`payment:${intentId}`])).rows[0].n)).toBe(1);
      await rig.expectLedgerBalanced();
    } finally {
      fake.beforeCreate = undefined;
      release();
    }
  }, 120_000);

  it("answers a processor that answers within the deadline as before (201, succeeded)", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await rig.saveCard(user);
    const paid = await rig.payment(user, card, 6_200);
    expect(paid.processorIntentId).toMatch(/^pi_/);
  });
});
