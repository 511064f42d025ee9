/**
 * A card charge against its account's deletion, on real PostgreSQL and the local card processor
 * (tests/fakes/card-processor.ts). A charge commits its intent (the account's lock, kit
 * lockAccountForWrite) and then calls the processor. Before, a deletion that committed between the
 * two still had the charge sent: the processor charged a deleted account. The call now holds the
 * account's lock again (ChargeLock.whileAccountLive, on a connection of its own pool), so either the deletion came first (nothing
 * is sent: the intent is canceled, the answer 403 ACCOUNT_DELETED) or it waits for the processor's
 * answer (tests/helpers/deletion-window.ts duringCall). Both orders are forced, never timed.
 * A first card save whose account is deleted after its customer was made at the processor (before its
 * record, or before the card's) deletes that customer there: the processor keeps nothing of the account.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { accountWasDeleted, createLogger, HttpError, type PostgresClient } from "../../services/src/kit";
import { ChargeLocks } from "../../services/src/services/payment-service/charge-locks";
import { PaymentMethodData } from "../../services/src/services/payment-service/payment-method-data";
import { PaymentMethods } from "../../services/src/services/payment-service/payment-methods";
import { Payments } from "../../services/src/services/payment-service/payments";
import { CardProcessor } from "../../services/src/services/payment-service/processor";
import { RefundIssues } from "../../services/src/services/payment-service/refund-issues";
import { PaymentRepo } from "../../services/src/services/payment-service/repo";
import { deleteUser } from "../../services/src/services/user-management/data";
import { FakeCardProcessor } from "../fakes/card-processor";
import { ensureAccount } from "../helpers/accounts";
import { deletionWindow } from "../helpers/deletion-window";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
const fake = new FakeCardProcessor();
const log = createLogger("payment-deletion-charge", "silent");
let db: PostgresClient;
let window: ReturnType<typeof deletionWindow>;
let methods: PaymentMethods;

/** The service's repo, with a step a test runs once the intent's insert has committed (before the processor call). */
class GatedRepo extends PaymentRepo {
  afterInsert: () => Promise<void> = async () => undefined;
  override async insertIntent(p: Parameters<PaymentRepo["insertIntent"]>[0]) {
    const r = await super.insertIntent(p);
    await this.afterInsert();
    return r;
  }
}
let repo: GatedRepo;

/** The service's processor client, with steps a test runs once a first save's customer was made, or its card attached. */
class GatedProcessor extends CardProcessor {
  afterCreateCustomer: () => Promise<void> = async () => undefined;
  afterAttach: () => Promise<void> = async () => undefined;
  override async createCustomer(userId: string) {
    const id = await super.createCustomer(userId);
    await this.afterCreateCustomer();
    return id;
  }
  override async attach(paymentMethod: string, customerId: string) {
    const pm = await super.attach(paymentMethod, customerId);
    await this.afterAttach();
    return pm;
  }
}
let processor: GatedProcessor;
let payments: Payments;
let locks: ChargeLocks;
const pgConfig = () => ({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 10, POSTGRES_CONNECT_TIMEOUT_MS: 10_000, POSTGRES_LOCK_WAIT_MS: 10_000 });

beforeAll(async () => {
  await fake.start();
  db = await migratedKitPostgres(srv.postgres.url, log, 6);
  window = deletionWindow(srv.postgres.url);
  processor = new GatedProcessor({ apiKey: fake.apiKey, webhookSecret: fake.env.PAYMENT_WEBHOOK_SECRET, url: fake.url, webhookToleranceS: 300, timeoutMs: 10_000, chargeDeadlineMs: 60_000 });
  methods = new PaymentMethods(new PaymentMethodData(db), processor, log, 5);
  repo = new GatedRepo(db);
  // Refunds take no part in a charge.
  // The service's lock connections (charge-locks.ts), with its default timeouts.
  locks = new ChargeLocks(pgConfig(), log, { connections: 2, waitMs: 2_000, holdMs: 120_000, retryAfterS: 20, openingRetryAfterS: 10 });
  locks.keepOpen();
  payments = new Payments(repo, processor, log, { idempotentWaitMs: 1_000, reconcileGraceMs: 60_000, inFlightMs: 60_000, neverReachedRecheckMs: 86_400_000 }, () => undefined, methods, undefined as never, locks, new RefundIssues(db, log));
}, 300_000);
afterAll(async () => {
  await locks?.close();
  await db?.close();
  await fake.stop();
});

