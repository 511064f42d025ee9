import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BinanceTradingClient, binanceFills, sign, toBinanceOrder } from "../../services/src/trading/binance/adapter";
import { BinanceApiError, BinanceOutcomeUnknownError } from "../../services/src/trading/binance/errors";
import { WeightGovernor } from "../../services/src/trading/binance/rateLimit";
import { BinanceMarketData, parseKlineEvent, parseRestKline } from "../../services/src/trading/marketdata/binance";
import { parseRecorded, ReplaySource } from "../../services/src/trading/marketdata/replay";
import { SAMPLE_BTCUSDT_1M_CSV } from "../../services/src/trading/marketdata/sampleData";
import { SyntheticSource } from "../../services/src/trading/marketdata/synthetic";
import type { Bar } from "../../services/src/trading/types";
import { ws } from "../harness/deps";

const fixtures = join(__dirname, "fixtures");
const SAMPLE = join(__dirname, "../../services/src/trading/marketdata/sample-btcusdt-1m.csv");

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const servers: { close(): void }[] = [];
async function fakeHttp(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => handler(req, res, new URL(req.url!, "http://x")));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push({ close: () => { server.closeAllConnections(); server.close(); } });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
afterEach(() => {
  while (servers.length) servers.pop()!.close();
});

describe("synthetic source", () => {
  it("is deterministic per seed and differs across seeds", async () => {
    const a = await new SyntheticSource({ seed: 42 }).history("BTCUSDT", "1m", { limit: 50 });
    const b = await new SyntheticSource({ seed: 42 }).history("BTCUSDT", "1m", { limit: 50 });
    const c = await new SyntheticSource({ seed: 43 }).history("BTCUSDT", "1m", { limit: 50 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (let i = 1; i < a.length; i++) {
      expect(a[i].open).toBe(a[i - 1].close);
      expect(a[i].openTime - a[i - 1].openTime).toBe(60_000);
      const [o, h, l, cl] = [a[i].open, a[i].high, a[i].low, a[i].close].map(Number);
      expect(l).toBeLessThanOrEqual(Math.min(o, cl));
      expect(h).toBeGreaterThanOrEqual(Math.max(o, cl));
    }
    // A window in the middle equals the same bars of a longer series.
    const mid = await new SyntheticSource({ seed: 42 }).history("BTCUSDT", "1m", { startTime: a[10].openTime, limit: 5 });
    expect(mid).toEqual(a.slice(10, 15));
  });
  it("streams bars live", async () => {
    const src = new SyntheticSource({ seed: 1, emitEveryMs: 5, liveStartIndex: 0 });
    const got: Bar[] = [];
    const sub = src.subscribe("ETHUSDT", "1m", (b) => void got.push(b));
    // A condition, not a fixed sleep: a loaded host may run the 5 ms timer far less often.
    await vi.waitFor(() => expect(got.length).toBeGreaterThan(3), { timeout: 30_000, interval: 20 });
    await sub.close();
    expect(got.slice(0, 3)).toEqual(await src.history("ETHUSDT", "1m", { limit: 3 }));
  });
});

describe("replay source", () => {
  it("parses the shipped CSV sample and replays it in order", async () => {
    const src = ReplaySource.fromFile(SAMPLE);
    const h = await src.history("BTCUSDT", "1m");
    expect(h).toHaveLength(10);
    expect(h[0]).toEqual({ symbol: "BTCUSDT", interval: "1m", openTime: 1704067200000, closeTime: 1704067259999, open: "42283.58", high: "42298.62", low: "42261.02", close: "42298.61", volume: "35.92724" });
    const got: Bar[] = [];
    const sub = src.subscribe("BTCUSDT", "1m", (b) => void got.push(b));
    await vi.waitFor(() => expect(got).toHaveLength(h.length), { timeout: 30_000, interval: 10 });
    await sub.close();
    expect(got).toEqual(h);
  });
  it("embeds the same sample for the built image", () => {
    expect(SAMPLE_BTCUSDT_1M_CSV).toBe(readFileSync(SAMPLE, "utf8"));
  });
  it("parses JSON lines and refuses broken bars", () => {
    const jl = '{"openTime":0,"open":"1","high":"2","low":"0.5","close":"1.5","volume":"3"}\n';
    expect(parseRecorded(jl, { symbol: "X1", interval: "1m" })[0].closeTime).toBe(59_999);
    expect(() => parseRecorded('{"openTime":0,"open":"1","high":"0.9","low":"0.5","close":"1.5","volume":"3"}', { symbol: "X1", interval: "1m" })).toThrow(/invariants/);
  });
});

describe("binance market data", () => {
  it("parses recorded REST klines and WS kline events", () => {
    const rows = JSON.parse(readFileSync(join(fixtures, "binance-klines-rest.json"), "utf8"));
    expect(parseRestKline(rows[0], "BNBBTC", "1w")).toEqual({ symbol: "BNBBTC", interval: "1w", openTime: 1499040000000, closeTime: 1499644799999, open: "0.0163479", high: "0.8", low: "0.015758", close: "0.015771", volume: "148976.11427815" });
    const events = readFileSync(join(fixtures, "binance-kline-ws.jsonl"), "utf8").trim().split("\n").map((l) => parseKlineEvent(JSON.parse(l)));
    expect(events.map((e) => e!.closed)).toEqual([false, true, false]);
    expect(events[1]!.bar).toMatchObject({ symbol: "BNBBTC", interval: "1m", close: "0.0021", low: "0.0009", volume: "1500" });
    expect(parseKlineEvent({ stream: "bnbbtc@kline_1m", data: JSON.parse(readFileSync(join(fixtures, "binance-kline-ws.jsonl"), "utf8").split("\n")[1]) })!.closed).toBe(true);
    expect(parseKlineEvent({ result: null, id: 1 })).toBeNull();
  });

  it("pages REST history and backs off on the used-weight header and 429 Retry-After", async () => {
    let now = 1_000_000 * 60_000 + 10_000;
    const sleeps: number[] = [];
    let calls = 0;
    const { url } = await fakeHttp((req, res, u) => {
      calls++;
      if (calls === 2) {
        res.writeHead(429, { "retry-after": "3" });
        res.end('{"code":-1003,"msg":"Too many requests"}');
        return;
      }
      const start = Number(u.searchParams.get("startTime"));
      const limit = Number(u.searchParams.get("limit"));
      const rows = Array.from({ length: Math.min(limit, 1000) }, (_, i) => {
        const t = start + i * 60_000;
        return [t, "1.0", "1.2", "0.9", "1.1", "5", t + 59_999, "0", 1, "0", "0", "0"];
      });
      res.writeHead(200, { "content-type": "application/json", "x-mbx-used-weight-1m": calls === 1 ? "4900" : "10" });
      res.end(JSON.stringify(rows));
    });
    const governor = new WeightGovernor({ limit: 6000, safety: 0.8, now: () => now });
    const md = new BinanceMarketData({ restBaseUrl: url, governor, sleep: async (ms) => { sleeps.push(ms); now += ms; } });
    const bars = await md.history("BTCUSDT", "1m", { startTime: 0, limit: 2500 });
    expect(bars).toHaveLength(2500);
    expect(bars.every((b, i) => b.openTime === i * 60_000)).toBe(true);
    // after 4900/6000 (>= 80%) we wait for the next minute (50 s), then the 429 holds us 3 s.
    expect(sleeps).toEqual([50_000, 3_000]);
    expect(calls).toBe(4); // 1000, 429, 1000, 500
  });

  it("a REST answer over 4 MiB is refused as it arrives, not read whole (session 40)", async () => {
    let closed = false;
    const { url } = await fakeHttp((_req, res) => {
      // An endless JSON array at full speed: before, it was read until the request's timeout.
      res.writeHead(200, { "content-type": "application/json" });
      res.write("[");
      const row = Buffer.from(`${JSON.stringify([0, "1", "1", "1", "1", "1", 59_999, "0", 1, "0", "0", "0"])},`.repeat(100));
      const pump = () => {
        while (!closed && res.write(row));
        if (!closed) res.once("drain", pump);
      };
      res.on("close", () => (closed = true));
      pump();
    });
    const md = new BinanceMarketData({ restBaseUrl: url, maxRetries: 0, requestTimeoutMs: 30_000, sleep: async () => {} });
    await expect(md.history("BTCUSDT", "1m", { limit: 10 })).rejects.toThrow("answer over 4194304 bytes");
    await vi.waitFor(() => expect(closed).toBe(true), { timeout: 10_000, interval: 20 });
  });

  it("a WebSocket message over 64 KiB closes the stream (1009), which reconnects (session 40)", async () => {
    const wss = new ws.WebSocketServer({ port: 0, host: "127.0.0.1" });
    servers.push({ close: () => wss.close() });
    await new Promise((r) => wss.once("listening", r));
    const closeCodes: number[] = [];
    let connections = 0;
    wss.on("connection", (sock) => {
      connections++;
      sock.on("close", (code) => closeCodes.push(code));
      // Before, the ws library's default took up to 100 MiB a message: this one was buffered and parsed.
      if (connections === 1) sock.send(Buffer.alloc(1024 * 1024, 32));
    });
    const md = new BinanceMarketData({ wsBaseUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, reconnectMinMs: 10 });
    const sub = md.subscribe("BNBBTC", "1m", () => {}, () => {});
    try {
      await vi.waitFor(() => expect(connections).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 20 });
      expect(closeCodes[0]).toBe(1009);
    } finally {
      await sub.close();
    }
  });

  it("streams only closed klines over a WebSocket, once each, and reconnects", async () => {
    const wss = new ws.WebSocketServer({ port: 0, host: "127.0.0.1" });
    servers.push({ close: () => wss.close() });
    await new Promise((r) => wss.once("listening", r));
    const lines = readFileSync(join(fixtures, "binance-kline-ws.jsonl"), "utf8").trim().split("\n");
    // The next minute's kline closed, sent after the replay on later connections: once it is delivered, so would a duplicate be.
    const next = JSON.parse(lines[2]);
    const nextClosed = JSON.stringify({ ...next, E: next.k.T, k: { ...next.k, x: true, c: "0.0023", h: "0.0023" } });
    const paths: string[] = [];
    let connections = 0;
    wss.on("connection", (sock, req) => {
      paths.push(req.url!);
      connections++;
      for (const l of lines) sock.send(l);
      if (connections === 1) setTimeout(() => sock.terminate(), 20); // drop: the client must reconnect
      else sock.send(nextClosed);
    });
    const md = new BinanceMarketData({ wsBaseUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, reconnectMinMs: 10 });
    const got: Bar[] = [];
    const sub = md.subscribe("BNBBTC", "1m", (b) => void got.push(b));
    await vi.waitFor(() => expect(connections).toBeGreaterThanOrEqual(2), { timeout: 30_000, interval: 20 });
    // The replay on the second connection came before the next minute's close: a duplicate would have been delivered before it.
    await vi.waitFor(() => expect(got.map((b) => b.close)).toContain("0.0023"), { timeout: 30_000, interval: 20 });
    await sub.close();
    expect(paths[0]).toBe("/ws/bnbbtc@kline_1m");
    expect(connections).toBeGreaterThanOrEqual(2);
    // The replayed closed kline after reconnect is not delivered twice (nor the next one, on a third connection).
    expect(got.map((b) => b.close)).toEqual(["0.0021", "0.0023"]);
  });
});

describe("binance trading adapter", () => {
  const SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
  it("signs Binance's documented example", () => {
    expect(sign("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559", SECRET)).toBe(
      "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
    );
    const c = new BinanceTradingClient({ apiKey: "k", secretKey: SECRET, now: () => 1499827319559, recvWindow: 5000 });
    expect(c.signedQuery({ symbol: "LTCBTC", side: "BUY", type: "LIMIT", timeInForce: "GTC", quantity: "1", price: "0.1" })).toBe(
      "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
    );
  });
  it("refuses to start without keys", () => {
    expect(() => new BinanceTradingClient({ apiKey: "", secretKey: "" })).toThrow(/BINANCE_API_KEY/);
  });

  /** A fake Binance order endpoint that verifies signatures and keeps orders by client id. */
  async function fakeExchange(behaviour: (n: number) => "ok" | "500-after-create" | "timeout-after-create" | "500-before-create") {
    const orders = new Map<string, any>();
    const log: string[] = [];
    let posts = 0;
    const { url } = await fakeHttp((req, res, u) => {
      const q = u.search.slice(1);
      const idx = q.lastIndexOf("&signature=");
      const sig = q.slice(idx + "&signature=".length);
      if (req.headers["x-mbx-apikey"] !== "key" || sign(q.slice(0, idx), SECRET) !== sig) {
        res.writeHead(401);
        res.end('{"code":-1022,"msg":"Signature for this request is not valid."}');
        return;
      }
      const p = u.searchParams;
      const cid = p.get("newClientOrderId") ?? p.get("origClientOrderId")!;
      log.push(`${req.method} ${cid}`);
      if (req.method === "GET") {
        const o = orders.get(cid);
        if (!o) {
          res.writeHead(400);
          res.end('{"code":-2013,"msg":"Order does not exist."}');
          return;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(o));
        return;
      }
      const mode = behaviour(++posts);
      if (mode === "500-before-create") {
        res.writeHead(503);
        res.end('{"code":-1000,"msg":"Unknown error"}');
        return;
      }
      if (orders.has(cid)) {
        res.writeHead(400);
        res.end('{"code":-2010,"msg":"Duplicate order sent."}');
        return;
      }
      const o = { symbol: p.get("symbol"), orderId: orders.size + 1, clientOrderId: cid, price: "0", origQty: p.get("quantity"), executedQty: p.get("quantity"), cummulativeQuoteQty: "100", status: "FILLED", type: p.get("type"), side: p.get("side"), transactTime: 123, fills: [{ price: "100", qty: p.get("quantity"), commission: "0.1", commissionAsset: "USDT", tradeId: 77 }] };
      orders.set(cid, o);
      if (mode === "500-after-create") {
        res.writeHead(502);
        res.end("<html>bad gateway</html>");
        return;
      }
      if (mode === "timeout-after-create") return; // never answer
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(o));
    });
    return { url, orders, log };
  }
  const req = { orderId: "ord-1", userId: "u1", symbol: "BTCUSDT", side: "buy" as const, type: "market" as const, quantity: "1" };

  it("adopts the order found by client id after a 5xx instead of resubmitting", async () => {
    const fx = await fakeExchange((n) => (n === 1 ? "500-after-create" : "ok"));
    const c = new BinanceTradingClient({ apiKey: "key", secretKey: SECRET, baseUrl: fx.url, sleep: async () => {} });
    const r = await c.placeOrderReconciled(toBinanceOrder(req));
    expect(r).toMatchObject({ reconciled: true, attempts: 1 });
    expect(fx.orders.size).toBe(1);
    expect(fx.log).toEqual(["POST ord-1", "GET ord-1"]);
    expect(binanceFills(req, r.order, "USDT", 0)).toEqual([{ fillId: "ord-1:bn77", orderId: "ord-1", userId: "u1", symbol: "BTCUSDT", side: "buy", quantity: "1", price: "100", fee: "0.1", liquidity: "taker", ts: 123 }]);
  });
  it("adopts after a timeout too", async () => {
    const fx = await fakeExchange(() => "timeout-after-create");
    const c = new BinanceTradingClient({ apiKey: "key", secretKey: SECRET, baseUrl: fx.url, timeoutMs: 200, sleep: async () => {} });
    const r = await c.placeOrderReconciled(toBinanceOrder(req));
    expect(r.reconciled).toBe(true);
    expect(fx.orders.size).toBe(1);
  });
  it("resubmits with the same client id only when the order does not exist, asked once the first placement can no longer land (recvWindow + 1 s after its timestamp)", async () => {
    const fx = await fakeExchange((n) => (n === 1 ? "500-before-create" : "ok"));
    let reads = 0; // the placement is signed at the first read; the lookup comes 6001 ms later by this clock
    const c = new BinanceTradingClient({ apiKey: "key", secretKey: SECRET, baseUrl: fx.url, sleep: async () => {}, now: () => 1_800_000_000_000 + (reads++ === 0 ? 0 : 6001) });
    const r = await c.placeOrderReconciled(toBinanceOrder(req));
    expect(r).toMatchObject({ reconciled: false, attempts: 2 });
    expect(fx.log).toEqual(["POST ord-1", "GET ord-1", "POST ord-1"]);
  });
  it("a -2013 while the unanswered placement may still land (within recvWindow + 1 s) settles nothing: outcome unknown, not sent again", async () => {
    const fx = await fakeExchange((n) => (n === 1 ? "500-before-create" : "ok"));
    const stamps: number[] = [];
    const c = new BinanceTradingClient({ apiKey: "key", secretKey: SECRET, baseUrl: fx.url, sleep: async () => {} });
    await expect(c.placeOrderReconciled(toBinanceOrder(req), { beforeSend: async (t) => void stamps.push(t) })).rejects.toBeInstanceOf(BinanceOutcomeUnknownError);
    expect(fx.log).toEqual(["POST ord-1", "GET ord-1"]);
    expect(stamps).toHaveLength(1);
    // A later call told of that placement (`lastSentAt`) looks first and still sends nothing inside the window.
    await expect(c.placeOrderReconciled(toBinanceOrder(req), { lookFirst: true, lastSentAt: stamps[0] })).rejects.toBeInstanceOf(BinanceOutcomeUnknownError);
    expect(fx.log).toEqual(["POST ord-1", "GET ord-1", "GET ord-1"]);
  });
  it("does not retry a definitive 4xx rejection", async () => {
    const fx = await fakeExchange(() => "ok");
    const c = new BinanceTradingClient({ apiKey: "key", secretKey: "wrong-secret", baseUrl: fx.url, sleep: async () => {} });
    await expect(c.placeOrderReconciled(toBinanceOrder(req))).rejects.toBeInstanceOf(BinanceApiError);
    expect(fx.orders.size).toBe(0);
  });
});

