import { readFileSync } from "node:fs";
import { D, str } from "../decimal";
import { intervalMs, type Bar } from "../types";
import { assertBar, deliverBar, sleep, type BarHandler, type HistoryQuery, type MarketDataSource, type Subscription } from "./source";

/**
 * Parses a recorded OHLCV file. Two formats:
 *  - CSV with a header naming at least `open_time,open,high,low,close,volume` (optional `symbol`,
 *    `interval`, `close_time`); open_time is epoch ms or an ISO date;
 *  - JSON lines, one `Bar`-shaped object per line (`openTime`, `open`, ... ; `symbol`/`interval` optional).
 * `defaults` fills symbol/interval when the file does not carry them.
 */
export function parseRecorded(text: string, defaults: { symbol?: string; interval?: string } = {}): Bar[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith("#"));
  if (lines.length === 0) return [];
  const bars: Bar[] = [];
  const toTime = (v: unknown): number => {
    if (typeof v === "number") return v;
    const s = String(v);
    const t = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    if (!Number.isFinite(t)) throw new Error(`bad time ${s}`);
    return t;
  };
  const make = (r: Record<string, unknown>, lineNo: number): Bar => {
    const symbol = String(r.symbol ?? defaults.symbol ?? "");
    const interval = String(r.interval ?? defaults.interval ?? "");
    if (!symbol || !interval) throw new Error(`line ${lineNo}: symbol and interval are required (in the file or as defaults)`);
    const openTime = toTime(r.openTime ?? r.open_time);
    const closeRaw = r.closeTime ?? r.close_time;
    const bar: Bar = {
      symbol,
      interval,
      openTime,
      closeTime: closeRaw !== undefined && closeRaw !== "" ? toTime(closeRaw) : openTime + intervalMs(interval) - 1,
      open: str(D(String(r.open))),
      high: str(D(String(r.high))),
      low: str(D(String(r.low))),
      close: str(D(String(r.close))),
      volume: str(D(String(r.volume))),
    };
    try {
      return assertBar(bar);
    } catch (e) {
      throw new Error(`line ${lineNo}: ${(e as Error).message}`);
    }
  };
  if (lines[0].startsWith("{")) {
    lines.forEach((l, i) => bars.push(make(JSON.parse(l) as Record<string, unknown>, i + 1)));
  } else {
    const header = lines[0].split(",").map((h) => h.trim().toLowerCase());
    for (const col of ["open_time", "open", "high", "low", "close", "volume"])
      if (!header.includes(col)) throw new Error(`CSV header lacks ${col}`);
    lines.slice(1).forEach((l, i) => {
      const cells = l.split(",").map((c) => c.trim());
      const rec: Record<string, unknown> = {};
      header.forEach((h, j) => (rec[h] = cells[j]));
      bars.push(make(rec, i + 2));
    });
  }
  bars.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.openTime - b.openTime);
  return bars;
}

export interface ReplayOptions {
  /** Wall-clock ms between bars when subscribed (default 0: as fast as the handler allows). */
  emitEveryMs?: number;
  /** Start over at the end of the file (default false: the subscription ends). */
  loop?: boolean;
}

/** Replays recorded bars: `history` filters them, `subscribe` plays them in order. */
export class ReplaySource implements MarketDataSource {
  readonly kind = "replay" as const;
  constructor(
    private readonly bars: Bar[],
    private readonly opts: ReplayOptions = {},
  ) {}

  static fromFile(path: string, defaults: { symbol?: string; interval?: string } = {}, opts: ReplayOptions = {}): ReplaySource {
    return new ReplaySource(parseRecorded(readFileSync(path, "utf8"), defaults), opts);
  }

  private select(symbol: string, interval: string): Bar[] {
    return this.bars.filter((b) => b.symbol === symbol && b.interval === interval);
  }

  async history(symbol: string, interval: string, q: HistoryQuery = {}): Promise<Bar[]> {
    return this.select(symbol, interval)
      .filter((b) => (q.startTime === undefined || b.openTime >= q.startTime) && (q.endTime === undefined || b.openTime <= q.endTime))
      .slice(0, q.limit ?? 500);
  }

  subscribe(symbol: string, interval: string, onBar: BarHandler, onError?: (err: Error) => void): Subscription {
    const ac = new AbortController();
    const bars = this.select(symbol, interval);
    const done = (async () => {
      let offset = 0;
      do {
        const shift = offset;
        for (const b of bars) {
          if (ac.signal.aborted) return;
          if (this.opts.emitEveryMs) await sleep(this.opts.emitEveryMs, ac.signal);
          if (ac.signal.aborted) return;
          await deliverBar(onBar, shift ? { ...b, openTime: b.openTime + shift, closeTime: b.closeTime + shift } : b, { signal: ac.signal, onError });
        }
        // When looping, shift times forward so open times keep increasing.
        if (bars.length) offset += bars[bars.length - 1].closeTime + 1 - bars[0].openTime;
      } while (this.opts.loop && bars.length > 0 && !ac.signal.aborted);
    })();
    return {
      async close() {
        ac.abort();
        await done;
      },
    };
  }
}
