/**
 * portfolio-manager's HTTP routes (behind the gateway at /api/portfolio/...):
 *   GET /        the caller's portfolio (x-user-id), marked to the last prices in Dragonfly
 *   GET /fills   the caller's applied fills, newest first, in pages (?limit=&before=, nextBefore)
 */
import { pageOf, requireIdentity, unknownCursor, ResponseObject, Type, type App } from "../../kit";
import { D } from "../../trading/decimal";
import { lastPriceKey } from "../../trading/events";
import { portfolioView } from "../../trading/portfolio";
import * as data from "./data";

// Responses (OpenAPI; unnamed fields are kept). Decimals are strings.
const PortfolioOut = ResponseObject({
  userId: Type.String(),
  cash: Type.String(),
  positions: Type.Array(ResponseObject({ symbol: Type.String() })),
  realizedPnl: Type.String(),
  unrealizedPnl: Type.String(),
  fees: Type.String(),
  netPnl: Type.String({ description: "realized + unrealized - fees" }),
  equity: Type.String(),
});
const FillsOut = ResponseObject({
  fills: Type.Array(ResponseObject({}, { description: "fillId, orderId, symbol, side, quantity, price, fee, realizedPnl, ts" })),
  nextBefore: Type.Union([Type.String(), Type.Null()], { description: "the next page: GET /fills?before=<this>; null on the last page" }),
});
/**
 * Newest first; `before`: the last fill id of the previous page (its `nextBefore`). `limit` keeps
 * the bounds and default it had before there were pages (1..1000, 200), so existing clients get
 * the same first page, now with a way to the older fills.
 */
const FillsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
  before: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "the previous page's nextBefore" })),
});

export function registerRoutes(app: App, o: { initialCash: string }): void {
  app.get("/", { schema: { response: { 200: PortfolioOut } } }, async (req) => {
    const who = requireIdentity(req);
    // Cash and positions from one snapshot: read apart, a fill committed between them showed the
    // cash before it with the positions after it, and the equity off by the fill's notional.
    const { cash, positions } = await app.pg.transaction(
      async (c) => ({ cash: await data.accountCash(c, who.userId), positions: await data.positionsOf(c, who.userId) }),
      { begin: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY" },
    );
    const marks: Record<string, string | undefined> = {};
    if (app.datastores.isEnabled("dragonfly") && positions.length) {
      try {
        const vals = await app.redis.mget(...positions.map((p) => lastPriceKey(p.symbol)));
        positions.forEach((p, i) => (marks[p.symbol] = vals[i] ?? undefined));
      } catch (err) {
        req.log.warn({ err: { message: (err as Error).message } }, "last prices unavailable; positions shown at cost");
      }
    }
    return portfolioView(who.userId, D(cash ?? o.initialCash), positions, marks);
  });

  app.get("/fills", { schema: { querystring: FillsQuery, response: { 200: FillsOut } } }, async (req) => {
    const who = requireIdentity(req);
    const limit = req.query.limit ?? 200;
    const rows = await data.fillsOf(app.pg, who.userId, limit + 1, req.query.before ?? null);
    if (!rows) throw unknownCursor("fills");
    const { page, nextBefore } = pageOf(rows, limit, (last) => last.fillId);
    return { fills: page, nextBefore };
  });
}
