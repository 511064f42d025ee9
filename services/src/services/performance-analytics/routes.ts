/**
 * performance-analytics HTTP (/api/performance behind the gateway).
 *   GET  /                      the caller's summary: overall and per strategy
 *   GET  /daily?strategy=       the caller's daily series (strategy "*" = overall, the default)
 *   GET  /users/:userId         a user's summary (admin)
 *   POST /rollup                run the rollup now (admin; it also runs every PERF_ROLLUP_INTERVAL_MS)
 */
import { requireIdentity, Type, type App } from "../../kit";
import type { PerformanceStore } from "./data";
import { summarize } from "./domain";
import { TOTAL } from "./rollup";

export function registerRoutes(app: App, o: { store: PerformanceStore; capital: number; rollup: () => Promise<{ groups: number; points: number }> }): void {
  async function summary(userId: string) {
    const series = await o.store.daily(userId);
    const strategies = [...series].filter(([s]) => s !== TOTAL).map(([s, points]) => summarize(s, points, o.capital));
    return { userId, capitalBase: o.capital, total: summarize(TOTAL, series.get(TOTAL) ?? [], o.capital), strategies };
  }

  app.get("/", async (req) => summary(requireIdentity(req).userId));

  app.get("/daily", { schema: { querystring: Type.Object({ strategy: Type.String({ pattern: "^(\\*|[A-Za-z0-9_-]{1,32})$", default: TOTAL }) }, { additionalProperties: false }) } }, async (req) => {
    const who = requireIdentity(req);
    const series = await o.store.daily(who.userId, req.query.strategy);
    return { userId: who.userId, strategy: req.query.strategy, daily: series.get(req.query.strategy) ?? [] };
  });

  app.get("/users/:userId", { schema: { params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 128 }) }) } }, async (req) => {
    requireIdentity(req, "admin");
    return summary(req.params.userId);
  });

  app.post("/rollup", async (req) => {
    requireIdentity(req, "admin");
    return o.rollup();
  });
}
