/**
 * ai-orchestrator HTTP routes (the caller's own strategies; x-user-id from the gateway).
 *   POST  /strategies                      create (disabled unless `enabled: true`); optional Idempotency-Key
 *   GET   /strategies, /strategies/:id     the list leaves deleted ones out; one by id is answered with its deletedAt
 *   PATCH /strategies/:id                  change thresholds, sizes, stop, schedule, name, enabled (not symbols)
 *   POST  /strategies/:id/enable, /strategies/:id/disable   a disable (or PATCH enabled: false) answers once the evaluation
 *                                          running, if any, is over (its order placed): no order follows the answer
 *   DELETE /strategies/:id                 soft delete (kept with its decisions, no longer counted nor evaluated) and the cancel
 *                                          of its working orders (retire.ts): 204 once every cancel is requested, 503 +
 *                                          retry-after naming those that could not be (deleted still; a repeat asks again)
 *   POST  /strategies/:id/evaluate         run one evaluation now (enabled strategies only; the scheduler runs them every `everySeconds`;
 *                                          ORCH_EVALUATIONS_PER_MINUTE per user, whatever the strategy, 429 EVALUATION_LIMIT past it):
 *                                          not held back by a failure backoff, and counted in it (backoff.ts); a failure
 *                                          is a 503 with retry-after the time to the scheduler's next attempt; a call while
 *                                          the strategy is evaluated gets that evaluation's answer: joined in this process,
 *                                          waited for (ORCH_EVALUATION_WAIT_MS) when another replica runs it, then 409
 *                                          EVALUATION_IN_PROGRESS naming it if the wait ended first (evaluation-answer.ts)
 *   GET   /strategies/:id/decisions        newest first, each with its inputs
 *   GET   /decisions/:id                   one decision: model version, features, prediction, regimes, risk answer, order id
 *   GET   /internal/decisions?since&limit  every user's decisions from `since` on, oldest first (ai-chain-analytics; never proxied)
 */
import { accountDeleted, badRequest, conflict, DisplayText, HttpError, idempotencyKeyOf, idempotencyKeyReused, NoContent, notFound, Nullable, requestHashOf, requireIdentity, ResponseObject, Type, type ServiceContext } from "../../kit";
import { SYMBOL_RE } from "../../trading/types";
import { onOrderGrid } from "./decide";
import type { EvaluationBudget } from "./evaluation-budget";
import { ordersNotCancelled, type NotCancelled } from "./retire";
import type { OrchestratorStore } from "./store";
import type { DecisionRecord, Strategy, StrategySettings } from "./store";

const Probability = Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 });
const Positive = Type.Number({ exclusiveMinimum: 0, maximum: 1e12 });
const Settings = {
  // Shown to its trader and in decisions: printable, one line, something visible (kit display-text.ts).
  name: DisplayText({ maxLength: 100 }),
  buyAbove: Probability,
  sellBelow: Probability,
  orderQuantity: Positive,
  maxPosition: Positive,
  stopLoss: Positive,
  minRegimeAgreement: Type.Number({ minimum: 0, maximum: 1 }),
  everySeconds: Type.Integer({ minimum: 5, maximum: 86_400 }),
  enabled: Type.Boolean(),
};
const Symbols = Type.Array(Type.String({ pattern: SYMBOL_RE.source }), { minItems: 1, maxItems: 20, uniqueItems: true });
const StrategyBody = Type.Object(
  {
    ...Settings,
    symbols: Symbols,
    minRegimeAgreement: Type.Optional(Settings.minRegimeAgreement),
    everySeconds: Type.Optional(Settings.everySeconds),
    enabled: Type.Optional(Settings.enabled),
  },
  { additionalProperties: false },
);
// `symbols` is in the schema only to be refused with a reason (the book is per symbol).
const StrategyPatch = Type.Partial(Type.Object({ ...Settings, symbols: Symbols }), { additionalProperties: false, minProperties: 1 });

