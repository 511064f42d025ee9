/**
 * order-management's bound on committing a submit (services/order-management/submit.ts,
 * trading/submitDeadline.ts), against a real PostgreSQL: the OrderSubmitter driven directly (no
 * Kafka, no Dragonfly: market facts "active", no price).
 *   - a submit whose user's lock is held past its deadline is answered 503 SUBMIT_DEADLINE_PASSED
 *     while the lock is still held (the lock_timeout set from the deadline ends the wait), and no
 *     order is stored once the lock is released (it waited, then committed);
 *   - a batch whose statements each end in time but whose deadline passes before COMMIT (a slow
 *     Dragonfly read inside the transaction) is rolled back by the check right before COMMIT;
 *   - a submission already past its deadline when its batch starts is refused and stores nothing,
 *     the others of its batch go through;
 *   - a batch whose earliest deadline passes during its transaction (rolled back) is tried again
 *     without the submissions then expired: one nearly expired submission does not fail the others;
 *   - a replay of a stored order in a batch that misses its deadline before COMMIT is answered with
 *     that order (its answer does not depend on the COMMIT);
 *   - OM_SUBMIT_DEADLINE_MS above SUBMIT_COMMIT_DEADLINE_MAX_MS stops order-management at start-up
 *     with a config error naming the variable, and ai-orchestrator's recovery window covers the maximum.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import { createLogger } from "../../services/src/kit";
import { loadConfig } from "../../services/src/kit/config";
import { createPostgres } from "../../services/src/kit/datastores/postgres";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import orderManagement from "../../services/src/services/order-management";
import { requestHash } from "../../services/src/services/order-management/domain";
import { OrderSubmitter, type TimedSubmission } from "../../services/src/services/order-management/submit";
import { ORDER_SUBMIT_TIMEOUT_MS, SETTLE_AFTER_MS } from "../../services/src/services/ai-orchestrator/recover";
import { LOCK_USERS_ORDERS, lockUsersOrdersStatement } from "../../services/src/trading/infra/riskContext";
import { prepareStatements } from "../../services/src/kit/datastores/postgres";
import { DEFAULT_LIMITS } from "../../services/src/trading/risk";
import { SUBMIT_COMMIT_DEADLINE_MAX_MS } from "../../services/src/trading/submitDeadline";
import { PATIENCE_MS, within } from "../helpers/patience";

const srv = useServers("postgres");
let client: ReturnType<typeof createPostgres>;
let submitter: OrderSubmitter;
let db: InstanceType<typeof pg.Client>;

beforeAll(async () => {
  const pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  await pool.end();
  client = createPostgres({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 4, POSTGRES_CONNECT_TIMEOUT_MS: 5000 } as Parameters<typeof createPostgres>[0], createLogger("submit-deadline-test", "silent"));
  submitter = new OrderSubmitter(client, () => undefined, DEFAULT_LIMITS, { maxBatch: 50, lanes: 1 });
  db = new pg.Client({ connectionString: srv.postgres.url });
  await db.connect();
}, 120_000);

afterAll(async () => {
  await db?.end();
  await client?.close();
});

const submission = (userId: string, deadline: number): TimedSubmission => {
  const body = { symbol: "BTCUSDT", side: "buy" as const, type: "limit" as const, quantity: "0.01", limitPrice: "100" };
  return { orderId: randomUUID(), userId, body, idempotencyKey: randomUUID(), requestHash: requestHash(body), deadline };
};
const stored = async (userId: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1`, [userId])).rows[0].n;
/**
 * Another connection holding `userId`'s order lock, taken by the statement the submit itself sends
 * (riskContext.ts lockUsersOrdersStatement), until `release`.
 */
async function holdOrderLock(userId: string) {
  const holder = new pg.Client({ connectionString: srv.postgres.url });
  await holder.connect();
  await prepareStatements(holder, [LOCK_USERS_ORDERS]);
  await holder.query(`BEGIN; ${lockUsersOrdersStatement([userId])}`);
  let released: Promise<void> | undefined;
  const release = () => (released ??= holder.query("COMMIT").then(() => holder.end()));
  return { release };
}
/**
 * A deadline that passes while its batch runs, not before it starts: long enough that a loaded
 * machine's pause between the submit and its batch does not expire it first (which would answer the
 * same 503 by another path, proving less).
 */
const SHORT_MS = 1_000;
/** A submitter whose market facts (Dragonfly, awaited inside the transaction) answer after `delayMs`: every statement is quick, only the check before COMMIT sees the time. */
const slowSubmitter = (delayMs: number) => {
  const slowRedis = { mget: (...keys: string[]) => new Promise((r) => setTimeout(() => r(keys.map(() => null)), delayMs)) };
  return new OrderSubmitter(client, () => slowRedis as unknown as ReturnType<ConstructorParameters<typeof OrderSubmitter>[1]>, DEFAULT_LIMITS, { maxBatch: 50, lanes: 1 });
};

