/**
 * portfolio-manager's gauges: realized PnL and fees per symbol and the open positions of all
 * accounts. They are read from PostgreSQL when Prometheus scrapes, not counted by the replica that
 * applied a fill, so every replica reports the same platform-wide totals (dashboards take the max
 * over replicas). The three gauges share one read per scrape. A read that fails or takes longer than
 * `timeoutMs` drops the series for that scrape (logged): /metrics still answers, and no stale figure
 * is reported as current.
 */
import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";
import { scrapeRead } from "../../kit";
import type { PortfolioTotals } from "./domain";

export function registerPortfolioGauges(registry: Registry, read: () => Promise<PortfolioTotals>, log: Logger, timeoutMs = 2_000): void {
  const totals = scrapeRead(read, "the portfolio totals", log, timeoutMs);

  new Gauge({
    name: "portfolio_realized_pnl",
    help: "Realized PnL of all accounts by symbol, quote currency (read from PostgreSQL at scrape time)",
    labelNames: ["symbol"],
    registers: [registry],
    async collect() {
      const t = await totals();
      this.reset();
      for (const s of t?.bySymbol ?? []) this.set({ symbol: s.symbol }, s.realizedPnl);
    },
  });
  new Gauge({
    name: "portfolio_fees",
    help: "Fees paid by all accounts by symbol, quote currency (read from PostgreSQL at scrape time)",
    labelNames: ["symbol"],
    registers: [registry],
    async collect() {
      const t = await totals();
      this.reset();
      for (const s of t?.bySymbol ?? []) this.set({ symbol: s.symbol }, s.fees);
    },
  });
  new Gauge({
    name: "portfolio_open_positions",
    help: "Positions with a non-zero quantity, all accounts (read from PostgreSQL at scrape time)",
    registers: [registry],
    async collect() {
      const t = await totals();
      if (t) this.set(t.openPositions);
      else this.remove(); // no sample rather than a 0 that was never measured
    },
  });
}