/** A live account with a saved card: its id and the card to charge. */
async function payer(): Promise<{ userId: string; card: string }> {
  const userId = randomUUID();
  await ensureAccount(db.pool, userId);
  return { userId, card: (await methods.save(userId, "pm_card_visa")).row.payment_method };
}
const charge = (p: { userId: string; card: string }) =>
  payments.charge("client", p.userId, randomUUID(), { amount: 1_000n, currency: "usd", paymentMethod: p.card, description: null, reference: null });
const intentsOf = async (userId: string) =>
  (await db.pool.query<{ status: string; failure_code: string | null }>("SELECT status, failure_code FROM pay_intents WHERE user_id = $1", [userId])).rows;
/** The PaymentIntents the processor holds of the user's intents (our intent id is their `intent_id` metadata). */
const sentFor = async (userId: string) => {
  const ours = new Set((await db.pool.query<{ intent_id: string }>("SELECT intent_id FROM pay_intents WHERE user_id = $1", [userId])).rows.map((r) => r.intent_id));
  return [...fake.intents.values()].filter((i) => ours.has(i.metadata.intent_id)).length;
};

describe("a card charge and its account's deletion", () => {
  it("the deletion committed after the intent's insert, before the processor call: nothing reaches the processor; 403 ACCOUNT_DELETED, the intent canceled", async () => {
    const p = await payer();
    const created = fake.created;
    repo.afterInsert = async () => {
      expect(await deleteUser(db.pool, p.userId)).toBe(true);
    };
    try {
      const err = await charge(p).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(HttpError);
      expect([(err as HttpError).statusCode, (err as HttpError).code, (err as HttpError).field]).toEqual([403, "ACCOUNT_DELETED", "userId"]);
    } finally {
      repo.afterInsert = async () => undefined;
    }
    expect(fake.created, "PaymentIntents the processor made").toBe(created);
    expect(await sentFor(p.userId)).toBe(0);
    expect(await intentsOf(p.userId)).toEqual([{ status: "canceled", failure_code: "account_deleted" }]);
  });

  it("the deletion run while the processor has the charge: it waits for the answer; the charge is recorded, then the account is gone", async () => {
    const p = await payer();
    const { reached: atProcessor, release } = fake.holdAnswers();
    try {
      const r = await window.duringCall(p.userId, { reached: atProcessor, release }, () => charge(p));
      expect(r.deletionWaited, "the deletion waited for the charge's transaction").toBe(true);
      expect([r.write.row.status, r.deleted]).toEqual(["succeeded", true]);
    } finally {
      fake.beforeAnswer = undefined;
    }
    expect(await intentsOf(p.userId)).toEqual([{ status: "succeeded", failure_code: null }]);
    expect(await sentFor(p.userId)).toBe(1);
    expect(await accountWasDeleted(db.pool, p.userId)).toBe(true);
  });

  it("a call stuck past the lock connection's hold (PAYMENT_CHARGE_LOCK_HOLD_MS): the server ends the session and the lock, the deletion goes on; the charge is left to reconciliation", async () => {
    // A hold of 1 s here (the service refuses one under the processor's retry budget): the deletion,
    // run while the processor still has the charge, would otherwise wait for the answer, which this
    // test gives only after the deletion committed.
    const short = new ChargeLocks(pgConfig(), log, { connections: 1, waitMs: 2_000, holdMs: 1_000, retryAfterS: 1, openingRetryAfterS: 10 });
    short.keepOpen();
    const stuck = new Payments(repo, processor, log, { idempotentWaitMs: 1_000, reconcileGraceMs: 60_000, inFlightMs: 60_000, neverReachedRecheckMs: 86_400_000 }, () => undefined, methods, undefined as never, short, new RefundIssues(db, log));
    const p = await payer();
    const { reached: atProcessor, release } = fake.holdAnswers();
    try {
      const pending = stuck.charge("client", p.userId, randomUUID(), { amount: 1_000n, currency: "usd", paymentMethod: p.card, description: null, reference: null });
      await atProcessor;
      expect(await deleteUser(db.pool, p.userId), "the deletion, the call still at the processor").toBe(true);
      release();
      // The lock's transaction was ended by the server: the answer is not committed with it, the intent stays for reconciliation.
      expect((await pending).row.status).toBe("created");
    } finally {
      release();
      fake.beforeAnswer = undefined;
      await short.close();
    }
    expect(await sentFor(p.userId)).toBe(1);
  });

  it("a charge of an account deleted before it began is refused at the insert, the processor not asked", async () => {
    const p = await payer();
    const created = fake.created;
    await deleteUser(db.pool, p.userId);
    await expect(charge(p)).rejects.toMatchObject({ statusCode: 403, code: "ACCOUNT_DELETED" });
    expect([fake.created, await intentsOf(p.userId)]).toEqual([created, []]);
  });
});

