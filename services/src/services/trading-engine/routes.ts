/**
 * trading-engine's HTTP routes (behind the gateway at /api/trading/...):
 *   GET /book            the caller's resting orders, and those held by the kill switch (an admin sees every user's):
 *                        the oldest `limit` of each (1..1000, default 500) and how many there are; every
 *                        one of a trader's open orders, in pages: order-management's GET /api/orders?status=
 *   GET /last/:symbol    the last bar the engine processed for the symbol
 * Live mode only, admin: the records of orders that may be open at Binance which the live poll stopped
 * asking about because Binance refused for good to answer (leftSent.ts), and their release once a
 * person has fixed the cause (the key's permissions, say): the next poll asks again.
 *   GET  /live/refusals                     oldest refusal first (?limit, at most 500)
 *   POST /live/refusals/:orderId/release    404 if the order's record holds no refusal
 */
import { notFound, Nullable, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { SYMBOL_RE } from "../../trading/types";
import type { TradingEngine } from "./engine";

// Responses (OpenAPI; unnamed fields are kept).
const BookOrder = ResponseObject({ orderId: Type.String(), symbol: Type.String(), side: Type.String() }, { description: "with its limit price and remaining quantity" });
const Book = ResponseObject({
  mode: Type.String(),
  resting: Type.Array(BookOrder, { description: "the oldest `limit`, in submission order" }),
  held: Type.Array(BookOrder, { description: "received while the owner was halted: neither executed nor sent until the halt is lifted (the oldest `limit`)" }),
  restingTotal: Type.Integer({ description: "how many orders rest (resting holds the oldest `limit` of them)" }),
  heldTotal: Type.Integer({ description: "how many orders are held" }),
});
const BookQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: "orders listed of each kind (default 500)" })) });

/** The first `limit` of `items` and how many there are (counted without keeping the rest). */
function firstOf<T>(items: Iterable<T>, limit: number): { first: T[]; total: number } {
  const first: T[] = [];
  let total = 0;
  for (const item of items) if (total++ < limit) first.push(item);
  return { first, total };
}
const LastBar = ResponseObject({ bar: Type.Unknown({ description: "the last bar seen, or null" }) });
const Refusal = ResponseObject({
  orderId: Type.String(), userId: Nullable(Type.String()), symbol: Nullable(Type.String()), side: Nullable(Type.String()),
  cancelFailed: Type.Boolean({ description: "the refused request was the retry of a cancel (else a lookup of a placement whose batch never committed)" }),
  sentAt: Nullable(Type.String()), refusedAt: Type.String(), refusal: Type.String({ description: "Binance's message" }),
});
const Refusals = ResponseObject({
  total: Type.Integer(),
  records: Type.Array(Refusal),
  unwritten: Type.Array(Type.String(), { description: "order ids this process stopped asking about whose refusal could not be recorded" }),
});
const Released = ResponseObject({ orderId: Type.String(), released: Type.Boolean() });
const RefusalsQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) });
const OrderParams = Type.Object({ orderId: Type.String({ format: "uuid" }) });

export function registerRoutes(app: App, engine: TradingEngine, mode: "paper" | "live"): void {
  app.get("/book", { schema: { querystring: BookQuery, response: { 200: Book } } }, async (req) => {
    const who = requireIdentity(req);
    // A trader's own orders (read from the book's index of owners, not by filtering every user's); an admin's, everyone's.
    const owner = who.role === "admin" ? undefined : who.userId;
    const limit = req.query.limit ?? 500;
    const resting = firstOf(engine.restingOf(owner), limit);
    const held = firstOf(engine.heldOf(owner), limit);
    return {
      mode,
      resting: resting.first.map((r) => ({ orderId: r.order.orderId, symbol: r.order.symbol, side: r.order.side, limitPrice: r.order.limitPrice, remaining: r.remaining })),
      held: held.first.map((o) => ({ orderId: o.orderId, symbol: o.symbol, side: o.side, limitPrice: o.limitPrice, remaining: o.quantity })),
      restingTotal: resting.total,
      heldTotal: held.total,
    };
  });
  app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String({ pattern: SYMBOL_RE.source }) }), response: { 200: LastBar } } }, async (req) => ({
    bar: engine.lastBar(req.params.symbol) ?? null,
  }));
  if (mode !== "live") return;
  app.get("/live/refusals", { schema: { querystring: RefusalsQuery, response: { 200: Refusals } } }, async (req) => {
    requireIdentity(req, "admin");
    return engine.liveRefusals.list(req.query.limit ?? 100);
  });
  app.post("/live/refusals/:orderId/release", { schema: { params: OrderParams, response: { 200: Released } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    const orderId = req.params.orderId.toLowerCase();
    if (!(await engine.liveRefusals.release(orderId))) throw notFound("The order has no record Binance refused to answer about");
    req.log.warn({ orderId, releasedBy: who.userId, authMethod: who.authMethod }, "live poll: refusal released by an admin; the next poll asks Binance again");
    return { orderId, released: true };
  });
}
