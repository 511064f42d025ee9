/**
 * payment-service applies a processor webhook once, against real PostgreSQL and Kafka and the local
 * card processor (tests/fakes/card-processor.ts): the event id (pay_webhook_events) is recorded in the
 * transaction that applies its change. Before, the id was committed first and forgotten when the apply
 * threw: a crash in between left it recorded with its change never made, and every retry of the
 * processor was answered `duplicate`.
 * - the apply fails (a constraint refuses its outbox row): 500, nothing recorded; the same webhook
 *   again is applied, once (one journal, one payment.succeeded), and then a duplicate;
 * - while the apply waits (its payment's row held by another transaction), the id is not committed: a
 *   crash there leaves nothing recorded. The waiting statement is cancelled (pg_cancel_backend; a
 *   terminated backend of a checked-out connection is an uncaught 'error' event of node-postgres' client,
 *   which ends the process: a crash, but of the test runner here): the webhook again is applied, once.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor, type WebhookDelivery } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { webhooks: true, poolMax: 4 });

const q = async (sql: string, args: unknown[] = []) => (await rig.pool.query(sql, args)).rows;

/** A payment processing at the processor, its `payment_intent.succeeded` queued (undelivered): the intent and the webhook. */
async function processing(): Promise<{ intentId: string; webhook: WebhookDelivery }> {
  const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  const card = await rig.saveCard(trader);
  fake.mode = "async";
  let intentId: string;
  try {
    const r = await http("POST", `${rig.base}/intents`, { body: { amount: 2_500, currency: "usd", paymentMethod: card }, headers: { ...trader, "idempotency-key": `k-${randomUUID()}` } });
    expect([r.status, r.body.status]).toEqual([201, "processing"]);
    intentId = r.body.id;
  } finally {
    fake.mode = "sync";
  }
  const pi = [...fake.intents.values()].find((i) => i.metadata.intent_id === intentId)!;
  // (as settle() does it, without delivering: the test delivers)
  pi.status = "succeeded";
  pi.amount_received = pi.amount;
  const event = { id: `evt_${randomUUID().replaceAll("-", "")}`, type: "payment_intent.succeeded", created: Math.floor(Date.now() / 1000), data: { object: { ...pi } } };
  return { intentId, webhook: { event, delivered: false, attempts: 0 } };
}

/** What the payment's webhook left: its status, the event id recorded, journals and payments.events rows. */
async function state(intentId: string, eventId: string) {
  return {
    status: (await q("SELECT status FROM pay_intents WHERE intent_id = $1", [intentId]))[0].status as string,
    recorded: (await q("SELECT 1 FROM pay_webhook_events WHERE event_id = $1", [eventId])).length,
    journals: (await q("SELECT 1 FROM pay_journals WHERE journal_id = $1", [`payment:${intentId}`])).length,
    events: (await q("SELECT payload->>'type' AS type FROM pay_outbox WHERE payload->>'intentId' = $1", [intentId])).map((r) => r.type as string),
  };
}

describe("a webhook's event id is recorded with its change", () => {
  it("an apply that fails records nothing: the same webhook again is applied once, then a duplicate", async () => {
    const { intentId, webhook } = await processing();
    // A constraint refuses this payment's outbox row: the apply fails after the intent's update.
    const fn = `refuse_${randomUUID().replaceAll("-", "")}`;
    await q(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               IF NEW.payload->>'intentId' = '${intentId}' THEN RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'check_violation'; END IF;
               RETURN NEW; END $$`);
    await q(`CREATE TRIGGER ${fn} BEFORE INSERT ON pay_outbox FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
    try {
      expect(await fake.deliver(webhook)).toBeUndefined();
      expect(webhook.lastStatus).toBeGreaterThanOrEqual(500);
      expect(await state(intentId, webhook.event.id)).toEqual({ status: "processing", recorded: 0, journals: 0, events: [] });
    } finally {
      await q(`DROP TRIGGER ${fn} ON pay_outbox`);
      await q(`DROP FUNCTION ${fn}()`);
    }
    // The processor's retry: applied, once.
    expect(await fake.deliver(webhook)).toBe("applied");
    expect(await state(intentId, webhook.event.id)).toEqual({ status: "succeeded", recorded: 1, journals: 1, events: ["payment.succeeded"] });
    expect(await fake.deliver(webhook)).toBe("duplicate");
    expect(await state(intentId, webhook.event.id)).toEqual({ status: "succeeded", recorded: 1, journals: 1, events: ["payment.succeeded"] });
    await rig.expectLedgerBalanced();
  });

  it("while the apply waits its id is not committed; its statement cancelled there loses nothing: the webhook again is applied once", async () => {
    const { intentId, webhook } = await processing();
    // Another transaction holds the payment's row: the webhook's apply waits for it.
    const holder = await rig.pool.connect();
    let delivery: Promise<string | undefined> | undefined;
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM pay_intents WHERE intent_id = $1 FOR UPDATE", [intentId]);
      const holderPid = (await holder.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
      delivery = fake.deliver(webhook);
      const waiting = await waitUntil("the webhook's apply waits for the payment's row", async () => (await q("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [holderPid]))[0]?.pid as number | undefined, 60_000);
      // Its event id is in the waiting transaction only: not committed before its change.
      expect(await state(intentId, webhook.event.id)).toEqual({ status: "processing", recorded: 0, journals: 0, events: [] });
      // The apply ends there: its statement cancelled, its transaction rolled back.
      await q("SELECT pg_cancel_backend($1)", [waiting]);
      expect(await delivery).toBeUndefined();
      expect(webhook.lastStatus).toBeGreaterThanOrEqual(500);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
      await delivery?.catch(() => undefined);
    }
    expect(await state(intentId, webhook.event.id)).toEqual({ status: "processing", recorded: 0, journals: 0, events: [] });
    expect(await fake.deliver(webhook)).toBe("applied");
    expect(await state(intentId, webhook.event.id)).toEqual({ status: "succeeded", recorded: 1, journals: 1, events: ["payment.succeeded"] });
    expect(await fake.deliver(webhook)).toBe("duplicate");
    await rig.expectLedgerBalanced();
  });
});
