/**
 * revenue-analytics (9102): MRR, ARR, churn, ARPU and LTV of the platform from `billing.events`
 * (each carries the subscription's MRR after the change) and `payments.events` (cash collected and
 * refunded). Events are stored once per event id in PostgreSQL (ra_*), so redelivery never counts
 * twice, and metrics are computed at any instant from that history.
 * Layers: routes.ts (HTTP), domain.ts (validation, metric definitions), data.ts (SQL).
 */
import { defineService, Type } from "../../kit";
import { BUSINESS_TOPICS } from "../../business/events";
import { PoisonMessageError } from "../../trading/infra/deadLetters";
import { consumeDecoded, consumerEnv } from "../../trading/infra/kafka";
import { insertMrrChanges, insertPayments } from "./data";
import { mrrChange, paymentFact, type MrrChange, type PaymentFact } from "./domain";
import { registerRoutes } from "./routes";

export default defineService({
  name: "revenue-analytics",
  config: { ...consumerEnv, REVENUE_CONSUMER_GROUP: Type.String({ default: "revenue-analytics" }) },
  async register(ctx) {
    registerRoutes(ctx.app);
    await consumeDecoded(ctx, {
      groupId: ctx.config.REVENUE_CONSUMER_GROUP,
      topics: [BUSINESS_TOPICS.billing, BUSINESS_TOPICS.payments],
      // An event that is no fact is set aside in the dead letters with its reason (session 56: it was
      // skipped with a log line, nothing left for an operator to see or replay).
      decode: (m): MrrChange | PaymentFact => {
        const fact = m.topic === BUSINESS_TOPICS.billing ? mrrChange(m.json) : paymentFact(m.json);
        if (!fact) throw new PoisonMessageError(`${m.topic} message: not an event revenue can count (a refund event without its amounts)`);
        return fact;
      },
      handle: async (facts) => {
        const changes: MrrChange[] = [];
        const payments: PaymentFact[] = [];
        for (const fact of facts) {
          if ("mrr" in fact) changes.push(fact);
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
