/**
 * billing-service (8011): plans, subscriptions (trial, prorated plan changes, cancel at period
 * end), usage-based prices metered by usage-monitoring, invoices with line items, dunning.
 * Charges through payment-service (/internal/intents), learns outcomes from `payments.events`,
 * emits `billing.events` through the outbox (bil_outbox). Routes: routes.ts; use cases:
 * billing.ts; invoices, charges and payment outcomes: invoicing.ts; the consumer of payment events
 * (an unknown invoice's event parked; a held row's bounded wait): payment-events.ts; the pass over parked events
 * (applied once their invoice exists, else set aside past the wait): parked-payment-events.ts; data access: repo.ts, parking-data.ts, and the
 * cycle's selections of due rows and account states: cycle-queries.ts; the cycle's per-row isolation:
 * isolation.ts; gauges of held charges: billing-metrics.ts (their read: held-charges.ts); pure domain: domain/.
 */
import { ConfigError, defineService, envList, HttpError, PeriodicDelete, publicServiceName, Type, type ServiceContext } from "../../kit";
import { FailureStreak } from "../../kit/failure-streak";
import { BUSINESS_TOPICS } from "../../business/events";
import { deadLettersCounter, HandlerUnavailableError } from "../../trading/infra/deadLetters";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { OutboxRelay } from "../../trading/infra/outbox";
import { HOUR_MS, outboxRetentionHours } from "../../trading/infra/outboxRetention";
import { declaredLifetime } from "../../migrations/kafka";
import { Billing, type UsageSource } from "./billing";
import { processedEventRetentionFloorDays } from "./domain/event-retention";
import { refusesCharge } from "./domain/invoices";
import { ChargeHeldError, ChargeRefusedError, HELD_CHARGE_CODES, type PaymentGateway } from "./invoicing";
import { registerHeldChargeGauges } from "./billing-metrics";
import { heldCharges } from "./held-charges";
import { parkedPassIntervalMs } from "./domain/unknown-invoices";
import { ParkedPaymentEvents } from "./parked-payment-events";
import { PaymentEvents } from "./payment-events";
import { BillingRepo, OUTBOX } from "./repo";
import { registerRoutes } from "./routes";

// payments.events' retention and segment roll as the platform declares them.
const PAYMENTS_TOPIC = declaredLifetime(BUSINESS_TOPICS.payments, "bil_processed_events");

function paymentGateway(ctx: ServiceContext): PaymentGateway {
  return {
    async charge(p) {
      const r = await ctx.peers.call<{ id: string; status: string; error?: { code: string; message: string } }>("payment-service", "/internal/intents", {
        method: "POST",
        headers: { "idempotency-key": p.idempotencyKey },
        body: { userId: p.userId, amount: Number(p.amount), currency: p.currency, paymentMethod: p.paymentMethod, reference: p.reference, description: p.description },
        timeoutMs: 30_000,
      });
      const code = r.body.error?.code;
      if (code && HELD_CHARGE_CODES.has(code)) throw new ChargeHeldError(code);
      if (refusesCharge(r.status, code)) throw new ChargeRefusedError(code ?? String(r.status), `payment-service refused the charge: ${r.status} ${code ?? ""} ${r.body.error?.message ?? ""}`);
      if (r.status !== 200 && r.status !== 201) throw new Error(`payment-service answered ${r.status} ${code ?? ""}`);
      return { intentId: r.body.id, status: r.body.status };
    },
    async refund(p) {
      let r;
      try {
        r = await ctx.peers.call<{ refund?: { id?: unknown; status?: unknown }; error?: { code: string; message: string } }>("payment-service", `/internal/intents/${encodeURIComponent(p.intentId)}/refunds`, {
          method: "POST",
          headers: { "idempotency-key": p.idempotencyKey },
          body: { amount: Number(p.amount), reason: p.reason },
          timeoutMs: 30_000,
        });
      } catch (err) {
        throw new HandlerUnavailableError(`payment-service did not answer a refund: ${(err as Error).message}`, { cause: err });
      }
      const code = r.body.error?.code;
      // The refund this key made, as payment-service answered it: `pending` until payment.refunded (an answer
      // without it, from a payment-service before session 49, is taken for pending too: the event settles it).
      if (r.status === 200) return { refundId: typeof r.body.refund?.id === "string" ? r.body.refund.id : null, status: r.body.refund?.status === "succeeded" ? "succeeded" : "pending" };
      // Refused for good: a 4xx as for a charge, and no processor configured (retrying would hold up every payment event behind it).
      if (refusesCharge(r.status, code) || code === "PROCESSOR_NOT_CONFIGURED") throw new ChargeRefusedError(code ?? String(r.status), `payment-service refused the refund: ${r.status} ${code ?? ""} ${r.body.error?.message ?? ""}`);
      // Not refunded yet (payment-service or its processor unavailable, the key in use): the event is retried.
      throw new HandlerUnavailableError(`${publicServiceName("payment-service")} answered ${r.status} ${code ?? ""} to a refund`);
    },
    async isSaved(userId, paymentMethod) {
      // The reads (this one and usage's below) are cut PEER_CLOSE_GRACE_MS into the close (kit peers
      // cutOnClose): a 503 SHUTTING_DOWN before anything is written, not a close held for 10 s.
      const r = await ctx.peers.call("payment-service", `/internal/payment-methods/${encodeURIComponent(paymentMethod)}?${new URLSearchParams({ userId })}`, { timeoutMs: 10_000, cutOnClose: true });
      if (r.status === 200) return true;
      if (r.status === 404) return false;
      throw new HttpError(502, "PAYMENTS_UNAVAILABLE", `${publicServiceName("payment-service")} answered ${r.status}`);
    },
  };
}

