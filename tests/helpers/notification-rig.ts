/**
 * notification-service on real PostgreSQL, Kafka and Redis, with a real SMTP server on loopback
 * (`smtp-server`, with authentication) receiving the e-mails, a local Telegram Bot API
 * (tests/fakes/telegram.ts) and webhook receivers that verify every signature. Events are published
 * to the real topics. `useNotificationRig()` at the top level of a test file starts it all in
 * beforeAll and stops it in afterAll; users are made with `rig.user(...)`, their e-mail address and
 * Telegram chat confirmed with the codes sent to them (address-confirmation.ts).
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, expect } from "vitest";
import { kafkajs, pg, startRedis, type KafkaJs, type RedisServer } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import notificationService from "../../services/src/services/notification-service";
import { FakeTelegram, type SentMessage } from "../fakes/telegram";
import { ensureAccount } from "./accounts";
import { waitUntil } from "../trading/e2e-helpers";

/** Webhook receiver: verifies `x-notification-signature` with the endpoint's secret before accepting. */
export class Receiver {
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

export const fill = (userId: string, orderId: string, seq: number, eventId = `${orderId}:fill:${seq}`) => ({
  eventId, type: "fill",
  fill: { fillId: `${orderId}:${seq}`, orderId, userId, symbol: "BTCUSDT", side: "buy", quantity: "0.5", price: "42000.5", fee: "0.021", liquidity: "taker", ts: Date.now() },
});

/** A confirmation code's message (e-mail or Telegram): "Your confirmation code is 123456." */
const CODE = /confirmation code is (\d{6})\./;
export const isCodeMessage = (text: string) => CODE.test(text);

export class NotificationRig {
  readonly run = randomBytes(3).toString("hex");
  readonly telegram = new FakeTelegram(`123456:${randomBytes(18).toString("base64url")}`);
  readonly mails: { to: string[]; raw: string }[] = [];
  readonly receivers: Receiver[] = [];
  svc!: Service<any>;
  redis!: RedisServer;
  /** The service's environment (its datastores included). */
  env: Record<string, string> = {};
  /** The datastores' variables alone. */
  datastoreEnv: Record<string, string> = {};
  /** The users rows (user-management's, not running here): a notice is sent only to a user with an account. */
  accounts!: InstanceType<typeof pg.Pool>;
  private producer!: KafkaJs.Producer;
  private smtp!: SMTPServer;