describe("a first card save and its account's deletion: nothing of the account is left at the processor", () => {
  /** What the fake processor holds of the user: their customers and the cards attached to them. */
  const heldFor = (userId: string) => {
    const customers = [...fake.customers].filter(([, m]) => m.user_id === userId).map(([id]) => id);
    return { customers, cards: [...fake.paymentMethods.values()].filter((m) => m.customer !== null && customers.includes(m.customer)).length };
  };
  const STEPS = {
    "the customer made at the processor, before its record": "afterCreateCustomer",
    "the customer recorded and the card attached, before the card's record": "afterAttach",
  } as const;
  for (const [between, step] of Object.entries(STEPS))
    it(`the deletion committed after ${between}: 403 ACCOUNT_DELETED, the customer deleted there, no card recorded`, async () => {
      const userId = randomUUID();
      await ensureAccount(db.pool, userId);
      let madeThere = 0;
      processor[step] = async () => {
        madeThere = [...fake.customers.values()].filter((m) => m.user_id === userId).length;
        expect(await deleteUser(db.pool, userId)).toBe(true);
      };
      try {
        await expect(methods.save(userId, "pm_card_visa")).rejects.toMatchObject({ statusCode: 403, code: "ACCOUNT_DELETED", field: "userId" });
      } finally {
        processor[step] = async () => undefined;
      }
      expect(madeThere, "the save had made a customer when the deletion came").toBe(1);
      // Before: the customer stayed at the processor (and, after the attach, held the card until it was detached).
      expect(heldFor(userId)).toEqual({ customers: [], cards: 0 });
      expect((await db.pool.query("SELECT 1 FROM pay_payment_methods WHERE user_id = $1", [userId])).rowCount).toBe(0);
    });
});

