import { createHmac } from "node:crypto";
import type { OrderRequest } from "../types";
import { BinanceApiError, BinanceOutcomeUnknownError, BinanceTimeoutError, outcomeUnknown } from "./errors";
import { WeightGovernor } from "./rateLimit";

/**
 * Binance spot trading adapter: HMAC-SHA256 signed requests (SIGNED endpoints: `timestamp` +
 * `recvWindow` in the query, `signature` = hex HMAC-SHA256 of the query string with the secret key,
 * API key in the `X-MBX-APIKEY` header).
 *
 * Client order id: the platform's order id (a UUID, 36 characters of Binance's [.A-Z:/a-z0-9_-]{1,36}),
 * unique across users; the user's own clientOrderId is not (two users sending "my-1" would collide:
 * Binance refuses the second as a duplicate, or reconciliation adopts the other user's order).
 *
 * Reconciliation: when an order submission answers 5xx or times out, Binance's outcome is UNKNOWN
 * (the order may or may not exist). We never blindly resubmit: we first query the order by its
 * `origClientOrderId`; if it exists we adopt it, only if Binance says it does not exist (-2013, see
 * below) do we submit again, with the same client order id. When no attempt settles it the caller gets a
 * BinanceOutcomeUnknownError (never a rejection: the order may be live or filled at Binance). The
 * adopted order is what GET /api/v3/order answers: no `fills` (./fills.ts fetches its trades).
 *
 * A placement in flight: Binance applies a signed request up to `recvWindow` after its `timestamp`,
 * so a placement sent before (unanswered, by this call or an earlier attempt) may land after a lookup
 * answered -2013. The caller hands its last placement's timestamp (`lastSentAt`) and records each new
 * one before it is signed (`beforeSend`); a -2013 is trusted only once `placementLandsWithinMs` passed.
 */
export { binanceFills, tradeFills } from "./fills";

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

/** One trade of GET /api/v3/myTrades. */
export interface BinanceTrade {
  symbol: string;
  id: number;
  orderId: number;
  price: string;
  qty: string;
  quoteQty: string;
  commission: string;
  commissionAsset: string;
  time: number;
  isBuyer: boolean;
  isMaker: boolean;
}