function usageSource(ctx: ServiceContext): UsageSource {
  return {
    async units(userId, metric, from, to) {
      const q = new URLSearchParams({ userId, metric, from: from.toISOString(), to: to.toISOString() });
      const r = await ctx.peers.call<{ units: number }>("usage-monitoring", `/internal/usage/units?${q}`, { timeoutMs: 10_000, cutOnClose: true });
      if (r.status !== 200) throw new HttpError(502, "USAGE_UNAVAILABLE", `${publicServiceName("usage-monitoring")} answered ${r.status}`);
      return BigInt(r.body.units);
    },
  };
}

export default defineService({
  name: "billing-service",
  config: {
    ...consumerEnv,
    BILLING_CYCLE_INTERVAL_MS: Type.Integer({ default: 60_000, minimum: 0, description: "billing cycle period; 0 disables it (POST /cycle still runs it)" }),
    BILLING_DUNNING_RETRY_DAYS: envList(Type.Integer({ minimum: 0, maximum: 365, description: "days" }), { default: [1, 3, 5], description: "days between failed charge attempts; their count is the number of retries" }),
    BILLING_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    // Sent rows kept this long, then deleted (trading/infra/outboxRetention.ts).
    BILLING_OUTBOX_RETENTION_HOURS: outboxRetentionHours(),
    BILLING_CONSUMER_GROUP: Type.String({ default: "billing-service" }),
    // Applied payments.events ids (bil_processed_events) kept this long, then deleted: at least the longest
    // an event can come back (domain/event-retention.ts, 92 days by default), else the service refuses to start.
    BILLING_PROCESSED_EVENT_RETENTION_DAYS: Type.Integer({ default: 120, minimum: 1, maximum: 36_500 }),
    // A charge held for an operator longer than this is counted overdue (billing-metrics.ts): the invoice
    // waits on an operator's action at payment-service, and nothing else ends the hold.
    BILLING_CHARGE_HOLD_OVERDUE_DAYS: Type.Integer({ default: 7, minimum: 1, maximum: 365, description: "days a held charge may wait before it counts overdue" }),
    // A payment event naming an invoice billing does not have is parked this long (payment-events.ts), then set
    // aside in consumer_dead_letters by the periodic pass (parked-payment-events.ts; one older than a minute at
    // once); and a batch is looked at again for this long when a row it locks is held by another transaction
    // (each look's lock_timeout: what is left of it; then retried as an outage). That wait holds the partition
    // (the batch heartbeats meanwhile, but a rebalance waits for it): at most a third of the session timeout.
    BILLING_UNKNOWN_INVOICE_WAIT_MS: Type.Integer({
      default: 2_000,
      minimum: 0,
      maximum: 100_000,
      atMost: { key: "KAFKA_SESSION_TIMEOUT_MS", divisor: 3, why: "the wait holds a batch, and a rebalance begun meanwhile waits for it: Kafka throws out a member not back within KAFKA_SESSION_TIMEOUT_MS" },
      description: "how long a payment event naming an invoice billing does not have yet stays parked (then it is set aside as a dead letter; 0: at the next pass), and how long a batch waits for rows another transaction holds (then it is retried later)",
    }),
  },
  async register(ctx) {
    const c = ctx.config;
    const floorDays = processedEventRetentionFloorDays(PAYMENTS_TOPIC);
    if (c.BILLING_PROCESSED_EVENT_RETENTION_DAYS < floorDays)
      throw new ConfigError("billing-service", [
        `BILLING_PROCESSED_EVENT_RETENTION_DAYS (${c.BILLING_PROCESSED_EVENT_RETENTION_DAYS}) must be at least ${floorDays}: ${BUSINESS_TOPICS.payments}' retention, its segments' roll and a day's margin; a payment event delivered again after its row was deleted would be applied twice`,
      ]);
    const pg = ctx.app.pg;
    const relay = new OutboxRelay(pg.pool, OUTBOX, ctx.app.kafka, ctx.log, { intervalMs: c.BILLING_OUTBOX_INTERVAL_MS, retention: { retentionMs: c.BILLING_OUTBOX_RETENTION_HOURS * HOUR_MS } });
    const repo = new BillingRepo(pg);
    const billing = new Billing(repo, paymentGateway(ctx), usageSource(ctx), ctx.log, { retryAfterDays: [...c.BILLING_DUNNING_RETRY_DAYS] }, () => relay.notify());
    registerRoutes(ctx.app, { billing, repo });
    registerHeldChargeGauges(ctx.metrics.registry, () => heldCharges(pg, c.BILLING_CHARGE_HOLD_OVERDUE_DAYS), ctx.log);

    relay.start();
    ctx.onClose(() => relay.stop());
    // Applied event ids past the retention, 5,000 a pass (the kit's PeriodicDelete: a batch a minute, a second apart through a backlog).
    const processedExpired = new PeriodicDelete("bil_processed_events rows past the retention", () => repo.deleteProcessedEventsPastRetention(c.BILLING_PROCESSED_EVENT_RETENTION_DAYS, 5_000), ctx.log);
    processedExpired.start();
    ctx.onClose(() => processedExpired.stop());
    const paymentEvents = new PaymentEvents(repo, billing, ctx.log, { waitMs: c.BILLING_UNKNOWN_INVOICE_WAIT_MS, closing: ctx.closing, groupId: c.BILLING_CONSUMER_GROUP });
    await consumeBatches(ctx, {
      groupId: c.BILLING_CONSUMER_GROUP,
      topics: [BUSINESS_TOPICS.payments],
      handle: async (msgs) => {
        if (await paymentEvents.apply(msgs)) relay.notify();
      },
    });
    // Parked payment events settled a few times within the wait (a pass finding none is one indexed read).
    const parked = new ParkedPaymentEvents(repo, billing, ctx.log, { waitMs: c.BILLING_UNKNOWN_INVOICE_WAIT_MS, setAsideTotal: deadLettersCounter(ctx.metrics.registry), published: () => relay.notify() });
    let passing: Promise<unknown> | undefined;
    // An outage (PostgreSQL down) fails every pass, up to one a second: one line when it begins, one when it ends.
    const failures = new FailureStreak();
    const parkedTimer = setInterval(() => {
      passing ??= parked
        .pass()
        .then(
          () => {
            const failedPasses = failures.worked();
            if (failedPasses > 0) ctx.log.info({ failedPasses }, "passes over parked payment events work again");
          },
          (err: Error) => {
            if (failures.failed()) ctx.log.warn({ err: { message: err.message } }, "pass over parked payment events failed; the next ones try again (no more lines until one works)");
          },
        )
        .finally(() => (passing = undefined));
    }, parkedPassIntervalMs(c.BILLING_UNKNOWN_INVOICE_WAIT_MS));
    ctx.onClose(async () => {
      clearInterval(parkedTimer);
      await passing;
    });
    if (c.BILLING_CYCLE_INTERVAL_MS > 0) {
      let running: Promise<unknown> | undefined;
      const timer = setInterval(() => {
        running ??= billing
          .runCycle()
          .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "billing cycle failed"))
          .finally(() => (running = undefined));
      }, c.BILLING_CYCLE_INTERVAL_MS);
      ctx.onClose(async () => {
        clearInterval(timer);
        await running;
      });
    }
  },
});
