/**
 * usage-monitoring's HTTP routes:
 *   GET /?from&to&limit&before       the caller's requests, errors, p50/p95 latency per key and route (/api/usage)
 *   GET /all?from&to&limit&before    every user's (admin; /api/usage/all)
 *   GET /internal/usage/units?userId&metric&from&to   billable units (billing-service; never proxied)
 * Both listings answer pages in (user, route, API key) order: `nextBefore` is the `before` of the
 * next page, null on the last.
 */
import { pageOf, requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { parseUsageCursor, requireWithinDays, usageCursor, usagePeriod } from "./domain";
import type { UsageStore } from "./store";

const Range = { from: Type.Optional(Type.String({ format: "date-time" })), to: Type.Optional(Type.String({ format: "date-time" })) };
const iso = (p: { from: Date; to: Date }) => ({ from: p.from.toISOString(), to: p.to.toISOString() });

/**
 * A page of a listing. `limit` defaults to 1,000, what a listing answered (unpaged) before there were
 * pages, so a client that sends none gets the rows it got, now with `nextBefore` saying whether more exist.
 */
const PageQuery = Type.Object({
  ...Range,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000, description: "rows per page (default 1000)" })),
  before: Type.Optional(
    Type.String({ minLength: 1, maxLength: 4096, pattern: "^[A-Za-z0-9_-]+$", description: "the previous page's nextBefore (send the same from and to)" }),
  ),
});

/** GET / and /all (OpenAPI; unnamed fields are kept). */
const UsageOut = ResponseObject({
  from: Type.String(),
  to: Type.String(),
  usage: Type.Array(ResponseObject({ userId: Type.String(), apiKeyId: Type.Union([Type.String(), Type.Null()]), route: Type.String() }, { description: "requests, errors, p50Ms, p95Ms per user, key and route" })),
  nextBefore: Type.Union([Type.String(), Type.Null()], { description: "the next page: the same query with before=<this>; null on the last page" }),
});

/** The longest period a listing answers, a trader's own and every user's, with the config keys that set them. */
export interface UsageLimits {
  ownMaxDays: number;
  allMaxDays: number;
}

export function registerRoutes(app: App, store: UsageStore, limits: UsageLimits): void {
  /** One page of the period's rows (one user's, or every user's); a row beyond it tells whether another follows. */
  const listing = async (q: { from?: string; to?: string; limit?: number; before?: string }, userId?: string) => {
    const p = usagePeriod(q);
    if (userId === undefined) requireWithinDays(p, limits.allMaxDays, "USAGE_ALL_MAX_DAYS");
    else requireWithinDays(p, limits.ownMaxDays, "USAGE_MAX_DAYS");
    const limit = q.limit ?? 1000;
    const rows = await store.breakdown(p.from, p.to, userId, { limit: limit + 1, after: q.before === undefined ? null : parseUsageCursor(q.before) });
    const { page, nextBefore } = pageOf(rows, limit, (last) => usageCursor([last.userId, last.route, last.apiKeyId ?? ""]));
    return { ...iso(p), usage: page, nextBefore };
  };

  app.get("/", { schema: { querystring: PageQuery, response: { 200: UsageOut } } }, async (req) => {
    const who = requireIdentity(req);
    return listing(req.query, who.userId);
  });

  app.get("/all", { schema: { querystring: PageQuery, response: { 200: UsageOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return listing(req.query);
  });

  // Unbounded: billing-service asks its billing period's units (never proxied, so no client's range).
  app.get(
    "/internal/usage/units",
    { schema: { querystring: Type.Object({ userId: UserIdSchema, metric: Type.Literal("api_requests"), ...Range }) } },
    async (req) => {
      const p = usagePeriod(req.query);
      return { userId: req.query.userId, metric: req.query.metric, ...iso(p), units: await store.billableUnits(req.query.userId, p.from, p.to) };
    },
  );
}