describe("delivery: a bar the handler cannot write is retried, never dropped", () => {
  /** A handler that fails its first `failures` calls (a datastore not reachable yet), then records. */
  const flaky = (failures: number) => {
    const calls: number[] = [];
    const got: Bar[] = [];
    const errors: string[] = [];
    return {
      calls, got, errors,
      onBar: (b: Bar) => {
        calls.push(b.openTime);
        if (calls.length <= failures) throw new Error(`write failed ${calls.length}`);
        got.push(b);
      },
      onError: (e: Error) => void errors.push(e.message),
    };
  };
  const until = async (what: string, ok: () => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("binance: the closed kline the stream sends once is written after two failed attempts", async () => {
    const wss = new ws.WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((r) => wss.once("listening", r));
    servers.push({ close: () => wss.close() });
    const lines = readFileSync(join(fixtures, "binance-kline-ws.jsonl"), "utf8").trim().split("\n");
    wss.on("connection", (sock) => lines.forEach((l) => sock.send(l)));
    const h = flaky(2);
    const sub = new BinanceMarketData({ wsBaseUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` }).subscribe("BNBBTC", "1m", h.onBar, h.onError);
    try {
      await until("the bar written", () => h.got.length === 1);
    } finally {
      await sub.close();
    }
    expect(h.calls).toEqual([h.got[0].openTime, h.got[0].openTime, h.got[0].openTime]);
    expect(h.errors).toEqual(["write failed 1", "write failed 2"]);
    expect(h.got[0].close).toBe("0.0021");
  });

  it("synthetic and replay: the failed bar comes again before the next one, in order", async () => {
    for (const src of [new SyntheticSource({ seed: 7, emitEveryMs: 1, liveStartIndex: 0 }), new ReplaySource(parseRecorded(SAMPLE_BTCUSDT_1M_CSV))]) {
      const h = flaky(2);
      const sub = src.subscribe("BTCUSDT", "1m", h.onBar, h.onError);
      try {
        await until(`${src.kind}: 3 bars written`, () => h.got.length >= 3);
      } finally {
        await sub.close();
      }
      const expected = (await src.history("BTCUSDT", "1m", { limit: h.got.length })).map((b) => b.openTime);
      expect(h.got.map((b) => b.openTime)).toEqual(expected.slice(0, h.got.length));
      expect(h.calls.slice(0, 3)).toEqual([expected[0], expected[0], expected[0]]);
    }
  });

  it("closing the subscription stops the retries of a handler that never succeeds", async () => {
    // Two subscriptions whose handlers never succeed, retried on the same back-off (200 ms doubling).
    // One is closed; the other, left open, is the witness that a retry would have come by now.
    const src = new SyntheticSource({ seed: 7, emitEveryMs: 1, liveStartIndex: 0 });
    const [h, twin] = [flaky(Infinity), flaky(Infinity)];
    const sub = src.subscribe("BTCUSDT", "1m", h.onBar, h.onError);
    const open = src.subscribe("BTCUSDT", "1m", twin.onBar, twin.onError);
    try {
      await until("a failed attempt of each", () => h.calls.length >= 1 && twin.calls.length >= 1);
      await sub.close(); // resolves: the back-off sleep is aborted
      const [n, twinAtClose] = [h.calls.length, twin.calls.length];
      // The closed one's next retry was due after a back-off set before the close, of 200 * 2^(n-1) ms.
      // The twin's back-off set after its first attempt since the close, at no fewer attempts than n,
      // is no shorter: timers fire in the order they fall due, so once the attempt after it came, the
      // closed one's retry would have come too.
      const witness = Math.max(twinAtClose + 1, n) + 1;
      await until(`the twin's attempt ${witness}`, () => twin.calls.length >= witness);
      expect(h.calls.length).toBe(n);
      expect(new Set(h.calls).size).toBe(1); // the same bar every time, nothing skipped
      expect(new Set(twin.calls).size).toBe(1);
    } finally {
      await open.close();
    }
  });
});
