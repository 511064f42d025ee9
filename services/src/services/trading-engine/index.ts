/**
 * trading-engine (9000): executes accepted orders.
 * Consumes `trading.orders` (order.accepted -> execute, order.pending_cancel -> pull a resting limit
 * and confirm the cancel) and `market.candles` (closed bars: resting limits fill when a bar crosses
 * them). Paper mode (default) executes on the deterministic PaperExchange; `TRADING_MODE=live` sends
 * orders to Binance (keys from BINANCE_API_KEY / BINANCE_SECRET_KEY only in that mode; live.ts): a
 * cancel goes to Binance, and the orders resting there are polled every TE_LIVE_POLL_MS for fills.
 * It is a singleton (one replica): the book lives in one process.
 *
 * Layers: routes.ts (HTTP), engine.ts (execution, one transaction per batch; batch.ts what one
 * accumulates; live.ts, liveSends.ts, liveUpdates.ts and sentOrders.ts the Binance side), halts.ts
 * (the kill switch: no fill for a halted scope), messages.ts (checked incoming messages, outgoing
 * events; no I/O), data.ts (SQL).
 */
import { Counter } from "prom-client";
import { ConfigError, defineService, envEnum, envUrl, Type } from "../../kit";
import { BinanceTradingClient } from "../../trading/binance/adapter";
import { TOPICS } from "../../trading/events";
import { executionOptionIssue, type ExecutionOptions } from "../../trading/executionRules";
import { consumeDecoded, consumerEnv } from "../../trading/infra/kafka";
import { OutboxRelay } from "../../trading/infra/outbox";
import { HOUR_MS, outboxRetentionHours } from "../../trading/infra/outboxRetention";
import { PAPER_TICK_SIZE_VAR } from "../../trading/orderRequest";
import { TradingEngine } from "./engine";
import { liveOrdersUnrecordedCounter } from "./metrics";
import type { LiveOptions } from "./live";
import { commandOf } from "./messages";
import { registerRoutes } from "./routes";

const bpsVar = (d: string) => Type.String({ default: d, pattern: "^\\d+(\\.\\d+)?$" });
/** The configuration key of each paper execution option. */
const PAPER_KEYS: Partial<Record<keyof ExecutionOptions, string>> = {
  makerFeeBps: "PAPER_MAKER_FEE_BPS",
  takerFeeBps: "PAPER_TAKER_FEE_BPS",
  slippageBps: "PAPER_SLIPPAGE_BPS",
  impactBps: "PAPER_IMPACT_BPS",
  tickSize: "PAPER_TICK_SIZE",
};

