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
 * next bar is delivered, which gives natural back-pressure); a handler that throws gets the same
 * bar again after a back-off (deliverBar) until it takes it or the subscription closes.
 */
export interface MarketDataSource {
  readonly kind: "synthetic" | "replay" | "binance";
  history(symbol: string, interval: string, query?: HistoryQuery): Promise<Bar[]>;
  subscribe(symbol: string, interval: string, onBar: BarHandler, onError?: (err: Error) => void): Subscription;
}

/**
 * Resolves after `ms`, or at once when `signal` aborts. The abort listener goes when the pause ends
 * either way: a subscription's loop pauses on its one signal before every bar, and a listener kept
 * per pause piled up on it (Node's MaxListenersExceededWarning after 10 bars, a leak in a
 * long-running data-bridge).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface DeliveryOptions {
  /** Aborted when the subscription closes: the retries stop. */
  signal: AbortSignal;
  onError?: (err: Error) => void;
  /** Back-off between attempts: min * 2^attempt, at most max (ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Hands one closed bar to the handler until it takes it. A handler that throws could not write the
 * bar (a datastore briefly unreachable, a Kafka broker whose coordinator is still loading): the bar
 * is retried with exponential back-off, never dropped, and the bars after it wait (in order).
 * Only closing the subscription stops the retries. A handler that must reject a bar for good
 * (a malformed feed bar) catches that itself and returns.
 */
export async function deliverBar(onBar: BarHandler, bar: Bar, o: DeliveryOptions): Promise<void> {
  const min = o.retryMinMs ?? 200;
  const max = o.retryMaxMs ?? 10_000;
  for (let attempt = 0; !o.signal.aborted; attempt++) {
    try {
      await onBar(bar);
      return;
    } catch (err) {
      o.onError?.(err as Error);
      await sleep(Math.min(max, min * 2 ** attempt), o.signal);
    }
  }
}

/** Validates the OHLC invariants of a bar (low <= open,close <= high, volume >= 0). */
export function assertBar(bar: Bar): Bar {
  const [o, h, l, c, v] = [bar.open, bar.high, bar.low, bar.close, bar.volume].map(Number);
  if (![o, h, l, c, v].every(Number.isFinite)) throw new Error(`bar ${bar.symbol}@${bar.openTime} has a non-numeric field`);
  if (l > Math.min(o, c) || h < Math.max(o, c) || v < 0) throw new Error(`bar ${bar.symbol}@${bar.openTime} violates OHLC invariants`);
  return bar;
}
