/**
 * risk-analyzer (8022): pre-trade checks on demand and historical VaR (routes.ts).
 * Layers: routes.ts (HTTP), domain.ts (answers and VaR rules; the mathematics is src/trading/risk.ts),
 * data.ts (ClickHouse candles); the risk context (positions, PnL, order rate) is gathered by the
 * shared trading/infra/riskContext.ts, as order-management does in-process.
 */
import { defineService } from "../../kit";
import { riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { registerRoutes } from "./routes";

export default defineService({
  name: "risk-analyzer",
  config: { ...riskEnv },
  async register(ctx) {
    registerRoutes(ctx.app, riskLimitsFrom(ctx.config));
  },
});