export default defineService({
  name: "trading-engine",
  config: {
    ...consumerEnv,
    TRADING_MODE: envEnum(["paper", "live"], { default: "paper" }),
    BINANCE_API_KEY: Type.Optional(Type.String({ secret: true })),
    BINANCE_SECRET_KEY: Type.Optional(Type.String({ secret: true })),
    // Live orders go there signed with the API key in a header: https, or http to a loopback stand-in only.
    BINANCE_REST_URL: envUrl({ protocols: ["https"], httpToLoopback: true, default: "https://api.binance.com" }),
    BINANCE_QUOTE_ASSET: Type.String({ default: "USDT" }),
    // Live mode: how often the orders resting at Binance are polled for fills (none resting: no request).
    TE_LIVE_POLL_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 600000 }),
    PAPER_MAKER_FEE_BPS: bpsVar("10"),
    PAPER_TAKER_FEE_BPS: bpsVar("10"),
    PAPER_SLIPPAGE_BPS: bpsVar("5"),
    PAPER_IMPACT_BPS: bpsVar("0"),
    // The same declaration as order-management's and risk-analyzer's: an order's limit is checked against this tick.
    PAPER_TICK_SIZE: PAPER_TICK_SIZE_VAR,
    TE_CONSUMER_GROUP: Type.String({ default: "trading-engine" }),
    TE_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
    // As order-management's OM_OUTBOX_DIRECT / OM_OUTBOX_GRACE_MS: fills published by their committer.
    TE_OUTBOX_DIRECT: Type.Boolean({ default: true }),
    TE_OUTBOX_GRACE_MS: Type.Integer({ default: 2000, minimum: 0, maximum: 600000 }),
    // Sent rows kept this long, then deleted (trading/infra/outboxRetention.ts).
    TE_OUTBOX_RETENTION_HOURS: outboxRetentionHours(),
  },
  async register(ctx) {
    const c = ctx.config;
    const paper = { makerFeeBps: c.PAPER_MAKER_FEE_BPS, takerFeeBps: c.PAPER_TAKER_FEE_BPS, slippageBps: c.PAPER_SLIPPAGE_BPS, impactBps: c.PAPER_IMPACT_BPS, tickSize: c.PAPER_TICK_SIZE };
    // The paper exchange's bounds are the execution rules' (a fee of 100 % or more, a tick of 0): named by key at start.
    const paperIssue = executionOptionIssue(paper);
    if (paperIssue) throw new ConfigError("trading-engine", [`${PAPER_KEYS[paperIssue.option]} ${paperIssue.message} (got "${paper[paperIssue.option as keyof typeof paper]}")`]);
    let live: LiveOptions | undefined;
    if (c.TRADING_MODE === "live") {
      const { BINANCE_API_KEY: apiKey, BINANCE_SECRET_KEY: secretKey } = c;
      if (!apiKey || !secretKey) {
        const missing = (["BINANCE_API_KEY", "BINANCE_SECRET_KEY"] as const).filter((k) => !c[k]);
        throw new ConfigError("trading-engine", missing.map((k) => `${k} is required by trading-engine with TRADING_MODE=live`));
      }
      live = { client: new BinanceTradingClient({ apiKey, secretKey, baseUrl: c.BINANCE_REST_URL }), quoteAsset: c.BINANCE_QUOTE_ASSET, pollMs: c.TE_LIVE_POLL_MS };
    }
    const pg = ctx.app.pg;
    const relay = new OutboxRelay(pg.pool, "te_outbox", ctx.app.kafka, ctx.log, { intervalMs: c.TE_OUTBOX_INTERVAL_MS, direct: c.TE_OUTBOX_DIRECT, graceMs: c.TE_OUTBOX_GRACE_MS, retention: { retentionMs: c.TE_OUTBOX_RETENTION_HOURS * HOUR_MS } });
    const fillsTotal = new Counter({ name: "te_fills_total", help: "fills produced", labelNames: ["liquidity"], registers: [ctx.metrics.registry] });
    const liveOrdersUnrecorded = liveOrdersUnrecordedCounter(ctx.metrics.registry);
    const engine = new TradingEngine({ pg, relay, log: ctx.log, live, fillsTotal, liveOrdersUnrecorded, paper });
    await engine.load();
    registerRoutes(ctx.app, engine, c.TRADING_MODE);
    // Live: the first poll right away reconciles the orders that rested at Binance while the engine was down.
    engine.startLivePolling();
    ctx.onClose(() => engine.stopLivePolling());

    relay.start();
    ctx.onClose(() => relay.stop());
    // The engine's group starts at the beginning of its topics when it has no committed offsets (a
    // first deploy, a renamed group): an order accepted before the engine first joined must still be
    // executed, and te_orders / te_last_bar recognise what was already applied. Catching up is fast
    // because it is batched: the partitions fetched together are one transaction (joinPartitions),
    // a poison message is set aside alone (decode) instead of sending its batch one message at a time.
    await consumeDecoded(ctx, {
      groupId: c.TE_CONSUMER_GROUP,
      topics: [TOPICS.orders, TOPICS.candles],
      joinPartitions: 12,
      decode: (m) => commandOf(m.topic, m.json),
      handle: (commands) => engine.onBatch(commands),
    });
  },
});
