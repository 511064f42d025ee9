/**
 * usage-monitoring (9101): API usage per user, API key and route from the gateway's per-request
 * events (`platform.usage` -> ClickHouse `usage_events`), and the billable units billing-service
 * meters usage-based prices with.
 *   GET /?from&to                    the caller's requests, errors, p50/p95 latency per key and route (/api/usage)
 *   GET /all?from&to                 every user's (admin; /api/usage/all)
 *   GET /internal/usage/units?userId&metric&from&to   billable units (billing-service; never proxied)
 * `from`/`to` are ISO instants; default: the current UTC month.
 */
import { defineService, HttpError, requireIdentity, Type } from "../../kit";
import { BUSINESS_TOPICS, type UsageEventMsg } from "../../business/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { UsageStore } from "./store";

const Range = { from: Type.Optional(Type.String({ format: "date-time" })), to: Type.Optional(Type.String({ format: "date-time" })) };

function range(q: { from?: string; to?: string }): { from: Date; to: Date } {
  const now = new Date();
  const from = q.from ? new Date(q.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = q.to ? new Date(q.to) : new Date(now.getTime() + 1000);
  if (!(from < to)) throw new HttpError(400, "VALIDATION_ERROR", "from must be before to", "from");
  return { from, to };
}

export default defineService({
  name: "usage-monitoring",
  config: { ...consumerEnv, USAGE_CONSUMER_GROUP: Type.String({ default: "usage-monitoring" }) },
  async register(ctx) {
    const store = new UsageStore(ctx.datastores.clickhouse);

    ctx.app.get("/", { schema: { querystring: Type.Object(Range) } }, async (req) => {
      const who = requireIdentity(req);
      const r = range(req.query);
      return { from: r.from.toISOString(), to: r.to.toISOString(), usage: await store.breakdown(r.from, r.to, who.userId) };
    });
    ctx.app.get("/all", { schema: { querystring: Type.Object(Range) } }, async (req) => {
      requireIdentity(req, "admin");
      const r = range(req.query);
      return { from: r.from.toISOString(), to: r.to.toISOString(), usage: await store.breakdown(r.from, r.to) };
    });
    ctx.app.get(
      "/internal/usage/units",
      { schema: { querystring: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 128 }), metric: Type.Literal("api_requests"), ...Range }) } },
      async (req) => {
        const r = range(req.query);
        return { userId: req.query.userId, metric: req.query.metric, from: r.from.toISOString(), to: r.to.toISOString(), units: await store.billableUnits(req.query.userId, r.from, r.to) };
      },
    );

    await consumeBatches(ctx, {
      groupId: ctx.config.USAGE_CONSUMER_GROUP,
      topics: [BUSINESS_TOPICS.usage],
      handle: async (msgs) => {
        const events: UsageEventMsg[] = [];
        for (const m of msgs) {
          try {
            events.push(JSON.parse(m.value) as UsageEventMsg);
          } catch {
            ctx.log.warn({ topic: m.topic }, "unparseable usage event skipped");
          }
        }
        await store.insert(events);
      },
    });
  },
});
