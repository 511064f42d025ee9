/**
 * trading-engine's HTTP routes (behind the gateway at /api/trading/...):
 *   GET /book            the caller's resting orders (an admin sees every user's)
 *   GET /last/:symbol    the last bar the engine processed for the symbol
 */
import { requireIdentity, Type, type App } from "../../kit";
import { SYMBOL_RE } from "../../trading/types";
import type { TradingEngine } from "./engine";

export function registerRoutes(app: App, engine: TradingEngine, mode: "paper" | "live"): void {
  app.get("/book", async (req) => {
    const who = requireIdentity(req);
    const mine = engine.restingOrders().filter((r) => who.role === "admin" || r.order.userId === who.userId);
    return {
      mode,
      resting: mine.map((r) => ({ orderId: r.order.orderId, symbol: r.order.symbol, side: r.order.side, limitPrice: r.order.limitPrice, remaining: r.remaining })),
    };
  });
  app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String({ pattern: SYMBOL_RE.source }) }) } }, async (req) => ({
    bar: engine.lastBar(req.params.symbol) ?? null,
  }));
}
