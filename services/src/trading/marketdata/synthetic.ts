import { D, Decimal, roundToTick, str } from "../decimal";
import { Rng } from "../rng";
import { intervalMs, type Bar } from "../types";
import { deliverBar, sleep, type BarHandler, type HistoryQuery, type MarketDataSource, type Subscription } from "./source";

export interface SyntheticOptions {
  seed: string | number;
  /** First bar's open price per symbol (default 100 for any symbol not listed). */
  startPrices?: Record<string, string>;
  /** Standard deviation of one bar's return (default 0.002 = 20 bps). */
  volatility?: number;
  /** Mean return per bar (default 0). */
  drift?: number;
  tickSize?: string;
  /** Mean volume per bar (default 10). */
  baseVolume?: number;
  /** Open time of bar 0 (default 2024-01-01T00:00:00Z). */
  origin?: number;
  /** Live mode: wall-clock milliseconds between emitted bars (default: the interval itself). */
  emitEveryMs?: number;
  /** Live mode: index of the first emitted bar (default: the bar containing `now()`). */
  liveStartIndex?: number;
  now?: () => number;
}

/**
 * Seeded random-walk OHLCV generator. The same (seed, symbol, interval) always yields the same
 * series: bar i opens at origin + i*interval and opens at bar i-1's close.
 */
export class SyntheticSeries {
  private readonly rng: Rng;
  private readonly step: number;
  private index = 0;
  private lastClose: Decimal;
  constructor(
    readonly symbol: string,
    readonly interval: string,
    private readonly opts: SyntheticOptions,
  ) {
    this.rng = new Rng(`${opts.seed}|${symbol}|${interval}`);
    this.step = intervalMs(interval);
    this.lastClose = D(opts.startPrices?.[symbol] ?? "100");
  }
  get nextIndex(): number {
    return this.index;
  }
  next(): Bar {
    const vol = this.opts.volatility ?? 0.002;
    const tick = this.opts.tickSize ?? "0.01";
    const base = this.opts.baseVolume ?? 10;
    const origin = this.opts.origin ?? Date.UTC(2024, 0, 1);
    const open = this.lastClose;
    const r = (this.opts.drift ?? 0) + vol * this.rng.normal();
    let close = roundToTick(open.mul(D(1).plus(D(r.toFixed(12)))), tick);
    if (close.lte(0)) close = D(tick);
    const up = Math.abs(this.rng.normal()) * vol * 0.5;
    const down = Math.abs(this.rng.normal()) * vol * 0.5;
    const hi = Decimal.max(open, close);
    const lo = Decimal.min(open, close);
    const high = Decimal.max(hi, roundToTick(hi.mul(D(1).plus(D(up.toFixed(12)))), tick));
    let low = Decimal.min(lo, roundToTick(lo.mul(D(1).minus(D(down.toFixed(12)))), tick));
    if (low.lte(0)) low = Decimal.min(lo, D(tick));
    const volume = D((base * (0.2 + 1.6 * this.rng.next())).toFixed(4));
    const openTime = origin + this.index * this.step;
    this.index++;
    this.lastClose = close;
    return {
      symbol: this.symbol,
      interval: this.interval,
      openTime,
      closeTime: openTime + this.step - 1,
      open: str(open),
      high: str(high),
      low: str(low),
      close: str(close),
      volume: str(volume),
    };
  }
  /** Advances to bar `index` (exclusive) without returning the skipped bars. */
  skipTo(index: number): void {
    while (this.index < index) this.next();
  }
}

export class SyntheticSource implements MarketDataSource {
  readonly kind = "synthetic" as const;
  constructor(private readonly opts: SyntheticOptions) {}

  private origin(): number {
    return this.opts.origin ?? Date.UTC(2024, 0, 1);
  }

  async history(symbol: string, interval: string, q: HistoryQuery = {}): Promise<Bar[]> {
    const step = intervalMs(interval);
    const limit = q.limit ?? 500;
    const origin = this.origin();
    const first = Math.max(0, Math.ceil(((q.startTime ?? origin) - origin) / step));
    const series = new SyntheticSeries(symbol, interval, this.opts);
    series.skipTo(first);
    const out: Bar[] = [];
    while (out.length < limit) {
      const bar = series.next();
      if (q.endTime !== undefined && bar.openTime > q.endTime) break;
      out.push(bar);
    }
    return out;
  }

  subscribe(symbol: string, interval: string, onBar: BarHandler, onError?: (err: Error) => void): Subscription {
    const ac = new AbortController();
    const step = intervalMs(interval);
    const now = this.opts.now ?? Date.now;
    const every = this.opts.emitEveryMs ?? step;
    const series = new SyntheticSeries(symbol, interval, this.opts);
    series.skipTo(this.opts.liveStartIndex ?? Math.max(0, Math.floor((now() - this.origin()) / step)));
    const done = (async () => {
      while (!ac.signal.aborted) {
        await sleep(every, ac.signal);
        if (ac.signal.aborted) break;
        await deliverBar(onBar, series.next(), { signal: ac.signal, onError });
      }
    })();
    return {
      async close() {
        ac.abort();
        await done;
      },
    };
  }
}
