/**
 * Our fills from Binance's answers, and where a Binance order stands for the engine.
 *
 * Fill ids are `${orderId}:bn${tradeId}` whichever answer carried the trade (the `fills` of a FULL
 * order response, or GET /api/v3/myTrades): stable across retries, restarts and both paths, so a
 * trade reported twice is recorded once. Commission is converted to the quote asset when paid in the
 * base asset (at the fill price); commission in a third asset (BNB) is recorded as 0 quote and must
 * be reconciled from account trades (not implemented).
 */
import { D, quote, str } from "../decimal";
import type { Fill, Liquidity, OrderRequest } from "../types";
import type { BinanceOrder, BinanceTrade, BinanceTradingClient } from "./adapter";

interface TradeLike {
  tradeId: number;
  price: string;
  qty: string;
  commission: string;
  commissionAsset: string;
  liquidity: Liquidity;
  ts: number;
}

function fillsOf(order: OrderRequest, quoteAsset: string, trades: TradeLike[]): Fill[] {
  const baseAsset = order.symbol.endsWith(quoteAsset) ? order.symbol.slice(0, -quoteAsset.length) : "";
  return trades.map((t) => {
    let fee = D(0);
    if (t.commissionAsset === quoteAsset) fee = D(t.commission);
    else if (t.commissionAsset === baseAsset) fee = D(t.commission).mul(t.price);
    return {
      fillId: `${order.orderId}:bn${t.tradeId}`,
      orderId: order.orderId,
      userId: order.userId,
      symbol: order.symbol,
      side: order.side,
      quantity: str(D(t.qty)),
      price: str(D(t.price)),
      fee: str(quote(fee)),
      liquidity: t.liquidity,
      ts: t.ts,
    };
  });
}

/** Our fills from a Binance FULL order response (its `fills`; an order as queried has none). */
export function binanceFills(order: OrderRequest, bo: BinanceOrder, quoteAsset: string, ts: number): Fill[] {
  return fillsOf(order, quoteAsset, (bo.fills ?? []).map((f) => ({ ...f, liquidity: "taker", ts: bo.transactTime ?? ts })));
}

/** Our fills from GET /api/v3/myTrades (maker or taker as Binance says, at the trade's time). */
export function tradeFills(order: OrderRequest, trades: BinanceTrade[], quoteAsset: string): Fill[] {
  return fillsOf(order, quoteAsset, trades.map((t) => ({ tradeId: t.id, price: t.price, qty: t.qty, commission: t.commission, commissionAsset: t.commissionAsset, liquidity: t.isMaker ? "maker" : "taker", ts: t.time })));
}

/**
 * Where a Binance order stands, as the engine records it: `resting` while Binance has it open,
 * `filled`, `cancelled` (CANCELED) or `expired` (EXPIRED, EXPIRED_IN_MATCH, REJECTED); `remaining`
 * is what Binance has not executed; `fills` every trade of the order so far.
 */
export interface LiveOrderState {
  status: "resting" | "filled" | "cancelled" | "expired";
  binanceStatus: BinanceOrder["status"];
  remaining: string;
  executed: string;
  fills: Fill[];
}

const OPEN: readonly string[] = ["NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"];

/**
 * The state of `bo` with its fills: the response's own `fills` when they cover its executed
 * quantity (a FULL placement answer), otherwise the order's trades (GET /api/v3/myTrades; an order
 * as queried or cancelled carries none). Throws when the trades cannot be fetched or do not cover
 * the executed quantity yet (the caller asks again later).
 */
export async function liveOrderState(client: BinanceTradingClient, order: OrderRequest, bo: BinanceOrder, quoteAsset: string): Promise<LiveOrderState> {
  const executed = D(bo.executedQty);
  let fills: Fill[] = [];
  if (executed.gt(0)) {
    const own = bo.fills ?? [];
    const covered = own.reduce((sum, f) => sum.plus(f.qty), D(0)).gte(executed);
    fills = covered ? binanceFills(order, bo, quoteAsset, Date.now()) : tradeFills(order, await client.orderTrades(order.symbol, bo.orderId), quoteAsset);
    // myTrades may lag the order (Memory => Database): never record an order executed without all its fills.
    const traded = fills.reduce((sum, f) => sum.plus(f.quantity), D(0));
    if (traded.lt(executed)) throw new Error(`the trades of ${order.orderId} cover ${str(traded)} of ${str(executed)} executed; not published yet`);
  }
  const left = D(order.quantity).minus(executed);
  const status = OPEN.includes(bo.status) ? "resting" : bo.status === "FILLED" ? "filled" : bo.status === "CANCELED" ? "cancelled" : "expired";
  return { status, binanceStatus: bo.status, remaining: str(left.lt(0) ? 0 : left), executed: str(executed), fills };
}
