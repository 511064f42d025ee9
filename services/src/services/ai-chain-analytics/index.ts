/**
 * ai-chain-analytics (8031): the AI tier's decision chains, signal -> decision -> order -> fills ->
 * PnL. Decisions come from ai-orchestrator, orders and fills from the trading core's topics
 * (ingest.ts); rows and aggregates live in ClickHouse (store.ts), the chains as a graph in
 * ArangoDB when enabled (graph.ts, unverified: no server here). Per model version and strategy:
 * hit rate, PnL attribution, slippage versus the decision price, latency per step; on the API
 * (routes.ts) and as Prometheus gauges for the Grafana dashboard. The ClickHouse rows go after
 * CHAIN_CLICKHOUSE_RETENTION_DAYS by month partitions (retention.ts), the graph's after CHAIN_GRAPH_RETENTION_DAYS.
 */
import { defineService, isShuttingDown, PeriodicDelete, RECORD_RETENTION_DAYS, Type } from "../../kit";
import { TOPICS } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { ChainGraph } from "./graph";
import { applyEvents, pullDecisions, type IngestDeps } from "./ingest";
import { chainMetrics } from "./metrics";
import { ChainRetention } from "./retention";
import { registerRoutes } from "./routes";
import { ChainStore } from "./store";

/** How often the ClickHouse retention looks for month partitions past it (retention.ts). */
const RETENTION_PASS_MS = 3_600_000;
/** Decisions whose graph copies one retention pass removes at most (each with its chain: a few documents more). */
const GRAPH_REMOVAL_BATCH = 1_000;

export default defineService({
  name: "ai-chain-analytics",
  config: {
    ...consumerEnv,
    CHAIN_CONSUMER_GROUP: Type.String({ default: "ai-chain-analytics" }),
    CHAIN_POLL_MS: Type.Integer({ default: 5_000, minimum: 0, maximum: 86_400_000, description: "how often decisions are pulled from ai-orchestrator; 0 disables the pull" }),
    CHAIN_REREAD_MS: Type.Integer({ default: 10_000, minimum: 0, maximum: 86_400_000, description: "how far back each pull re-reads (late commits)" }),
    CHAIN_LOOKBACK_HOURS: Type.Integer({ default: 24, minimum: 1, maximum: 24 * 90, description: "decisions pulled at start, and the window of the /metrics gauges" }),
    CHAIN_SUMMARY_MAX_DAYS: Type.Integer({ default: 93, minimum: 1, maximum: 3660, description: "the longest range of a trader's own summary (GET /summary, a quarter by default): it reads their decisions of the range" }),
    CHAIN_SUMMARY_ALL_MAX_DAYS: Type.Integer({ default: 31, minimum: 1, maximum: 366, description: "the longest range of every user's summary (GET /summary/all, admins): it reads every user's decisions of the range" }),
    CHAIN_GRAPH_RETENTION_DAYS: Type.Integer({
      ...RECORD_RETENTION_DAYS,
      description:
        "where ArangoDB is enabled, the graph copy of a decision made longer ago than this is removed with its chain (signal, orders, fills, edges), 1,000 a pass: " +
        "set it as ai-orchestrator's ORCH_DECISION_RETENTION_DAYS (the same default and floor)",
    }),
    CHAIN_CLICKHOUSE_RETENTION_DAYS: Type.Integer({
      ...RECORD_RETENTION_DAYS,
      description:
        "the ClickHouse rows of a chain (its decision, orders, fills) go once their month ended more than this long ago (whole month partitions, hourly: " +
        "kept at least this, at most a month more): set it as ai-orchestrator's ORCH_DECISION_RETENTION_DAYS (the same default and floor)",
    }),
  },
  async register(ctx) {
    const c = ctx.config;
    const store = new ChainStore(ctx.app.clickhouse);
    // Partitions dropped (and 0026's table's rows deleted) hourly: a month's partition goes whole, so a pass more often finds nothing.
    const retention = new ChainRetention(ctx.app.clickhouse, c.CHAIN_CLICKHOUSE_RETENTION_DAYS);
    const rows = new PeriodicDelete("chain rows past their retention (ClickHouse partitions)", () => retention.pass(), ctx.log, { intervalMs: RETENTION_PASS_MS });
    rows.start();
    ctx.onClose(() => rows.stop());
    let graph: Promise<ChainGraph> | undefined;
    const deps: IngestDeps = {
      store,
      peers: ctx.peers,
      log: ctx.log,
      graph: ctx.datastores.isEnabled("arangodb")
        ? () => {
            graph ??= (async () => {
              const g = new ChainGraph(ctx.app.arango.db);
              await g.ensure();
              return g;
            })().catch((e) => {
              graph = undefined;
              throw e;
            });
            return graph;
          }
        : undefined,
    };
    if (deps.graph) {
      const graphOf = deps.graph;
      const removal = new PeriodicDelete(
        "graph copies of decisions past their retention",
        async () => (await graphOf()).removeOlderThan(new Date(Date.now() - c.CHAIN_GRAPH_RETENTION_DAYS * 86_400_000), GRAPH_REMOVAL_BATCH),
        ctx.log,
      );
      removal.start();
      ctx.onClose(() => removal.stop());
    }
    registerRoutes(ctx, { store, graph: deps.graph, maxAllDays: c.CHAIN_SUMMARY_ALL_MAX_DAYS, maxOwnDays: c.CHAIN_SUMMARY_MAX_DAYS });
    chainMetrics(ctx.metrics.registry, store, c.CHAIN_LOOKBACK_HOURS, ctx.log);

    await consumeBatches(ctx, { groupId: c.CHAIN_CONSUMER_GROUP, topics: [TOPICS.orders, TOPICS.executions], handle: (msgs) => applyEvents(deps, msgs) });

    if (c.CHAIN_POLL_MS > 0) {
      let since = new Date(Date.now() - c.CHAIN_LOOKBACK_HOURS * 3_600_000);
      let pulling: Promise<void> | undefined;
      const pull = async () => {
        try {
          since = await pullDecisions(deps, since, c.CHAIN_REREAD_MS);
        } catch (e) {
          // Its read cut by the close (kit peers cutOnClose): nothing was lost, the next start pulls from its lookback.
          if (isShuttingDown(e)) ctx.log.info("decision pull cut by the shutdown");
          else ctx.log.warn({ err: { message: (e as Error).message } }, "decision pull failed; retrying next tick");
        }
      };
      const timer = setInterval(() => {
        pulling ??= pull().finally(() => (pulling = undefined));
      }, c.CHAIN_POLL_MS);
      timer.unref();
      // The pull running is waited for (its read is cut PEER_CLOSE_GRACE_MS into the close): before,
      // the close went on without it, and its inserts met the ClickHouse client closed under them.
      ctx.onClose(async () => {
        clearInterval(timer);
        await pulling;
      });
    }
  },
});
