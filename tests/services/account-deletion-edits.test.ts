/**
 * Edits of an account's existing data against its deletion (kit accounts.ts lockAccountForWrite), on
 * real PostgreSQL, the two interleavings forced by held transactions (tests/helpers/deletion-window.ts),
 * as account-deletion-writes.test.ts does for creations: a strategy's change (PATCH, enable, disable),
 * a strategy's decision recorded by its evaluation (since session 51's h12: it was written after the
 * deletion, from a lifecycle read made before it), a confirmation code stored (and so sent) for an
 * address, a code's check, a dead letter's replay.
 *   - the edit checked the account and is held before its UPDATE when the deletion runs: the deletion
 *     waits for its commit (the edit is made, before the deletion answers);
 *   - the deletion ran and is not committed when the edit checks: it waits, answers account_deleted
 *     and changes nothing.
 * Before (session 50 locked creations only), each edit neither waited nor was refused: it committed
 * after the deletion had answered (a code e-mailed to a deleted account's address, a strategy
 * re-armed, a deleted account's notice queued again).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createLogger, type PostgresClient } from "../../services/src/kit";
import { OrchestratorStore, type Strategy } from "../../services/src/services/ai-orchestrator/store";
import * as notifications from "../../services/src/services/notification-service/data";
import { lockCode, recordCodeTry, storeCode } from "../../services/src/services/notification-service/confirmation-data";
import { ensureAccount } from "../helpers/accounts";
import { deadWebhookLetter } from "../helpers/dead-letters";
import { deletionWindow, tableGate } from "../helpers/deletion-window";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
let db: PostgresClient;
let window: ReturnType<typeof deletionWindow>;

beforeAll(async () => {
  db = await migratedKitPostgres(srv.postgres.url, createLogger("account-deletion-edits", "silent"), 6);
  window = deletionWindow(srv.postgres.url);
}, 300_000);
afterAll(async () => {
  await db?.close();
});

const ADDRESS = "someone@mail.example.com";
const one = async <T extends object>(sql: string, values: unknown[]) => (await db.pool.query<T>(sql, values)).rows[0];

/** An edit of data the account has: made ready, then made; the table its UPDATE writes; whether it was made. */
interface Edit {
  table: string;
  /** Makes the data to edit; answers what `edit` and `made` need. */
  ready(userId: string): Promise<string>;
  edit(userId: string, ref: string): Promise<unknown>;
  refused: unknown;
  made(userId: string, ref: string): Promise<boolean>;
}

const STRATEGY = { name: "edits", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100, minRegimeAgreement: 0, everySeconds: 60, enabled: false };
const withEmail = (userId: string) => notifications.savePreferences(db, userId, { email: ADDRESS, telegramChatId: null, timeZone: "UTC", quietHours: null, channels: null });
const storeAnyCode = (userId: string) => storeCode(db, "email", userId, ADDRESS, Buffer.from("a code's hash"), 60_000);

const EDITS: Record<string, Edit> = {
  "ai-orchestrator: a strategy's change (enable)": {
    table: "ai_strategies",
    ready: async (userId) => {
      const out = await new OrchestratorStore(db).createStrategy({ userId, ...STRATEGY }, 10, null);
      return (out as { strategy: Strategy }).strategy.strategyId;
    },
    edit: (userId, id) => new OrchestratorStore(db).updateStrategy(id, userId, (cur) => ({ ...cur, enabled: true, rearm: true })).then((s) => (typeof s === "object" ? "changed" : s)),
    refused: "account_deleted",
    made: async (_userId, id) => (await one<{ enabled: boolean }>("SELECT enabled FROM ai_strategies WHERE strategy_id = $1", [id])).enabled,
  },
  // Made by an evaluation (evaluate.ts) after its unlocked lifecycle read: its insert takes the lock.
  "ai-orchestrator: a strategy's decision recorded": {
    table: "ai_decisions",
    ready: async (userId) => {
      const out = await new OrchestratorStore(db).createStrategy({ userId, ...STRATEGY, enabled: true }, 10, null);
      return (out as { strategy: Strategy }).strategy.strategyId;
    },
    edit: (userId, id) =>
      new OrchestratorStore(db)
        .recordDecision({ strategyId: id, userId, symbol: "BTCUSDT", modelVersion: "m1", probabilityUp: 0.7, barTime: new Date().toISOString(), decisionPrice: 100, features: null,
          regimes: [], tradingState: "active", positionBefore: 0, action: "buy", quantity: 1, reason: "window", orderId: null, risk: null, error: null, evaluationId: null })
        .then((d) => (typeof d === "string" ? d : "recorded")),
    refused: "account_deleted",
    made: async (_userId, id) => (await one<{ n: number }>("SELECT count(*)::int AS n FROM ai_decisions WHERE strategy_id = $1", [id])).n === 1,
  },
  "notification-service: a confirmation code stored (then sent)": {
    table: "nt_preferences",
    ready: async (userId) => (await withEmail(userId), ""),
    edit: (userId) => storeAnyCode(userId),
    refused: "account_deleted",
    made: async (userId) => (await one<{ h: boolean }>("SELECT email_code_hash IS NOT NULL AS h FROM nt_preferences WHERE user_id = $1", [userId])).h,
  },
  "notification-service: a code's check (the route's transaction)": {
    table: "nt_preferences",
    ready: async (userId) => (await withEmail(userId), await storeAnyCode(userId), ""),
    edit: (userId) =>
      db.transaction(async (tx) => {
        const pending = await lockCode(tx, "email", userId);
        if (pending === "account_deleted") return pending;
        await recordCodeTry(tx, "email", userId, true, 5);
        return "verified";
      }),
    refused: "account_deleted",
    made: async (userId) => (await one<{ v: boolean }>("SELECT email_verified_at IS NOT NULL AS v FROM nt_preferences WHERE user_id = $1", [userId])).v,
  },
  "notification-service: a dead letter's replay": {
    table: "nt_dead_letters",
    ready: (userId) => deadWebhookLetter(db.pool, userId),
    edit: (userId, id) => db.transaction((tx) => notifications.replayDeadLetter(tx, id, userId, 10)),
    refused: { accountDeleted: expect.any(String) },
    made: async (_userId, id) => (await one<{ r: boolean }>("SELECT replayed_at IS NOT NULL AS r FROM nt_dead_letters WHERE dead_letter_id = $1", [id])).r,
  },
};

async function account(): Promise<string> {
  const id = randomUUID();
  await ensureAccount(db.pool, id);
  return id;
}

describe("an edit of a deleted account's data: the check and the edit in one transaction, under the account's row lock", () => {
  for (const [name, e] of Object.entries(EDITS)) {
    it(`${name}: checked before the deletion, held before its UPDATE: the deletion waits for its commit`, async () => {
      const userId = await account();
      const ref = await e.ready(userId);
      const r = await window.writeFirst(userId, tableGate(e.table), () => e.edit(userId, ref));
      expect(r.deletionWaited, "the deletion waited for the edit's transaction").toBe(true);
      expect(r.write).not.toEqual(e.refused);
      expect([r.deleted, await e.made(userId, ref)]).toEqual([true, true]);
    });

    it(`${name}: run while the deletion is not committed yet: it waits for it, then changes nothing`, async () => {
      const userId = await account();
      const ref = await e.ready(userId);
      const r = await window.deletionFirst(userId, () => e.edit(userId, ref));
      expect(r.writeWaited, "the edit waited for the deletion").toBe(true);
      expect(r.write).toEqual(e.refused);
      expect(await e.made(userId, ref)).toBe(false);
    });
  }
});
