/**
 * data-bridge's rules, without I/O: the HTTP shape of bars, as objects or as positional series (the field rules themselves live in
 * trading/marketdata/barRules.ts, shared with the `market.candles` topic schema), and a bar's
 * ClickHouse row, as an object (JSONEachRow) or as a TabSeparated line (the candle writer's bulk
 * format: no per-row JSON work).
 */
import { clickhouseDateTime, HttpError, Type } from "../../kit";
import { barProblem, barValuesProblem, DECIMAL_PATTERN, INTERVAL_PATTERN, MAX_CLOSE_TIME_MS, MAX_OPEN_TIME_MS, seriesProblem } from "../../trading/marketdata/barRules";
import { chunkSeries, type CandleBatch, type CandleTuple } from "../../trading/marketdata/candleMessages";
import { SYMBOL_RE, type Bar } from "../../trading/types";

export { DECIMAL_PATTERN, INTERVAL_PATTERN, MAX_OPEN_TIME_MS } from "../../trading/marketdata/barRules";

const Decimal = (description: string) => Type.String({ pattern: DECIMAL_PATTERN, maxLength: 28, description });

export const BarSchema = Type.Object(
  {
    symbol: Type.String({ pattern: SYMBOL_RE.source }),
    interval: Type.String({ pattern: INTERVAL_PATTERN }),
    openTime: Type.Integer({ minimum: 0, maximum: MAX_OPEN_TIME_MS }),
    closeTime: Type.Integer({ minimum: 0, maximum: MAX_CLOSE_TIME_MS }),
    open: Decimal("price, a decimal string > 0"),
    high: Decimal("price, a decimal string > 0"),
    low: Decimal("price, a decimal string > 0"),
    close: Decimal("price, a decimal string > 0"),
    volume: Decimal("volume, a decimal string >= 0"),
  },
  { additionalProperties: false },
);

/** Most bars one POST /internal/bars carries, in either form. */
export const MAX_BARS_PER_POST = 10_000;

/** One symbol's bars, positional: the compact form of a post (and of a `market.candles` message). */
export const SeriesSchema = Type.Object(
  {
    symbol: Type.String({ pattern: SYMBOL_RE.source }),
    interval: Type.String({ pattern: INTERVAL_PATTERN }),
    // Items are checked by the bar rules (checkSeries: a 400 naming series.<i>.bars.<j>.<field>), not
    // here: a schema per element would cost as much as the object form's.
    bars: Type.Array(Type.Array(Type.Unknown(), { minItems: 7, maxItems: 7, description: '[openTime, closeTime, open, high, low, close, volume]: epoch ms integers, decimal strings (as in a bar object)' }), {
      minItems: 1,
      maxItems: MAX_BARS_PER_POST,
    }),
  },
  { additionalProperties: false },
);
export type Series = { symbol: string; interval: string; bars: unknown[][] };

export const BarsBody = Type.Object(
  {
    bars: Type.Optional(Type.Array(BarSchema, { minItems: 1, maxItems: MAX_BARS_PER_POST, description: "bars as objects; or `series`" })),
    series: Type.Optional(
      Type.Array(SeriesSchema, { minItems: 1, maxItems: MAX_BARS_PER_POST, description: `bars per symbol as positional arrays, about half the bytes and parse time of bar objects; at most ${MAX_BARS_PER_POST} bars in all` }),
    ),
    flush: Type.Optional(Type.Boolean({ description: "answer once the bars are in ClickHouse (stored: true), or after the wait bound (stored: false)" })),
  },
  { additionalProperties: false },
);

/**
 * The series of a post checked by the bar rules, as batches of at most `perMessage` bars; throws a
 * 400 naming the field (series.2.bars.17.close) or the post's size.
 */
