/**
 * A local Binance spot REST API (https://developers.binance.com/docs/binance-spot-api-docs/rest-api)
 * speaking the signed endpoints the live trading-engine uses, in Binance's shapes:
 *   POST   /api/v3/order       new order (FULL answer: `fills` with tradeId); -2010 "Duplicate order
 *                              sent." when an open order has the newClientOrderId
 *   GET    /api/v3/order       query by origClientOrderId or orderId (no `fills`); -2013 when unknown
 *   DELETE /api/v3/order       cancel an open order (status CANCELED, executedQty kept, no fills);
 *                              -2011 "Unknown order sent." when it is not open (filled, ended, unknown)
 *   GET    /api/v3/openOrders  the open orders of a symbol
 *   GET    /api/v3/myTrades    trades of a symbol [+ orderId] [+ fromId], oldest first, limit <= 1000
 * Every request must carry the API key and a valid HMAC-SHA256 signature (401 -1022 otherwise).
 *
 * Matching is scripted: a MARKET order fills at once at the symbol's price (`setPrice`); a LIMIT
 * order fills at once if marketable against that price, otherwise rests (GTC) or expires (IOC);
 * `fill()` executes a resting order (partly or fully), `endOrder()` cancels / expires one from
 * Binance's side. Commission: 0.1% of the quote amount in the quote asset (USDT).
 * `failNext()` injects outages: answer 503 before or after applying the request, never answer, or
 * (`cut-after`) apply it and drop the connection halfway through the 200 answer's body, or
 * (`in-flight`) hold it on its way, neither applied nor answered, until `landInFlight()` delivers it.
 * As Binance does, a request is refused (-1021) when it arrives more than its `recvWindow` after its
 * `timestamp`, or with a timestamp 1000 ms or more ahead of the server's clock; a held one is judged
 * when it lands.
 * `tradesLagging` holds an order's trades back from myTrades.
 * `log` records every request as `${METHOD} ${path} ${client order id | orderId | symbol}`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { D, str } from "../../services/src/trading/decimal";
import { sign } from "../../services/src/trading/binance/adapter";

/** A fault, or a refusal answered before the request is applied (`msg` as given: any text). */
export type Fault = "503-before" | "503-after" | "timeout-before" | "timeout-after" | "cut-after" | "in-flight" | { status: number; code: number; msg: string };
type Status = "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELED" | "EXPIRED";

export interface FakeOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  price: string;
  origQty: string;
  executedQty: string;
  cummulativeQuoteQty: string;
  status: Status;
  timeInForce: string;
  type: "MARKET" | "LIMIT";
  side: "BUY" | "SELL";
  time: number;
  updateTime: number;
}

export interface FakeTrade {
  symbol: string;
  id: number;
  orderId: number;
  orderListId: number;
  price: string;
  qty: string;
  quoteQty: string;
  commission: string;
  commissionAsset: string;
  time: number;
  isBuyer: boolean;
  isMaker: boolean;
  isBestMatch: boolean;
}

const OPEN: Status[] = ["NEW", "PARTIALLY_FILLED"];

export class FakeBinance {
  readonly orders: FakeOrder[] = [];
  readonly trades: FakeTrade[] = [];
  readonly log: string[] = [];
  readonly prices = new Map<string, string>();
  /** GET /api/v3/myTrades answers without these orders' trades yet (Binance's Memory => Database lag). */
  readonly tradesLagging = new Set<number>();
  url = "";
  private server?: Server;
  private faults: { method: string; path: string; fault: Fault }[] = [];
  private nextTradeId = 1000;
  private hung: ServerResponse[] = [];
  private inFlight: { method: string; path: string; p: URLSearchParams; res: ServerResponse }[] = [];

  constructor(
    readonly apiKey: string,
    readonly secretKey: string,
    readonly quoteAsset = "USDT",
  ) {}

