/**
 * payment-service's charge locks (services/src/services/payment-service/charge-locks.ts) on real
 * PostgreSQL and Kafka with the local card processor, the service started whole. A charge holds its
 * account's lock through the processor call on a connection of a pool of its own
 * (PAYMENT_CHARGE_LOCK_CONNECTIONS). Before, it held one of the service's POSTGRES_POOL_MAX: with the
 * processor stalled and that many charges in flight, every other query of the service (a read, a
 * webhook) waited for a connection and answered 503 once POSTGRES_CONNECT_TIMEOUT_MS was over. Here
 * the service's pool has 2 connections and 2 charges (of two accounts) stall at the processor: reads
 * and webhooks still answer, and a third account's charge is refused 503 CHARGE_LOCKS_BUSY
 * (Retry-After), nothing recorded or sent, its key good for a retry; the first account's second charge
 * is 429 CHARGES_IN_PROGRESS (its share, half the connections, is held by its first: session 56).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { intentsWithKey, traderHeaders, usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, {
  env: {
    // The service's own pool: as many connections as charges will stall at the processor.
    POSTGRES_POOL_MAX: "2",
    POSTGRES_CONNECT_TIMEOUT_MS: "3000",
    PAYMENT_CHARGE_LOCK_CONNECTIONS: "2",
    PAYMENT_CHARGE_LOCK_WAIT_MS: "300",
  },
});
// Three accounts: one account's charges hold at most half of the connections (account-shares.ts), so
// filling both takes two accounts' charges.
const traders = [randomUUID(), randomUUID(), randomUUID()].map(traderHeaders);
const visas: string[] = [];

const charge = (key: string, who = 0) => http("POST", `${rig.base}/intents`, { body: { amount: 1500, currency: "usd", paymentMethod: visas[who] }, headers: { ...traders[who], "idempotency-key": key } });

beforeAll(async () => {
  for (const t of traders) visas.push(await rig.saveCard(t));
});

afterAll(() => {
  fake.beforeAnswer = undefined;
});

describe("charges at a stalled processor", () => {
  it("hold the charge-lock pool, not the service's: a read and a webhook answer; a third charge is 503 CHARGE_LOCKS_BUSY with nothing recorded or sent, and goes through once a lock frees; a duplicate of a key under way waits for its outcome", async () => {
    let stalled = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    fake.beforeAnswer = async () => {
      stalled++;
      await released;
    };
    const webhooksBefore = fake.webhooks.length;
    const [k1, k2, k3] = [randomUUID(), randomUUID(), randomUUID()];
    const inFlight = [charge(k1, 0), charge(k2, 1)];
    try {
      await waitUntil("both charges at the processor", async () => stalled === 2, 30_000, 20);
      // Both charges hold their account lock at the processor: the service's pool is free for the rest.
      for (const who of [0, 1]) {
        const read = await http("GET", `${rig.base}/intents`, { headers: traders[who] });
        expect(read.status, JSON.stringify(read.body)).toBe(200);
        expect((read.body.intents as { status: string }[]).map((i) => i.status)).toEqual(["created"]);
      }
      // The processor's webhooks of the stalled charges (it made them before its answer stalled) are applied meanwhile.
      const hooks = fake.webhooks.slice(webhooksBefore);
      expect(hooks.map((w) => w.event.type)).toEqual(["payment_intent.succeeded", "payment_intent.succeeded"]);
      expect(await fake.deliverAll(hooks)).toEqual(["applied", "applied"]);

      const created = fake.created;
      const busy = await charge(k3, 2);
      expect([busy.status, busy.body.error?.code, busy.headers.get("retry-after")]).toEqual([503, "CHARGE_LOCKS_BUSY", "20"]);
      expect([fake.created, await intentsWithKey(rig, k3)], "nothing sent, nothing recorded").toEqual([created, 0]);
      // The first account's second charge: its share (one of two) is held by its first, which did not end within the wait.
      const k4 = randomUUID();
      const own = await charge(k4, 0);
      expect([own.status, own.body.error?.code, own.headers.get("retry-after")]).toEqual([429, "CHARGES_IN_PROGRESS", "20"]);
      expect([fake.created, await intentsWithKey(rig, k4)], "nothing sent, nothing recorded").toEqual([created, 0]);
      // A duplicate of a key under way (its intent inserted) takes no lock connection: it waits for that charge's outcome.
      inFlight.push(charge(k1));
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      release();
    }
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => [a.status, a.body.status])).toEqual([
      [201, "succeeded"],
      [201, "succeeded"],
      [200, "succeeded"],
    ]);
    fake.beforeAnswer = undefined;
    // The refused key was never taken: the retry is a first charge.
    const retried = await charge(k3, 2);
    expect([retried.status, retried.body.status]).toEqual([201, "succeeded"]);
    expect(await intentsWithKey(rig, k3)).toBe(1);
  });
});