export function checkSeries(series: readonly Series[], perMessage: number, at = "series", opensBy?: number): CandleBatch[] {
  let total = 0;
  for (const s of series) total += s.bars.length;
  if (total > MAX_BARS_PER_POST) throw new HttpError(400, "INVALID_BAR", `${at} holds ${total} bars, more than ${MAX_BARS_PER_POST}`, at);
  const seen = new BarTimes(opensBy);
  return series.flatMap((s, i) => {
    const named = seriesProblem(s.symbol, s.interval);
    if (named) throw new HttpError(400, "INVALID_BAR", `${at}.${i}.${named.field} ${named.message}`, `${at}.${i}.${named.field}`);
    s.bars.forEach((t, j) => {
      const p = barValuesProblem(t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
      if (p) throw new HttpError(400, "INVALID_BAR", `${at}.${i}.bars.${j}.${p.field} ${p.message}`, `${at}.${i}.bars.${j}.${p.field}`);
      seen.add(s.symbol, s.interval, t[0] as number, `${at}.${i}.bars.${j}.openTime`);
    });
    return chunkSeries(s.symbol, s.interval, s.bars as CandleTuple[], perMessage);
  });
}

/**
 * How far ahead of data-bridge's clock a posted bar may open (the poster's clock may run ahead of
 * ours). The trading-engine and the last price take a symbol's newest bar and pass over every older
 * one, so a single posted bar of 2099 froze the symbol's market until 2099: its last price, the
 * engine's fills and the pre-trade check's reference (session 65). A configured feed (synthetic or
 * replay sped up) may run ahead of the clock on purpose and is not held to it.
 */
export const MAX_BAR_AHEAD_MS = 60_000;

/**
 * The bars of one post by (symbol, interval), refusing a second bar of the same open time (400 naming
 * its openTime). Two prices for one bar in one post were each kept by someone: the trading-engine
 * applies the first bar of an open time and passes over the rest, the last price in Dragonfly and the
 * candles in ClickHouse (a ReplacingMergeTree) kept the last, so orders were checked against one price
 * and filled at the other (session 65). A bar sent again in a later post is the feed's correction:
 * ClickHouse takes it, the engine and the last price keep the first. With `opensBy` (a post over HTTP:
 * now + MAX_BAR_AHEAD_MS), a bar opening after it is refused too.
 */
export class BarTimes {
  private readonly times = new Map<string, Set<number>>();
  constructor(private readonly opensBy?: number) {}
  add(symbol: string, interval: string, openTime: number, at: string): void {
    if (this.opensBy !== undefined && openTime > this.opensBy)
      throw new HttpError(400, "INVALID_BAR", `${at} is ${new Date(openTime).toISOString()}, a bar that has not opened yet (at most ${MAX_BAR_AHEAD_MS / 1000} s ahead of the clock)`, at);
    const key = `${symbol} ${interval}`;
    let times = this.times.get(key);
    if (!times) this.times.set(key, (times = new Set()));
    if (times.has(openTime)) throw new HttpError(400, "INVALID_BAR", `${at} repeats a bar of ${symbol} ${interval} already in this post (one bar per open time)`, at);
    times.add(openTime);
  }
}

/**
 * Checks one bar from any source (HTTP or a market data feed); `at` names it in the error
 * ("bars.3"). Throws a 400 HttpError naming the field.
 */
export function checkBar(b: Bar, at = "bar"): Bar {
  const p = barProblem(b);
  if (p) throw new HttpError(400, "INVALID_BAR", `${at}.${p.field} ${p.message}`, `${at}.${p.field}`);
  return b;
}

// Read once: a re-exported binding compiles to a getter read on every use, here twice a bar of every ingested batch.
const toChTime = clickhouseDateTime;

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
export type CandleRow = ReturnType<typeof candleRow>;

/** market_candles columns in the order of candleTsv's fields. */
export const CANDLE_TSV_COLUMNS: [string, ...string[]] = ["symbol", "timeframe", "open_time", "open", "high", "low", "close", "volume", "trades", "source"];

/** Longest TabSeparated field of a checked bar: an open time in seconds, or a decimal (15 + 1 + 12 chars). */
const MAX_TSV_FIELD = 28;

/**
 * Checked batches of bars (the topic schema passed them: barRules) as TabSeparated rows of
 * CANDLE_TSV_COLUMNS, written straight into one buffer (a string per row concatenated cost twice as
 * much: V8 flattens the rope, then encodes it). Nothing needs escaping and everything is ASCII: the
 * symbol is [A-Z0-9], the interval [0-9smhdw], prices plain decimals, the source a config enum;
 * open_time as epoch seconds, which ClickHouse reads as a UTC instant.
 */
export function candleTsv(batches: readonly CandleBatch[], source: string): Buffer {
  const tail = `\t0\t${source}\n`;
  let size = 0;
  for (const b of batches) size += b.bars.length * (b.symbol.length + b.interval.length + tail.length + 8 + 6 * MAX_TSV_FIELD);
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (const b of batches) {
    const head = `${b.symbol}\t${b.interval}\t`;
    for (const t of b.bars) at += buf.write(`${head}${Math.floor(t[0] / 1000)}\t${t[2]}\t${t[3]}\t${t[4]}\t${t[5]}\t${t[6]}${tail}`, at, "latin1");
  }
  return buf.subarray(0, at);
}

export function startOfUtcDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}
