import { createHmac } from "node:crypto";
import { D, quote, str } from "../decimal";
import type { Fill, OrderRequest } from "../types";
import { WeightGovernor } from "./rateLimit";

/**
 * Binance spot trading adapter: HMAC-SHA256 signed requests (SIGNED endpoints: `timestamp` +
 * `recvWindow` in the query, `signature` = hex HMAC-SHA256 of the query string with the secret key,
 * API key in the `X-MBX-APIKEY` header).
 *
 * Reconciliation: when an order submission answers 5xx or times out, Binance's outcome is UNKNOWN
 * (the order may or may not exist). We never blindly resubmit: we first query the order by its
 * `origClientOrderId`; if it exists we adopt it, only if Binance says it does not exist (-2013) do we
 * submit again, with the same client order id (Binance refuses duplicate open client ids anyway).
 */

export function sign(queryString: string, secretKey: string): string {
  return createHmac("sha256", secretKey).update(queryString).digest("hex");
}

export interface BinanceOrderRequest {
  symbol: string;
  side: "BUY" | "SELL";
  type: "MARKET" | "LIMIT";
  quantity: string;
  price?: string;
  timeInForce?: "GTC" | "IOC" | "FOK";
  newClientOrderId: string;
}

export interface BinanceOrderFill {
  price: string;
  qty: string;
  commission: string;
  commissionAsset: string;
  tradeId: number;
}

export interface BinanceOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  price: string;
  origQty: string;
  executedQty: string;
  cummulativeQuoteQty: string;
  status: "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELED" | "PENDING_CANCEL" | "REJECTED" | "EXPIRED" | "EXPIRED_IN_MATCH";
  timeInForce?: string;
  type: string;
  side: "BUY" | "SELL";
  transactTime?: number;
  updateTime?: number;
  fills?: BinanceOrderFill[];
}

export class BinanceApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    readonly binanceMessage: string,
  ) {
    super(`binance answered ${status}${code !== undefined ? ` (code ${code})` : ""}: ${binanceMessage}`);
    this.name = "BinanceApiError";
  }
  /** 5xx: Binance could not tell whether the request executed. */
  get outcomeUnknown(): boolean {
    return this.status >= 500;
  }
}

/** A request timed out or the connection failed: outcome unknown. */
export class BinanceTimeoutError extends Error {
  constructor(readonly cause: unknown) {
    super(`binance request failed without an answer: ${(cause as Error)?.message ?? cause}`);
    this.name = "BinanceTimeoutError";
  }
}

export interface BinanceTradingOptions {
  apiKey: string;
  secretKey: string;
  baseUrl?: string;
  recvWindow?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  governor?: WeightGovernor;
}

