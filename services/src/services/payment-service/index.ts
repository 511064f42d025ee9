/**
 * payment-service (8013): payment intents with idempotency keys, refunds, a double-entry ledger in
 * PostgreSQL, the card processor (Stripe's API) with signed webhooks, and a reconciliation job.
 * Emits `payments.events` through the transactional outbox (pay_outbox). Routes: routes.ts and
 * payment-method-routes.ts; use cases: payments.ts, payment-methods.ts (only a card saved to the
 * payer is charged); data access: repo.ts, payment-method-data.ts; pure domain: domain/.
 *
 * Without PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET (stack secrets
 * `paymentProcessorApiKey`, `paymentWebhookSecret`) the service runs read-only: charging, refunds
 * and webhooks answer 404 PROCESSOR_NOT_CONFIGURED (a client cannot cause a 5xx) and /ready reports `processor: disabled`.
 */
import { Counter } from "prom-client";
import { ConfigError, defineService, envUrl, Type } from "../../kit";
import { OutboxRelay } from "../../trading/infra/outbox";
import { HOUR_MS, outboxRetentionHours } from "../../trading/infra/outboxRetention";
import { Payments } from "./payments";
import { CardProcessor } from "./processor";
import { PaymentMethodData } from "./payment-method-data";
import { registerPaymentMethodRoutes } from "./payment-method-routes";
import { PaymentMethods } from "./payment-methods";
import { OUTBOX, PaymentRepo } from "./repo";
import { registerRoutes } from "./routes";

export default defineService({
  name: "payment-service",
  config: {
    PAYMENT_PROCESSOR_URL: envUrl({ default: "https://api.stripe.com", protocols: ["https", "http"], description: "the processor's API base URL" }),
    PAYMENT_PROCESSOR_API_KEY: Type.Optional(Type.String({ secret: true, minLength: 8, description: "processor secret API key (stack secret paymentProcessorApiKey)" })),
    PAYMENT_WEBHOOK_SECRET: Type.Optional(Type.String({ secret: true, minLength: 8, description: "webhook signing secret (stack secret paymentWebhookSecret)" })),
    PAYMENT_WEBHOOK_TOLERANCE_S: Type.Integer({ default: 300, minimum: 1, maximum: 3600, description: "max age of a webhook signature timestamp" }),
    PAYMENT_PROCESSOR_TIMEOUT_MS: Type.Integer({ default: 20_000, minimum: 100, maximum: 120_000 }),
    PAYMENT_IDEMPOTENT_WAIT_MS: Type.Integer({ default: 15_000, minimum: 0, maximum: 120_000 }),
    PAYMENT_RECONCILE_INTERVAL_MS: Type.Integer({ default: 60_000, minimum: 0, description: "0 disables the periodic pass (POST /reconcile still works)" }),
    PAYMENT_RECONCILE_GRACE_MS: Type.Integer({ default: 120_000, minimum: 0, description: "age before an open intent is reconciled" }),
    PAYMENT_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    // Sent rows kept this long, then deleted (trading/infra/outboxRetention.ts).
    PAYMENT_OUTBOX_RETENTION_HOURS: outboxRetentionHours(),
  },
  async register(ctx) {
    const c = ctx.config;
    if ((c.PAYMENT_PROCESSOR_API_KEY === undefined) !== (c.PAYMENT_WEBHOOK_SECRET === undefined))
      throw new ConfigError("payment-service", ["PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET must be set together"]);
    const processor =
      c.PAYMENT_PROCESSOR_API_KEY && c.PAYMENT_WEBHOOK_SECRET
        ? new CardProcessor({ apiKey: c.PAYMENT_PROCESSOR_API_KEY, webhookSecret: c.PAYMENT_WEBHOOK_SECRET, url: c.PAYMENT_PROCESSOR_URL, webhookToleranceS: c.PAYMENT_WEBHOOK_TOLERANCE_S, timeoutMs: c.PAYMENT_PROCESSOR_TIMEOUT_MS })
        : undefined;
    if (!processor) ctx.log.warn("card processor not configured: payments are read-only");
    ctx.addReadinessCheck("processor", async () => {
      if (!processor) throw new Error("disabled: PAYMENT_PROCESSOR_API_KEY not set");
    }, { required: false });

    const pg = ctx.app.pg;
    const relay = new OutboxRelay(pg.pool, OUTBOX, ctx.app.kafka, ctx.log, { intervalMs: c.PAYMENT_OUTBOX_INTERVAL_MS, retention: { retentionMs: c.PAYMENT_OUTBOX_RETENTION_HOURS * HOUR_MS } });
    const repo = new PaymentRepo(pg);
    const methods = new PaymentMethods(new PaymentMethodData(pg), processor, ctx.log);
    const payments = new Payments(repo, processor, ctx.log, { idempotentWaitMs: c.PAYMENT_IDEMPOTENT_WAIT_MS, reconcileGraceMs: c.PAYMENT_RECONCILE_GRACE_MS }, () => relay.notify(), methods);
    const webhooks = new Counter({ name: "payment_webhooks_total", help: "processor webhooks by outcome", labelNames: ["outcome"], registers: [ctx.metrics.registry] });
    registerRoutes(ctx.app, { payments, repo, processor, onWebhook: (outcome) => webhooks.inc({ outcome }) });
    registerPaymentMethodRoutes(ctx.app, methods);

    relay.start();
    ctx.onClose(() => relay.stop());
    if (processor && c.PAYMENT_RECONCILE_INTERVAL_MS > 0) {
      let running: Promise<unknown> | undefined;
      const timer = setInterval(() => {
        running ??= payments
          .reconcile()
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "reconciliation pass failed"))
          .finally(() => (running = undefined));
      }, c.PAYMENT_RECONCILE_INTERVAL_MS);
      ctx.onClose(async () => {
        clearInterval(timer);
        await running;
      });
    }
  },
});
