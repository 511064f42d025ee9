/**
 * notification-service (9003): tells users what happened to them. Consumes fills and rejections
 * (`trading.executions`, `trading.orders`), compliance alerts (`compliance.alerts`), billing and
 * payment events (`billing.events`, `payments.events`); each becomes a notice (domain.ts, with its
 * template) delivered once per channel target the user chose: e-mail (SMTP), Telegram (Bot API),
 * signed webhooks. Deliveries are rows in PostgreSQL (unique per notice + target = dedup per event
 * id), sent by a loop shared by the replicas (worker.ts), rate-limited per user and channel in
 * Dragonfly, retried with exponential backoff, dead-lettered after NOTIFY_MAX_ATTEMPTS, replayable.
 * Layers: routes.ts (HTTP), domain.ts (rules, templates), data.ts (SQL), channels.ts (SMTP,
 * Telegram, webhook clients), worker.ts (ingest and the delivery loop).
 */
import { Counter } from "prom-client";
import { smtpPortProblem, WEBHOOK_REFUSED_PORTS } from "../../catalog";
import { ConfigError, defineService, envList, envUrl, HOST_PATTERN, PeriodicDelete, Type } from "../../kit";
import { BUSINESS_TOPICS, type BillingEventMsg, type PaymentEventMsg } from "../../business/events";
import type { ComplianceAlert } from "../../trading/compliance";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { emailChannel, SMTP_SEND_BOUND_MS, telegramChannel, webhookChannel } from "./channels";
import { deleteOldDeliveries } from "./data";
import { fromBillingEvent, fromComplianceAlert, fromExecution, fromOrderEvent, fromPaymentEvent, type Notice } from "./domain";
import { registerRoutes } from "./routes";
import { ingest, Sender, type Channels } from "./worker";

/** What a lease leaves beyond the slowest send: the delivery's own statements and the rate limit's round trip. */
const LEASE_MARGIN_MS = 10_000;

/**
 * A TCP port (1 to 65535) that is none of WEBHOOK_REFUSED_PORTS (catalog/addresses.ts): a webhook's
 * signed POST of a user-chosen body to a service speaking another protocol there (SSH, SMTP, IMAP, ...)
 * would read as its commands, and a datastore's or cluster service's port (PostgreSQL 5432, etcd 2379,
 * the kubelet 10250, ...) would let a user probe hosts for it. The stack refuses them too
 * (notifyWebhookPorts), naming the key.
 */
const WEBHOOK_PORT = `^(?!(${WEBHOOK_REFUSED_PORTS.join("|")})$)([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`;

/** The webhook channel, or a ConfigError naming NOTIFY_WEBHOOK_DNS_SERVERS when a server is not an address. */
function webhookOrConfigError(make: () => ReturnType<typeof webhookChannel>): ReturnType<typeof webhookChannel> {
  try {
    return make();
  } catch (err) {
    throw new ConfigError("notification-service", [`NOTIFY_WEBHOOK_DNS_SERVERS: ${(err as Error).message.slice(0, 200)}`]);
  }
}

/** Topic -> notice. A message of the wrong shape throws and is skipped (logged) by the caller. */
const toNotice: Record<string, (v: never) => Notice | null> = {
  [TOPICS.executions]: (v: ExecutionMsg) => fromExecution(v),
  [TOPICS.orders]: (v: OrderEventMsg) => fromOrderEvent(v),
  [TOPICS.complianceAlerts]: (v: ComplianceAlert) => fromComplianceAlert(v),
  [BUSINESS_TOPICS.billing]: (v: BillingEventMsg) => fromBillingEvent(v),
  [BUSINESS_TOPICS.payments]: (v: PaymentEventMsg) => fromPaymentEvent(v),
};

