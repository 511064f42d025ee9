/**
 * notification-service: the per-user-and-channel backlog bound (NOTIFY_MAX_PENDING_PER_CHANNEL) under
 * concurrency, on real PostgreSQL (session 44's business-logic hunt). Session 43 left it: two dead-letter
 * replays of one user sent at the same instant could both pass the backlog check, and ingest's check had
 * the same race (two replicas' consumers, or a notice beside a replay): each transaction counted the
 * pending rows before the others committed. Now whatever counts a backlog and then queues onto it takes
 * the user's lock of that channel (data.ts lockBacklogs) to the end of its transaction.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { deadWebhookLetter } from "../helpers/dead-letters";
import { migratedKitPostgres } from "../helpers/schemas";
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";
import { replayDeadLetter } from "../../services/src/services/notification-service/data";
import type { Notice } from "../../services/src/services/notification-service/domain";
import { ingest, type Channels } from "../../services/src/services/notification-service/worker";

const srv = useServers("postgres");
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof migratedKitPostgres>[1];
let kit: PostgresClient;
beforeAll(async () => {
  kit = await migratedKitPostgres(srv.env.POSTGRES_URL, silent, 12);
}, 240_000);
afterAll(() => kit?.close());

const CAP = 3;
const AT_ONCE = 12;

const deadLetter = (user: string) => deadWebhookLetter(kit, user);

const pendingOf = async (user: string) =>
  (await kit.query<{ n: number }>("SELECT count(*)::int AS n FROM nt_deliveries WHERE user_id = $1 AND channel = 'webhook' AND status = 'pending'", [user])).rows[0].n;

const replay = (id: string, user: string) => kit.transaction((tx) => replayDeadLetter(tx, id, user, CAP));

/** A user with one webhook endpoint (ingest's only channel here: no confirmed e-mail or chat). */
async function hooked(): Promise<string> {
  const user = randomUUID();
  await kit.query("INSERT INTO nt_webhooks (webhook_id, user_id, url, secret) VALUES ($1, $2, 'https://hooks.example.com/x', 's')", [randomUUID(), user]);
  return user;
}

const channels: Channels = { webhook: { send: async () => {} } };
const notice = (userId: string): Notice => ({ dedupKey: `fill:${randomUUID()}`, userId, kind: "order.filled", category: "trading", urgent: true, subject: "Filled", text: "filled", data: {}, at: Date.now() });
const queue = (user: string) => ingest(kit, channels, notice(user), { maxPendingPerChannel: CAP });

describe("notification-service: the backlog bound holds for requests sent at once (session 44)", () => {
  it("dead-letter replays of one user sent at the same instant: at most NOTIFY_MAX_PENDING_PER_CHANNEL pass", async () => {
    // Rounds: one round could happen to run the transactions one after another.
    for (let round = 0; round < 3; round++) {
      const mallory = randomUUID();
      const ids: string[] = [];
      for (let i = 0; i < AT_ONCE; i++) ids.push(await deadLetter(mallory));
      const outcomes = await Promise.all(ids.map((id) => replay(id, mallory)));
      // Before: each replay counted the backlog before the others committed (10 of 12 replayed in a run here).
      expect(outcomes.filter((o) => o === "replayed")).toHaveLength(CAP);
      expect(outcomes.filter((o) => o === "full")).toHaveLength(AT_ONCE - CAP);
      expect(await pendingOf(mallory)).toBe(CAP);
    }
  }, 120_000);

  it("notices of one user queued at once (two replicas' consumers), and beside replays: the bound holds", async () => {
    for (let round = 0; round < 3; round++) {
      const mallory = await hooked();
      const results = await Promise.all(Array.from({ length: AT_ONCE }, () => queue(mallory)));
      expect(results.reduce((a, r) => a + r.queued, 0)).toBe(CAP);
      expect(results.flatMap((r) => r.dropped).reduce((a, d) => a + d.targets, 0)).toBe(AT_ONCE - CAP);
      expect(await pendingOf(mallory)).toBe(CAP);
    }
    const eve = await hooked();
    const ids: string[] = [];
    for (let i = 0; i < AT_ONCE / 2; i++) ids.push(await deadLetter(eve));
    await Promise.all([...ids.map((id) => replay(id, eve)), ...Array.from({ length: AT_ONCE / 2 }, () => queue(eve))]);
    expect(await pendingOf(eve)).toBe(CAP);
  }, 120_000);
});
