/**
 * Prometheus gauges of the chain aggregates (the Grafana dashboard's source), computed from
 * ClickHouse at scrape time over the last CHAIN_LOOKBACK_HOURS, per model version and strategy.
 */
import { Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import type { ChainStore, ChainSummary } from "./store";

export function chainMetrics(registry: Registry, store: ChainStore, lookbackHours: number, log: Logger) {
  const labelNames = ["model_version", "strategy_id"] as const;
  // One ClickHouse query per scrape, shared by every gauge's collect().
  let pending: Promise<ChainSummary[]> | undefined;
  const summaries = () => {
    pending ??= store
      .summary({ from: new Date(Date.now() - lookbackHours * 3_600_000), to: new Date(Date.now() + 1000) })
      .catch((e) => {
        log.warn({ err: { message: (e as Error).message } }, "chain metrics unavailable");
        return [];
      })
      .finally(() => setTimeout(() => (pending = undefined), 0));
    return pending;
  };
  const gauge = (name: string, help: string, value: (s: ChainSummary) => number | null) => {
    const g: Gauge<(typeof labelNames)[number]> = new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        g.reset();
        for (const s of await summaries()) {
          const v = value(s);
          if (v !== null) g.set({ model_version: s.modelVersion || "none", strategy_id: s.strategyId }, v);
        }
      },
    });
  };
  gauge("ai_chain_decisions", "Decisions in the window", (s) => s.decisions);
  gauge("ai_chain_orders", "Orders placed by decisions in the window", (s) => s.orders);
  gauge("ai_chain_fills", "Fills of those orders", (s) => s.fills);
  gauge("ai_chain_hit_rate", "Filled decisions in profit at the latest close / filled decisions", (s) => s.hitRate);
  gauge("ai_chain_pnl", "PnL of the fills at the latest close, net of fees (quote currency)", (s) => s.pnl);
  gauge("ai_chain_slippage_bps", "Quantity-weighted fill price vs decision price, bps (positive = worse)", (s) => s.slippageBps);
  gauge("ai_chain_decision_to_order_ms_p50", "Decision to order created, p50 ms", (s) => s.decisionToOrderMs?.p50 ?? null);
  gauge("ai_chain_order_to_fill_ms_p50", "Order created to first fill, p50 ms", (s) => s.orderToFillMs?.p50 ?? null);
}
