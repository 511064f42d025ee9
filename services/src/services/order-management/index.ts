/**
 * order-management (9002): the order lifecycle in PostgreSQL.
 * Each order gets the pre-trade risk check (shared module, in-process: see trading/infra/riskContext.ts)
 * before acceptance; a breach stores the order as `rejected` with the named reason. Every state
 * change goes to `trading.orders` through the transactional outbox (om_outbox). Fills and exchange
 * outcomes are consumed from `trading.executions` (deduped by fill id / event id). The kill switch's
 * recorded state reaches open orders too: kill-switch.ts requests the cancel of those a halt or
 * reduce_only no longer allows, every OM_KILL_SWITCH_SWEEP_MS.
 *
 * Layers: routes.ts (HTTP), executions.ts (the consumer), kill-switch.ts (the sweeper), metrics.ts,
 * domain.ts (rules, no I/O), data.ts (SQL).
 */
import { defineService, Type } from "../../kit";
import { TOPICS, type ExecutionMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { OutboxRelay } from "../../trading/infra/outbox";
import { HOUR_MS, outboxRetentionHours } from "../../trading/infra/outboxRetention";
import { riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { orderPriceEnv, orderPriceRules } from "../../trading/orderRequest";
import { SUBMIT_COMMIT_DEADLINE_DEFAULT_MS, SUBMIT_COMMIT_DEADLINE_MAX_MS } from "../../trading/submitDeadline";
import { applyExecutionsInTransaction } from "./executions";
import { KillSwitchSweeper } from "./kill-switch";
import { createOrderMetrics } from "./metrics";
import { registerRoutes } from "./routes";
import { OrderSubmitter } from "./submit";

export default defineService({
  name: "order-management",
  config: {
    ...consumerEnv,
    ...riskEnv,
    // An order's limit price is refused off the paper exchange's tick (trading-engine's PAPER_TICK_SIZE) in paper
    // mode: it filled there at a price a real exchange refuses. Live: Binance's own filters decide.
    ...orderPriceEnv,
    OM_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    // Committed events are published at once by their committer; the relay's drain only takes rows
    // older than the grace (trading/infra/outbox.ts). false: every event goes through the drain.
    OM_OUTBOX_DIRECT: Type.Boolean({ default: true }),
    OM_OUTBOX_GRACE_MS: Type.Integer({ default: 2000, minimum: 0, maximum: 600000 }),
    // Sent rows kept this long, then deleted (trading/infra/outboxRetention.ts).
    OM_OUTBOX_RETENTION_HOURS: outboxRetentionHours(),
    OM_CONSUMER_GROUP: Type.String({ default: "order-management" }),
    // Group commit of submissions (submit.ts): orders decided per transaction, lanes (transactions at once).
    OM_SUBMIT_MAX_BATCH: Type.Integer({ default: 200, minimum: 1, maximum: 1000 }),
    // Each lane holds a pool connection while it writes. One by default: on the 2-core bench host one
    // lane's larger batches beat four lanes' parallel transactions (README "The order path").
    OM_SUBMIT_LANES: Type.Integer({ default: 1, minimum: 1, maximum: 32 }),
    // A submit's COMMIT is sent only before this much has passed since the request was read; past it the
    // transaction is rolled back (503 SUBMIT_DEADLINE_PASSED). At most SUBMIT_COMMIT_DEADLINE_MAX_MS: callers
    // (ai-orchestrator's recovery) settle a submit they gave up on by that bound (trading/submitDeadline.ts).
    OM_SUBMIT_DEADLINE_MS: Type.Integer({
      default: SUBMIT_COMMIT_DEADLINE_DEFAULT_MS, minimum: 100, maximum: SUBMIT_COMMIT_DEADLINE_MAX_MS,
      description: `a submit is never committed more than this after order-management read the request; at most ${SUBMIT_COMMIT_DEADLINE_MAX_MS} (ai-orchestrator's recovery window is computed from that maximum)`,
    }),
    // Executions gathered per transaction (consumeBatches' lingerMs). The fill reaches the trader on
    // trading.executions without order-management; what waits is the order's own status (and the
    // position the next risk check reads), up to this much later. Per fill it saves a fetch, a
    // transaction, an outbox produce and the engine's fetch of the order.filled it ignores: at
    // 200 orders/s those were a quarter of the whole stack's CPU per order (README, the order path).
    OM_EXECUTIONS_LINGER_MS: Type.Integer({ default: 25, minimum: 0, maximum: 1000 }),
    // How often the recorded kill switch is compared with the open orders (kill-switch.ts): at most
    // this long after a halt, its user's resting orders are asked to leave the book.
    OM_KILL_SWITCH_SWEEP_MS: Type.Integer({ default: 500, minimum: 20, maximum: 60000 }),
  },
  async register(ctx) {
    const { app } = ctx;
    const relay = new OutboxRelay(app.pg.pool, "om_outbox", app.kafka, ctx.log, { intervalMs: ctx.config.OM_OUTBOX_INTERVAL_MS, direct: ctx.config.OM_OUTBOX_DIRECT, graceMs: ctx.config.OM_OUTBOX_GRACE_MS, retention: { retentionMs: ctx.config.OM_OUTBOX_RETENTION_HOURS * HOUR_MS } });
    const metrics = createOrderMetrics(ctx.metrics.registry);
    const redis = () => (app.datastores.isEnabled("dragonfly") ? app.redis : undefined);
    const submitter = new OrderSubmitter(app.pg, redis, riskLimitsFrom("order-management", ctx.config), {
      maxBatch: ctx.config.OM_SUBMIT_MAX_BATCH,
      lanes: ctx.config.OM_SUBMIT_LANES,
      committed: (enqueued) => relay.notify(enqueued),
    });
    registerRoutes(app, { relay, submitter, metrics, submitDeadlineMs: ctx.config.OM_SUBMIT_DEADLINE_MS, prices: orderPriceRules("order-management", ctx.config) });

    relay.start();
    ctx.onClose(() => relay.stop());
    const sweeper = new KillSwitchSweeper(app.pg, {
      intervalMs: ctx.config.OM_KILL_SWITCH_SWEEP_MS,
      log: ctx.log,
      committed: (enqueued) => relay.notify(enqueued),
      requested: (state, n) => metrics.killSwitchCancels.inc({ state }, n),
    });
    sweeper.start();
    ctx.onClose(() => sweeper.stop());
    // One transaction per fetched batch of executions (every partition fetched together).
    await consumeBatches(ctx, {
      groupId: ctx.config.OM_CONSUMER_GROUP,
      topics: [TOPICS.executions],
      joinPartitions: 6, // the executions of every partition fetched together: one transaction
      lingerMs: ctx.config.OM_EXECUTIONS_LINGER_MS,
      handle: async (msgs) => {
        // m.json: the value the consumer already parsed and checked against the topic's schema (not parsed again here).
        const outcome = await applyExecutionsInTransaction(app.pg, msgs.map((m) => m.json as ExecutionMsg), ctx.log);
        // Observed once committed: a batch that is retried is not counted twice.
        for (const s of outcome.fillLatencySeconds) metrics.fillLatency.observe(s);
        if (outcome.enqueued !== undefined) relay.notify(outcome.enqueued);
      },
    });
  },
});
