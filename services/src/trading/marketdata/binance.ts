import WebSocket from "ws";
import { readTextCapped } from "../../kit/capped-body";
import { D, str } from "../decimal";
import { WeightGovernor } from "../binance/rateLimit";
import { intervalMs, type Bar } from "../types";
import { assertBar, deliverBar, sleep, type BarHandler, type HistoryQuery, type MarketDataSource, type Subscription } from "./source";

/**
 * Binance public market data: REST klines for history (`GET /api/v3/klines`), the kline WebSocket
 * stream (`<symbol>@kline_<interval>`) for live bars. A live bar is delivered only when its kline
 * says `x: true` (closed); in-progress updates are ignored. Both base URLs are configurable so tests
 * point them at a fake server on loopback.
 */
export interface BinanceMarketDataOptions {
  restBaseUrl?: string;
  wsBaseUrl?: string;
  fetch?: typeof fetch;
  governor?: WeightGovernor;
  /** Sleep used for back-off (tests inject a fake). */
  sleep?: (ms: number) => Promise<void>;
  maxRetries?: number;
  /** Reconnect back-off bounds for the WebSocket (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  requestTimeoutMs?: number;
}

/**
 * Caps on what the market source may send. Without them a kline stream message was buffered up to the
 * ws library's default of 100 MiB (then copied to a string and parsed), and a REST answer read whole,
 * either a few times a data-bridge's memory from one misbehaving or impersonated upstream. A kline
 * event is under 1 KiB and a page of 1000 klines about 150 KiB.
 */
export const KLINE_MESSAGE_MAX_BYTES = 64 * 1024;
export const REST_ANSWER_MAX_BYTES = 4 * 1024 * 1024;

/** Parses one row of `GET /api/v3/klines`: [openTime, o, h, l, c, v, closeTime, quoteVol, trades, ...]. */
export function parseRestKline(row: unknown, symbol: string, interval: string): Bar {
  if (!Array.isArray(row) || row.length < 7) throw new Error("kline row must be an array of at least 7 items");
  const [openTime, o, h, l, c, v, closeTime] = row;
  return assertBar({
    symbol,
    interval,
    openTime: Number(openTime),
    closeTime: Number(closeTime),
    open: str(D(String(o))),
    high: str(D(String(h))),
    low: str(D(String(l))),
    close: str(D(String(c))),
    volume: str(D(String(v))),
  });
}

/** Parses a kline stream event (raw or combined-stream wrapped). Returns null for other messages. */
export function parseKlineEvent(msg: unknown): { bar: Bar; closed: boolean } | null {
  let m = msg as Record<string, any>;
  if (m && typeof m === "object" && "stream" in m && "data" in m) m = m.data;
  if (!m || m.e !== "kline" || !m.k) return null;
  const k = m.k;
  const bar = assertBar({
    symbol: String(k.s ?? m.s),
    interval: String(k.i),
    openTime: Number(k.t),
    closeTime: Number(k.T),
    open: str(D(String(k.o))),
    high: str(D(String(k.h))),
    low: str(D(String(k.l))),
    close: str(D(String(k.c))),
    volume: str(D(String(k.v))),
  });
  return { bar, closed: k.x === true };
}

export class BinanceMarketData implements MarketDataSource {
  readonly kind = "binance" as const;
  readonly governor: WeightGovernor;
  private readonly rest: string;
  private readonly ws: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  constructor(private readonly opts: BinanceMarketDataOptions = {}) {
    this.rest = (opts.restBaseUrl ?? "https://api.binance.com").replace(/\/$/, "");
    this.ws = (opts.wsBaseUrl ?? "wss://stream.binance.com:9443").replace(/\/$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
    this.governor = opts.governor ?? new WeightGovernor();
    this.sleep = opts.sleep ?? ((ms) => sleep(ms));
  }

  /** GET with weight governance, Retry-After on 429/418 and exponential back-off on 5xx/network errors. */
  private async getJson(path: string, params: URLSearchParams): Promise<unknown> {
    const maxRetries = this.opts.maxRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const wait = this.governor.delayMs();
      if (wait > 0) await this.sleep(wait);
      let res: Response;
      try {
        res = await this.fetchImpl(`${this.rest}${path}?${params}`, { signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 10_000) });
      } catch (err) {
        if (attempt >= maxRetries) throw err;
        await this.sleep(Math.min(30_000, 250 * 2 ** attempt));
        continue;
      }
      this.governor.observe(res.headers, res.status);
      if (res.ok) return JSON.parse(await readTextCapped(res, REST_ANSWER_MAX_BYTES));
      const body = await readTextCapped(res, REST_ANSWER_MAX_BYTES).catch((err: Error) => err.message);
      if ((res.status === 429 || res.status === 418 || res.status >= 500) && attempt < maxRetries) {
        if (res.status >= 500) await this.sleep(Math.min(30_000, 250 * 2 ** attempt));
        continue; // 429/418: the governor now holds us until Retry-After
      }
      throw new Error(`binance ${path} answered ${res.status}: ${body.slice(0, 200)}`);
    }
  }

