/**
 * data-bridge (5001): market data in.
 * Subscribes each of MARKET_SYMBOLS on the source chosen by MARKET_DATA_SOURCE (synthetic | replay |
 * binance; trading/marketdata) and ingests every closed bar (./ingest.ts: Kafka in batches of bars
 * per symbol, Dragonfly) after
 * the strict checks of ./domain.ts; a feed bar that fails them is logged and set aside, never
 * published. With ClickHouse enabled, ./candle-writer.ts copies `market.candles` into ClickHouse in
 * large batched INSERTs (at-least-once, deduplicated by the table). Routes: ./routes.ts.
 */
import { defineService, envEnum, envList, envUrl, HttpError, Type } from "../../kit";
import { BinanceMarketData } from "../../trading/marketdata/binance";
import { parseRecorded, ReplaySource } from "../../trading/marketdata/replay";
import { DEFAULT_BARS_PER_MESSAGE, MAX_BARS_PER_PRODUCED_MESSAGE } from "../../trading/marketdata/candleMessages";
import { SAMPLE_BTCUSDT_1M_CSV } from "../../trading/marketdata/sampleData";
import type { MarketDataSource, Subscription } from "../../trading/marketdata/source";
import { SyntheticSource } from "../../trading/marketdata/synthetic";
import { SYMBOL_RE } from "../../trading/types";
import { DECIMAL_PATTERN, INTERVAL_PATTERN, startOfUtcDay } from "./domain";
import { consumerEnv } from "../../trading/infra/kafka";
import { CandleWriter } from "./candle-writer";
import { BarIngest } from "./ingest";
import { registerRoutes } from "./routes";

export { candleRow, checkBar } from "./domain";

/**
 * CH_BATCH_BYTES' and CH_MAX_BATCH_BYTES' bound, 16 MiB: the writer's Kafka fetch asks up to twice
 * CH_MAX_BATCH_BYTES (32 MiB, within the 55 MiB fetch.max.bytes Kafka and Redpanda default to), and a
 * partition's batch is held in memory until its INSERT. The default 4 MiB (about 55,000 bars at about
 * 76 bytes each) already makes inserts large under load (README, ClickHouse bars); bench/bars.ts tries 16 MiB.
 */
const CH_BATCH_BYTES_BOUND = 16 * 1_048_576;

