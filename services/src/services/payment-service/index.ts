/**
 * payment-service (8013): payment intents with idempotency keys, refunds, a double-entry ledger in
 * PostgreSQL, the card processor (Stripe's API) with signed webhooks (webhooks.ts), and reconciliation jobs for
 * open intents (payments.ts), pending refunds and recently succeeded ones (refund-reconciler.ts), and
 * the processor customers of deleted accounts (deleted-customers.ts).
 * Emits `payments.events` through the transactional outbox (pay_outbox). Routes: routes.ts and
 * payment-method-routes.ts; use cases: payments.ts, payment-methods.ts (only a card saved to the
 * payer is charged); data access: repo.ts, payment-method-data.ts; pure domain: domain/.
 *
 * Without PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET (stack secrets
 * `paymentProcessorApiKey`, `paymentWebhookSecret`) the service runs read-only: charging, refunds
 * and webhooks answer 404 PROCESSOR_NOT_CONFIGURED (a client cannot cause a 5xx) and /ready reports `processor: disabled`.
 * With them, /ready also waits for the charge-lock connections (`charge-locks`, charge-locks.ts checkReady).
 */
import { Counter, Gauge } from "prom-client";
import { setting } from "../../catalog";
import { ConfigError, defineService, envUrl, PeriodicDelete, RECORD_RETENTION_DAYS, Type } from "../../kit";
import { OutboxRelay } from "../../trading/infra/outbox";
import { HOUR_MS, outboxRetentionHours } from "../../trading/infra/outboxRetention";
import { ChargeLocks } from "./charge-locks";
import { Payments } from "./payments";
import { inFlightBoundMs } from "./domain/refund-settlement";
import { webhookEventRetentionFloorDays } from "./domain/webhook-retention";
import { CardProcessor, MAX_NETWORK_RETRIES, MAX_RETRY_DELAY_MS } from "./processor";
import { RefundIssues } from "./refund-issues";
import { RefundIssueSettler } from "./refund-issue-settle";
import { RefundReconciler } from "./refund-reconciler";
import { RefundRepo } from "./refund-repo";
import { PaymentMethodData } from "./payment-method-data";
import { registerPaymentMethodRoutes } from "./payment-method-routes";
import { PaymentMethods } from "./payment-methods";
import { OUTBOX, PaymentRepo } from "./repo";
import { registerRoutes } from "./routes";

/** How long a request the processor received as our client gave up may take to finish there. */
const PROCESSOR_GRACE_MS = 60_000;

/**
 * A charge's wait for a lock connection (its own timer, charge-locks.ts acquire) must end before the
 * lock pool's own bound, POSTGRES_CONNECT_TIMEOUT_MS (the making's): at or over it the pool's timeout
 * ends the wait first, the wait set is void, and a charge that met connections still being made
 * answers a datastore outage instead of 503 CHARGE_LOCKS_BUSY. The stack refuses it at preview too
 * (catalog/service-settings.ts SETTING_RELATIONS); the two keys are of two schemas, so no `atMost`.
 */
function refuseChargeLockWaitPastConnectBound(waitMs: number, connectTimeoutMs: number): void {
  if (waitMs >= connectTimeoutMs)
    throw new ConfigError("payment-service", [
      `PAYMENT_CHARGE_LOCK_WAIT_MS (${waitMs}) must be below POSTGRES_CONNECT_TIMEOUT_MS (${connectTimeoutMs}): a charge's wait for a lock connection runs inside the pool's bound on making one; at or over it a charge meeting connections still being made answers a datastore outage, not 503 CHARGE_LOCKS_BUSY`,
    ]);
}

