/**
 * data-bridge (5001): market data in.
 * Subscribes each of MARKET_SYMBOLS on the source chosen by MARKET_DATA_SOURCE (synthetic | replay |
 * binance; trading/marketdata) and, per closed bar:
 *   1. publishes it to `market.candles` keyed by symbol (kit's idempotent producer),
 *   2. keeps the last price / last bar in Dragonfly (only moving forward in time),
 *   3. buffers it for ClickHouse and inserts in batches (CH_BATCH_SIZE rows or every CH_FLUSH_MS).
 * ClickHouse writes use the client's `insert()` with JSONEachRow only (the data travels in the body,
 * never in SQL text). That path works on Debian's ClickHouse 18.16, which rejects `{name:Type}`
 * query parameters; this service issues no parameterised SELECT at all.
 *   GET  /last/:symbol          last price and bar
 *   GET  /status                counters
 *   POST /internal/bars         ingest bars (backfill / tests; never proxied by the gateway)
 */
import { Counter } from "prom-client";
import { defineService, HttpError, notFound, Type, envUrl, envList, envEnum } from "../../kit";
import { lastBarKey, lastPriceKey, TOPICS } from "../../trading/events";
import { BinanceMarketData } from "../../trading/marketdata/binance";
import { parseRecorded, ReplaySource } from "../../trading/marketdata/replay";
import { SAMPLE_BTCUSDT_1M_CSV } from "../../trading/marketdata/sampleData";
import { assertBar, type MarketDataSource, type Subscription } from "../../trading/marketdata/source";
import { SyntheticSource } from "../../trading/marketdata/synthetic";
import { SYMBOL_RE, type Bar } from "../../trading/types";

/** Sets the last price/bar only when the bar is newer than the stored one (atomic in Redis). */
const SET_IF_NEWER = `
local cur = redis.call('HGET', KEYS[2], 'openTime')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'openTime', ARGV[1], 'json', ARGV[3])
return 1`;

const toChTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

export function candleRow(b: Bar, source: string) {
  return {
    symbol: b.symbol,
    timeframe: b.interval, // column is `timeframe` (migrations/clickhouse/0001_market_candles.sql)
    open_time: toChTime(b.openTime),
    open: Number(b.open),
    high: Number(b.high),
    low: Number(b.low),
    close: Number(b.close),
    volume: Number(b.volume),
    trades: 0,
    source,
  };
}

const BarSchema = Type.Object({
  symbol: Type.String({ pattern: SYMBOL_RE.source }),
  interval: Type.String({ pattern: "^\\d+[smhdw]$" }),
  openTime: Type.Integer({ minimum: 0 }),
  closeTime: Type.Integer({ minimum: 0 }),
  open: Type.String(),
  high: Type.String(),
  low: Type.String(),
  close: Type.String(),
  volume: Type.String(),
});

function startOfUtcDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

