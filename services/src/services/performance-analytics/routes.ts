/**
 * performance-analytics HTTP (/api/performance behind the gateway).
 *   GET  /                      the caller's summary: overall and per strategy
 *   GET  /daily?strategy=       the caller's daily series (strategy "*" = overall, the default; "~other" =
 *                               the labels beyond the caller's first PERF_MAX_STRATEGIES_PER_USER, summed;
 *                               such a label has no series of its own: its daily is empty)
 *   GET  /users/:userId         a user's summary (admin)
 *   POST /rollup?full=         run the rollup now (admin; it also runs every PERF_ROLLUP_INTERVAL_MS):
 *                               the users changed since its watermark, every user with full=true;
 *                               ran: false when another replica leads it (that one's schedule runs it) or,
 *                               with a reason, when a newer release's figures version is in place;
 *                               409 when the leadership moved during the pass or a newer release claimed it
 */
import { conflict, requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import type { PerformanceStore } from "./data";
import { OTHER, summarize } from "./domain";
import { RollupLeadershipLost, RollupSuperseded, TOTAL, type RollupResult } from "./rollup";

// Responses (OpenAPI; unnamed fields are kept). Money in the quote currency, returns as fractions.
const SummaryOut = Type.Union([
  ResponseObject(
    { strategy: Type.String(), from: Type.String(), to: Type.String(), days: Type.Number(), totalPnl: Type.Number(), totalReturn: Type.Number(), sharpe: Type.Union([Type.Number(), Type.Null()]), maxDrawdown: Type.Number() },
    { description: "start/end equity, exposure, fees and trades too; null without any day" },
  ),
  Type.Null(),
]);
const PerformanceOut = ResponseObject({ userId: Type.String(), capitalBase: Type.Number(), total: SummaryOut, strategies: Type.Array(SummaryOut) });
const DayOut = ResponseObject({ day: Type.String(), equity: Type.Number(), pnl: Type.Number(), dailyReturn: Type.Number(), exposure: Type.Number(), drawdown: Type.Number(), fees: Type.Number(), trades: Type.Number() });

export function registerRoutes(app: App, o: { store: PerformanceStore; capital: number; rollup: (full: boolean) => Promise<RollupResult> }): void {
  async function summary(userId: string) {
    const series = await o.store.daily(userId);
    const strategies = [...series].filter(([s]) => s !== TOTAL).map(([s, points]) => summarize(s, points, o.capital));
    return { userId, capitalBase: o.capital, total: summarize(TOTAL, series.get(TOTAL) ?? [], o.capital), strategies };
  }

  app.get("/", { schema: { response: { 200: PerformanceOut } } }, async (req) => summary(requireIdentity(req).userId));

  app.get("/daily", { schema: { querystring: Type.Object({ strategy: Type.String({ pattern: `^(\\*|${OTHER}|[A-Za-z0-9_-]{1,32})$`, default: TOTAL }) }, { additionalProperties: false }), response: { 200: ResponseObject({ userId: Type.String(), strategy: Type.String(), daily: Type.Array(DayOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const series = await o.store.daily(who.userId, req.query.strategy);
    return { userId: who.userId, strategy: req.query.strategy, daily: series.get(req.query.strategy) ?? [] };
  });

  app.get("/users/:userId", { schema: { params: Type.Object({ userId: UserIdSchema }), response: { 200: PerformanceOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return summary(req.params.userId);
  });

  app.post("/rollup", {
    schema: {
      querystring: Type.Object({ full: Type.Boolean({ default: false, description: "recompute every user, not only those changed since the watermark" }) }, { additionalProperties: false }),
      response: { 200: ResponseObject({ ran: Type.Boolean(), mode: Type.Optional(Type.Union([Type.Literal("full"), Type.Literal("incremental")])), users: Type.Number(), groups: Type.Number(), points: Type.Number(), figures: Type.Optional(Type.Number({ description: "the figures version this release computes" })), reason: Type.Optional(Type.String({ description: "why the pass rebuilt every user by itself, or did not run" })) }) },
    },
  }, async (req) => {
    requireIdentity(req, "admin");
    try {
      return await o.rollup(req.query.full);
    } catch (err) {
      if (err instanceof RollupLeadershipLost || err instanceof RollupSuperseded) throw conflict(err.message);
      throw err;
    }
  });
}
