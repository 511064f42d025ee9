/**
 * trading-engine's HTTP routes (behind the gateway at /api/trading/...):
 *   GET /book            the caller's resting orders, and those held by the kill switch (an admin sees every user's)
 *   GET /last/:symbol    the last bar the engine processed for the symbol
 */
import { requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { SYMBOL_RE } from "../../trading/types";
import type { TradingEngine } from "./engine";

// Responses (OpenAPI; unnamed fields are kept).
const BookOrder = ResponseObject({ orderId: Type.String(), symbol: Type.String(), side: Type.String() }, { description: "with its limit price and remaining quantity" });
const Book = ResponseObject({
  mode: Type.String(),
  resting: Type.Array(BookOrder),
  held: Type.Array(BookOrder, { description: "received while the owner was halted: neither executed nor sent until the halt is lifted" }),
});
const LastBar = ResponseObject({ bar: Type.Unknown({ description: "the last bar seen, or null" }) });

export function registerRoutes(app: App, engine: TradingEngine, mode: "paper" | "live"): void {
  app.get("/book", { schema: { response: { 200: Book } } }, async (req) => {
    const who = requireIdentity(req);
    const visible = (o: { userId: string }) => who.role === "admin" || o.userId === who.userId;
    const mine = engine.restingOrders().filter((r) => visible(r.order));
    return {
      mode,
      resting: mine.map((r) => ({ orderId: r.order.orderId, symbol: r.order.symbol, side: r.order.side, limitPrice: r.order.limitPrice, remaining: r.remaining })),
      held: engine.heldOrders().filter(visible).map((o) => ({ orderId: o.orderId, symbol: o.symbol, side: o.side, limitPrice: o.limitPrice, remaining: o.quantity })),
    };
  });
  app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String({ pattern: SYMBOL_RE.source }) }), response: { 200: LastBar } } }, async (req) => ({
    bar: engine.lastBar(req.params.symbol) ?? null,
  }));
}