  async history(symbol: string, interval: string, q: HistoryQuery = {}): Promise<Bar[]> {
    const want = q.limit ?? 500;
    const step = intervalMs(interval);
    const out: Bar[] = [];
    let start = q.startTime;
    while (out.length < want) {
      const params = new URLSearchParams({ symbol, interval, limit: String(Math.min(1000, want - out.length)) });
      if (start !== undefined) params.set("startTime", String(start));
      if (q.endTime !== undefined) params.set("endTime", String(q.endTime));
      const rows = await this.getJson("/api/v3/klines", params);
      if (!Array.isArray(rows) || rows.length === 0) break;
      for (const r of rows) out.push(parseRestKline(r, symbol, interval));
      if (start === undefined || rows.length < Number(params.get("limit"))) break;
      start = out[out.length - 1].openTime + step;
    }
    return out;
  }

  subscribe(symbol: string, interval: string, onBar: BarHandler, onError?: (err: Error) => void): Subscription {
    const url = `${this.ws}/ws/${symbol.toLowerCase()}@kline_${interval}`;
    const ac = new AbortController();
    let closed = false;
    let socket: WebSocket | undefined;
    let lastOpenTime = -1;
    let chain: Promise<void> = Promise.resolve();
    let failures = 0;
    const min = this.opts.reconnectMinMs ?? 500;
    const max = this.opts.reconnectMaxMs ?? 30_000;
    const connect = () => {
      if (closed) return;
      socket = new WebSocket(url, { maxPayload: KLINE_MESSAGE_MAX_BYTES }); // a larger one closes the socket (1009): reconnect
      socket.on("open", () => (failures = 0));
      socket.on("message", (data) => {
        let parsed: ReturnType<typeof parseKlineEvent>;
        try {
          parsed = parseKlineEvent(JSON.parse(data.toString()));
        } catch (err) {
          onError?.(err as Error);
          return;
        }
        // Only closed bars, each once (a reconnect may replay the last closed kline). A bar the
        // handler cannot write yet is retried (deliverBar): the stream will not send it again.
        if (!parsed || !parsed.closed || parsed.bar.openTime <= lastOpenTime) return;
        lastOpenTime = parsed.bar.openTime;
        const bar = parsed.bar;
        chain = chain.then(() => deliverBar(onBar, bar, { signal: ac.signal, onError }));
      });
      socket.on("error", (err) => onError?.(err));
      socket.on("close", () => {
        if (closed) return;
        const delay = Math.min(max, min * 2 ** failures++);
        setTimeout(connect, delay);
      });
    };
    connect();
    return {
      async close() {
        closed = true;
        ac.abort();
        socket?.close();
        await chain;
      },
    };
  }
}
