/**
 * The `market.candles` message formats, without I/O. Every message is keyed by its symbol (one
 * partition per symbol: a symbol's bars stay in order). Two formats are on the topic, and every
 * consumer reads both (a rolling deploy publishes both for a while):
 *
 *   v1, one bar (the original format; tests and tools still publish it): a Bar as a JSON object
 *     {"symbol":"BTCUSDT","interval":"1m","openTime":...,"closeTime":...,"open":"100.5",...}
 *   v2, a batch (what data-bridge publishes): up to MAX_BARS_PER_MESSAGE bars of ONE symbol and
 *     interval, in the order they were accepted, each bar a positional array
 *     {"v":2,"symbol":"BTCUSDT","interval":"1m","bars":[[openTime,closeTime,"open","high","low","close","volume"],...]}
 *     A message is told apart by its `v` field (a v1 bar has none); any other `v` is refused.
 *     Trailing array elements past the seventh are ignored (room for a later field).
 *
 * Why batched: kafkajs spends its CPU per message (record encoding, per-partition grouping, fetch
 * decoding, one JSON parse each), about 50 us of client and broker CPU per one-bar message; a message
 * of 1,000 bars pays that once. Positional arrays keep a bar at ~70 bytes instead of ~150.
 *
 * Checking (checkCandleMessage, applied by the topic schema before any consumer): a v2 message whose
 * envelope is wrong (version, symbol, interval, `bars` not an array of 1..MAX) is refused whole; a
 * bar that breaks the bar rules (barRules.ts) or holds a number its double does not carry (found in
 * the text by the topic schema) is split off: the message is set aside (its bytes as received) with
 * the reason naming `bars.<i>.<field>`, and the good bars of the message go on.
 */
import type { Bar } from "../types";
import { barProblem, barValuesProblem, seriesProblem, type BarProblem } from "./barRules";

export const CANDLE_BATCH_VERSION = 2;
/** Most bars a consumer accepts in one message (more than any producer here writes: room for a broker configured for larger messages). */
export const MAX_BARS_PER_MESSAGE = 10_000;
/** What data-bridge puts in one message by default: ~70 kB of ordinary bars, ~180 kB at the longest decimals. */
export const DEFAULT_BARS_PER_MESSAGE = 1000;
/**
 * Most bars data-bridge puts in one message: a bar takes at most 185 bytes (two 13-digit times, five
 * 28-character decimals), so 5,000 stay under the brokers' default 1 MiB per message.
 */
export const MAX_BARS_PER_PRODUCED_MESSAGE = 5000;

/** [openTime, closeTime, open, high, low, close, volume] */
export type CandleTuple = [number, number, string, string, string, string, string];

export interface CandleBatch {
  v: typeof CANDLE_BATCH_VERSION;
  symbol: string;
  interval: string;
  bars: CandleTuple[];
}

/**
 * Bars as v2 batches: per symbol, consecutive bars of one interval share a batch of at most
 * `perMessage` bars, and a symbol's batches come in the order of its bars.
 */
export function batchesOf(bars: readonly Bar[], perMessage = DEFAULT_BARS_PER_MESSAGE): CandleBatch[] {
  const out: CandleBatch[] = [];
  const open = new Map<string, CandleBatch>();
  for (const b of bars) {
    const tuple: CandleTuple = [b.openTime, b.closeTime, b.open, b.high, b.low, b.close, b.volume];
    const m = open.get(b.symbol);
    if (m && m.interval === b.interval && m.bars.length < perMessage) {
      m.bars.push(tuple);
      continue;
    }
    if (m) out.push(m);
    open.set(b.symbol, { v: CANDLE_BATCH_VERSION, symbol: b.symbol, interval: b.interval, bars: [tuple] });
  }
  out.push(...open.values());
  return out;
}

/** One symbol's bars (positional, in order) as batches of at most `perMessage` bars. */
export function chunkSeries(symbol: string, interval: string, bars: readonly CandleTuple[], perMessage = DEFAULT_BARS_PER_MESSAGE): CandleBatch[] {
  const out: CandleBatch[] = [];
  for (let i = 0; i < bars.length; i += perMessage) out.push({ v: CANDLE_BATCH_VERSION, symbol, interval, bars: bars.slice(i, i + perMessage) });
  return out;
}

/**
 * A batch as a message keyed by its symbol: one JSON.stringify (4x cheaper than concatenating a
 * string per bar, which builds a rope V8 must flatten).
 */
export const candleMessage = (batch: CandleBatch): { key: string; value: string } => ({ key: batch.symbol, value: JSON.stringify(batch) });

/** Bars as v2 messages keyed by symbol (batchesOf, then candleMessage). */
export const encodeCandleMessages = (bars: readonly Bar[], perMessage = DEFAULT_BARS_PER_MESSAGE) => batchesOf(bars, perMessage).map(candleMessage);

/** A bar of a batch as a Bar object. */
export const barOf = (symbol: string, interval: string, t: CandleTuple): Bar => ({ symbol, interval, openTime: t[0], closeTime: t[1], open: t[2], high: t[3], low: t[4], close: t[5], volume: t[6] });

