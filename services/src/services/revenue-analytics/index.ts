/**
 * revenue-analytics (9102): MRR, ARR, churn, ARPU and LTV of the platform from `billing.events`
 * (each carries the subscription's MRR after the change) and `payments.events` (cash collected and
 * refunded). Events are stored once per event id in PostgreSQL (ra_*), so redelivery never counts
 * twice, and metrics are computed at any instant from that history.
 * Layers: routes.ts (HTTP), domain.ts (validation, metric definitions), data.ts (SQL).
 */
import { defineService, Type } from "../../kit";
import { BUSINESS_TOPICS } from "../../business/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { insertMrrChanges, insertPayments } from "./data";
import { mrrChange, paymentFact, type MrrChange, type PaymentFact } from "./domain";
import { registerRoutes } from "./routes";

function parse(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

export default defineService({
  name: "revenue-analytics",
  config: { ...consumerEnv, REVENUE_CONSUMER_GROUP: Type.String({ default: "revenue-analytics" }) },
  async register(ctx) {
    registerRoutes(ctx.app);
    await consumeBatches(ctx, {
      groupId: ctx.config.REVENUE_CONSUMER_GROUP,
      topics: [BUSINESS_TOPICS.billing, BUSINESS_TOPICS.payments],
      handle: async (msgs) => {
        const changes: MrrChange[] = [];
        const payments: PaymentFact[] = [];
        for (const m of msgs) {
          const raw = parse(m.value);
          const fact = m.topic === BUSINESS_TOPICS.billing ? mrrChange(raw) : paymentFact(raw);
          if (!fact) ctx.log.warn({ topic: m.topic, key: m.key }, "malformed event skipped");
          else if ("mrr" in fact) changes.push(fact);
          else payments.push(fact);
        }
        await ctx.app.pg.transaction(async (tx) => {
          await insertMrrChanges(tx, changes);
          await insertPayments(tx, payments);
        });
      },
    });
  },
});