describe("order-management submit deadline", () => {
  it("a submit waiting on its user's lock past the deadline is a 503 before the lock is released, and is never committed", async () => {
    const userId = randomUUID();
    const lock = await holdOrderLock(userId);
    try {
      const started = Date.now();
      const outcome = submitter.submit(submission(userId, performance.now() + 300)).then(
        (o) => ({ ok: true as const, o }),
        (e: { statusCode?: number; code?: string; headers?: Record<string, string> }) => ({ ok: false as const, e }),
      );
      // Settled while the lock is still held (before, it waited for the lock until released, then committed).
      const settled = await within(outcome, PATIENCE_MS, "the submit's answer while its user's lock is held");
      expect(settled).toMatchObject({ ok: false, e: { statusCode: 503, code: "SUBMIT_DEADLINE_PASSED", headers: { "retry-after": "1" } } });
      // The body says what happened in the client's words, naming no configuration variable (session 47: it named OM_SUBMIT_DEADLINE_MS).
      const message = (settled as unknown as { e: { message: string } }).e.message;
      expect(message).toMatch(/^this request placed no order/);
      expect(message).not.toMatch(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/);
      // Ended by a wait set from this submission's 300 ms, not from the longest deadline allowed.
      expect(Date.now() - started).toBeLessThan(SUBMIT_COMMIT_DEADLINE_MAX_MS);
    } finally {
      await lock.release();
    }
    // Nothing committed later either: a later submit of the user's, queued on the same lock after it, is stored alone.
    const later = await submitter.submit(submission(userId, performance.now() + PATIENCE_MS));
    expect((await db.query(`SELECT order_id FROM om_orders WHERE user_id = $1`, [userId])).rows).toEqual([{ order_id: later.row.order_id }]);
  });

  it("a batch whose statements each end in time but whose deadline passes before COMMIT is rolled back (the check right before COMMIT)", async () => {
    const userId = randomUUID();
    // The market facts answer after the deadline.
    const slow = slowSubmitter(SHORT_MS + 500);
    await expect(slow.submit(submission(userId, performance.now() + SHORT_MS))).rejects.toMatchObject({ statusCode: 503, code: "SUBMIT_DEADLINE_PASSED" });
    expect(await stored(userId)).toBe(0);
  });

  it("a submission past its deadline when its batch starts is refused; the others of the batch are stored", async () => {
    const late = randomUUID();
    const onTime = randomUUID();
    const [a, b] = await Promise.allSettled([submitter.submit(submission(late, performance.now() - 1)), submitter.submit(submission(onTime, performance.now() + PATIENCE_MS))]);
    expect(a).toMatchObject({ status: "rejected", reason: { statusCode: 503, code: "SUBMIT_DEADLINE_PASSED" } });
    expect(b).toMatchObject({ status: "fulfilled", value: { replayed: false } });
    expect(await stored(late)).toBe(0);
    expect(await stored(onTime)).toBe(1);
  });

  it("a batch whose earliest deadline passes while it waits is tried again without the expired: the others, with time left, are stored", async () => {
    const hurried = randomUUID();
    const patient = randomUUID();
    const lock = await holdOrderLock(patient);
    try {
      // The patient user's lock is held SHORT_MS + 500 ms: the batch's wait on it outlasts the hurried submission's deadline.
      const release = setTimeout(() => void lock.release(), SHORT_MS + 500);
      // Submitted in one turn of the event loop: one batch.
      const [a, b] = await Promise.allSettled([submitter.submit(submission(hurried, performance.now() + SHORT_MS)), submitter.submit(submission(patient, performance.now() + PATIENCE_MS))]);
      clearTimeout(release);
      expect(a).toMatchObject({ status: "rejected", reason: { statusCode: 503, code: "SUBMIT_DEADLINE_PASSED" } });
      expect(b).toMatchObject({ status: "fulfilled", value: { replayed: false } });
    } finally {
      await lock.release();
    }
    expect(await stored(hurried)).toBe(0);
    expect(await stored(patient)).toBe(1);
  });

  it("a replay of a stored order whose batch misses its deadline before COMMIT is answered with that order, not told nothing was placed", async () => {
    const userId = randomUUID();
    const first = submission(userId, performance.now() + PATIENCE_MS);
    const placed = await submitter.submit(first);
    // The retry of the same request (same key and body), in a batch that misses its deadline before COMMIT.
    const slow = slowSubmitter(SHORT_MS + 500);
    const [replay, fresh] = await Promise.allSettled([slow.submit({ ...first, orderId: randomUUID(), deadline: performance.now() + SHORT_MS }), slow.submit(submission(randomUUID(), performance.now() + SHORT_MS))]);
    expect(replay).toMatchObject({ status: "fulfilled", value: { replayed: true, row: { order_id: placed.row.order_id } } });
    expect(fresh).toMatchObject({ status: "rejected", reason: { statusCode: 503, code: "SUBMIT_DEADLINE_PASSED" } });
    expect(await stored(userId)).toBe(1);
  });

  it("OM_SUBMIT_DEADLINE_MS is at most the maximum ai-orchestrator's recovery window is computed from", () => {
    expect(() => loadConfig("order-management", orderManagement.config ?? {}, { OM_SUBMIT_DEADLINE_MS: String(SUBMIT_COMMIT_DEADLINE_MAX_MS + 1) })).toThrow(
      new RegExp(`OM_SUBMIT_DEADLINE_MS must be <= ${SUBMIT_COMMIT_DEADLINE_MAX_MS}`),
    );
    expect(loadConfig("order-management", orderManagement.config!, {}).OM_SUBMIT_DEADLINE_MS).toBeLessThanOrEqual(SUBMIT_COMMIT_DEADLINE_MAX_MS);
    // A decision is settled only once its submit's send, order-management's deadline and the allowance are over.
    expect(SETTLE_AFTER_MS).toBeGreaterThanOrEqual(ORDER_SUBMIT_TIMEOUT_MS + SUBMIT_COMMIT_DEADLINE_MAX_MS + 1_000);
  });
});
