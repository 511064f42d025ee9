/**
 * risk-analyzer (8022): pre-trade checks on demand, historical VaR (routes.ts) and the kill switch,
 * the audited writer of the trading state (kill-switch*.ts).
 * Layers: routes.ts and kill-switch-routes.ts (HTTP), domain.ts (answers and VaR rules; the
 * mathematics is src/trading/risk.ts), kill-switch.ts (record in PostgreSQL, copy in Dragonfly),
 * data.ts (ClickHouse candles), kill-switch-data.ts (SQL); the risk context (positions, PnL, order
 * rate) is gathered by the shared trading/infra/riskContext.ts, as order-management does in-process.
 */
import { defineService, Type } from "../../kit";
import { riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { orderPriceEnv, orderPriceRules } from "../../trading/orderRequest";
import { KillSwitch } from "./kill-switch";
import { registerKillSwitchRoutes } from "./kill-switch-routes";
import { registerRoutes } from "./routes";

export default defineService({
  name: "risk-analyzer",
  config: {
    ...riskEnv,
    // The check refuses a limit price off the paper exchange's tick, as order-management does (trading/orderRequest.ts).
    ...orderPriceEnv,
    // How often every recorded trading state is compared with Dragonfly and re-applied where they
    // differ (a Dragonfly restart empties it: a halt would be lifted until the next pass).
    TRADING_STATE_RECONCILE_MS: Type.Integer({ default: 5000, minimum: 100 }),
  },
  async register(ctx) {
    const { app } = ctx;
    registerRoutes(app, riskLimitsFrom("risk-analyzer", ctx.config), orderPriceRules("risk-analyzer", ctx.config));
    const dragonfly = () => (app.datastores.isEnabled("dragonfly") ? app.redis : undefined);
    const killSwitch = new KillSwitch(app.pg, dragonfly, ctx.log);
    registerKillSwitchRoutes(app, killSwitch);
    if (!dragonfly()) return;
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      killSwitch
        .reconcile()
        .catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "trading state reconcile failed; retrying at the next pass"))
        .finally(() => {
          running = false;
        });
    }, ctx.config.TRADING_STATE_RECONCILE_MS);
    timer.unref();
    ctx.onClose(() => clearInterval(timer));
  },
});
