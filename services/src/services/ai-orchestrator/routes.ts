/**
 * ai-orchestrator HTTP routes (the caller's own strategies; x-user-id from the gateway).
 *   POST  /strategies                      create (disabled unless `enabled: true`)
 *   GET   /strategies, /strategies/:id
 *   POST  /strategies/:id/enable, /strategies/:id/disable
 *   POST  /strategies/:id/evaluate         run one evaluation now (the scheduler runs them every `everySeconds`)
 *   GET   /strategies/:id/decisions        newest first, each with its inputs
 *   GET   /decisions/:id                   one decision: model version, features, prediction, regimes, risk answer, order id
 *   GET   /internal/decisions?since&limit  every user's decisions from `since` on, oldest first (ai-chain-analytics; never proxied)
 */
import { badRequest, conflict, notFound, requireIdentity, ResponseObject, Type, type ServiceContext } from "../../kit";
import { SYMBOL_RE } from "../../trading/types";
import type { OrchestratorStore } from "./store";
import type { DecisionRecord, Strategy } from "./store";

const Probability = Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 });
const Positive = Type.Number({ exclusiveMinimum: 0, maximum: 1e12 });
const StrategyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    symbols: Type.Array(Type.String({ pattern: SYMBOL_RE.source }), { minItems: 1, maxItems: 20, uniqueItems: true }),
    buyAbove: Probability,
    sellBelow: Probability,
    orderQuantity: Positive,
    maxPosition: Positive,
    stopLoss: Positive,
    minRegimeAgreement: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    everySeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 86_400 })),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const Id = Type.Object({ id: Type.String({ format: "uuid" }) });

// Responses (OpenAPI; unnamed fields are kept).
const StrategyOut = ResponseObject({ strategyId: Type.String(), userId: Type.String(), name: Type.String(), symbols: Type.Array(Type.String()), buyAbove: Type.Number(), sellBelow: Type.Number() }, { description: "A strategy with its thresholds, sizes, stop, schedule and state" });
const DecisionOut = ResponseObject(
  { decisionId: Type.String(), strategyId: Type.String(), userId: Type.String(), symbol: Type.String(), decidedAt: Type.String(), modelVersion: Type.Union([Type.String(), Type.Null()]), probabilityUp: Type.Union([Type.Number(), Type.Null()]) },
  { description: "A decision with its inputs: features, regimes, trading state, risk answer, order id or refusal" },
);
const Decisions = ResponseObject({ decisions: Type.Array(DecisionOut) });

export function registerRoutes(ctx: ServiceContext, deps: { store: OrchestratorStore; evaluate: (s: Strategy) => Promise<DecisionRecord[]>; maxStrategiesPerUser: number }): void {
  const { store } = deps;
  const own = async (id: string, userId: string): Promise<Strategy> => {
    const s = await store.getStrategy(id, userId);
    if (!s) throw notFound(`no strategy ${id}`);
    return s;
  };

  ctx.app.post("/strategies", { schema: { body: StrategyBody, response: { 201: StrategyOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const b = req.body;
    if (b.sellBelow >= b.buyAbove) throw badRequest("sellBelow must be below buyAbove", "sellBelow");
    if (b.orderQuantity > b.maxPosition) throw badRequest("orderQuantity must not exceed maxPosition", "orderQuantity");
    const s = await store.createStrategy({
      userId: who.userId, name: b.name, symbols: b.symbols, buyAbove: b.buyAbove, sellBelow: b.sellBelow, orderQuantity: b.orderQuantity,
      maxPosition: b.maxPosition, stopLoss: b.stopLoss, minRegimeAgreement: b.minRegimeAgreement ?? 0, everySeconds: b.everySeconds ?? 60, enabled: b.enabled ?? false,
    }, deps.maxStrategiesPerUser);
    if (!s) throw conflict(`at most ${deps.maxStrategiesPerUser} strategies per user (a strategy is kept with its decisions)`);
    return reply.code(201).send(s);
  });
  ctx.app.get("/strategies", { schema: { response: { 200: ResponseObject({ strategies: Type.Array(StrategyOut) }) } } }, async (req) => ({ strategies: await store.listStrategies(requireIdentity(req).userId) }));
  ctx.app.get("/strategies/:id", { schema: { params: Id, response: { 200: StrategyOut } } }, async (req) => own(req.params.id, requireIdentity(req).userId));
  for (const [path, enabled] of [["enable", true], ["disable", false]] as const)
    ctx.app.post(`/strategies/:id/${path}`, { schema: { params: Id, response: { 200: StrategyOut } } }, async (req) => {
      const who = requireIdentity(req);
      const s = await store.setEnabled(req.params.id, who.userId, enabled);
      if (!s) throw notFound(`no strategy ${req.params.id}`);
      return s;
    });
  ctx.app.post("/strategies/:id/evaluate", { schema: { params: Id, response: { 200: Decisions } } }, async (req) => {
    const s = await own(req.params.id, requireIdentity(req).userId);
    return { decisions: await deps.evaluate(s) };
  });
  ctx.app.get("/strategies/:id/decisions", { schema: { params: Id, querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }), response: { 200: Decisions } } }, async (req) => {
    const s = await own(req.params.id, requireIdentity(req).userId);
    return { decisions: await store.decisions(s.strategyId, req.query.limit ?? 100) };
  });
  ctx.app.get(
    "/internal/decisions",
    { schema: { querystring: Type.Object({ since: Type.String({ format: "date-time" }), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })) }) } },
    async (req) => ({ decisions: await store.decisionsSince(new Date(req.query.since), req.query.limit ?? 1000) }),
  );
  ctx.app.get("/decisions/:id", { schema: { params: Id, response: { 200: DecisionOut } } }, async (req) => {
    const who = requireIdentity(req);
    const d = await store.decision(req.params.id, who.userId);
    if (!d) throw notFound(`no decision ${req.params.id}`);
    return d;
  });
}