export default defineService({
  name: "payment-service",
  config: {
    PAYMENT_PROCESSOR_URL: envUrl({ default: "https://api.stripe.com", protocols: ["https"], httpToLoopback: true, description: "the processor's API base URL (https; http only to a loopback stand-in)" }),
    PAYMENT_PROCESSOR_API_KEY: Type.Optional(Type.String({ secret: true, minLength: 8, description: "processor secret API key (stack secret paymentProcessorApiKey)" })),
    PAYMENT_WEBHOOK_SECRET: Type.Optional(Type.String({ secret: true, minLength: 8, description: "webhook signing secret (stack secret paymentWebhookSecret)" })),
    PAYMENT_WEBHOOK_TOLERANCE_S: Type.Integer({ default: 300, minimum: 1, maximum: 3600, description: "max age of a webhook signature timestamp" }),
    PAYMENT_PROCESSOR_TIMEOUT_MS: Type.Integer({
      ...setting("payment-service", "PAYMENT_PROCESSOR_TIMEOUT_MS"),
      description: "bound on one attempt of a processor request (the SDK retries a failed one twice, same idempotency key)",
      atMost: { key: "PAYMENT_CHARGE_DEADLINE_MS", why: "each attempt of a charge runs inside the charge's deadline: a longer one is cut at the deadline" },
    }),
    // One deadline for the whole processor call of a charge, the SDK's retries inside it (processor.ts):
    // below the gateway's PROXY_TIMEOUT_MS with the lock wait, so the client hears the charge's outcome
    // (or that it is unknown) and not a 504 for a charge that was made (the stack config judges the sum).
    PAYMENT_CHARGE_DEADLINE_MS: Type.Integer({ ...setting("payment-service", "PAYMENT_CHARGE_DEADLINE_MS"), description: "a charge's processor call, every attempt and the SDK's retry sleeps, ends this long after it began: an attempt is cut there and none starts after it; the outcome is then unknown (the intent stays created, settled by reconciliation or the processor's webhook)" }),
    // A charge's account lock through its processor call (charge-locks.ts): connections of their own.
    PAYMENT_CHARGE_LOCK_CONNECTIONS: Type.Integer({ ...setting("payment-service", "PAYMENT_CHARGE_LOCK_CONNECTIONS"), description: "connections of a pool of their own on which charges hold their account's lock through the processor call (apart from POSTGRES_POOL_MAX): the charges at the processor at once" }),
    PAYMENT_CHARGE_LOCK_WAIT_MS: Type.Integer({ ...setting("payment-service", "PAYMENT_CHARGE_LOCK_WAIT_MS"), description: "how long a charge waits for a free charge-lock connection before answering 503 CHARGE_LOCKS_BUSY (nothing recorded or sent)" }),
    PAYMENT_CHARGE_LOCK_HOLD_MS: Type.Integer({ default: 120_000, minimum: 1_000, maximum: 3_600_000, description: "idle_in_transaction_session_timeout and statement_timeout of the charge-lock connections: a lock held longer (a call stuck past the processor's retry budget) is ended by the server; over every attempt of one processor request at PAYMENT_PROCESSOR_TIMEOUT_MS with the SDK's retry sleeps" }),
    PAYMENT_IDEMPOTENT_WAIT_MS: Type.Integer(setting("payment-service", "PAYMENT_IDEMPOTENT_WAIT_MS")),
    PAYMENT_RECONCILE_INTERVAL_MS: Type.Integer({ default: 60_000, minimum: 0, description: "0 disables the periodic pass (POST /reconcile still works)" }),
    PAYMENT_RECONCILE_GRACE_MS: Type.Integer({ default: 120_000, minimum: 0, description: "age before an open intent is looked up at the processor; one the processor has no record of is closed (never_reached_processor) only once also older than the in-flight bound of one processor request (PAYMENT_PROCESSOR_TIMEOUT_MS's attempts, the SDK's retry sleeps, a minute's grace)" }),
    PAYMENT_NEVER_REACHED_RECHECK_DAYS: Type.Integer({ default: 30, minimum: 1, maximum: 180, description: "an intent reconciliation failed as never_reached_processor is looked up at the processor again for this many days after (every pass within the in-flight bound, then at most once an hour): a charge the processor reports later, its webhook lost, is booked" }),
    PAYMENT_REFUND_RECONCILE_AGE_MS: Type.Integer({ default: 900_000, minimum: 0, description: "age (since its request was last sent) before a pending refund is looked up at the processor and settled; at least the in-flight bound of one processor request" }),
    PAYMENT_REFUND_RECHECK_DAYS: Type.Integer({ default: 30, minimum: 0, maximum: 180, description: "succeeded refunds are looked up at the processor again for this many days after they succeeded, so one that fails later (its webhook lost) is reversed; 0 disables" }),
    PAYMENT_REFUND_RECHECK_EVERY_MINUTES: Type.Integer({ default: 360, minimum: 5, maximum: 10_080, description: "how often one succeeded refund is re-checked at most (each pass takes at most 100, least recently checked first)" }),
    PAYMENT_MAX_METHODS_PER_USER: Type.Integer({ default: 20, minimum: 1, maximum: 1_000, description: "payment methods one user may have saved (POST /payment-methods beyond: 409 PAYMENT_METHODS_LIMIT naming paymentMethod)" }),
    PAYMENT_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    // Sent rows kept this long, then deleted (trading/infra/outboxRetention.ts).
    PAYMENT_OUTBOX_RETENTION_HOURS: outboxRetentionHours(),
    // Handled webhook event ids (pay_webhook_events) kept this long, then deleted: at least the
    // processor's retries (domain/webhook-retention.ts, 5 days by default), else the service refuses to start.
    PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 1, maximum: 36_500 }),
    PAYMENT_REFUND_ISSUE_RETENTION_DAYS: Type.Integer({
      ...RECORD_RETENTION_DAYS,
      description: "a resolved refund issue (GET /refund-issues) is deleted this long after it was resolved, open ones never: the record of money an operator judged, kept as the platform's other records (the kit's RECORD_RETENTION_DAYS: 7 years by default, at least 5)",
    }),
  },
  async register(ctx) {
    const c = ctx.config;
    if ((c.PAYMENT_PROCESSOR_API_KEY === undefined) !== (c.PAYMENT_WEBHOOK_SECRET === undefined))
      throw new ConfigError("payment-service", ["PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET must be set together"]);
    // A refund request sent this long ago can no longer reach the processor (refund-settlement.ts); a
    // refund pending for a shorter age would only ever wait, so a shorter setting is refused.
    const inFlightMs = inFlightBoundMs({ timeoutMs: c.PAYMENT_PROCESSOR_TIMEOUT_MS, maxNetworkRetries: MAX_NETWORK_RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS, processorGraceMs: PROCESSOR_GRACE_MS });
    if (c.PAYMENT_REFUND_RECONCILE_AGE_MS <= inFlightMs)
      throw new ConfigError("payment-service", [`PAYMENT_REFUND_RECONCILE_AGE_MS must be over ${inFlightMs} (every attempt of one processor request at PAYMENT_PROCESSOR_TIMEOUT_MS, with the SDK's retry sleeps and a minute's grace)`]);
    // A lock ended by its timeouts while the call still runs would let a deletion commit before the
    // charge's answer: the timeouts outlast every attempt of one request (no grace: our side gives up then).
    const callBudgetMs = inFlightBoundMs({ timeoutMs: c.PAYMENT_PROCESSOR_TIMEOUT_MS, maxNetworkRetries: MAX_NETWORK_RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS, processorGraceMs: 0 });
    if (c.PAYMENT_CHARGE_LOCK_HOLD_MS <= callBudgetMs)
      throw new ConfigError("payment-service", [`PAYMENT_CHARGE_LOCK_HOLD_MS (${c.PAYMENT_CHARGE_LOCK_HOLD_MS}) must be over ${callBudgetMs}: every attempt of one processor request at PAYMENT_PROCESSOR_TIMEOUT_MS (${c.PAYMENT_PROCESSOR_TIMEOUT_MS}) with the SDK's retry sleeps; a charge's account lock ended sooner lets a deletion commit while its card is charged`]);
    refuseChargeLockWaitPastConnectBound(c.PAYMENT_CHARGE_LOCK_WAIT_MS, ctx.datastores.configs.postgres!.POSTGRES_CONNECT_TIMEOUT_MS);
    const webhookFloorDays = webhookEventRetentionFloorDays(c.PAYMENT_WEBHOOK_TOLERANCE_S);
    if (c.PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS < webhookFloorDays)
      throw new ConfigError("payment-service", [
        `PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS (${c.PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS}) must be at least ${webhookFloorDays}: the processor's webhook retries (3 days), PAYMENT_WEBHOOK_TOLERANCE_S and a day's margin; a webhook redelivered after its event id was deleted would be applied again`,
      ]);
    const processor =
      c.PAYMENT_PROCESSOR_API_KEY && c.PAYMENT_WEBHOOK_SECRET
        ? new CardProcessor({ apiKey: c.PAYMENT_PROCESSOR_API_KEY, webhookSecret: c.PAYMENT_WEBHOOK_SECRET, url: c.PAYMENT_PROCESSOR_URL, webhookToleranceS: c.PAYMENT_WEBHOOK_TOLERANCE_S, timeoutMs: c.PAYMENT_PROCESSOR_TIMEOUT_MS, chargeDeadlineMs: c.PAYMENT_CHARGE_DEADLINE_MS })
        : undefined;
    // The log names the settings (an operator's); /ready, which anyone reaching the service reads, does not.
    if (!processor) {
      const unset = [...(c.PAYMENT_PROCESSOR_API_KEY ? [] : ["PAYMENT_PROCESSOR_API_KEY"]), ...(c.PAYMENT_WEBHOOK_SECRET ? [] : ["PAYMENT_WEBHOOK_SECRET"])];
      ctx.log.warn({ unset }, "card processor not configured: payments are read-only");
    }
    ctx.addReadinessCheck("processor", async () => {
      if (!processor) throw new Error("disabled: no card processor configured (payments are read-only)");
    }, { required: false });

    const pg = ctx.app.pg;
    const relay = new OutboxRelay(pg.pool, OUTBOX, ctx.app.kafka, ctx.log, { intervalMs: c.PAYMENT_OUTBOX_INTERVAL_MS, retention: { retentionMs: c.PAYMENT_OUTBOX_RETENTION_HOURS * HOUR_MS } });
    const repo = new PaymentRepo(pg);
    const issueCounts = new Counter({ name: "payment_refund_issues_total", help: "refunds recorded for an operator (GET /refund-issues), by kind: exceeds_payment, not_found, amount_mismatch, currency_mismatch; once each", labelNames: ["kind"], registers: [ctx.metrics.registry] });
    const issues = new RefundIssues(pg, ctx.log, issueCounts);
    const refundRepo = new RefundRepo(pg, repo, issues);
    const methods = new PaymentMethods(new PaymentMethodData(pg), processor, ctx.log, c.PAYMENT_MAX_METHODS_PER_USER);
    const chargeLocks = new ChargeLocks(ctx.datastores.configs.postgres!, ctx.log.child({ pool: "charge-locks" }), {
      connections: c.PAYMENT_CHARGE_LOCK_CONNECTIONS,
      waitMs: c.PAYMENT_CHARGE_LOCK_WAIT_MS,
      holdMs: c.PAYMENT_CHARGE_LOCK_HOLD_MS,
      // A lock connection frees when a charge's processor attempt ends: at most PAYMENT_PROCESSOR_TIMEOUT_MS.
      retryAfterS: Math.ceil(c.PAYMENT_PROCESSOR_TIMEOUT_MS / 1000),
      // One being made is open (or failed, and made again) by then.
      openingRetryAfterS: Math.ceil(ctx.datastores.configs.postgres!.POSTGRES_CONNECT_TIMEOUT_MS / 1000),
    });
    // Opened now, in the background, and kept open; without a processor no charge takes one.
    if (processor) {
      chargeLocks.keepOpen();
      // Not ready until they are open (and while a dropped one cannot be opened again): a charge sent
      // to a replica the probe called ready took a connection still being made and answered 503.
      ctx.addReadinessCheck("charge-locks", async () => chargeLocks.checkReady());
    }
    ctx.onClose(() => chargeLocks.close());
    new Gauge({
      name: "payment_charge_lock_connections",
      help: "charge-lock connections open, by state: idle, held (by a charge at the processor); below PAYMENT_CHARGE_LOCK_CONNECTIONS in sum while dropped ones are opened again",
      labelNames: ["state"],
      registers: [ctx.metrics.registry],
      collect() {
        for (const [state, n] of Object.entries(chargeLocks.connectionStates())) this.set({ state }, n);
      },
    });
    const payments = new Payments(repo, processor, ctx.log, { idempotentWaitMs: c.PAYMENT_IDEMPOTENT_WAIT_MS, reconcileGraceMs: c.PAYMENT_RECONCILE_GRACE_MS, inFlightMs, neverReachedRecheckMs: c.PAYMENT_NEVER_REACHED_RECHECK_DAYS * 86_400_000 }, () => relay.notify(), methods, refundRepo, chargeLocks, issues);
    const webhooks = new Counter({ name: "payment_webhooks_total", help: "processor webhooks by outcome", labelNames: ["outcome"], registers: [ctx.metrics.registry] });
    const refundOutcomes = new Counter({ name: "payment_refunds_reconciled_total", help: "pending refunds looked at by the refund reconciler, by outcome", labelNames: ["outcome"], registers: [ctx.metrics.registry] });
    const recheckOutcomes = new Counter({ name: "payment_refunds_rechecked_total", help: "succeeded refunds looked up again at the processor, by outcome", labelNames: ["outcome"], registers: [ctx.metrics.registry] });
    const refunds =
      processor &&
      new RefundReconciler(
        pg,
        refundRepo,
        processor,
        ctx.log,
        { ageMs: c.PAYMENT_REFUND_RECONCILE_AGE_MS, inFlightMs, leaseMs: inFlightMs, recheckDays: c.PAYMENT_REFUND_RECHECK_DAYS, recheckEveryMs: c.PAYMENT_REFUND_RECHECK_EVERY_MINUTES * 60_000 },
        refundOutcomes,
        () => relay.notify(),
        recheckOutcomes,
      );
    const settler = new RefundIssueSettler(pg, issues, refundRepo, repo, processor, ctx.log, () => relay.notify());
    registerRoutes(ctx.app, { payments, refunds, customers: methods.deletedCustomers, repo, refundRepo, issues, settler, processor, onWebhook: (outcome) => webhooks.inc({ outcome }) });
    registerPaymentMethodRoutes(ctx.app, methods);

    relay.start();
    ctx.onClose(() => relay.stop());
    // Webhook event ids past the retention, 5,000 a pass (the kit's PeriodicDelete: a batch a minute, a second apart through a backlog).
    const webhookEventsExpired = new PeriodicDelete("pay_webhook_events rows past the retention", () => repo.deleteWebhookEventsPastRetention(c.PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS, 5_000), ctx.log);
    webhookEventsExpired.start();
    ctx.onClose(() => webhookEventsExpired.stop());
    // Resolved refund issues past their retention, the same way.
    const issuesExpired = new PeriodicDelete("pay_refund_issues resolved past the retention", () => issues.deleteResolvedPastRetention(c.PAYMENT_REFUND_ISSUE_RETENTION_DAYS, 5_000), ctx.log);
    issuesExpired.start();
    ctx.onClose(() => issuesExpired.stop());
    if (refunds && c.PAYMENT_RECONCILE_INTERVAL_MS > 0) {
      let running: Promise<unknown> | undefined;
      const timer = setInterval(() => {
        running ??= payments
          .reconcile()
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "reconciliation pass failed"))
          .then(() => refunds.sweep())
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "refund reconciliation pass failed"))
          .then(() => refunds.recheck())
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "succeeded refunds' re-check failed"))
          .then(() => methods.deletedCustomers?.sweep())
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "deleted accounts' processor customers' pass failed"))
          .finally(() => (running = undefined));
      }, c.PAYMENT_RECONCILE_INTERVAL_MS);
      ctx.onClose(async () => {
        clearInterval(timer);
        await running;
      });
    }
  },
});