export default defineService({
  name: "data-bridge",
  config: {
    MARKET_DATA_SOURCE: envEnum(["synthetic", "replay", "binance"], { default: "synthetic" }),
    MARKET_SYMBOLS: envList(Type.String({ pattern: SYMBOL_RE.source, description: "upper-case symbol" }), { default: ["BTCUSDT"] }),
    MARKET_INTERVAL: Type.String({ default: "1m", pattern: INTERVAL_PATTERN }),
    MARKET_SUBSCRIBE: Type.Boolean({ default: true }),
    SYNTHETIC_SEED: Type.String({ default: "ai-trading" }),
    SYNTHETIC_EMIT_MS: Type.Optional(Type.Integer({ minimum: 1 })),
    SYNTHETIC_START_PRICE: Type.String({ default: "100", pattern: DECIMAL_PATTERN }),
    /** Recorded bars (CSV / JSON lines); unset = the shipped BTCUSDT 1m sample. */
    REPLAY_FILE: Type.Optional(Type.String()),
    REPLAY_EMIT_MS: Type.Integer({ default: 1000, minimum: 0 }),
    BINANCE_REST_URL: envUrl({ protocols: ["http", "https"], default: "https://api.binance.com" }),
    BINANCE_WS_URL: envUrl({ protocols: ["ws", "wss"], default: "wss://stream.binance.com:9443" }),
    /** ClickHouse writer: its consumer group, and how much one INSERT gathers (./candle-writer.ts). */
    CANDLES_PER_MESSAGE: Type.Integer({ default: DEFAULT_BARS_PER_MESSAGE, minimum: 1, maximum: MAX_BARS_PER_PRODUCED_MESSAGE, description: "most bars of one symbol in one market.candles message" }),
    CANDLES_WRITER_GROUP: Type.String({ default: "data-bridge.candles", minLength: 1 }),
    CH_FLUSH_MS: Type.Integer({ default: 1000, minimum: 10, description: "longest a bar waits for its INSERT" }),
    CH_BATCH_BYTES: Type.Integer({ default: 1_048_576, minimum: 1, maximum: CH_BATCH_BYTES_BOUND, atMost: { key: "CH_MAX_BATCH_BYTES", why: "an INSERT takes at most CH_MAX_BATCH_BYTES of a partition, so waiting for more (the fetch's minimum) waits out CH_FLUSH_MS every time" }, description: "bytes of bars an INSERT waits for (up to CH_FLUSH_MS); at most 16 MiB, CH_MAX_BATCH_BYTES's bound: the fetch's minimum, more than a fetch may carry would wait out CH_FLUSH_MS every time" }),
    CH_MAX_BATCH_BYTES: Type.Integer({ default: 4_194_304, minimum: 65_536, maximum: CH_BATCH_BYTES_BOUND, description: "most bytes of bars one INSERT takes per partition; at most 16 MiB (about 220,000 bars): the writer's fetch asks twice this, held within the broker's 55 MiB fetch.max.bytes (Kafka's and Redpanda's default), and each partition's batch sits in memory until its INSERT" }),
    ...consumerEnv,
  },
  async register(ctx) {
    const c = ctx.config;
    const redis = ctx.app.redis;
    const ch = ctx.datastores.isEnabled("clickhouse") ? ctx.app.clickhouse : undefined;
    if (!ch) ctx.log.warn("ClickHouse disabled: bars are not stored for analytics");
    const ingest = new BarIngest(ctx, ctx.app.kafka, redis, c.CANDLES_PER_MESSAGE);
    const writer = ch
      ? new CandleWriter(ctx, ch, { groupId: c.CANDLES_WRITER_GROUP, source: c.MARKET_DATA_SOURCE, flushMs: c.CH_FLUSH_MS, batchBytes: c.CH_BATCH_BYTES, maxBatchBytes: c.CH_MAX_BATCH_BYTES })
      : undefined;
    registerRoutes(ctx.app, ingest, writer, redis, () => ({ source: c.MARKET_DATA_SOURCE, symbols: c.MARKET_SYMBOLS }));
    await writer?.start();

    let source: MarketDataSource;
    if (c.MARKET_DATA_SOURCE === "synthetic")
      source = new SyntheticSource({
        seed: c.SYNTHETIC_SEED,
        // The series starts at today's UTC midnight: the live bar is reached in at most a day of
        // steps. From the library's default origin (2024) a start-up computes ~10^6 bars first,
        // which at a quarter of a core keeps the service from listening for minutes.
        origin: startOfUtcDay(Date.now()),
        emitEveryMs: c.SYNTHETIC_EMIT_MS,
        startPrices: Object.fromEntries(c.MARKET_SYMBOLS.map((s) => [s, c.SYNTHETIC_START_PRICE])),
      });
    else if (c.MARKET_DATA_SOURCE === "replay")
      source = c.REPLAY_FILE
        ? ReplaySource.fromFile(c.REPLAY_FILE, { interval: c.MARKET_INTERVAL }, { emitEveryMs: c.REPLAY_EMIT_MS })
        : new ReplaySource(parseRecorded(SAMPLE_BTCUSDT_1M_CSV), { emitEveryMs: c.REPLAY_EMIT_MS });
    else source = new BinanceMarketData({ restBaseUrl: c.BINANCE_REST_URL, wsBaseUrl: c.BINANCE_WS_URL });

    const onFeedError = (symbol: string) => (err: Error) => ctx.log.warn({ err: { message: err.message }, symbol }, "market data error");
    const subs: Subscription[] = [];
    if (c.MARKET_SUBSCRIBE)
      for (const s of c.MARKET_SYMBOLS)
        subs.push(
          source.subscribe(
            s,
            c.MARKET_INTERVAL,
            (bar) =>
              ingest.ingest([bar], `feed.${s}`).then(() => undefined, (err: Error) => {
                // A malformed feed bar is set aside (logged), the feed goes on; a write failure
                // surfaces to the source, which hands the same bar again after a back-off (deliverBar).
                if (err instanceof HttpError && err.statusCode === 400) ctx.log.warn({ symbol: s, problem: err.message }, "feed bar rejected");
                else throw err;
              }),
            onFeedError(s),
          ),
        );

    ctx.onClose(async () => {
      await Promise.all(subs.map((s) => s.close()));
    });
  },
});