const throttled = (err: unknown) => err instanceof BinanceApiError && (err.status === 429 || err.status === 418);
/** -2010 "Duplicate order sent.": an open order already has this client order id (ours, sent before). */
const duplicate = (err: unknown) => err instanceof BinanceApiError && err.code === -2010 && /duplicate/i.test(err.binanceMessage);

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
  /** The clock requests are signed with (ms). */
  readonly now: () => number;
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

  /** How long Binance applies a signed request after its timestamp (ms): `recvWindow`, 5000 unless configured. */
  get recvWindowMs(): number {
    return this.opts.recvWindow ?? 5000;
  }
  /**
   * How long after its timestamp (this clock) a placement may still land: recvWindow, plus the 1000 ms
   * Binance lets a timestamp run ahead of its own clock. A clock further ahead of Binance's has every
   * signed request refused (-1021), the lookup that answered -2013 included, so a clock that got that
   * answer is at most 1000 ms ahead, and Binance refuses the placement once this has passed by it.
   */
  get placementLandsWithinMs(): number {
    return this.recvWindowMs + 1000;
  }
  /** Whether a placement signed at `sentAt` (ms, this clock; none: undefined) may still land at Binance after a request sent from now. */
  mayStillLand(sentAt: number | undefined): boolean {
    return sentAt !== undefined && this.now() <= sentAt + this.placementLandsWithinMs;
  }

  /** Builds the signed query string: params, recvWindow, timestamp, then signature (in that order). */
  signedQuery(params: Record<string, string | number | undefined>, timestamp = this.now()): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) qs.set(k, String(v));
    qs.set("recvWindow", String(this.recvWindowMs));
    qs.set("timestamp", String(timestamp));
    const q = qs.toString();
    return `${q}&signature=${sign(q, this.opts.secretKey)}`;
  }

  /** `beforeSign`: told the request's timestamp before it is signed and sent; a throw sends nothing. */
  async signedRequest<T>(method: "GET" | "POST" | "DELETE", path: string, params: Record<string, string | number | undefined>, beforeSign?: (timestamp: number) => Promise<void>): Promise<T> {
    const wait = this.governor.delayMs();
    if (wait > 0) await this.sleep(wait);
    const timestamp = this.now();
    if (beforeSign) await beforeSign(timestamp);
    const q = this.signedQuery(params, timestamp);
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
    // The body can fail too (the connection dropped, the timeout fired while it streamed): Binance
    // may have applied the request all the same, so that is an unknown outcome, never a refusal.
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new BinanceTimeoutError(err);
    }
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
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new BinanceTimeoutError(err); // a 2xx whose answer cannot be read: applied, but unknown how
    }
  }

  newOrder(req: BinanceOrderRequest, beforeSign?: (timestamp: number) => Promise<void>): Promise<BinanceOrder> {
    return this.signedRequest<BinanceOrder>("POST", "/api/v3/order", { ...req, newOrderRespType: "FULL" }, beforeSign);
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

  /** DELETE /api/v3/order: the order as cancelled (status CANCELED); -2011 when it is not open (filled, cancelled, unknown). */
  cancelOrder(symbol: string, origClientOrderId: string): Promise<BinanceOrder> {
    return this.signedRequest<BinanceOrder>("DELETE", "/api/v3/order", { symbol, origClientOrderId });
  }

  /** GET /api/v3/openOrders for one symbol. */
  openOrders(symbol: string): Promise<BinanceOrder[]> {
    return this.signedRequest<BinanceOrder[]>("GET", "/api/v3/openOrders", { symbol });
  }

  /** Every trade of one order (GET /api/v3/myTrades with orderId, 1,000 a page, oldest first). */
  async orderTrades(symbol: string, orderId: number): Promise<BinanceTrade[]> {
    const all: BinanceTrade[] = [];
    for (let fromId: number | undefined; ; ) {
      const page = await this.signedRequest<BinanceTrade[]>("GET", "/api/v3/myTrades", { symbol, orderId, fromId, limit: 1000 });
      all.push(...page);
      if (page.length < 1000) return all;
      fromId = page[page.length - 1].id + 1;
    }
  }

  /**
   * Submits an order so that an unknown outcome never produces a duplicate: after a 5xx / timeout (or
   * a -2010 duplicate: an open order already has the id) it queries by client order id, adopts the
   * order if found, resubmits (same client id) only if Binance says it does not exist. `lookFirst`
   * (the order may have been sent before: a retried batch) queries before the first submission too.
   * A -2013 while a placement may still land (mayStillLand: the last one this call sent, else the one
   * signed at `lastSentAt`) settles nothing: BinanceOutcomeUnknownError, nothing sent again (so an
   * unknown outcome is settled by a later call, after the window). `beforeSend` sees each placement's timestamp first.
   * A 4xx (other than 429) is a definitive rejection and is thrown; an outcome the queries could not
   * settle throws BinanceOutcomeUnknownError (resubmitting then could duplicate a filled order:
   * Binance accepts a client order id again once the order holding it has filled).
   */
  async placeOrderReconciled(req: BinanceOrderRequest, opts: { maxAttempts?: number; lookFirst?: boolean; lastSentAt?: number; beforeSend?: (timestamp: number) => Promise<void> } = {}): Promise<{ order: BinanceOrder; attempts: number; reconciled: boolean }> {
    let lastSent = opts.lastSentAt;
    if (opts.lookFirst) {
      const seen = await this.lookUp(req, lastSent);
      if (seen.order) return { order: seen.order, attempts: 0, reconciled: true };
      if (!seen.settled) throw new BinanceOutcomeUnknownError(seen.err);
    }
    const stamped = async (timestamp: number) => {
      await opts.beforeSend?.(timestamp);
      lastSent = timestamp;
    };
    let lastErr: unknown;
    const maxAttempts = opts.maxAttempts ?? 4;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        return { order: await this.newOrder(req, stamped), attempts: attempt, reconciled: false };
      } catch (err) {
        lastErr = err;
        if (!outcomeUnknown(err) && !duplicate(err) && !throttled(err)) throw err;
      }
      if (!throttled(lastErr)) {
        const seen = await this.lookUp(req, lastSent);
        if (seen.order) return { order: seen.order, attempts: attempt, reconciled: true };
        if (!seen.settled) throw new BinanceOutcomeUnknownError(seen.err);
      }
      await this.sleep(Math.min(5000, 200 * 2 ** attempt));
    }
    throw lastErr;
  }

  /**
   * The order by client id after an unknown outcome; `settled` false when no query got an answer (3
   * tries, backing off), or when Binance answered -2013 while the placement signed at `lastSent` may still land.
   */
  private async lookUp(req: BinanceOrderRequest, lastSent: number | undefined): Promise<{ order?: BinanceOrder; settled: boolean; err?: unknown }> {
    let err: unknown;
    for (let q = 0; q < 3; q++) {
      try {
        const inFlight = this.mayStillLand(lastSent); // read before the lookup is signed
        const order = (await this.queryOrder(req.symbol, req.newClientOrderId)) ?? undefined;
        if (!order && inFlight) {
          const until = new Date((lastSent ?? 0) + this.placementLandsWithinMs).toISOString();
          return { settled: false, err: new Error(`-2013 for ${req.newClientOrderId}, but the placement signed at ${new Date(lastSent ?? 0).toISOString()} may land until ${until}`) };
        }
        return { order, settled: true };
      } catch (e) {
        err = e;
        await this.sleep(200 * 2 ** q);
      }
    }
    return { settled: false, err };
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
    newClientOrderId: order.orderId,
  };
}