/** What the schema cannot say: the thresholds and sizes against each other (create and change alike). */
function checkSettings(s: Pick<Strategy, "buyAbove" | "sellBelow" | "orderQuantity" | "maxPosition">): void {
  if (s.sellBelow >= s.buyAbove) throw badRequest(`sellBelow (${s.sellBelow}) must be below buyAbove (${s.buyAbove})`, "sellBelow");
  if (!onOrderGrid(s.orderQuantity)) throw badRequest(`orderQuantity (${s.orderQuantity}) must be a decimal of at most 8 places, from 0.00000001 and below 10^12, as orders are`, "orderQuantity");
  if (s.orderQuantity > s.maxPosition) throw badRequest(`orderQuantity (${s.orderQuantity}) must not exceed maxPosition (${s.maxPosition})`, "orderQuantity");
}

const deleted = (s: Strategy, what: string) => new HttpError(409, "STRATEGY_DELETED", `strategy ${s.strategyId} is deleted (${s.deletedAt}): ${what}`);
const Id = Type.Object({ id: Type.String({ format: "uuid" }) });

// Responses (OpenAPI; unnamed fields are kept).
const BackoffOut = Type.Object(
  { consecutiveFailures: Type.Integer(), nextAttemptAt: Nullable(Type.String()), lastFailedAt: Nullable(Type.String()), lastErrorCode: Nullable(Type.String()) },
  { description: "Failed evaluations in a row (0 after a success), the scheduler's next attempt (null unless the last one failed), the last failure's time and error code" },
);
const StrategyOut = ResponseObject(
  { strategyId: Type.String(), userId: Type.String(), name: Type.String(), symbols: Type.Array(Type.String()), buyAbove: Type.Number(), sellBelow: Type.Number(), evaluationBackoff: BackoffOut },
  { description: "A strategy with its thresholds, sizes, stop, schedule, state and evaluation backoff" },
);
const DecisionOut = ResponseObject(
  { decisionId: Type.String(), strategyId: Type.String(), userId: Type.String(), symbol: Type.String(), decidedAt: Type.String(), modelVersion: Type.Union([Type.String(), Type.Null()]), probabilityUp: Type.Union([Type.Number(), Type.Null()]) },
  { description: "A decision with its inputs: features, regimes, trading state, risk answer, order id or refusal" },
);
const Decisions = ResponseObject({ decisions: Type.Array(DecisionOut) });

export interface RouteDeps {
  store: OrchestratorStore;
  /** One evaluation now, or the answer of the one running (in this process or, waited for, in another replica). */
  evaluate: (s: Strategy) => Promise<DecisionRecord[]>;
  /** Requests the cancel of a deleted strategy's working orders; answers those it could not. */
  cancelWorkingOrders: (s: Strategy, requestId: string) => Promise<NotCancelled[]>;
  /** Resolves once no evaluation of the strategy is running (one may be submitting an order). */
  idle: (strategyId: string) => Promise<void>;
  maxStrategiesPerUser: number;
  /** Evaluations asked through the API, per user (evaluation-budget.ts). */
  evaluationBudget: Pick<EvaluationBudget, "spend">;
}