export class BinanceTradingClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  readonly governor: WeightGovernor;
  constructor(private readonly opts: BinanceTradingOptions) {
    if (!opts.apiKey || !opts.secretKey) throw new Error("BINANCE_API_KEY and BINANCE_SECRET_KEY are required for live trading");
    this.base = (opts.baseUrl ?? "https://api.binance.com").replace(/\/$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.governor = opts.governor ?? new WeightGovernor();
  }

  /** Builds the signed query string: params, recvWindow, timestamp, then signature (in that order). */
  signedQuery(params: Record<string, string | number | undefined>): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) qs.set(k, String(v));
    qs.set("recvWindow", String(this.opts.recvWindow ?? 5000));
    qs.set("timestamp", String(this.now()));
    const q = qs.toString();
    return `${q}&signature=${sign(q, this.opts.secretKey)}`;
  }

  async signedRequest<T>(method: "GET" | "POST" | "DELETE", path: string, params: Record<string, string | number | undefined>): Promise<T> {
    const wait = this.governor.delayMs();
    if (wait > 0) await this.sleep(wait);
    const q = this.signedQuery(params);
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base}${path}?${q}`, {
        method,
        headers: { "X-MBX-APIKEY": this.opts.apiKey },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
      });
    } catch (err) {
      throw new BinanceTimeoutError(err);
    }
    this.governor.observe(res.headers, res.status);
    const text = await res.text();
    if (!res.ok) {
      let code: number | undefined;
      let msg = text.slice(0, 300);
      try {
        const j = JSON.parse(text) as { code?: number; msg?: string };
        code = j.code;
        msg = j.msg ?? msg;
      } catch {
        /* not JSON (e.g. an HTML 502 page) */
      }
      throw new BinanceApiError(res.status, code, msg);
    }
    return JSON.parse(text) as T;
  }

  newOrder(req: BinanceOrderRequest): Promise<BinanceOrder> {
    return this.signedRequest<BinanceOrder>("POST", "/api/v3/order", { ...req, newOrderRespType: "FULL" });
  }

  /** The order by client id, or null when Binance says it does not exist (code -2013). */
  async queryOrder(symbol: string, origClientOrderId: string): Promise<BinanceOrder | null> {
    try {
      return await this.signedRequest<BinanceOrder>("GET", "/api/v3/order", { symbol, origClientOrderId });
    } catch (err) {
      if (err instanceof BinanceApiError && err.code === -2013) return null;
      throw err;
    }
  }

  cancelOrder(symbol: string, origClientOrderId: string): Promise<BinanceOrder> {
    return this.signedRequest<BinanceOrder>("DELETE", "/api/v3/order", { symbol, origClientOrderId });
  }

  /**
   * Submits an order so that an unknown outcome never produces a duplicate: after a 5xx / timeout it
   * queries by client order id, adopts the order if found, resubmits (same client id) only if not.
   * A 4xx (other than 429) is a definitive rejection and is thrown.
   */
  async placeOrderReconciled(req: BinanceOrderRequest, maxAttempts = 4): Promise<{ order: BinanceOrder; attempts: number; reconciled: boolean }> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        return { order: await this.newOrder(req), attempts: attempt, reconciled: false };
      } catch (err) {
        lastErr = err;
        const unknown = err instanceof BinanceTimeoutError || (err instanceof BinanceApiError && err.outcomeUnknown);
        const throttled = err instanceof BinanceApiError && (err.status === 429 || err.status === 418);
        if (!unknown && !throttled) throw err;
      }
      if (!(lastErr instanceof BinanceApiError && (lastErr.status === 429 || lastErr.status === 418))) {
        // Outcome unknown: look before leaping. The query itself may fail; then back off and look again.
        for (let q = 0; q < 3; q++) {
          try {
            const existing = await this.queryOrder(req.symbol, req.newClientOrderId);
            if (existing) return { order: existing, attempts: attempt, reconciled: true };
            break;
          } catch (err) {
            lastErr = err;
            await this.sleep(200 * 2 ** q);
          }
        }
      }
      await this.sleep(Math.min(5000, 200 * 2 ** attempt));
    }
    throw lastErr;
  }
}

export function toBinanceOrder(order: OrderRequest): BinanceOrderRequest {
  return {
    symbol: order.symbol,
    side: order.side === "buy" ? "BUY" : "SELL",
    type: order.type === "market" ? "MARKET" : "LIMIT",
    quantity: order.quantity,
    price: order.type === "limit" ? order.limitPrice : undefined,
    timeInForce: order.type === "limit" ? order.timeInForce ?? "GTC" : undefined,
    newClientOrderId: order.clientOrderId ?? order.orderId,
  };
}

/**
 * Our fills from a Binance FULL order response. Fill ids are `${orderId}:bn${tradeId}`: stable across
 * retries and restarts. Commission is converted to the quote asset when paid in the base asset
 * (at the fill price); commission in a third asset (BNB) is recorded as 0 quote and must be
 * reconciled from account trades (not implemented).
 */
export function binanceFills(order: OrderRequest, bo: BinanceOrder, quoteAsset: string, ts: number): Fill[] {
  const baseAsset = order.symbol.endsWith(quoteAsset) ? order.symbol.slice(0, -quoteAsset.length) : "";
  return (bo.fills ?? []).map((f) => {
    let fee = D(0);
    if (f.commissionAsset === quoteAsset) fee = D(f.commission);
    else if (f.commissionAsset === baseAsset) fee = D(f.commission).mul(f.price);
    return {
      fillId: `${order.orderId}:bn${f.tradeId}`,
      orderId: order.orderId,
      userId: order.userId,
      symbol: order.symbol,
      side: order.side,
      quantity: str(D(f.qty)),
      price: str(D(f.price)),
      fee: str(quote(fee)),
      liquidity: "taker",
      ts: bo.transactTime ?? ts,
    };
  });
}
