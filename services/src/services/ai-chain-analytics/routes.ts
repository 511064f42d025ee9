/**
 * ai-chain-analytics HTTP routes (/api/ai-chains through the gateway).
 *   GET /summary?from&to&strategyId   the caller's chains per model version and strategy
 *   GET /summary/all?from&to          every user's (admin)
 *   GET /chains/:decisionId           one decision's chain from ClickHouse: decision, orders, fills
 *   GET /chains/:decisionId/graph     the same chain traversed in ArangoDB (404 when ArangoDB is off)
 * `from`/`to` are ISO instants; default: the last 24 hours. Every user's summary spans at most
 * CHAIN_SUMMARY_ALL_MAX_DAYS (what one request reads is the range's decisions of every user, session 45),
 * a trader's own CHAIN_SUMMARY_MAX_DAYS (their decisions of the range: a schedule records up to
 * thousands a minute, session 46).
 */
import { badRequest, EARLIEST_INSTANT, notFound, requireIdentity, ResponseObject, Type, type ServiceContext } from "../../kit";
import { graphKey } from "./chains";
import type { ChainGraph } from "./graph";
import type { ChainStore } from "./store";

const Range = Type.Object(
  {
    from: Type.Optional(Type.String({ format: "date-time" })),
    to: Type.Optional(Type.String({ format: "date-time" })),
    strategyId: Type.Optional(Type.String({ format: "uuid" })),
  },
  { additionalProperties: false },
);
const Id = Type.Object({ decisionId: Type.String({ format: "uuid" }) });

// Responses (OpenAPI; unnamed fields are kept).
const SummaryOut = ResponseObject({
  from: Type.String(),
  to: Type.String(),
  summary: Type.Array(
    ResponseObject(
      { modelVersion: Type.String(), strategyId: Type.String(), decisions: Type.Number(), trades: Type.Number(), orders: Type.Number(), fills: Type.Number(), hitRate: Type.Union([Type.Number(), Type.Null()]), pnl: Type.Number(), slippageBps: Type.Union([Type.Number(), Type.Null()]) },
      { description: "per model version and strategy; latency per step (decisionToOrderMs, orderToFillMs: p50, p95)" },
    ),
  ),
});
const ChainOut = ResponseObject({
  decision: ResponseObject({}, { description: "decisionId, userId (its owner), strategyId, modelVersion, symbol, action, probabilityUp, decisionPrice, decidedAt" }),
  orders: Type.Array(ResponseObject({ orderId: Type.String(), status: Type.String(), side: Type.String() })),
  fills: Type.Array(ResponseObject({}, { description: "fillId, orderId, quantity, price, fee" })),
});
const GraphOut = ResponseObject({ vertices: Type.Array(ResponseObject({ id: Type.String(), step: Type.Union([Type.String(), Type.Null()]) }, { description: "the vertex document and the edge that reached it" })) });

/** The range asked, at most `bound.days` long (what a summary reads grows with it; `bound.key` sets it). */
function range(q: { from?: string; to?: string }, bound: { days: number; key: string; what: string }) {
  const to = q.to ? new Date(q.to) : new Date(Date.now() + 1000);
  // The default `from` stays within the platform's instants: a day before `to=1970-01-01T12:00:00Z`
  // was 1969, answered as the range's start and bound as a negative UInt64 (which a server binding
  // the parameter refuses).
  const from = q.from ? new Date(q.from) : new Date(Math.max(to.getTime() - 24 * 3_600_000, Date.parse(EARLIEST_INSTANT)));
  // Named after a field the client sent: `to` when only `to` was (the default `from` is no field of theirs).
  if (!(from < to)) throw badRequest(q.from ? "from must be before to" : `to must be after ${EARLIEST_INSTANT} (from defaults to a day before to)`, q.from ? "from" : "to");
  if (to.getTime() - from.getTime() > bound.days * 86_400_000) throw badRequest(`${bound.what} spans at most ${bound.days} days (${bound.key}): narrow from or to`, "from");
  return { from, to };
}

/**
 * The strategy filter as ClickHouse holds strategy ids (PostgreSQL's lower case uuid text); the schema
 * takes either case. Compared as sent, an upper-case id matched nothing: an empty summary, no error.
 */
const strategyOf = (q: { strategyId?: string }) => q.strategyId?.toLowerCase();

export function registerRoutes(ctx: ServiceContext, deps: { store: ChainStore; graph?: () => Promise<ChainGraph>; maxAllDays: number; maxOwnDays: number }): void {
  ctx.app.get("/summary", { schema: { querystring: Range, response: { 200: SummaryOut } } }, async (req) => {
    const who = requireIdentity(req);
    const r = range(req.query, { days: deps.maxOwnDays, key: "CHAIN_SUMMARY_MAX_DAYS", what: "a summary" });
    return { from: r.from.toISOString(), to: r.to.toISOString(), summary: await deps.store.summary({ ...r, strategyId: strategyOf(req.query), userId: who.userId }) };
  });
  ctx.app.get("/summary/all", { schema: { querystring: Range, response: { 200: SummaryOut } } }, async (req) => {
    requireIdentity(req, "admin");
    const r = range(req.query, { days: deps.maxAllDays, key: "CHAIN_SUMMARY_ALL_MAX_DAYS", what: "every user's summary" });
    return { from: r.from.toISOString(), to: r.to.toISOString(), summary: await deps.store.summary({ ...r, strategyId: strategyOf(req.query) }) };
  });
  ctx.app.get("/chains/:decisionId", { schema: { params: Id, response: { 200: ChainOut } } }, async (req) => {
    const who = requireIdentity(req);
    const chain = await deps.store.chain(req.params.decisionId.toLowerCase(), who.role === "admin" ? undefined : who.userId);
    if (!chain) throw notFound(`no decision ${req.params.decisionId}`);
    return chain;
  });
  ctx.app.get("/chains/:decisionId/graph", { schema: { params: Id, response: { 200: GraphOut } } }, async (req) => {
    const who = requireIdentity(req);
    if (!deps.graph) throw notFound("the chain graph is not available in this deployment");
    // Ownership is checked on ClickHouse's copy of the decision before the graph is read.
    const id = req.params.decisionId.toLowerCase();
    const chain = await deps.store.chain(id, who.role === "admin" ? undefined : who.userId);
    if (!chain) throw notFound(`no decision ${req.params.decisionId}`);
    // Only the decision owner's steps: another user's order may name this decision id.
    return { vertices: await (await deps.graph()).chain(graphKey(id), String(chain.decision.userId)) };
  });
}