export function registerRoutes(ctx: ServiceContext, deps: RouteDeps): void {
  const { store } = deps;
  const own = async (id: string, userId: string): Promise<Strategy> => {
    const s = await store.getStrategy(id, userId);
    if (!s) throw notFound(`no strategy ${id}`);
    return s;
  };

  ctx.app.post("/strategies", { schema: { body: StrategyBody, response: { 200: StrategyOut, 201: StrategyOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const key = idempotencyKeyOf(req.headers["idempotency-key"]);
    const b = req.body;
    checkSettings(b);
    const settings = {
      name: b.name, symbols: b.symbols, buyAbove: b.buyAbove, sellBelow: b.sellBelow, orderQuantity: b.orderQuantity, maxPosition: b.maxPosition,
      stopLoss: b.stopLoss, minRegimeAgreement: b.minRegimeAgreement ?? 0, everySeconds: b.everySeconds ?? 60, enabled: b.enabled ?? false,
    };
    // The request is compared with its defaults applied: `enabled: false` and no `enabled` are the same.
    const out = await store.createStrategy({ userId: who.userId, ...settings }, deps.maxStrategiesPerUser, key ? { key, requestHash: requestHashOf(settings) } : null);
    if (out.kind === "key_reused") throw idempotencyKeyReused(key!);
    // Deleted while this request was under way (it passed the gateway before): no strategy is made for it.
    if (out.kind === "account_deleted") throw accountDeleted(who.userId, "it keeps no strategies");
    if (out.kind === "at_limit") throw conflict(`at most ${deps.maxStrategiesPerUser} strategies per user (delete one: DELETE /strategies/:id)`);
    if (out.kind === "replayed") return reply.code(200).header("idempotent-replay", "true").send(out.strategy);
    return reply.code(201).send(out.strategy);
  });
  ctx.app.get("/strategies", { schema: { response: { 200: ResponseObject({ strategies: Type.Array(StrategyOut) }) } } }, async (req) => ({ strategies: await store.listStrategies(requireIdentity(req).userId) }));
  ctx.app.get("/strategies/:id", { schema: { params: Id, response: { 200: StrategyOut } } }, async (req) => own(req.params.id, requireIdentity(req).userId));

  /** Applies a change to the caller's strategy: 404 not theirs, 409 deleted, 400 the merged settings inconsistent. */
  const change = async (id: string, userId: string, patch: Partial<StrategySettings>) => {
    const s = await store.updateStrategy(id, userId, (cur) => {
      if (cur.deletedAt) throw deleted(cur, "it cannot be changed");
      const { strategyId: _id, userId: _user, symbols: _symbols, status: _status, stoppedReason: _reason, lastEvaluatedAt: _at, deletedAt: _deleted, evaluationBackoff: _backoff, ...current } = cur;
      const next = { ...current, ...patch, rearm: patch.enabled === true };
      checkSettings(next);
      return next;
    });
    if (!s) throw notFound(`no strategy ${id}`);
    if (s === "account_deleted") throw accountDeleted(userId, "its strategies change no more");
    // A pause answers once the evaluation running, which read the strategy enabled before the change
    // and may be submitting its order, is over: no order of the strategy is placed after the answer.
    if (patch.enabled === false) await deps.idle(id);
    return s;
  };
  ctx.app.patch("/strategies/:id", { schema: { params: Id, body: StrategyPatch, response: { 200: StrategyOut } } }, async (req) => {
    const who = requireIdentity(req);
    const { symbols, ...patch } = req.body;
    if (symbols !== undefined) throw badRequest("symbols cannot be changed: the strategy's orders and position are per symbol; create another strategy", "symbols");
    return change(req.params.id, who.userId, patch);
  });
  for (const [path, enabled] of [["enable", true], ["disable", false]] as const)
    ctx.app.post(`/strategies/:id/${path}`, { schema: { params: Id, response: { 200: StrategyOut } } }, async (req) => change(req.params.id, requireIdentity(req).userId, { enabled }));
  ctx.app.delete("/strategies/:id", { schema: { params: Id, response: { 204: NoContent } } }, async (req, reply) => {
    // Deleted first (kept if order-management is down), then its orders; a deleted strategy's DELETE asks again.
    const s = await store.deleteStrategy(req.params.id, requireIdentity(req).userId);
    if (!s) throw notFound(`no strategy ${req.params.id}`);
    const left = await deps.cancelWorkingOrders(s, String(req.id));
    if (left.length > 0) throw ordersNotCancelled(s, left);
    return reply.code(204).send();
  });
  ctx.app.post("/strategies/:id/evaluate", { schema: { params: Id, response: { 200: Decisions } } }, async (req) => {
    const s = await own(req.params.id, requireIdentity(req).userId);
    // An evaluation places orders: only a strategy its user left enabled may place them.
    if (s.deletedAt) throw deleted(s, "a deleted strategy is never evaluated");
    if (!s.enabled) throw new HttpError(409, "STRATEGY_DISABLED", `strategy ${s.strategyId} is disabled: enable it to evaluate it (an evaluation places orders)`);
    // Each evaluation records a decision per symbol: the user's budget (any strategy of theirs) first, 429 past it;
    // the token is given back when nothing was evaluated for the request (evaluation-budget.ts).
    return { decisions: await deps.evaluationBudget.spend(s.userId, () => deps.evaluate(s)) };
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
