/**
 * notification-service on real PostgreSQL, Kafka and Redis, with a real SMTP server on loopback
 * (`smtp-server`, with authentication) receiving the e-mails, a local Telegram Bot API and a
 * webhook receiver that verifies every signature. Events are published to the real topics.
 * Covers: a fill -> e-mail + Telegram + signed webhook, once despite redelivery; a risk rejection
 * told once from either topic; quiet hours hold ordinary notices but not a high compliance alert;
 * a failing webhook retried with backoff into the dead-letter table, then replayed; Telegram 429
 * retried, "chat not found" dead at once; the per-user-and-channel rate limit postpones; bad
 * input answers 400 naming the field.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, startRedis, type KafkaJs, type RedisServer } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import notificationService from "../../services/src/services/notification-service";
import { deleteOldDeliveries } from "../../services/src/services/notification-service/data";
import { checkWebhookUrl, isPublicAddress, webhookChannel } from "../../services/src/services/notification-service/channels";
import { backoffMs, deliverAfter } from "../../services/src/services/notification-service/domain";
import { FakeTelegram } from "../fakes/telegram";
import { ensureAccount } from "../helpers/accounts";
import { waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "kafka");
const run = randomBytes(3).toString("hex");
const SMTP_USER = "notifier";
const SMTP_PASSWORD = randomBytes(12).toString("hex");
const telegram = new FakeTelegram(`123456:${randomBytes(18).toString("base64url")}`);
let redis: RedisServer;
let svc: Service<any>;
let producer: KafkaJs.Producer;
let smtp: SMTPServer;
const mails: { to: string[]; raw: string }[] = [];

/** Webhook receiver: verifies `x-notification-signature` with the endpoint's secret before accepting. */
class Receiver {
  server?: Server;
  url = "";
  secret = "";
  failing = false;
  accepted: { id: string; body: any }[] = [];
  rejected = 0;
  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const ts = String(req.headers["x-notification-timestamp"]);
        const expected = Buffer.from(`v1=${createHmac("sha256", this.secret).update(`${ts}.${body}`).digest("hex")}`);
        const got = Buffer.from(String(req.headers["x-notification-signature"]));
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
        if (got.length !== expected.length || !timingSafeEqual(got, expected) || !fresh) {
          this.rejected++;
          res.writeHead(401).end();
          return;
        }
        if (this.failing) {
          res.writeHead(503).end();
          return;
        }
        this.accepted.push({ id: String(req.headers["x-notification-id"]), body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  stop = () => new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
}
const receivers: Receiver[] = [];

/** A webhook endpoint that answers 200 at once and then its body a byte every 300 ms for `forMs`. */
async function dribbler(forMs: number) {
  const d = { url: "", open: 0, requests: 0, server: undefined as Server | undefined };
  d.server = createServer((req, res) => {
    d.requests++;
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" });
    d.open++;
    const tick = setInterval(() => res.write("x"), 300);
    const end = setTimeout(() => res.end(), forMs);
    res.on("close", () => {
      d.open--;
      clearInterval(tick);
      clearTimeout(end);
    });
  });
  await new Promise<void>((r) => d.server!.listen(0, "127.0.0.1", r));
  d.url = `http://127.0.0.1:${(d.server.address() as AddressInfo).port}/hook`;
  const stop = () => new Promise<void>((r) => { d.server!.closeAllConnections(); d.server!.close(() => r()); });
  return { ...d, get open() { return d.open; }, get requests() { return d.requests; }, stop };
}

const as = (userId: string, role = "trader") => ({ "x-user-id": userId, "x-user-role": role });
const api = async (method: string, url: string, userId: string, payload?: unknown, role = "trader") => {
  const r = await svc.app.inject({ method: method as "GET", url, headers: as(userId, role), ...(payload !== undefined ? { payload: payload as object } : {}) });
  return { status: r.statusCode, body: r.body ? r.json() : undefined };
};
const deliveries = async (userId: string) => (await api("GET", "/deliveries?limit=200", userId)).body.deliveries as any[];
const publish = (topic: string, key: string, value: object) => producer.send({ topic, messages: [{ key, value: JSON.stringify(value) }] });
const fill = (userId: string, orderId: string, seq: number, eventId = `${orderId}:fill:${seq}`) => ({
  eventId, type: "fill",
  fill: { fillId: `${orderId}:${seq}`, orderId, userId, symbol: "BTCUSDT", side: "buy", quantity: "0.5", price: "42000.5", fee: "0.021", liquidity: "taker", ts: Date.now() },
});

/** The confirmation code last mailed to `address` (email-verification.ts), once it has arrived. */
const codeMailedTo = (address: string, after = 0) =>
  waitUntil(`a confirmation code for ${address}`, async () => mails.slice(after).filter((m) => m.to.includes(address) && /Subject: Confirm your e-mail address/.test(m.raw)).map((m) => /code is (\d{6})\./.exec(m.raw)?.[1]).at(-1), 60_000);
/** Confirms the user's address with the code mailed to it. */
async function confirmEmail(id: string, address: string): Promise<void> {
  const r = await api("POST", "/preferences/email/verify", id, { code: await codeMailedTo(address) });
  expect([r.status, r.body]).toEqual([200, { emailVerified: true }]);
}

/** The users rows (user-management's, not running here): a notice is sent only to a user with an account. */
let accounts: InstanceType<typeof pg.Pool>;

async function user(prefs: Record<string, unknown>, webhook = false): Promise<{ id: string; receiver?: Receiver }> {
  const id = randomUUID();
  await ensureAccount(accounts, id);
  expect((await api("PUT", "/preferences", id, { email: null, telegramChatId: null, ...prefs })).status).toBe(200);
  if (typeof prefs.email === "string") await confirmEmail(id, prefs.email);
  if (!webhook) return { id };
  const receiver = new Receiver();
  await receiver.start();
  receivers.push(receiver);
  const created = await api("POST", "/webhooks", id, { url: receiver.url });
  expect(created.status).toBe(201);
  expect(created.body.secret).toMatch(/^whsec_/);
  receiver.secret = created.body.secret;
  expect((await api("GET", "/webhooks", id)).body.webhooks[0]).not.toHaveProperty("secret");
  return { id, receiver };
}

beforeAll(async () => {
  smtp = new SMTPServer({
    secure: false, disabledCommands: ["STARTTLS"], allowInsecureAuth: true, logger: false,
    onAuth: (auth, _s, cb) => (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD ? cb(null, { user: auth.username }) : cb(new Error("Invalid username or password"))),
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  await telegram.start();
  redis = await startRedis();
  const env: Record<string, string> = {
    ...srv.env, DRAGONFLY_URL: redis.url, LOG_LEVEL: "silent", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500",
    NOTIFY_CONSUMER_GROUP: `notify-${run}`, SMTP_HOST: "127.0.0.1", SMTP_PORT: String(smtpPort), SMTP_REQUIRE_TLS: "false",
    SMTP_USER, SMTP_PASSWORD, SMTP_FROM: "AI Trading <notify@example.test>", TELEGRAM_BOT_TOKEN: telegram.token, TELEGRAM_API_URL: telegram.url,
    NOTIFY_WEBHOOK_ALLOW_PRIVATE: "true", NOTIFY_MAX_ATTEMPTS: "3", NOTIFY_BACKOFF_BASE_MS: "50", NOTIFY_BACKOFF_MAX_MS: "200",
    NOTIFY_WORKER_INTERVAL_MS: "50", NOTIFY_RATE_LIMIT_MAX: "3", NOTIFY_RATE_LIMIT_WINDOW_MS: "1000000000000",
    // Long enough that a dribbling endpoint is still being read when another user's delivery is due (a loaded machine included).
    NOTIFY_HTTP_TIMEOUT_MS: "30000",
  };
  const pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 1 });
  await runPostgresMigrations(pool);
  await pool.end();
  accounts = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
  const kafka = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  svc = await createService(notificationService, { env, defaultMetrics: false });
  await svc.app.ready();
}, 240_000);

afterAll(async () => {
  await producer?.disconnect();
  await svc?.close();
  for (const r of receivers) await r.stop();
  await telegram.stop();
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  await redis?.stop();
  await accounts?.end();
});

describe("notification-service", () => {
  it("a fill reaches e-mail (real SMTP), Telegram and a signed webhook, once despite redelivery", async () => {
    const chat = String(100_000 + Math.floor(Math.random() * 1e6));
    telegram.chats.add(chat);
    const u = await user({ email: `trader-${run}@example.test`, telegramChatId: chat }, true);
    const orderId = `ord-${randomUUID()}`;
    const first = fill(u.id, orderId, 1);
    await publish("trading.executions", orderId, first);
    await publish("trading.executions", orderId, first); // redelivery: same event
    await publish("trading.executions", orderId, fill(u.id, orderId, 1, `${orderId}:other-id`)); // same fill, another event id
    await publish("trading.executions", orderId, fill(u.id, orderId, 2)); // marker: same partition, after the duplicates
    const mine = () => mails.filter((m) => m.to.includes(`trader-${run}@example.test`) && !/Subject: Confirm your e-mail address/.test(m.raw));
    await waitUntil("both fills delivered on every channel", async () =>
      mine().length === 2 && telegram.messages.filter((m) => m.chatId === chat).length === 2 && u.receiver!.accepted.length === 2, 120_000);
    expect(mine()[0].raw).toMatch(/^Subject: Filled: buy 0\.5 BTCUSDT @ 42000\.5\r?$/m);
    expect(mine()[0].raw).toContain(`Your order ${orderId} was filled`);
    expect(mine()[0].raw).toMatch(/^From: AI Trading <notify@example\.test>\r?$/m);
    expect(telegram.messages.find((m) => m.chatId === chat)!.text).toContain("Filled: buy 0.5 BTCUSDT @ 42000.5");
    expect(u.receiver!.accepted.map((a) => a.id).sort()).toEqual([`fill:${orderId}:1`, `fill:${orderId}:2`]);
    expect(u.receiver!.accepted[0].body).toMatchObject({ type: "order.filled", data: { symbol: "BTCUSDT", side: "buy", quantity: "0.5", price: "42000.5" } });
    expect(u.receiver!.rejected).toBe(0);
    // The receivers have the messages; the service records "sent" right after each answer.
    const ds = await waitUntil("all recorded sent", async () => {
      const d = await deliveries(u.id);
      return d.every((x) => x.status === "sent") ? d : undefined;
    }, 60_000);
    expect(ds).toHaveLength(6);
    expect(ds.every((d: any) => d.attempts === 1)).toBe(true);
  }, 180_000);

  it("a risk rejection is told once from either topic; quiet hours hold a fill but not a high compliance alert", async () => {
    const now = new Date();
    const hhmm = (d: Date) => d.toISOString().slice(11, 16);
    const u = await user({ timeZone: "UTC", quietHours: { start: hhmm(new Date(now.getTime() - 3_600_000)), end: hhmm(new Date(now.getTime() + 3 * 3_600_000)) } }, true);
    const orderId = `ord-${randomUUID()}`;
    const order = { orderId, userId: u.id, symbol: "ETHUSDT", side: "buy", type: "market", quantity: "1", status: "rejected", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: "MAX_NOTIONAL", rejectMessage: "order notional exceeds the limit", lastPrice: "3000", createdAt: now.toISOString(), updatedAt: now.toISOString() };
    await publish("trading.orders", orderId, { eventId: `${orderId}:rejected`, type: "order.rejected", order, ts: Date.now() });
    await publish("trading.executions", orderId, { eventId: `${orderId}:engine-rejected`, type: "order.rejected", orderId, userId: u.id, symbol: "ETHUSDT", reason: "MAX_NOTIONAL", ts: Date.now() });
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    await publish("compliance.alerts", u.id, { alertId: `wash:${orderId}`, rule: "wash_trade", userId: u.id, symbol: "ETHUSDT", severity: "high", message: "opposite fills at the same price", ts: Date.now(), evidence: [orderId] });
    await waitUntil("alert delivered", async () => u.receiver!.accepted.some((a) => a.body.type === "compliance.alert"), 120_000);
    const ds = await waitUntil("three deliveries", async () => ((await deliveries(u.id)).length === 3 ? deliveries(u.id) : undefined), 120_000);
    const byKind = Object.fromEntries(ds.map((d: any) => [d.kind, d]));
    expect(Object.keys(byKind).sort()).toEqual(["compliance.alert", "order.filled", "order.rejected"]);
    for (const kind of ["order.filled", "order.rejected"]) {
      expect(byKind[kind].status).toBe("pending");
      expect(Date.parse(byKind[kind].nextAttemptAt)).toBeGreaterThan(now.getTime() + 2 * 3_600_000); // the end of quiet hours
    }
    expect(byKind["compliance.alert"].status).toBe("sent");
  }, 180_000);

  it("a failing webhook is retried with backoff into the dead-letter table, then replayed once", async () => {
    const u = await user({}, true);
    u.receiver!.failing = true;
    const orderId = `ord-${randomUUID()}`;
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const [dead] = await waitUntil("dead-lettered", async () => {
      const l = (await api("GET", "/dead-letters", u.id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "webhook", attempts: 3, reason: "webhook: HTTP 503", notificationId: `fill:${orderId}:1`, replayedAt: null });
    expect((await api("GET", "/dead-letters?all=true", u.id)).status).toBe(403);
    expect((await api("GET", "/dead-letters?all=true", randomUUID(), undefined, "admin")).body.deadLetters.some((l: any) => l.id === dead.id)).toBe(true);
    expect((await api("POST", `/dead-letters/${dead.id}/replay`, randomUUID())).status).toBe(404);
    u.receiver!.failing = false;
    expect((await api("POST", `/dead-letters/${dead.id}/replay`, u.id)).status).toBe(200);
    await waitUntil("replayed delivery accepted", async () => u.receiver!.accepted.length === 1, 60_000);
    // The receiver has the request before the service records the answer: wait for the row.
    await waitUntil("replayed delivery recorded as sent", async () => (await deliveries(u.id))[0]?.status === "sent", 60_000);
    expect((await deliveries(u.id))[0]).toMatchObject({ status: "sent", attempts: 1 });
    expect((await api("POST", `/dead-letters/${dead.id}/replay`, u.id)).status).toBe(409);
  }, 180_000);

  it("a deleted account is told nothing more: its deliveries on every channel die at send time", async () => {
    // Before, an admin's delete removed only the users row: e-mail, Telegram and webhooks went on.
    const chat = String(300_000 + Math.floor(Math.random() * 1e6));
    telegram.chats.add(chat);
    const address = `deleted-${run}@example.test`;
    const u = await user({ email: address, telegramChatId: chat }, true);
    await accounts.query("DELETE FROM users WHERE id = $1", [u.id]);
    const orderId = `ord-${randomUUID()}`;
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const dead = await waitUntil("three dead letters", async () => {
      const l = (await api("GET", "/dead-letters", u.id)).body.deadLetters;
      return l.length === 3 ? l : undefined;
    }, 120_000);
    expect(dead.map((l: any) => [l.channel, l.reason, l.attempts]).sort()).toEqual([["email", "the account was deleted", 1], ["telegram", "the account was deleted", 1], ["webhook", "the account was deleted", 1]]);
    expect(u.receiver!.accepted).toEqual([]);
    expect(telegram.messages.filter((m) => m.chatId === chat)).toEqual([]);
    expect(mails.filter((m) => m.to.includes(address) && !/Subject: Confirm your e-mail address/.test(m.raw))).toEqual([]);
  }, 180_000);

  it("Telegram: 429 is retried after retry_after; an unknown chat is dead at once; the rate limit postpones", async () => {
    const chat = String(200_000 + Math.floor(Math.random() * 1e6));
    telegram.chats.add(chat);
    const u = await user({ telegramChatId: chat, channels: { trading: ["telegram"] } });
    telegram.throttle(1, 1);
    const orderId = `ord-${randomUUID()}`;
    for (let i = 1; i <= 5; i++) await publish("trading.executions", orderId, fill(u.id, orderId, i));
    // Limit 3 per user and channel per window: three go out, two wait for the next window.
    await waitUntil("three sent", async () => telegram.messages.filter((m) => m.chatId === chat).length === 3, 120_000);
    const ds = await waitUntil("two postponed", async () => {
      const d = await deliveries(u.id);
      return d.filter((x) => x.lastError === "rate limited").length === 2 && d.filter((x) => x.status === "sent").length === 3 ? d : undefined;
    }, 60_000);
    expect(ds.filter((d: any) => d.status === "sent")).toHaveLength(3);
    expect(ds.filter((d: any) => d.status === "pending").every((d: any) => Date.parse(d.nextAttemptAt) >= 2e12)).toBe(true);

    const lost = await user({ telegramChatId: "999", channels: { trading: ["telegram"] } });
    const o2 = `ord-${randomUUID()}`;
    await publish("trading.executions", o2, fill(lost.id, o2, 1));
    const [dead] = await waitUntil("dead", async () => {
      const l = (await api("GET", "/dead-letters", lost.id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "telegram", attempts: 1, reason: "telegram: 400 Bad Request: chat not found" });
    expect(JSON.stringify(dead)).not.toContain(telegram.token);
  }, 180_000);

  it("names the bad field; webhook URLs must be https to public addresses", async () => {
    const id = randomUUID();
    const bad = async (body: object) => (await api("PUT", "/preferences", id, body)).body.error?.field;
    expect(await bad({ email: "not-an-email", telegramChatId: null })).toBe("email");
    // The shape of an address, but larger than SMTP delivers to (a 65-octet local part).
    expect(await bad({ email: `${"a".repeat(65)}@example.test`, telegramChatId: null })).toBe("email");
    expect(await bad({ email: null, telegramChatId: "@name" })).toBe("telegramChatId");
    expect(await bad({ email: null, telegramChatId: null, timeZone: "Mars/Olympus" })).toBe("timeZone");
    expect(await bad({ email: null, telegramChatId: null, quietHours: { start: "25:00", end: "07:00" } })).toBe("quietHours.start");
    expect(await bad({ email: null, telegramChatId: null, channels: { trading: ["pigeon"] } })).toBe("channels.trading.0");
    expect((await api("POST", "/webhooks", id, { url: "not a url" })).body.error.field).toBe("url");
    expect((await api("GET", "/preferences", "")).status).toBe(401);
    for (const url of ["http://example.com/h", "https://127.0.0.1/h", "https://10.1.2.3/h", "https://169.254.169.254/latest", "https://localhost/h", "https://[::1]/h", "https://[::ffff:10.0.0.1]/h", "https://u:p@example.com/h", "ftp://example.com",
      // A root dot and the IPv4-compatible block (URL writes [::127.0.0.1] as [::7f00:1]) were let through.
      "https://localhost./h", "https://foo.localhost./h", "https://[::127.0.0.1]/h", "https://[::]/h"]) {
      expect(checkWebhookUrl(url, false), url).not.toBeNull();
    }
    expect(checkWebhookUrl("https://hooks.example.com/path?x=1", false)).toBeNull();
    expect([isPublicAddress("8.8.8.8"), isPublicAddress("192.168.1.1"), isPublicAddress("::ffff:127.0.0.1"), isPublicAddress("fd00::1"), isPublicAddress("::7f00:1"), isPublicAddress("2001:4860:4860::8888")]).toEqual([true, false, false, false, false, true]);
  });

  it("30 concurrent webhook additions of one user add exactly the limit (5), the rest 409", async () => {
    const id = randomUUID();
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => api("POST", "/webhooks", id, { url: `https://hooks.example.com/h${i}` })));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(5);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(25);
    expect((await api("GET", "/webhooks", id)).body.webhooks).toHaveLength(5);
  });

  it("an endpoint answering a byte at a time: its send ends at the timeout, and other users' deliveries do not wait for it", async () => {
    const slow = await dribbler(120_000);
    try {
      const at = { at: new Date().toISOString() } as unknown as { at: string };
      await expect(webhookChannel({ timeoutMs: 1_000, allowPrivate: true }).send(slow.url, "whsec_x", { dedupKey: "d", kind: "fill", ...at, data: {} } as never)).rejects.toThrow(/no complete answer within 1000 ms/);
      const mallory = await user({});
      expect((await api("POST", "/webhooks", mallory.id, { url: slow.url })).status).toBe(201);
      const alice = await user({}, true);
      const before = slow.requests;
      const o1 = `ord-${randomUUID()}`;
      await publish("trading.executions", o1, fill(mallory.id, o1, 1));
      await waitUntil("mallory's endpoint is being read", async () => slow.requests > before && slow.open > 0, 60_000, 20);
      const o2 = `ord-${randomUUID()}`;
      await publish("trading.executions", o2, fill(alice.id, o2, 1));
      await waitUntil("alice's delivery", async () => alice.receiver!.accepted.length === 1, 60_000, 20);
      // Before, deliveries were sent one after another: alice's waited for mallory's answer to end.
      expect(slow.open).toBeGreaterThan(0);
    } finally {
      await slow.stop();
    }
  }, 180_000);

  it("refuses a lease shorter than the slowest send plus a margin, naming the settings", async () => {
    const env = { ...srv.env, DRAGONFLY_URL: redis.url, LOG_LEVEL: "silent", NOTIFY_LEASE_MS: "15000", NOTIFY_HTTP_TIMEOUT_MS: "10000" };
    await expect(createService(notificationService, { env, defaultMetrics: false })).rejects.toThrow(/NOTIFY_LEASE_MS \(15000\) must be at least 10000 ms above the slowest send \(10000 ms: NOTIFY_HTTP_TIMEOUT_MS\)/);
  });

  it("an e-mail address gets notices only once confirmed with the code mailed to it; wrong codes, a changed address and resends", async () => {
    const id = randomUUID();
    const address = `confirm-${run}@example.test`;
    const put = await api("PUT", "/preferences", id, { email: address, telegramChatId: null });
    expect(put.body).toMatchObject({ email: address, emailVerified: false, emailVerification: "sent" });
    const first = await codeMailedTo(address);
    // Unconfirmed: a fill is not mailed (no e-mail delivery is even made).
    const o1 = `ord-${randomUUID()}`;
    await publish("trading.executions", o1, fill(id, o1, 1));
    const o2 = `ord-${randomUUID()}`;
    const u2 = await user({ email: null }, true);
    await publish("trading.executions", o2, fill(u2.id, o2, 1)); // another user's, on a webhook: when it is done, so is ours
    await waitUntil("the other user's delivery", async () => u2.receiver!.accepted.length === 1, 60_000);
    expect((await deliveries(id)).filter((d) => d.channel === "email")).toEqual([]);
    // A wrong code counts; a fresh code replaces the first; the right one confirms.
    const wrong = first === "000000" ? "000001" : "000000";
    const bad = await api("POST", "/preferences/email/verify", id, { code: wrong });
    expect([bad.status, bad.body.error.field, bad.body.error.message]).toEqual([400, "code", "wrong code (4 tries left for this code)"]);
    expect((await api("POST", "/preferences/email/verify", id, { code: "12345" })).body.error.field).toBe("code");
    const mailed = mails.length;
    expect((await api("POST", "/preferences/email/code", id)).body).toEqual({ emailVerification: "sent" });
    const second = await codeMailedTo(address, mailed);
    if (second !== first) expect((await api("POST", "/preferences/email/verify", id, { code: first })).status).toBe(400);
    expect((await api("POST", "/preferences/email/verify", id, { code: second })).body).toEqual({ emailVerified: true });
    expect((await api("GET", "/preferences", id)).body).toMatchObject({ email: address, emailVerified: true });
    expect((await api("POST", "/preferences/email/code", id)).status).toBe(409);
    // The same address again (any case) stays confirmed; another one must be confirmed anew.
    expect((await api("PUT", "/preferences", id, { email: address.toUpperCase(), telegramChatId: null })).body.emailVerified).toBe(true);
    const other = `other-${run}@example.test`;
    expect((await api("PUT", "/preferences", id, { email: other, telegramChatId: null })).body).toMatchObject({ emailVerified: false, emailVerification: "sent" });
    await codeMailedTo(other);
    // Five wrong tries end the code.
    for (let i = 0; i < 5; i++) await api("POST", "/preferences/email/verify", id, { code: String(100000 + i) === (await codeMailedTo(other)) ? "999999" : String(100000 + i) });
    expect((await api("POST", "/preferences/email/verify", id, { code: await codeMailedTo(other) })).status).toBe(409);
    // At most five codes an hour per user (three so far: the first address's two, the other's one).
    for (let i = 0; i < 2; i++) expect((await api("POST", "/preferences/email/code", id)).status).toBe(200);
    const limited = await api("POST", "/preferences/email/code", id);
    expect([limited.status, limited.body.error.code]).toEqual([429, "TOO_MANY_CODES"]);
    // No address at all.
    expect((await api("POST", "/preferences/email/verify", randomUUID(), { code: "123456" })).status).toBe(409);
  }, 180_000);

  it("at most five codes an hour to one address, whoever asks: accounts naming a stranger's address do not mail it more", async () => {
    // Before, the limit was per user only: every account (free to make) naming the address mailed it five codes an hour.
    const victim = `stranger-${run}@example.test`;
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) outcomes.push((await api("PUT", "/preferences", randomUUID(), { email: victim.replace("stranger", i % 2 ? "STRANGER" : "stranger"), telegramChatId: null })).body.emailVerification);
    expect(outcomes).toEqual(["sent", "sent", "sent", "sent", "sent", "rate_limited", "rate_limited"]);
    await codeMailedTo(victim);
    await new Promise((r) => setTimeout(r, 500));
    expect(mails.filter((m) => m.to.some((t) => t.toLowerCase() === victim)).length).toBe(5);
  });

  it("sent deliveries older than the retention are deleted; recent, pending and dead ones stay", async () => {
    const pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 1 });
    try {
      const user = randomUUID();
      const add = (key: string, status: string, days: number) =>
        pool.query(
          `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status, created_at)
           VALUES ($1, $2, 'webhook', 'w', 'fill', 's', 'b', '{}', $3, now() - make_interval(days => $4))`,
          [key, user, status, days],
        );
      for (const [key, status, days] of [["old-sent", "sent", 100], ["recent-sent", "sent", 10], ["old-pending", "pending", 100], ["old-dead", "dead", 100]] as const) await add(key, status, days);
      await pool.query("INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) SELECT delivery_id, user_id, channel, 'gone', 8 FROM nt_deliveries WHERE dedup_key = 'old-dead' AND user_id = $1", [user]);
      while ((await deleteOldDeliveries(pool, 90 * 86_400, 1_000)) > 0);
      const left = (await pool.query("SELECT dedup_key FROM nt_deliveries WHERE user_id = $1 ORDER BY delivery_id", [user])).rows.map((r) => r.dedup_key);
      expect(left).toEqual(["recent-sent", "old-pending", "old-dead"]);
    } finally {
      await pool.end();
    }
  });

  it("domain: quiet hours across midnight in a time zone; exponential backoff", () => {
    const q = { start: "22:00", end: "07:00" };
    // 23:30 in Berlin (CET, UTC+1) is 22:30 UTC: held until 07:00 Berlin = 06:00 UTC.
    expect(deliverAfter(new Date("2026-01-15T22:30:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-16T06:00:00.000Z");
    expect(deliverAfter(new Date("2026-01-15T12:00:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-15T12:00:00.000Z");
    expect(deliverAfter(new Date("2026-01-15T05:59:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-16T06:00:00.000Z".replace("16", "15"));
    expect([1, 2, 3, 4, 10].map((a) => backoffMs(a, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 60_000]);
  });
});
