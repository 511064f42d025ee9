import type { Bar } from "../types";

export interface HistoryQuery {
  /** Inclusive open-time lower bound (epoch ms). */
  startTime?: number;
  /** Inclusive open-time upper bound (epoch ms). */
  endTime?: number;
  /** Maximum number of bars (default 500). */
  limit?: number;
}

export interface Subscription {
  close(): Promise<void>;
}

export type BarHandler = (bar: Bar) => void | Promise<void>;

/**
 * One interface for every market data source. `history` returns closed bars in open-time order;
 * `subscribe` delivers each *closed* bar once, in order (a handler's promise is awaited before the
 * next bar is delivered, which gives natural back-pressure).
 */
export interface MarketDataSource {
  readonly kind: "synthetic" | "replay" | "binance";
  history(symbol: string, interval: string, query?: HistoryQuery): Promise<Bar[]>;
  subscribe(symbol: string, interval: string, onBar: BarHandler, onError?: (err: Error) => void): Subscription;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/** Validates the OHLC invariants of a bar (low <= open,close <= high, volume >= 0). */
export function assertBar(bar: Bar): Bar {
  const [o, h, l, c, v] = [bar.open, bar.high, bar.low, bar.close, bar.volume].map(Number);
  if (![o, h, l, c, v].every(Number.isFinite)) throw new Error(`bar ${bar.symbol}@${bar.openTime} has a non-numeric field`);
  if (l > Math.min(o, c) || h < Math.max(o, c) || v < 0) throw new Error(`bar ${bar.symbol}@${bar.openTime} violates OHLC invariants`);
  return bar;
}