/** The bars of a checked batch as Bar objects. */
export const barsOf = (batch: CandleBatch): Bar[] => batch.bars.map((t) => barOf(batch.symbol, batch.interval, t));

export type CandleCheck =
  | { batch: CandleBatch; problem?: undefined; aside?: { problem: string } }
  | { problem: string; batch?: undefined };

const describe = (p: BarProblem, at = "") => `${at}${p.field}: ${p.message}`;

/** Why a number literal its double does not carry is refused (kit exact-number.ts beyondDouble). */
export const INEXACT_NUMBER = `a number a double does not carry exactly (beyond ±${Number.MAX_SAFE_INTEGER}, more than 17 significant digits, or non-zero below the smallest double)`;
/** A bar tuple's fields by position (CandleTuple). */
const TUPLE_FIELDS = ["openTime", "closeTime", "open", "high", "low", "close", "volume"];
/** Problems named in one reason, at most (the rest are counted). */
const NAMED_PROBLEMS = 5;

/**
 * A parsed `market.candles` message (a JSON object) checked, as a v2 batch (a v1 bar becomes a batch
 * of one): refused whole (`problem`), or the good bars (`batch`) with the bad ones split off (`aside`:
 * why each was refused, by index; the consumer sets the message aside as received, never the bad
 * bars re-serialised: a literal a double does not carry would be written as its double, and a hand
 * replay of the dead letter would then pass).
 */
export function checkCandleMessage(v: Record<string, unknown>, inexact: readonly string[][] = []): CandleCheck {
  // A bar of a v2 batch holding an inexact number is one bad bar; one anywhere else (the envelope, a v1 bar) refuses the message.
  const inBars = "v" in v ? inexactBars(inexact) : undefined;
  if (inexact.length > 0 && !inBars) return { problem: `${inexact[0].join(".") || "message"}: ${INEXACT_NUMBER}` };
  if (!("v" in v)) {
    const p = barProblem(v);
    if (p) return { problem: describe(p) };
    const tuple = [v.openTime, v.closeTime, v.open, v.high, v.low, v.close, v.volume] as CandleTuple;
    return { batch: { v: CANDLE_BATCH_VERSION, symbol: v.symbol as string, interval: v.interval as string, bars: [tuple] } };
  }
  if (v.v !== CANDLE_BATCH_VERSION) return { problem: `v: must be ${CANDLE_BATCH_VERSION} (the batched candles format)` };
  const series = seriesProblem(v.symbol, v.interval);
  if (series) return { problem: describe(series) };
  const bars = v.bars;
  if (!Array.isArray(bars) || bars.length === 0 || bars.length > MAX_BARS_PER_MESSAGE) return { problem: `bars: must be an array of 1 to ${MAX_BARS_PER_MESSAGE} bars` };
  const bad: Array<{ index: number; problem: string }> = [];
  for (let i = 0; i < bars.length; i++) {
    const t: unknown = bars[i];
    const inexactField = inBars?.get(i);
    const p =
      inexactField !== undefined ? { field: inexactField, message: INEXACT_NUMBER }
      : !Array.isArray(t) || t.length < 7 ? { field: "bar", message: "must be [openTime, closeTime, open, high, low, close, volume]" }
      : barValuesProblem(t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
    if (p) bad.push({ index: i, problem: describe(p, `bars.${i}.`) });
  }
  const symbol = v.symbol as string;
  const interval = v.interval as string;
  if (bad.length === 0) return { batch: { v: CANDLE_BATCH_VERSION, symbol, interval, bars: bars as CandleTuple[] } };
  const reasons = bad.slice(0, NAMED_PROBLEMS).map((b) => b.problem).join("; ") + (bad.length > NAMED_PROBLEMS ? `; and ${bad.length - NAMED_PROBLEMS} more bad bars` : "");
  if (bad.length === bars.length) return { problem: reasons };
  const badIndex = new Set(bad.map((b) => b.index));
  const good = (bars as CandleTuple[]).filter((_, i) => !badIndex.has(i));
  return {
    batch: { v: CANDLE_BATCH_VERSION, symbol, interval, bars: good },
    aside: { problem: `${bad.length} of ${bars.length} bars refused (the message is set aside as received): ${reasons}` },
  };
}

/**
 * The bars of a v2 batch holding an inexact number (`inexact`: their paths in the text), by index,
 * each with the field named (`open`, `openTime`; `0.1` deeper); undefined when one lies outside `bars`.
 */
function inexactBars(inexact: readonly string[][]): Map<number, string> | undefined {
  const bars = new Map<number, string>();
  for (const path of inexact) {
    if (path[0] !== "bars" || path.length < 2 || !/^\d+$/.test(path[1])) return undefined;
    const index = Number(path[1]);
    if (!bars.has(index)) bars.set(index, path.length === 2 ? "bar" : [TUPLE_FIELDS[Number(path[2])] ?? path[2], ...path.slice(3)].join("."));
  }
  return bars;
}
