/**
 * payment-service's deleted-customers passes at once (deleted-customers.ts, migration 0510, session
 * 56): two replicas' passes, or an operator's POST /reconcile beside the periodic one. Before, a pass
 * took its 100 due customers in one statement that only marked them tried: a pass started a moment
 * later took the same ones, and each sent the processor the same delete (the second its 404, taken as
 * done). A pass now claims one customer at a time with a lease, so each delete is sent once. Real
 * PostgreSQL; the processor is a node:http stand-in speaking Stripe's customer delete, counting the
 * deletes it receives and answering each after a pause (so the passes overlap).
 *
 * Session 57: a delete slower than its claim's lease (a processor that holds the request). Before, the
 * call went on past the lease (the SDK's timeout is per idle socket, and nothing else bounded it), and a
 * pass that came after the lease ran out claimed the customer and sent the same delete while the first
 * was still under way at the processor. The call now ends at a deadline inside the lease (the lease less a
 * margin), and one cut at that deadline keeps its claim to the lease's end: the stand-in never
 * has two deletes of one customer open at once.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createLogger, type PostgresClient } from "../../services/src/kit";
import { DeletedCustomers, type DeleteBounds } from "../../services/src/services/payment-service/deleted-customers";
import { PaymentMethodData } from "../../services/src/services/payment-service/payment-method-data";
import { CardProcessor } from "../../services/src/services/payment-service/processor";
import { ensureAccount } from "../helpers/accounts";
import { listen } from "../helpers/http-stand-ins";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
const log = createLogger("payment-deleted-customer-claims", "silent");
/** How long the stand-in takes to answer a delete: the passes run into each other meanwhile. */
const ANSWER_MS = 30;

/** Deletes received, by customer id. */
const deletes = new Map<string, number>();
/** Customers whose delete the stand-in refuses (400, not resource_missing: not done). */
const refused = new Set<string>();
/**
 * While set, the first delete received is answered only once another arrives (at most 10 s): a
 * second pass claims and sends while the first pass's call is under way, whatever the host's load.
 */
let holdFirst: { held?: () => void } | undefined;
/** Customers whose first delete the stand-in never answers (it waits for the caller to give up). */
const unanswered = new Set<string>();
/** Deletes open at the stand-in now, and the most ever open at once, by customer. */
const openDeletes = new Map<string, number>();
const mostOpen = new Map<string, number>();
let server: Server;
let db: PostgresClient;
let processor: CardProcessor;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    const id = /^\/v1\/customers\/([^/?]+)$/.exec(req.url ?? "")?.[1];
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "DELETE" || !id) return answer(404, { error: { type: "invalid_request_error", code: "resource_missing", message: "no such route" } });
    const customer = decodeURIComponent(id);
    deletes.set(customer, (deletes.get(customer) ?? 0) + 1);
    openDeletes.set(customer, (openDeletes.get(customer) ?? 0) + 1);
    mostOpen.set(customer, Math.max(mostOpen.get(customer) ?? 0, openDeletes.get(customer)!));
    res.on("close", () => openDeletes.set(customer, openDeletes.get(customer)! - 1));
    if (unanswered.has(customer) && deletes.get(customer) === 1) return;
    const reply = () => {
      if (refused.has(customer)) answer(400, { error: { type: "invalid_request_error", code: "parameter_invalid", message: "refused for the test" } });
      else answer(200, { id: customer, object: "customer", deleted: true });
    };
    if (holdFirst && [...deletes.values()].reduce((x, y) => x + y, 0) === 1) {
      const timer = setTimeout(reply, 10_000);
      holdFirst.held = () => (clearTimeout(timer), reply());
      return;
    }
    holdFirst?.held?.();
    if (holdFirst) holdFirst.held = undefined;
    setTimeout(reply, ANSWER_MS);
  });
  const url = await listen(server);
  db = await migratedKitPostgres(srv.postgres.url, log, 6);
  processor = new CardProcessor({ apiKey: "sk_test_stand_in", webhookSecret: "whsec_stand_in", url, webhookToleranceS: 300, timeoutMs: 10_000, chargeDeadlineMs: 10_000 });
}, 300_000);

afterAll(async () => {
  await db?.close();
  server?.closeAllConnections();
  server?.close();
});

beforeEach(() => {
  deletes.clear();
  refused.clear();
  unanswered.clear();
  openDeletes.clear();
  mostOpen.clear();
  holdFirst = undefined;
});

/** Two replicas' passes: each its own DeletedCustomers on the same database (`bounds`: its claim's lease and its call's deadline, the processor's by default). */
const replica = (bounds?: DeleteBounds) => new DeletedCustomers(new PaymentMethodData(db), processor, log, bounds);

/** `n` customers of deleted accounts, due for deletion at the processor: their ids. */
async function dueCustomers(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const userId = randomUUID();
    await ensureAccount(db.pool, userId);
    const customer = `cus_${userId.replaceAll("-", "").slice(0, 20)}`;
    await db.pool.query("INSERT INTO pay_customers (user_id, customer_id, processor_delete_due_at) VALUES ($1, $2, now())", [userId, customer]);
    ids.push(customer);
  }
  return ids;
}

const notDeleted = async (ids: string[]) =>
  (await db.pool.query<{ customer_id: string }>("SELECT customer_id FROM pay_customers WHERE customer_id = ANY($1) AND processor_deleted_at IS NULL ORDER BY customer_id", [ids])).rows.map((r) => r.customer_id);

