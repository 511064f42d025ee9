/**
 * Bodies of POST /internal/bars for the benches: the bars as objects (`{"bars":[...]}`), or per symbol
 * as positional series (`{"series":[...]}`, the compact bulk form; each symbol's bars kept in order).
 */
import type { Bar } from "../../services/src/trading/types";

export type BarsFormat = "objects" | "series";

export function barsBody(bars: readonly Bar[], format: BarsFormat): string {
  if (format === "objects") return JSON.stringify({ bars });
  const series = new Map<string, { symbol: string; interval: string; bars: Array<Array<number | string>> }>();
  for (const b of bars) {
    let s = series.get(b.symbol);
    if (!s) series.set(b.symbol, (s = { symbol: b.symbol, interval: b.interval, bars: [] }));
    s.bars.push([b.openTime, b.closeTime, b.open, b.high, b.low, b.close, b.volume]);
  }
  return JSON.stringify({ series: [...series.values()] });
}
