/** Shared domain types of the trading core. Decimal values travel as strings. */

export type Side = "buy" | "sell";
export type OrderType = "market" | "limit";
export type TimeInForce = "GTC" | "IOC";

/** One OHLCV bar. Times are epoch milliseconds (Binance convention: closeTime = openTime + interval - 1). */
export interface Bar {
  symbol: string;
  interval: string;
  openTime: number;
  closeTime: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

export interface OrderRequest {
  orderId: string;
  clientOrderId?: string;
  userId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  quantity: string;
  /** Required for limit orders. */
  limitPrice?: string;
  timeInForce?: TimeInForce;
}

export type Liquidity = "maker" | "taker";

export interface Fill {
  /** Deterministic: `${orderId}:${seq}` so a replay of the same order cannot mint a new fill. */
  fillId: string;
  orderId: string;
  userId: string;
  symbol: string;
  side: Side;
  quantity: string;
  price: string;
  /** Fee in the quote currency. */
  fee: string;
  liquidity: Liquidity;
  /** Epoch ms (market time of the bar / exchange time, not wall clock). */
  ts: number;
}

/** Interval string ("1m", "5m", "1h", "1d") in milliseconds. */
export function intervalMs(interval: string): number {
  const m = /^(\d+)([smhdw])$/.exec(interval);
  if (!m) throw new Error(`unsupported interval ${interval}`);
  const n = Number(m[1]);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s" | "m" | "h" | "d" | "w"];
  return n * unit;
}

/** Symbols are upper-case alphanumerics (BTCUSDT). */
export const SYMBOL_RE = /^[A-Z0-9]{2,20}$/;