describe("deleted-customers passes at once", () => {
  it("two passes at once send one delete per customer, and delete every one between them", async () => {
    const ids = await dueCustomers(30);
    const [a, b] = [replica(), replica()];
    holdFirst = {};
    const counted = await Promise.all([a.sweep(), b.sweep()]);
    expect([...deletes.keys()].sort()).toEqual([...ids].sort());
    expect([...deletes.values()].every((n) => n === 1), JSON.stringify(Object.fromEntries(deletes))).toBe(true);
    expect(counted[0] + counted[1]).toBe(ids.length);
    // Both took part: the first pass's first call was answered only once the other had sent one.
    expect(counted.every((n) => n > 0), JSON.stringify(counted)).toBe(true);
    expect(await notDeleted(ids)).toEqual([]);
    // Nothing left claimed.
    const claimed = await db.pool.query("SELECT count(*)::int AS n FROM pay_customers WHERE customer_id = ANY($1) AND processor_delete_claim IS NOT NULL", [ids]);
    expect(claimed.rows[0].n).toBe(0);
  });

  it("three passes of one replica at once (an operator's beside the periodic one) alike", async () => {
    const ids = await dueCustomers(12);
    const one = replica();
    holdFirst = {};
    const counted = await Promise.all([one.sweep(), one.sweep(), one.sweep()]);
    expect([...deletes.entries()].sort()).toEqual(ids.map((id) => [id, 1]).sort());
    expect(counted.reduce((x, y) => x + y, 0)).toBe(ids.length);
    expect(await notDeleted(ids)).toEqual([]);
  });

  it("a customer the processor did not delete ends its pass's claim: the next pass sends it again and deletes it", async () => {
    const [stuck] = await dueCustomers(1);
    refused.add(stuck);
    expect(await replica().sweep()).toBe(0);
    expect(deletes.get(stuck)).toBe(1);
    const row = await db.pool.query("SELECT processor_delete_claim, processor_delete_claimed_until, processor_delete_tried_at FROM pay_customers WHERE customer_id = $1", [stuck]);
    expect(row.rows[0]).toMatchObject({ processor_delete_claim: null, processor_delete_claimed_until: null });
    expect(row.rows[0].processor_delete_tried_at).not.toBeNull();
    refused.clear();
    expect(await replica().sweep()).toBe(1);
    expect(deletes.get(stuck)).toBe(2);
    expect(await notDeleted([stuck])).toEqual([]);
  });

  it("a customer under another pass's unexpired claim is left to it; one whose claim ran out (its pass ended mid-way) is taken", async () => {
    const [held, lapsed] = await dueCustomers(2);
    await db.pool.query("UPDATE pay_customers SET processor_delete_claim = $2, processor_delete_claimed_until = now() + interval '10 minutes' WHERE customer_id = $1", [held, randomUUID()]);
    await db.pool.query("UPDATE pay_customers SET processor_delete_claim = $2, processor_delete_claimed_until = now() - interval '1 second' WHERE customer_id = $1", [lapsed, randomUUID()]);
    expect(await replica().sweep()).toBe(1);
    expect([...deletes.entries()]).toEqual([[lapsed, 1]]);
    expect(await notDeleted([held, lapsed])).toEqual([held]);
    await db.pool.query("UPDATE pay_customers SET processor_delete_claim = NULL, processor_delete_claimed_until = NULL WHERE customer_id = $1", [held]);
  });

  it("a delete the processor holds past its call's deadline: no other pass sends it until the claim's lease ran out, and then one does", async () => {
    // (the earlier cases' customers left due taken off: the passes here claim this one only)
    await db.pool.query("UPDATE pay_customers SET processor_deleted_at = now(), processor_delete_claim = NULL, processor_delete_claimed_until = NULL WHERE processor_deleted_at IS NULL");
    const [slow] = await dueCustomers(1);
    unanswered.add(slow);
    // A lease of 4 s whose call ends 1.5 s in (production: the processor's request bound, and a minute).
    const bounds = { leaseMs: 4_000, callMs: 1_500 };
    const first = replica(bounds);
    const others = replica(bounds);
    const asked = Date.now();
    const firstPass = first.sweep();
    // Other passes meanwhile, one after another, until one has sent the delete again.
    let again = 0;
    while (deletes.get(slow) !== 2) {
      again += await others.sweep();
      expect(Date.now() - asked, "a later pass sent the delete").toBeLessThan(120_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await firstPass).toBe(0);
    await expect.poll(async () => notDeleted([slow])).toEqual([]);
    // Never two at once: the first pass's call had ended (cut at its deadline) before the second was sent,
    // and that one was sent only once the lease had run out.
    expect(mostOpen.get(slow)).toBe(1);
    expect(Date.now() - asked).toBeGreaterThanOrEqual(bounds.leaseMs);
    expect(again).toBe(1);
  }, 180_000);

  it("a claim must outlast its call by a margin: bounds without one are refused", () => {
    expect(() => replica({ leaseMs: 2_000, callMs: 1_500 })).toThrow(/outlast its call/);
    expect(() => replica({ leaseMs: 2_000, callMs: 0 })).toThrow(/outlast its call/);
  });
});