  async api(method: string, url: string, userId: string, payload?: unknown, role = "trader") {
    const r = await this.svc.app.inject({ method: method as "GET", url, headers: { "x-user-id": userId, "x-user-role": role, "x-auth-method": "jwt" }, ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: r.statusCode, body: r.body ? r.json() : undefined };
  }

  async deliveries(userId: string): Promise<any[]> {
    return (await this.api("GET", "/deliveries?limit=200", userId)).body.deliveries;
  }

  async publish(topic: string, key: string, value: object): Promise<void> {
    await this.producer.send({ topic, messages: [{ key, value: JSON.stringify(value) }] });
  }

  /** The confirmation code last mailed to `address` (after the first `after` mails), once it has arrived. */
  codeMailedTo(address: string, after = 0): Promise<string> {
    return waitUntil(`a confirmation code for ${address}`, async () => this.mails.slice(after).filter((m) => m.to.includes(address) && /Subject: Confirm your e-mail address/.test(m.raw)).map((m) => CODE.exec(m.raw)?.[1]).at(-1), 60_000);
  }

  /** The confirmation codes the bot posted to `chat`, in order. */
  codesPostedTo(chat: string): string[] {
    return this.telegram.messages.filter((m) => m.chatId === chat).flatMap((m) => CODE.exec(m.text)?.[1] ?? []);
  }

  /** The confirmation code last posted to `chat` (once there are more than `after`). */
  codePostedTo(chat: string, after = 0): Promise<string> {
    return waitUntil(`a confirmation code in chat ${chat}`, async () => this.codesPostedTo(chat).slice(after).at(-1), 60_000);
  }

  /** The messages of `chat` that are notices (not confirmation codes). */
  notices(chat: string): SentMessage[] {
    return this.telegram.messages.filter((m) => m.chatId === chat && !isCodeMessage(m.text));
  }

  /** A user with an account and these preferences; its e-mail address and chat confirmed; a webhook endpoint when asked. */
  async user(prefs: Record<string, unknown>, webhook = false): Promise<{ id: string; receiver?: Receiver }> {
    const id = randomUUID();
    await ensureAccount(this.accounts, id);
    expect((await this.api("PUT", "/preferences", id, { email: null, telegramChatId: null, ...prefs })).status).toBe(200);
    if (typeof prefs.email === "string") {
      const r = await this.api("POST", "/preferences/email/verify", id, { code: await this.codeMailedTo(prefs.email) });
      expect([r.status, r.body]).toEqual([200, { emailVerified: true }]);
    }
    if (typeof prefs.telegramChatId === "string") {
      const r = await this.api("POST", "/preferences/telegram/verify", id, { code: await this.codePostedTo(prefs.telegramChatId) });
      expect([r.status, r.body]).toEqual([200, { telegramVerified: true }]);
    }
    if (!webhook) return { id };
    const receiver = new Receiver();
    await receiver.start();
    this.receivers.push(receiver);
    const created = await this.api("POST", "/webhooks", id, { url: receiver.url });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    receiver.secret = created.body.secret;
    expect((await this.api("GET", "/webhooks", id)).body.webhooks[0]).not.toHaveProperty("secret");
    return { id, receiver };
  }

  async start(serverEnv: Record<string, string>, overrides: Record<string, string> = {}): Promise<void> {
    const SMTP_USER = "notifier";
    const SMTP_PASSWORD = randomBytes(12).toString("hex");
    this.smtp = new SMTPServer({
      secure: false, disabledCommands: ["STARTTLS"], allowInsecureAuth: true, logger: false,
      onAuth: (auth, _s, cb) => (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD ? cb(null, { user: auth.username }) : cb(new Error("Invalid username or password"))),
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          this.mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
          cb();
        });
      },
    });
    await new Promise<void>((r) => this.smtp.listen(0, "127.0.0.1", r));
    const smtpPort = (this.smtp.server.address() as AddressInfo).port;
    await this.telegram.start();
    this.redis = await startRedis();
    this.datastoreEnv = { ...serverEnv, DRAGONFLY_URL: this.redis.url };
    this.env = {
      ...this.datastoreEnv, LOG_LEVEL: "silent", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500",
      NOTIFY_CONSUMER_GROUP: `notify-${this.run}`, SMTP_HOST: "127.0.0.1", SMTP_PORT: String(smtpPort), SMTP_REQUIRE_TLS: "false",
      SMTP_USER, SMTP_PASSWORD, SMTP_FROM: "AI Trading <notify@example.test>", TELEGRAM_BOT_TOKEN: this.telegram.token, TELEGRAM_API_URL: this.telegram.url,
      NOTIFY_WEBHOOK_ALLOW_PRIVATE: "true", NOTIFY_MAX_ATTEMPTS: "3", NOTIFY_BACKOFF_BASE_MS: "50", NOTIFY_BACKOFF_MAX_MS: "200",
      NOTIFY_WORKER_INTERVAL_MS: "50", NOTIFY_RATE_LIMIT_MAX: "3",
      // The longest window the service takes (30 days): the rate-limit cases never see it roll over.
      NOTIFY_RATE_LIMIT_WINDOW_MS: "2592000000",
      // Long enough that a dribbling endpoint is still being read when another user's delivery is due (a loaded machine included).
      NOTIFY_HTTP_TIMEOUT_MS: "30000",
      ...overrides,
    };
    const pool = new pg.Pool({ connectionString: this.env.POSTGRES_URL, max: 1 });
    await runPostgresMigrations(pool);
    await pool.end();
    this.accounts = new pg.Pool({ connectionString: this.env.POSTGRES_URL, max: 2 });
    const kafka = new kafkajs.Kafka({ brokers: this.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await ensureKafkaTopics(admin);
    await admin.disconnect();
    this.producer = kafka.producer();
    await this.producer.connect();
    this.svc = await createService(notificationService, { env: this.env, defaultMetrics: false });
    await this.svc.app.ready();
  }

  async stop(): Promise<void> {
    await this.producer?.disconnect();
    await this.svc?.close();
    for (const r of this.receivers) await r.stop();
    await this.telegram.stop();
    await new Promise<void>((r) => (this.smtp ? this.smtp.close(() => r()) : r()));
    await this.redis?.stop();
    await this.accounts?.end();
  }
}

/** The rig of this test file, started before its tests and stopped after them; `overrides` (read then) change its service's environment. */
export function useNotificationRig(overrides: () => Record<string, string> = () => ({})): NotificationRig {
  const srv = useServers("postgres", "kafka");
  const rig = new NotificationRig();
  beforeAll(() => rig.start(srv.env, overrides()), 240_000);
  afterAll(() => rig.stop());
  return rig;
}
