/**
 * What a user reads of a failed delivery (`lastError` of GET /deliveries, a dead letter's `reason`),
 * continued from notification-failure-texts.test.ts (SMTP, webhooks): session 41 found two more ways
 * for words not ours to reach it, both fixed:
 * - Telegram's `description` ("telegram: 400 Bad Request: chat not found"), and so anything a
 *   hostile or misconfigured TELEGRAM_API_URL put in it. Now a fixed text by status / error_code;
 *   the description, bot token masked, goes to the operator's log (`detail`);
 * - any other error thrown while sending (here a real PostgreSQL error) as its own message. Now
 *   "internal error"; the message, masked, is logged.
 * The service runs on real PostgreSQL, Kafka and Redis (tests/helpers/notification-rig.ts).
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryError, TELEGRAM_UNREACHABLE, telegramChannel } from "../../services/src/services/notification-service/channels";
import { INTERNAL_ERROR } from "../../services/src/services/notification-service/worker";
import { deadAddress } from "../harness/dead-address";
import { ensureAccount } from "../helpers/accounts";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const rig = useNotificationRig();
const TOKEN = "654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const INTERNAL = `db-primary-${randomUUID().slice(0, 8)}.internal`;

/** A Bot API that answers what the test says: a status and a body. */
let answer: { status: number; body: object } = { status: 200, body: { ok: true } };
let api: Server;
let apiUrl = "";
beforeAll(async () => {
  api = createServer((req, res) => {
    req.resume();
    res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => (api ? api.close(() => r()) : r())));

async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

describe("Telegram failures as users read them", () => {
  it("the Bot API's description never reaches the user: a fixed text by status or error_code; the description, token masked, in the detail", async () => {
    const channel = telegramChannel(apiUrl, TOKEN, 5_000);
    const say = (status: number, description: string, extra: object = {}) => (answer = { status, body: { ok: false, error_code: status, description, ...extra } });
    const cases: [number, string, string, boolean][] = [
      [400, "Bad Request: chat not found", "telegram: chat not found or bot blocked (400)", true],
      [403, "Forbidden: bot was blocked by the user", "telegram: chat not found or bot blocked (403)", true],
      [429, "Too Many Requests: retry after 7", "telegram: rate limited (429)", false],
      [401, `Unauthorized: token ${TOKEN} refused`, "telegram: bot token refused (401)", false],
      [502, `upstream ${INTERNAL} down`, "telegram: server error (502)", false],
    ];
    for (const [status, description, text, permanent] of cases) {
      say(status, description, status === 429 ? { parameters: { retry_after: 7 } } : {});
      const e = await failure(channel.send("42", { subject: "s", text: "t" }));
      // Before: "telegram: 400 Bad Request: chat not found", "telegram: 502 upstream db-primary-....internal down".
      expect([status, e.message, e.permanent]).toEqual([status, text, permanent]);
      expect(e.detail).toContain(description.split(" ")[0]);
      expect(e.detail).not.toContain(TOKEN.split(":")[1]);
      if (status === 429) expect(e.retryAfterMs).toBe(7_000);
    }
    // A 200 that is not a Bot API success, words of its own included.
    answer = { status: 200, body: { ok: false, description: `see ${INTERNAL}` } };
    const odd = await failure(channel.send("42", { subject: "s", text: "t" }));
    expect([odd.message, odd.permanent]).toEqual(["telegram: unexpected answer", false]);
    answer = { status: 200, body: { ok: true } };
    await channel.send("42", { subject: "s", text: "t" });
  });

  it("an API that does not answer: 'telegram: unreachable', retried; the detail without the token", async () => {
    const e = await failure(telegramChannel(`http://${await deadAddress()}`, TOKEN, 5_000).send("42", { subject: "s", text: "t" }));
    // Before: "telegram: TypeError".
    expect([e.message, e.permanent]).toEqual([TELEGRAM_UNREACHABLE, false]);
    expect(e.detail).not.toContain(TOKEN.split(":")[1]);
  });

  it("through the service: a chat gone is dead as 'telegram: chat not found or bot blocked (400)' in /deliveries and /dead-letters", async () => {
    const gone = String(500_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(gone);
    const u = await rig.user({ telegramChatId: gone, channels: { trading: ["telegram"] } });
    rig.telegram.chats.delete(gone);
    const orderId = `ord-${randomUUID()}`;
    await rig.publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const [dead] = await waitUntil("dead", async () => {
      const l = (await rig.api("GET", "/dead-letters", u.id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "telegram", reason: "telegram: chat not found or bot blocked (400)" });
    const [d] = (await rig.deliveries(u.id)).filter((x) => x.channel === "telegram");
    expect(d.lastError).toBe("telegram: chat not found or bot blocked (400)");
  }, 180_000);
});

describe("errors of our own as users read them", () => {
  it("a PostgreSQL error while sending reads 'internal error' in /deliveries and /dead-letters, never the database's words", async () => {
    const userId = randomUUID();
    await ensureAccount(rig.accounts, userId);
    // A webhook delivery whose target is no webhook id: looking it up fails in PostgreSQL itself
    // ('invalid input syntax for type uuid: ...'), a real database error mid-send.
    const target = `${INTERNAL}-not-a-uuid`;
    await rig.accounts.query(
      `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice)
       VALUES ($1, $2, 'webhook', $3, 'fill', 's', 'b', $4)`,
      [`internal-${randomUUID()}`, userId, target, JSON.stringify({ dedupKey: "x", kind: "fill", at: new Date().toISOString(), data: {}, userId, category: "trading", subject: "s", text: "b" })],
    );
    const first = await waitUntil("a failed attempt", async () => (await rig.deliveries(userId)).find((x) => x.lastError), 60_000);
    // Before: 'invalid input syntax for type uuid: "db-primary-....internal-not-a-uuid"'.
    expect(first.lastError).toBe(INTERNAL_ERROR);
    const [dead] = await waitUntil("dead", async () => {
      const l = (await rig.api("GET", "/dead-letters", userId)).body.deadLetters;
      return l.length ? l : undefined;
    }, 60_000);
    expect(dead).toMatchObject({ channel: "webhook", reason: INTERNAL_ERROR, attempts: 3 });
    expect(JSON.stringify(await rig.deliveries(userId))).not.toContain(INTERNAL);
  }, 120_000);
});