export default defineService({
  name: "notification-service",
  config: {
    ...consumerEnv,
    NOTIFY_CONSUMER_GROUP: Type.String({ default: "notification-service" }),
    // A host alone (session 50): a scheme, a port or a login written into it was taken and failed at the first send.
    SMTP_HOST: Type.Optional(Type.String({ pattern: HOST_PATTERN, description: "SMTP relay, a host name or IP address (its port in SMTP_PORT, its login in SMTP_USER/SMTP_PASSWORD); without it e-mail is off" })),
    SMTP_PORT: Type.Integer({ default: 587, minimum: 1, maximum: 65535, description: "the relay's port (587 STARTTLS, 465 implicit TLS, 25, 2525, ...), never another protocol's (SSH 22, DNS 53, IMAP 143, ...: catalog/addresses.ts smtpPortProblem, the stack's smtpPort rule)" }),
    SMTP_SECURE: Type.Boolean({ default: false, description: "implicit TLS (port 465); otherwise STARTTLS" }),
    SMTP_REQUIRE_TLS: Type.Boolean({ default: true, description: "refuse to send (or authenticate) without STARTTLS" }),
    SMTP_TLS_REJECT_UNAUTHORIZED: Type.Boolean({ default: true }),
    SMTP_USER: Type.Optional(Type.String({ minLength: 1 })),
    SMTP_PASSWORD: Type.Optional(Type.String({ secret: true })),
    SMTP_FROM: Type.String({ default: "AI Trading <notifications@localhost>", pattern: "^[^\\r\\n]+@[^\\r\\n]+$", description: "one line with an e-mail address" }),
    TELEGRAM_BOT_TOKEN: Type.Optional(Type.String({ secret: true, pattern: "^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$" })),
    TELEGRAM_API_URL: envUrl({ protocols: ["https"], httpToLoopback: true, default: "https://api.telegram.org", description: "the Bot API (https; http only to a loopback stand-in)" }),
    NOTIFY_HTTP_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
    NOTIFY_WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false, description: "tests/dev only: http and private addresses for webhooks" }),
    NOTIFY_WEBHOOK_PORTS: envList(Type.String({ pattern: WEBHOOK_PORT, description: "a TCP port, 1 to 65535, none of the Fetch standard's bad ports (SSH, SMTP, IMAP, ...) nor a datastore's or cluster service's (PostgreSQL 5432, etcd 2379, the kubelet 10250, ...: catalog/addresses.ts)" }), { default: ["443"], description: "the ports a webhook URL may name (comma-separated); https's 443 unless the operator lists others (the stack's notifyWebhookPorts)" }),
    NOTIFY_WEBHOOK_DNS_SERVERS: Type.Optional(envList(Type.String({ minLength: 1, maxLength: 64 }), { description: "name servers for webhook hosts (ip or ip:port, comma-separated); the system's when unset" })),
    NOTIFY_MAX_WEBHOOKS: Type.Integer({ default: 5, minimum: 1, maximum: 100 }),
    NOTIFY_MAX_ATTEMPTS: Type.Integer({ default: 8, minimum: 1, maximum: 50 }),
    NOTIFY_BACKOFF_BASE_MS: Type.Integer({ default: 2_000, minimum: 1, maximum: 3_600_000, atMost: { key: "NOTIFY_BACKOFF_MAX_MS", why: "the first retry's wait, doubled up to the cap: above it every retry would wait the cap and the base mean nothing" } }),
    NOTIFY_BACKOFF_MAX_MS: Type.Integer({ default: 3_600_000, minimum: 1, maximum: 86_400_000 }),
    NOTIFY_RATE_LIMIT_MAX: Type.Integer({ default: 30, minimum: 1, maximum: 10_000, description: "messages per user and channel per window" }),
    NOTIFY_MAX_PENDING_PER_CHANNEL: Type.Integer({ default: 500, minimum: 1, maximum: 100_000, description: "deliveries of one user that may wait on one channel (rate limit, quiet hours, retries); a notice beyond is not queued there" }),
    NOTIFY_RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 3_600_000, minimum: 1_000, maximum: 2_592_000_000, description: "1 s to 30 days" }),
    NOTIFY_WORKER_INTERVAL_MS: Type.Integer({ default: 500, minimum: 10 }),
    NOTIFY_BATCH: Type.Integer({ default: 20, minimum: 1, maximum: 500 }),
    NOTIFY_LEASE_MS: Type.Integer({ default: 60_000, minimum: 1_000, maximum: 3_600_000 }),
    /** Days a delivery is kept once sent or dead (the user's history, GET /deliveries; dead letters with it), then deleted. */
    NOTIFY_RETENTION_DAYS: Type.Integer({ default: 90, minimum: 1, maximum: 3_650 }),
  },
  async register(ctx) {
    const { app, config: c } = ctx;
    // A claimed batch must be done before its lease ends, or another replica sends it again: its
    // slowest send is bounded by the HTTP timeout (webhook, Telegram) and, with e-mail on, the SMTP clocks.
    const slowestSendMs = Math.max(c.NOTIFY_HTTP_TIMEOUT_MS, c.SMTP_HOST ? SMTP_SEND_BOUND_MS : 0);
    if (c.NOTIFY_LEASE_MS < slowestSendMs + LEASE_MARGIN_MS)
      throw new ConfigError("notification-service", [`NOTIFY_LEASE_MS (${c.NOTIFY_LEASE_MS}) must be at least ${LEASE_MARGIN_MS} ms above the slowest send (${slowestSendMs} ms: NOTIFY_HTTP_TIMEOUT_MS${c.SMTP_HOST ? ", the SMTP timeouts" : ""})`]);
    const smtpProblem = smtpPortProblem(c.SMTP_PORT);
    if (smtpProblem !== undefined) throw new ConfigError("notification-service", [`SMTP_PORT ${smtpProblem}`]);
    if (c.SMTP_USER && !c.SMTP_HOST) ctx.log.warn("SMTP_USER is set without SMTP_HOST: e-mail stays off");
    const email = c.SMTP_HOST
      ? emailChannel({ host: c.SMTP_HOST, port: c.SMTP_PORT, secure: c.SMTP_SECURE, requireTls: c.SMTP_REQUIRE_TLS, rejectUnauthorized: c.SMTP_TLS_REJECT_UNAUTHORIZED, user: c.SMTP_USER, password: c.SMTP_PASSWORD, from: c.SMTP_FROM })
      : undefined;
    if (email) ctx.onClose(() => email.close());
    const telegram = c.TELEGRAM_BOT_TOKEN ? telegramChannel(c.TELEGRAM_API_URL.replace(/\/+$/, ""), c.TELEGRAM_BOT_TOKEN, c.NOTIFY_HTTP_TIMEOUT_MS) : undefined;
    const webhookPorts = c.NOTIFY_WEBHOOK_PORTS.map(Number);
    const channels: Channels = {
      email,
      telegram,
      webhook: webhookOrConfigError(() => webhookChannel({ timeoutMs: c.NOTIFY_HTTP_TIMEOUT_MS, allowPrivate: c.NOTIFY_WEBHOOK_ALLOW_PRIVATE, ports: webhookPorts, dnsServers: c.NOTIFY_WEBHOOK_DNS_SERVERS })),
    };
    ctx.log.info({ email: !!channels.email, telegram: !!channels.telegram, webhook: true }, "notification channels");
    registerRoutes(app, { allowPrivateWebhooks: c.NOTIFY_WEBHOOK_ALLOW_PRIVATE, webhookPorts, maxWebhooks: c.NOTIFY_MAX_WEBHOOKS, maxPendingPerChannel: c.NOTIFY_MAX_PENDING_PER_CHANNEL, sendCode: { email: email && ((to, m) => email.send(to, m)), telegram: telegram && ((chat, m) => telegram.send(chat, m)) }, log: ctx.log });

    const sent = new Counter({ name: "notifications_total", help: "Delivery attempts by channel and outcome (sent, retry, dead, rate_limited; dropped: not queued, the user's backlog on the channel full)", labelNames: ["channel", "outcome"] as const, registers: [ctx.metrics.registry] });
    const sender = new Sender(app.pg, app.redis, channels, {
      batch: c.NOTIFY_BATCH, leaseMs: c.NOTIFY_LEASE_MS, maxAttempts: c.NOTIFY_MAX_ATTEMPTS, backoffBaseMs: c.NOTIFY_BACKOFF_BASE_MS,
      backoffMaxMs: c.NOTIFY_BACKOFF_MAX_MS, rateLimitMax: c.NOTIFY_RATE_LIMIT_MAX, rateLimitWindowMs: c.NOTIFY_RATE_LIMIT_WINDOW_MS,
    }, ctx.log, sent);

    let running: Promise<unknown> | undefined;
    const loop = () => {
      running ??= (async () => {
        while ((await sender.tick()) > 0); // claim while there is room and work, without waiting for the next tick
      })()
        .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "delivery pass failed"))
        .finally(() => (running = undefined));
    };
    const timer = setInterval(loop, c.NOTIFY_WORKER_INTERVAL_MS);
    ctx.onClose(async () => {
      clearInterval(timer);
      await running;
      await sender.idle();
    });
    const old = new PeriodicDelete("old notifications (sent and dead)", () => deleteOldDeliveries(app.pg, c.NOTIFY_RETENTION_DAYS * 86_400, 5_000), ctx.log);
    old.start();
    ctx.onClose(() => old.stop());

    await consumeBatches(ctx, {
      groupId: c.NOTIFY_CONSUMER_GROUP,
      topics: Object.keys(toNotice),
      handle: async (msgs) => {
        let queued = 0;
        for (const m of msgs) {
          let n: Notice | null;
          try {
            n = toNotice[m.topic](JSON.parse(m.value) as never);
          } catch {
            ctx.log.warn({ topic: m.topic, key: m.key }, "malformed event skipped");
            continue;
          }
          if (!n || typeof n.userId !== "string" || !n.userId) continue;
          const r = await ingest(app.pg, channels, n, { maxPendingPerChannel: c.NOTIFY_MAX_PENDING_PER_CHANNEL });
          queued += r.queued;
          for (const d of r.dropped) {
            sent.inc({ channel: d.channel, outcome: "dropped" }, d.targets);
            // Debug: one line per notice would let the user who fills the backlog flood the log too (the counter is the signal).
            ctx.log.debug({ userId: n.userId, channel: d.channel, kind: n.kind, notice: n.dedupKey, maxPending: c.NOTIFY_MAX_PENDING_PER_CHANNEL }, "notice not queued: the user's backlog on this channel is full");
          }
        }
        if (queued) loop();
      },
    });
  },
});