// The same call's other guard (repo.ts whileAccountLive, the intent's send lock): an intent that
// reconciliation closed as never_reached_processor between the insert and the send is not sent (a
// create sent then could be charged for an intent closed for good); payment-charge-inflight.test.ts
// has the other order (a close tried while the create is being sent).
describe("a card charge and reconciliation's close", () => {
  it("an intent closed between its insert and the processor call is not sent: answered as closed, nothing at the processor", async () => {
    const p = await payer();
    const [created, received] = [fake.created, fake.createsReceived];
    const closer = new Payments(new PaymentRepo(db), processor, log, { idempotentWaitMs: 1_000, reconcileGraceMs: 0, inFlightMs: 0, neverReachedRecheckMs: 86_400_000 }, () => undefined, methods, undefined as never, locks, new RefundIssues(db, log));
    let closedBy: unknown;
    repo.afterInsert = async () => {
      closedBy = (await closer.reconcile()).find((a) => a.kind === "never_reached_processor");
    };
    try {
      const r = await charge(p);
      expect(closedBy).toMatchObject({ intentId: r.row.intent_id });
      expect([r.row.status, r.row.failure_code]).toEqual(["failed", "never_reached_processor"]);
    } finally {
      repo.afterInsert = async () => undefined;
    }
    expect([fake.created, fake.createsReceived]).toEqual([created, received]);
    expect(await intentsOf(p.userId)).toEqual([{ status: "failed", failure_code: "never_reached_processor" }]);
  });
});

// Session 52: nothing deleted the processor customer of an account deleted after its first card save
// (only the mid-way case above, once, a failure logged), so every deleted account's customer and cards
// stayed at the processor. Reconciliation's passes now delete them, until the processor confirms.
describe("an account deleted after its first card save: its processor customer is deleted by the next passes", () => {
  const customerOf = async (userId: string) =>
    (await db.pool.query<{ customer_id: string; done: boolean }>("SELECT customer_id, processor_deleted_at IS NOT NULL AS done FROM pay_customers WHERE user_id = $1", [userId])).rows[0];
  const sweep = () => methods.deletedCustomers!.sweep();
  const customersOfUser = (userId: string) => [...fake.customers].filter(([, m]) => m.user_id === userId).length;

  it("a pass the processor does not answer leaves it for a later pass, which deletes it and its cards; one gone there already counts as deleted", async () => {
    const p = await payer();
    const dashboard = await payer();
    const { customer_id: customer } = await customerOf(p.userId);
    expect(fake.paymentMethods.get(p.card)!.customer).toBe(customer);
    await deleteUser(db.pool, p.userId);
    await deleteUser(db.pool, dashboard.userId);
    fake.customerDeletes = "unreachable";
    try {
      expect(await sweep()).toBe(0);
    } finally {
      fake.customerDeletes = "ok";
    }
    expect([customersOfUser(p.userId), (await customerOf(p.userId)).done]).toEqual([1, false]);
    // Deleted on the processor's dashboard meanwhile: its 404 is the deletion done.
    fake.customers.delete((await customerOf(dashboard.userId)).customer_id);
    expect(await sweep()).toBeGreaterThanOrEqual(2);
    expect([customersOfUser(p.userId), (await customerOf(p.userId)).done, (await customerOf(dashboard.userId)).done]).toEqual([0, true, true]);
    // Its card is detached with it: never charged again.
    expect(fake.paymentMethods.get(p.card)!.customer).toBeNull();
    expect(await sweep()).toBe(0);
  });

  it("a first save's customer the save could not delete (its account deleted mid-way, the processor unreachable) is recorded and deleted by a later pass", async () => {
    const userId = randomUUID();
    await ensureAccount(db.pool, userId);
    processor.afterCreateCustomer = async () => {
      expect(await deleteUser(db.pool, userId)).toBe(true);
      fake.customerDeletes = "unreachable";
    };
    try {
      await expect(methods.save(userId, "pm_card_visa")).rejects.toMatchObject({ statusCode: 403, code: "ACCOUNT_DELETED", field: "userId" });
    } finally {
      processor.afterCreateCustomer = async () => undefined;
      fake.customerDeletes = "ok";
    }
    // Before: logged, and left at the processor for good.
    expect([customersOfUser(userId), (await customerOf(userId)).done]).toEqual([1, false]);
    expect(await sweep()).toBe(1);
    expect([customersOfUser(userId), (await customerOf(userId)).done]).toEqual([0, true]);
  });
});