export default defineService({
  name: "data-bridge",
  config: {
    MARKET_DATA_SOURCE: envEnum(["synthetic", "replay", "binance"], { default: "synthetic" }),
    MARKET_SYMBOLS: envList(Type.String({ pattern: SYMBOL_RE.source, description: "upper-case symbol" }), { default: ["BTCUSDT"] }),
    MARKET_INTERVAL: Type.String({ default: "1m", pattern: "^\\d+[smhdw]$" }),
    MARKET_SUBSCRIBE: Type.Boolean({ default: true }),
    SYNTHETIC_SEED: Type.String({ default: "ai-trading" }),
    SYNTHETIC_EMIT_MS: Type.Optional(Type.Integer({ minimum: 1 })),
    SYNTHETIC_START_PRICE: Type.String({ default: "100", pattern: "^\\d+(\\.\\d+)?$" }),
    /** Recorded bars (CSV / JSON lines); unset = the shipped BTCUSDT 1m sample. */
    REPLAY_FILE: Type.Optional(Type.String()),
    REPLAY_EMIT_MS: Type.Integer({ default: 1000, minimum: 0 }),
    BINANCE_REST_URL: envUrl({ protocols: ["http", "https"], default: "https://api.binance.com" }),
    BINANCE_WS_URL: envUrl({ protocols: ["ws", "wss"], default: "wss://stream.binance.com:9443" }),
    CH_BATCH_SIZE: Type.Integer({ default: 500, minimum: 1 }),
    CH_FLUSH_MS: Type.Integer({ default: 1000, minimum: 10 }),
    CH_MAX_BUFFER: Type.Integer({ default: 100_000, minimum: 100 }),
  },
  async register(ctx) {
    const c = ctx.config;
    const kafka = ctx.datastores.kafka;
    const redis = ctx.datastores.dragonfly.redis;
    const ch = ctx.datastores.isEnabled("clickhouse") ? ctx.datastores.clickhouse : undefined;
    if (!ch) ctx.log.warn("ClickHouse disabled: bars are not stored for analytics");
    const barsIn = new Counter({ name: "data_bridge_bars_total", help: "bars ingested", labelNames: ["symbol"], registers: [ctx.metrics.registry] });
    const chRows = new Counter({ name: "data_bridge_clickhouse_rows_total", help: "rows inserted into ClickHouse", registers: [ctx.metrics.registry] });
    const stats = { ingested: 0, clickhouseRows: 0, clickhouseFailures: 0, dropped: 0 };

    let buffer: ReturnType<typeof candleRow>[] = [];
    let flushing: Promise<void> | undefined;
    async function flush(): Promise<void> {
      if (!ch || buffer.length === 0) return;
      if (flushing) return flushing;
      const rows = buffer;
      buffer = [];
      flushing = (async () => {
        try {
          await ch.insert("market_candles", rows); // client insert(), JSONEachRow: works on 18.16
          stats.clickhouseRows += rows.length;
          chRows.inc(rows.length);
        } catch (err) {
          stats.clickhouseFailures++;
          ctx.log.warn({ err: { message: (err as Error).message }, rows: rows.length }, "clickhouse insert failed; rows kept for retry");
          buffer = rows.concat(buffer);
          if (buffer.length > c.CH_MAX_BUFFER) {
            stats.dropped += buffer.length - c.CH_MAX_BUFFER;
            buffer = buffer.slice(buffer.length - c.CH_MAX_BUFFER);
          }
        } finally {
          flushing = undefined;
        }
      })();
      return flushing;
    }
    const timer = setInterval(() => void flush(), c.CH_FLUSH_MS);

    async function ingest(bars: Bar[]): Promise<void> {
      if (bars.length === 0) return;
      for (const b of bars) assertBar(b);
      await kafka.send(TOPICS.candles, bars.map((b) => ({ key: b.symbol, value: JSON.stringify(b) })));
      const pipe = redis.pipeline();
      for (const b of bars) pipe.eval(SET_IF_NEWER, 2, lastPriceKey(b.symbol), lastBarKey(b.symbol), String(b.openTime), b.close, JSON.stringify(b));
      await pipe.exec();
      for (const b of bars) {
        barsIn.inc({ symbol: b.symbol });
        if (ch) buffer.push(candleRow(b, c.MARKET_DATA_SOURCE));
      }
      stats.ingested += bars.length;
      if (buffer.length >= c.CH_BATCH_SIZE) await flush();
    }

    ctx.app.post("/internal/bars", { schema: { body: Type.Object({ bars: Type.Array(BarSchema, { minItems: 1, maxItems: 10_000 }), flush: Type.Optional(Type.Boolean()) }) } }, async (req) => {
      try {
        await ingest(req.body.bars);
      } catch (err) {
        if (/invariants|non-numeric/.test((err as Error).message)) throw new HttpError(400, "INVALID_BAR", (err as Error).message);
        throw err;
      }
      if (req.body.flush) await flush();
      return { ingested: req.body.bars.length };
    });
    ctx.app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String({ pattern: SYMBOL_RE.source }) }) } }, async (req) => {
      const [price, json] = await Promise.all([redis.get(lastPriceKey(req.params.symbol)), redis.hget(lastBarKey(req.params.symbol), "json")]);
      if (price === null) throw notFound(`no price for ${req.params.symbol}`);
      return { symbol: req.params.symbol, price, bar: json ? JSON.parse(json) : null };
    });
    ctx.app.get("/status", async () => ({ source: c.MARKET_DATA_SOURCE, symbols: c.MARKET_SYMBOLS, ...stats, buffered: buffer.length }));

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

    const subs: Subscription[] = [];
    if (c.MARKET_SUBSCRIBE)
      for (const s of c.MARKET_SYMBOLS)
        subs.push(source.subscribe(s, c.MARKET_INTERVAL, (bar) => ingest([bar]), (err) => ctx.log.warn({ err: { message: err.message }, symbol: s }, "market data error")));

    ctx.onClose(async () => {
      await Promise.all(subs.map((s) => s.close()));
      clearInterval(timer);
      await flush();
    });
  },
});