  setPrice(symbol: string, price: string): void {
    this.prices.set(symbol, price);
  }
  /** The next `times` requests of `method path` fail as `fault`. */
  failNext(method: string, path: string, fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ method, path, fault });
  }
  /**
   * The timeout a test's client should take, read at each request: 300 ms while a fault is queued (an
   * injected "no answer" is seen at once), 5 s otherwise (the client's default), so an answer a loaded
   * machine gives late is waited for and not taken for an outage (.ci/run of session 43: a placement
   * answered after 300 ms was looked up, an extra GET in a case's request list).
   */
  get clientTimeoutMs(): number {
    return this.faults.length > 0 ? 300 : 5000;
  }
  clearFaults(): void {
    this.faults = [];
  }
  /** The latest order with this client order id. */
  order(clientOrderId: string): FakeOrder | undefined {
    return this.orders.filter((o) => o.clientOrderId === clientOrderId).at(-1);
  }
  /** Executes `qty` of a resting order at `price` as maker (a trade Binance made while nobody looked). */
  fill(clientOrderId: string, qty: string, price?: string): FakeTrade {
    const o = this.order(clientOrderId);
    if (!o || !OPEN.includes(o.status)) throw new Error(`fake binance: ${clientOrderId} is not open`);
    return this.trade(o, qty, price ?? o.price, true);
  }
  /** Ends an open order from Binance's side (a manual cancel, an expiry). */
  endOrder(clientOrderId: string, status: "CANCELED" | "EXPIRED"): void {
    const o = this.order(clientOrderId);
    if (!o || !OPEN.includes(o.status)) throw new Error(`fake binance: ${clientOrderId} is not open`);
    o.status = status;
    o.updateTime = Date.now();
  }
  /**
   * The requests held `in-flight` arrive now (in the order sent): each applied as on arrival, refused
   * -1021 if its recvWindow has passed; the answer goes to a connection its client may have dropped.
   */
  landInFlight(): { status: number; body: unknown }[] {
    const landing = this.inFlight.splice(0);
    return landing.map(({ method, path, p, res }) => {
      const [status, body] = this.outsideRecvWindow(p) ?? this.apply(method, path, p);
      if (!res.destroyed) res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      return { status, body };
    });
  }
  requests(id: string): string[] {
    return this.log.filter((l) => l.endsWith(` ${id}`));
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const r of [...this.hung, ...this.inFlight.map((f) => f.res)]) r.destroy();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private trade(o: FakeOrder, qty: string, price: string, isMaker: boolean): FakeTrade {
    const quoteQty = D(qty).mul(price);
    const t: FakeTrade = {
      symbol: o.symbol, id: this.nextTradeId++, orderId: o.orderId, orderListId: -1, price: str(price), qty: str(qty), quoteQty: str(quoteQty),
      commission: str(quoteQty.mul("0.001")), commissionAsset: this.quoteAsset, time: Date.now(), isBuyer: o.side === "BUY", isMaker, isBestMatch: true,
    };
    this.trades.push(t);
    o.executedQty = str(D(o.executedQty).plus(qty));
    o.cummulativeQuoteQty = str(D(o.cummulativeQuoteQty).plus(quoteQty));
    o.status = D(o.executedQty).gte(o.origQty) ? "FILLED" : "PARTIALLY_FILLED";
    o.updateTime = t.time;
    return t;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? "/", "http://x");
    const q = u.search.slice(1);
    const i = q.lastIndexOf("&signature=");
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "x-mbx-used-weight-1m": "10" });
      res.end(JSON.stringify(body));
    };
    if (req.headers["x-mbx-apikey"] !== this.apiKey || i < 0 || sign(q.slice(0, i), this.secretKey) !== q.slice(i + 11)) return answer(401, { code: -1022, msg: "Signature for this request is not valid." });
    const p = u.searchParams;
    const id = p.get("newClientOrderId") ?? p.get("origClientOrderId") ?? p.get("orderId") ?? p.get("symbol") ?? "";
    this.log.push(`${req.method} ${u.pathname} ${id}`);
    const k = this.faults.findIndex((f) => f.method === req.method && f.path === u.pathname);
    const fault = k >= 0 ? this.faults.splice(k, 1)[0].fault : undefined;
    if (fault === "in-flight") return void this.inFlight.push({ method: req.method ?? "GET", path: u.pathname, p, res });
    const late = this.outsideRecvWindow(p);
    if (late) return answer(...late);
    if (typeof fault === "object") return answer(fault.status, { code: fault.code, msg: fault.msg });
    if (fault === "503-before") return answer(503, { code: -1000, msg: "An unknown error occurred while processing the request." });
    if (fault === "timeout-before") return void this.hung.push(res);
    const [status, body] = this.apply(req.method ?? "GET", u.pathname, p);
    if (fault === "503-after") return answer(503, { code: -1000, msg: "An unknown error occurred while processing the request." });
    if (fault === "timeout-after") return void this.hung.push(res);
    if (fault === "cut-after") {
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": String(text.length) });
      res.write(text.slice(0, text.length >> 1));
      return void setTimeout(() => res.destroy(), 20);
    }
    answer(status, body);
  }

  /** Binance's timestamp check, on arrival: -1021 unless timestamp < now + 1000 and now - timestamp <= recvWindow. */
  private outsideRecvWindow(p: URLSearchParams): [number, unknown] | undefined {
    const now = Date.now();
    const timestamp = Number(p.get("timestamp"));
    if (timestamp < now + 1000 && now - timestamp <= Number(p.get("recvWindow") ?? 5000)) return undefined;
    return [400, { code: -1021, msg: "Timestamp for this request is outside of the recvWindow." }];
  }

  private find(p: URLSearchParams): FakeOrder | undefined {
    const symbol = p.get("symbol");
    const byId = p.get("orderId");
    if (byId !== null) return this.orders.find((o) => o.symbol === symbol && o.orderId === Number(byId));
    const cid = p.get("origClientOrderId");
    return this.orders.filter((o) => o.symbol === symbol && o.clientOrderId === cid).at(-1);
  }

  private apply(method: string, path: string, p: URLSearchParams): [number, unknown] {
    const view = (o: FakeOrder) => ({ ...o, orderListId: -1, stopPrice: "0.00000000", icebergQty: "0.00000000", isWorking: true, workingTime: o.time, origQuoteOrderQty: "0.00000000", selfTradePreventionMode: "NONE" });
    if (path === "/api/v3/order" && method === "POST") return this.place(p);
    if (path === "/api/v3/order" && method === "GET") {
      const o = this.find(p);
      return o ? [200, view(o)] : [400, { code: -2013, msg: "Order does not exist." }];
    }
    if (path === "/api/v3/order" && method === "DELETE") {
      const o = this.find(p);
      if (!o || !OPEN.includes(o.status)) return [400, { code: -2011, msg: "Unknown order sent." }];
      o.status = "CANCELED";
      o.updateTime = Date.now();
      const { time: _t, updateTime: _u, ...rest } = o;
      return [200, { ...rest, origClientOrderId: o.clientOrderId, clientOrderId: `cancel-${o.orderId}`, orderListId: -1, transactTime: o.updateTime, selfTradePreventionMode: "NONE" }];
    }
    if (path === "/api/v3/openOrders" && method === "GET") return [200, this.orders.filter((o) => o.symbol === p.get("symbol") && OPEN.includes(o.status)).map(view)];
    if (path === "/api/v3/myTrades" && method === "GET") {
      const orderId = p.get("orderId");
      const fromId = Number(p.get("fromId") ?? 0);
      const limit = Math.min(1000, Number(p.get("limit") ?? 500));
      const list = this.trades.filter((t) => t.symbol === p.get("symbol") && (orderId === null || t.orderId === Number(orderId)) && t.id >= fromId && !this.tradesLagging.has(t.orderId));
      return [200, list.slice(0, limit)];
    }
    return [404, { code: -1100, msg: `no such endpoint ${method} ${path}` }];
  }

  private place(p: URLSearchParams): [number, unknown] {
    const cid = p.get("newClientOrderId") ?? `auto-${this.orders.length + 1}`;
    if (!/^[.A-Z:/a-z0-9_-]{1,36}$/.test(cid)) return [400, { code: -1100, msg: "Illegal characters found in parameter 'newClientOrderId'." }];
    if (this.orders.some((o) => o.clientOrderId === cid && OPEN.includes(o.status))) return [400, { code: -2010, msg: "Duplicate order sent." }];
    const symbol = p.get("symbol") ?? "";
    const type = p.get("type") === "MARKET" ? "MARKET" : "LIMIT";
    const side = p.get("side") === "SELL" ? "SELL" : "BUY";
    const now = Date.now();
    const o: FakeOrder = {
      symbol, orderId: this.orders.length + 1, clientOrderId: cid, price: type === "LIMIT" ? str(p.get("price") ?? "0") : "0", origQty: str(p.get("quantity") ?? "0"),
      executedQty: "0", cummulativeQuoteQty: "0", status: "NEW", timeInForce: p.get("timeInForce") ?? "GTC", type, side, time: now, updateTime: now,
    };
    this.orders.push(o);
    const last = this.prices.get(symbol);
    const marketable = last !== undefined && (type === "MARKET" || (side === "BUY" ? D(o.price).gte(last) : D(o.price).lte(last)));
    const fills = marketable ? [this.trade(o, o.origQty, type === "MARKET" ? last : o.price, false)] : [];
    if (!marketable && (type === "MARKET" || o.timeInForce === "IOC")) o.status = "EXPIRED";
    const { time: _t, updateTime: _u, ...rest } = o;
    return [200, {
      ...rest, orderListId: -1, transactTime: now, workingTime: now, selfTradePreventionMode: "NONE",
      fills: fills.map((t) => ({ price: t.price, qty: t.qty, commission: t.commission, commissionAsset: t.commissionAsset, tradeId: t.id })),
    }];
  }
}
