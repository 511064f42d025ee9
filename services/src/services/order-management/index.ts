/**
 * order-management (9002): the order lifecycle in PostgreSQL.
 * Each order gets the pre-trade risk check (shared module, in-process: see trading/infra/riskContext.ts)
 * before acceptance; a breach stores the order as `rejected` with the named reason. Every state
 * change goes to `trading.orders` through the transactional outbox (om_outbox). Fills and exchange
 * outcomes are consumed from `trading.executions` (deduped by fill id / event id).
 *
 * Layers: routes.ts (HTTP), executions.ts (the consumer), metrics.ts, domain.ts (rules, no I/O), data.ts (SQL).
 */
import { defineService, Type } from "../../kit";
import { TOPICS, type ExecutionMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { OutboxRelay } from "../../trading/infra/outbox";
import { riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { applyExecution } from "./executions";
import { createOrderMetrics } from "./metrics";
import { registerRoutes } from "./routes";

export default defineService({
  name: "order-management",
  config: {
    ...consumerEnv,
    ...riskEnv,
    OM_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    OM_CONSUMER_GROUP: Type.String({ default: "order-management" }),
  },
  async register(ctx) {
    const { app } = ctx;
    const relay = new OutboxRelay(app.pg.pool, "om_outbox", app.kafka, ctx.log, { intervalMs: ctx.config.OM_OUTBOX_INTERVAL_MS });
    const metrics = createOrderMetrics(ctx.metrics.registry);
    registerRoutes(app, { relay, limits: riskLimitsFrom(ctx.config), metrics });

    relay.start();
    ctx.onClose(() => relay.stop());
    // One transaction per fetched batch of executions.
    await consumeBatches(ctx, {
      groupId: ctx.config.OM_CONSUMER_GROUP,
      topics: [TOPICS.executions],
      handle: async (msgs) => {
        const outcomes = await app.pg.transaction(async (c) => {
          const out = [];
          for (const m of msgs) out.push(await applyExecution(c, JSON.parse(m.value) as ExecutionMsg, ctx.log));
          return out;
        });
        // Observed once committed: a batch that is retried is not counted twice.
        for (const o of outcomes) if (o.fillLatencySeconds !== undefined) metrics.fillLatency.observe(o.fillLatencySeconds);
        if (outcomes.some((o) => o.changed)) relay.notify();
      },
    });
  },
});
