/**
 * performance-analytics (9100): returns, Sharpe ratio, drawdown and exposure per user and strategy.
 * Consumes fills (`trading.executions`) and orders (`trading.orders`: the strategy is the prefix of
 * the client order id, `<strategy>:<id>`, else "manual") into ClickHouse; a scheduled rollup marks
 * positions to daily closes from `market_candles` (written by data-bridge) into `pa_daily`; the
 * API summarises that series. Layers: routes.ts (HTTP), domain.ts (curve and figures, no I/O),
 * data.ts (ClickHouse), rollup.ts (the scheduled job: the users changed since its watermark, a page
 * at a time), watermark.ts (how far it has read; which users changed since), retention.ts (the
 * changes and passes dropped once no pass reads them), leader.ts (which
 * replica runs it: the leader of the `<PERF_CONSUMER_GROUP>-rollup` Kafka group; the others skip).
 */
import { defineService, Type } from "../../kit";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { PerformanceStore, type FillRow } from "./data";
import { MAX_STRATEGIES_PER_USER, strategyOf } from "./domain";
import { rollupLeadership } from "./leader";
import { MAX_OVERLAP_SECONDS } from "./retention";
import { runRollup, type RollupResult } from "./rollup";
import { registerRoutes } from "./routes";
import { RollupWatermarks } from "./watermark";

export default defineService({
  name: "performance-analytics",
  config: {
    ...consumerEnv,
    PERF_CONSUMER_GROUP: Type.String({ default: "performance-analytics" }),
    PERF_CAPITAL_BASE: Type.Number({ default: 100_000, exclusiveMinimum: 0, description: "starting equity of an account, in the quote currency (returns are relative to it)" }),
    PERF_PRICE_TIMEFRAME: Type.String({ default: "1m", pattern: "^\\d+[smhdw]$", description: "market_candles timeframe whose last close of a UTC day is that day's close" }),
    PERF_ROLLUP_INTERVAL_MS: Type.Integer({ default: 300_000, minimum: 0, description: "0 disables the schedule (POST /rollup still runs it)" }),
    PERF_ROLLUP_PAGE_USERS: Type.Integer({ default: 200, minimum: 1, maximum: 10_000, description: "users whose day flows the rollup holds at once (memory bound)" }),
    PERF_MAX_STRATEGIES_PER_USER: Type.Integer({ default: MAX_STRATEGIES_PER_USER, minimum: 1, maximum: 1000, description: "strategy series per user: the labels beyond the first this many (by first fill) share one series, \"~other\"" }),
    PERF_ROLLUP_OVERLAP_S: Type.Integer({ default: 60, minimum: 0, maximum: MAX_OVERLAP_SECONDS, description: "inputs inserted this long before the last pass's start count as new again (inserts in flight then)" }),
  },
  async register(ctx) {
    const c = ctx.config;
    const store = new PerformanceStore(ctx.app.clickhouse);
    // Every replica is a member; only the group's leader runs a pass (POST /rollup on another answers ran: false).
    const rollupGroup = `${c.PERF_CONSUMER_GROUP}-rollup`;
    const leadership = rollupLeadership(ctx, { groupId: rollupGroup, topic: TOPICS.executions });
    const watermarks = new RollupWatermarks(ctx.app.clickhouse);
    let running: { full: boolean; pass: Promise<RollupResult> } | undefined;
    // One pass at a time per replica; a call during a pass shares it, unless it asks `full` of an
    // incremental one: that call's full pass starts once the running one ends (an operator asking
    // every user be recomputed gets that, not the answer of a pass that took only the changed ones).
    const rollup = (full = false): Promise<RollupResult> => {
      if (running && (running.full || !full)) return running.pass;
      const before = running?.pass.catch(() => undefined);
      const pass: Promise<RollupResult> = (async () => {
        await before;
        return runRollup(store, {
          capital: c.PERF_CAPITAL_BASE, timeframe: c.PERF_PRICE_TIMEFRAME, pageUsers: c.PERF_ROLLUP_PAGE_USERS, holds: leadership.holds,
          name: rollupGroup, watermarks, full, overlapSeconds: c.PERF_ROLLUP_OVERLAP_S, maxStrategies: c.PERF_MAX_STRATEGIES_PER_USER, log: ctx.log,
        });
      })().finally(() => {
        if (running?.pass === pass) running = undefined;
      });
      running = { full, pass };
      return pass;
    };
    registerRoutes(ctx.app, { store, capital: c.PERF_CAPITAL_BASE, rollup });

    if (c.PERF_ROLLUP_INTERVAL_MS > 0) {
      const timer = setInterval(() => rollup(false).catch((err: Error) => ctx.log.warn({ err: { message: err.message } }, "performance rollup failed")), c.PERF_ROLLUP_INTERVAL_MS);
      ctx.onClose(async () => {
        clearInterval(timer);
        await running?.pass.catch(() => undefined);
      });
    }

    await consumeBatches(ctx, {
      groupId: c.PERF_CONSUMER_GROUP,
      topics: [TOPICS.executions, TOPICS.orders],
      handle: async (msgs) => {
        const fills: FillRow[] = [];
        const strategies = new Map<string, { orderId: string; userId: string; strategy: string }>();
        for (const m of msgs) {
          try {
            if (m.topic === TOPICS.executions) {
              const e = JSON.parse(m.value) as ExecutionMsg;
              if (e.type !== "fill") continue;
              const f = e.fill;
              const row = { fillId: f.fillId, orderId: f.orderId, userId: f.userId, symbol: f.symbol, side: f.side, quantity: Number(f.quantity), price: Number(f.price), fee: Number(f.fee), tsMs: f.ts };
              if (![row.quantity, row.price, row.fee, row.tsMs].every(Number.isFinite) || !row.fillId || !row.userId) throw new Error("bad fill");
              fills.push(row);
            } else {
              const o = (JSON.parse(m.value) as OrderEventMsg).order;
              if (!strategies.has(o.orderId)) strategies.set(o.orderId, { orderId: o.orderId, userId: o.userId, strategy: strategyOf(o.clientOrderId) });
            }
          } catch {
            ctx.log.warn({ topic: m.topic, key: m.key }, "malformed event skipped");
          }
        }
        await store.insertStrategies([...strategies.values()]);
        await store.insertFills(fills);
      },
    });
  },
});
