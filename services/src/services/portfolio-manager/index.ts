/**
 * portfolio-manager (9001): positions, cash and PnL per user from the fills on `trading.executions`.
 * Fills are applied a Kafka batch at a time (fills.ts: one transaction, set-based statements,
 * idempotent). Arithmetic is decimal (trading/portfolio.ts applyFillToPosition), stored as NUMERIC.
 *
 * Layers: routes.ts (HTTP), fills.ts (the consumer), metrics.ts (gauges read at scrape time), domain.ts
 * (rules, no I/O), data.ts (SQL).
 */
import { defineService, Type } from "../../kit";
import { TOPICS, type ExecutionMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import * as data from "./data";
import { portfolioTotals } from "./domain";
import { applyFillsInTransaction } from "./fills";
import { registerPortfolioGauges } from "./metrics";
import { registerRoutes } from "./routes";

export default defineService({
  name: "portfolio-manager",
  config: {
    ...consumerEnv,
    PORTFOLIO_INITIAL_CASH: Type.String({ default: "100000", pattern: "^\\d+(\\.\\d+)?$" }),
    PM_CONSUMER_GROUP: Type.String({ default: "portfolio-manager" }),
    // Fills gathered per transaction (consumeDecoded's lingerMs): a portfolio is updated up to this
    // much later, off the order path, for a fraction of the CPU per fill under load.
    PM_BATCH_LINGER_MS: Type.Integer({ default: 50, minimum: 0, maximum: 1000 }),
  },
  async register(ctx) {
    const initialCash = ctx.config.PORTFOLIO_INITIAL_CASH;
    registerRoutes(ctx.app, { initialCash });
    registerPortfolioGauges(ctx.metrics.registry, async () => portfolioTotals(await data.totalsBySymbol(ctx.app.pg)), ctx.log);

    // One transaction per fetched batch of fills (every partition fetched together).
    await consumeBatches(ctx, {
      groupId: ctx.config.PM_CONSUMER_GROUP,
      topics: [TOPICS.executions],
      joinPartitions: 6, // the executions of every partition fetched together: one transaction
      lingerMs: ctx.config.PM_BATCH_LINGER_MS,
      handle: async (msgs) => {
        // m.json: the value the consumer already parsed and checked against the topic's schema (not parsed again here).
        const fills = msgs.map((m) => m.json as ExecutionMsg).filter((m): m is Extract<ExecutionMsg, { type: "fill" }> => m.type === "fill");
        // Database-only, so run again on a deadlock here rather than redeliver the batch: the cash UPDATE
        // (data.writeStatements) takes the accounts' rows in its join's order, not the sorted list's, so two batches
        // sharing two accounts (a partition handed over while its old owner's batch still runs) can deadlock.
        if (fills.length) await applyFillsInTransaction(ctx.app.pg, fills.map((m) => m.fill), initialCash, 3);
      },
    });
  },
});
