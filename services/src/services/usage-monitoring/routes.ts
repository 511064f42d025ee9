/**
 * usage-monitoring's HTTP routes:
 *   GET /?from&to                    the caller's requests, errors, p50/p95 latency per key and route (/api/usage)
 *   GET /all?from&to                 every user's (admin; /api/usage/all)
 *   GET /internal/usage/units?userId&metric&from&to   billable units (billing-service; never proxied)
 */
import { requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { usagePeriod } from "./domain";
import type { UsageStore } from "./store";

const Range = { from: Type.Optional(Type.String({ format: "date-time" })), to: Type.Optional(Type.String({ format: "date-time" })) };
const iso = (p: { from: Date; to: Date }) => ({ from: p.from.toISOString(), to: p.to.toISOString() });

/** GET / and /all (OpenAPI; unnamed fields are kept). */
const UsageOut = ResponseObject({
  from: Type.String(),
  to: Type.String(),
  usage: Type.Array(ResponseObject({ userId: Type.String(), apiKeyId: Type.Union([Type.String(), Type.Null()]), route: Type.String() }, { description: "requests, errors, p50Ms, p95Ms per user, key and route" })),
});

export function registerRoutes(app: App, store: UsageStore): void {
  app.get("/", { schema: { querystring: Type.Object(Range), response: { 200: UsageOut } } }, async (req) => {
    const who = requireIdentity(req);
    const p = usagePeriod(req.query);
    return { ...iso(p), usage: await store.breakdown(p.from, p.to, who.userId) };
  });

  app.get("/all", { schema: { querystring: Type.Object(Range), response: { 200: UsageOut } } }, async (req) => {
    requireIdentity(req, "admin");
    const p = usagePeriod(req.query);
    return { ...iso(p), usage: await store.breakdown(p.from, p.to) };
  });

  app.get(
    "/internal/usage/units",
    { schema: { querystring: Type.Object({ userId: UserIdSchema, metric: Type.Literal("api_requests"), ...Range }) } },
    async (req) => {
      const p = usagePeriod(req.query);
      return { userId: req.query.userId, metric: req.query.metric, ...iso(p), units: await store.billableUnits(req.query.userId, p.from, p.to) };
    },
  );
}
