/**
 * The write window of a deleted account, closed (kit accounts.ts lockAccountForWrite), on real
 * PostgreSQL: each service's write of an account's data (a strategy, a backtest, a card, a payment
 * intent, a processor customer, a webhook, notification preferences) against user-management's deletion, the two
 * interleavings forced by held transactions (tests/helpers/deletion-window.ts):
 *   - the write checked the account and is held before its insert when the deletion runs: the
 *     deletion waits for the write's commit (the write is made, and is then among the data the
 *     deletion finds: a strategy is never due again);
 *   - the deletion ran and is not committed when the write checks: the write waits for it, then
 *     answers account_deleted and stores nothing.
 * Before, each write read the tombstone without a lock: the deletion did not wait (it answered
 * while the write was still to commit), and a write that read before the deletion committed stored
 * its row after it.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { accountWasDeleted, createLogger, lockAccountForWrite, type PostgresClient } from "../../services/src/kit";
import { OrchestratorStore } from "../../services/src/services/ai-orchestrator/store";
import { JobQueue } from "../../services/src/services/backtesting-engine/queue";
import { PaymentMethodData } from "../../services/src/services/payment-service/payment-method-data";
import { PaymentRepo } from "../../services/src/services/payment-service/repo";
import * as notifications from "../../services/src/services/notification-service/data";
import { ensureAccount } from "../helpers/accounts";
import { deletionWindow, tableGate } from "../helpers/deletion-window";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
let db: PostgresClient;
let window: ReturnType<typeof deletionWindow>;

beforeAll(async () => {
  db = await migratedKitPostgres(srv.postgres.url, createLogger("account-deletion-writes", "silent"), 6);
  window = deletionWindow(srv.postgres.url);
}, 300_000);
afterAll(async () => {
  await db?.close();
});

/** A write of the account's data: the table it inserts into, and how many rows of the user it holds. */
interface Write {
  table: string;
  write(userId: string): Promise<unknown>;
  /** What the write answers for a deleted account. */
  refused: unknown;
  stored(userId: string): Promise<number>;
}
const rowsOf = (table: string, owner = "user_id") => async (userId: string) =>
  (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${owner} = $1`, [userId])).rows[0].n;

const WRITES: Record<string, Write> = {
  "ai-orchestrator: a strategy": {
    table: "ai_strategies",
    write: (userId) => new OrchestratorStore(db).createStrategy({ userId, name: "window", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100, minRegimeAgreement: 0, everySeconds: 60, enabled: true }, 10, null).then((o) => o.kind),
    refused: "account_deleted",
    stored: rowsOf("ai_strategies"),
  },
  "backtesting-engine: a backtest": {
    table: "bt_runs",
    write: (userId) => new JobQueue(db, "window", 60_000).enqueue({ id: randomUUID(), ownerId: userId, strategy: "sma-crossover", kind: "run", request: {} as never }, [{ kind: "run", parameters: {}, from: 0, to: 1 } as never], 3, 100).then((o) => o.kind),
    refused: "account_deleted",
    stored: rowsOf("bt_runs", "owner_id"),
  },
  "payment-service: a saved card": {
    table: "pay_payment_methods",
    // The user's processor customer is recorded before the card (payment-methods.ts save).
    write: async (userId) => {
      const methods = new PaymentMethodData(db);
      await methods.saveCustomer(userId, `cus_${userId}`);
      return methods.insert(userId, { id: `pm_${randomUUID()}`, brand: "visa", last4: "4242" }, 5).then((r) => (typeof r === "string" ? r : "saved"));
    },
    refused: "account_deleted",
    stored: rowsOf("pay_payment_methods"),
  },
  "payment-service: the processor customer (a first card's save)": {
    table: "pay_customers",
    write: (userId) => new PaymentMethodData(db).saveCustomer(userId, `cus_${userId}`).then((r) => (r === "account_deleted" ? r : "saved")),
    refused: "account_deleted",
    stored: rowsOf("pay_customers"),
  },
  "payment-service: a payment intent": {
    table: "pay_intents",
    write: (userId) =>
      new PaymentRepo(db)
        .insertIntent({ intentId: randomUUID(), userId, origin: "client", key: randomUUID(), hash: "h", req: { amount: 1000n, currency: "usd", paymentMethod: "pm_card_visa", description: null, reference: null }, processor: "fake" })
        .then((r) => (typeof r === "string" || r === null ? r : "inserted")),
    refused: "account_deleted",
    stored: rowsOf("pay_intents"),
  },
  "notification-service: a webhook": {
    table: "nt_webhooks",
    write: (userId) => notifications.insertWebhook(db, { id: randomUUID(), userId, url: "https://hooks.example.com/window", secret: "whsec_window" }, 5),
    refused: "account_deleted",
    stored: rowsOf("nt_webhooks"),
  },
  "notification-service: preferences": {
    table: "nt_preferences",
    write: (userId) => notifications.savePreferences(db, userId, { email: null, telegramChatId: null, timeZone: "UTC", quietHours: null, channels: null }).then((r) => (typeof r === "string" ? r : "saved")),
    refused: "account_deleted",
    stored: rowsOf("nt_preferences"),
  },
};

async function account(): Promise<string> {
  const id = randomUUID();
  await ensureAccount(db.pool, id);
  return id;
}

describe("a write of a deleted account's data: the check and the write in one transaction, under the account's row lock", () => {
  for (const [name, w] of Object.entries(WRITES)) {
    it(`${name}: checked before the deletion, held before its insert: the deletion waits for its commit`, async () => {
      const userId = await account();
      const r = await window.writeFirst(userId, tableGate(w.table), () => w.write(userId));
      expect(r.deletionWaited, "the deletion waited for the write's transaction").toBe(true);
      expect(r.write).not.toEqual(w.refused);
      expect(r.deleted).toBe(true);
      expect(await w.stored(userId)).toBe(1);
      expect(await accountWasDeleted(db.pool, userId)).toBe(true);
    });

    it(`${name}: run while the deletion is not committed yet: it waits for it, then stores nothing`, async () => {
      const userId = await account();
      const r = await window.deletionFirst(userId, () => w.write(userId));
      expect(r.writeWaited, "the write waited for the deletion").toBe(true);
      expect(r.write).toEqual(w.refused);
      expect(await w.stored(userId)).toBe(0);
    });
  }

  it("a strategy made just before the deletion is never due after it", async () => {
    const userId = await account();
    const store = new OrchestratorStore(db);
    await window.writeFirst(userId, tableGate("ai_strategies"), () => store.createStrategy({ userId, name: "late", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100, minRegimeAgreement: 0, everySeconds: 60, enabled: true }, 10, null));
    expect((await store.due(10_000)).filter((s) => s.userId === userId)).toEqual([]);
  });

  it("a backtest queued just before the deletion: the next repair pass cancels it, and no claim runs it", async () => {
    const userId = await account();
    const queue = new JobQueue(db, "window", 60_000);
    const id = randomUUID();
    const jobs = [0, 1, 2].map((i) => ({ kind: "run", parameters: {}, from: i, to: i + 1 }) as never);
    const r = await window.writeFirst(userId, tableGate("bt_runs"), () => queue.enqueue({ id, ownerId: userId, strategy: "sma-crossover", kind: "run", request: {} as never }, jobs, 3, 100));
    expect([r.deletionWaited, r.write]).toEqual([true, { kind: "queued" }]);
    await queue.strandedRuns.pass();
    expect(queue.strandedRuns.cancelledOfDeleted).toBeGreaterThanOrEqual(1);
    expect((await db.pool.query("SELECT status FROM bt_runs WHERE id = $1", [id])).rows[0].status).toBe("cancelled");
    expect((await db.pool.query("SELECT DISTINCT status FROM bt_jobs WHERE run_id = $1", [id])).rows).toEqual([{ status: "cancelled" }]);
    for (let claimed = await queue.claim(); claimed; claimed = await queue.claim()) expect(claimed.runId).not.toBe(id);
  });

  it("lockAccountForWrite: an id without an account row is live unless it has a tombstone; a deleted one is deleted", async () => {
    const check = (userId: string) => db.transaction((c) => lockAccountForWrite(c, userId));
    expect(await check("not-a-uuid")).toBe("live");
    expect(await check(randomUUID())).toBe("live");
    const tombstoned = randomUUID();
    await db.pool.query("INSERT INTO deleted_users (user_id) VALUES ($1)", [tombstoned]);
    expect(await check(tombstoned)).toBe("deleted");
    const live = await account();
    expect(await check(live)).toBe("live");
  });
});
