/**
 * usage-monitoring (9101): API usage per user, API key and route from the gateway's per-request
 * events (`platform.usage` -> ClickHouse `usage_events_ms`, to the millisecond; `usage_events`
 * holds the whole-second rows written before), and the billable units billing-service meters
 * usage-based prices with. Layers: routes.ts (HTTP), domain.ts (period, event decoding; no
 * I/O), store.ts (ClickHouse).
 */
import { defineService, Type } from "../../kit";
import { BUSINESS_TOPICS } from "../../business/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { decodeUsageEvents } from "./domain";
import { registerRoutes } from "./routes";
import { UsageStore } from "./store";

export default defineService({
  name: "usage-monitoring",
  config: {
    ...consumerEnv,
    USAGE_CONSUMER_GROUP: Type.String({ default: "usage-monitoring" }),
    USAGE_MAX_DAYS: Type.Integer({ default: 93, minimum: 1, maximum: 3660, description: "the longest period of a trader's own usage listing (GET /, a quarter by default): it reads their events of the period on each page" }),
    USAGE_ALL_MAX_DAYS: Type.Integer({ default: 31, minimum: 1, maximum: 3660, description: "the longest period of every user's usage listing (GET /all, admins): it reads every user's events of the period on each page" }),
  },
  async register(ctx) {
    const store = new UsageStore(ctx.app.clickhouse);
    registerRoutes(ctx.app, store, { ownMaxDays: ctx.config.USAGE_MAX_DAYS, allMaxDays: ctx.config.USAGE_ALL_MAX_DAYS });

    await consumeBatches(ctx, {
      groupId: ctx.config.USAGE_CONSUMER_GROUP,
      topics: [BUSINESS_TOPICS.usage],
      handle: async (msgs) => {
        const { events, unparseable } = decodeUsageEvents(msgs.map((m) => m.value));
        if (unparseable) ctx.log.warn({ topic: BUSINESS_TOPICS.usage, unparseable }, "unparseable usage events skipped");
        await store.insert(events);
      },
    });
  },
});
