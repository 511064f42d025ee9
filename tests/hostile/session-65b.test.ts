/**
 * Session 65's red team, second part: orders' prices and backtests' quantities against the grids the execution
 * rules trade on, through the gateway as a client would (real PostgreSQL, Redis, Kafka, ClickHouse; the paper
 * exchange), every answer judged by ./oracle.ts.
 * Found and fixed at the root:
 * - a limit price between the paper exchange's ticks (99.995 against 0.01) was taken and filled at that price in
 *   paper mode, a price Binance refuses: POST /api/orders and POST /api/risk/check answer a 400 naming limitPrice
 *   and the tick, checked by the rules the paper exchange fills by (trading/orderRequest.ts, ExecutionRules.keepsPrice;
 *   tests/unit/order-price-tick.test.ts). A price the tick is coarse for (a symbol at 0.015: the rules keep a taker's
 *   price there at 8 decimals, commit 8e82d48e) is still taken;
 * - a backtest's fixed quantity ignored quantityStep in both engines: 1.5 in lots of 1 ran, half a lot traded; now a
 *   400 naming quantity (backtesting-engine/plan.ts; tests/unit/backtest-quantity-lots.test.ts).
 * Not reached from here: the order body has no stop price (stops exist only inside the backtester, placed by its
 * strategies, not by a client); live mode (Binance's own symbol filters decide there, no tick is checked).
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { type StatusCase } from "./oracle";
import { useRedTeamPlatform } from "./red-team-platform";
import { waitUntil } from "../trading/e2e-helpers";

const MORE = ["order-management", "trading-engine", "risk-analyzer", "portfolio-manager", "data-bridge", "backtesting-engine"];
const rig = useRedTeamPlatform("session-65b", {}, MORE);
const { failures } = rig;
const gw = rig.gw;
const check = (cases: StatusCase[]) => rig.check(cases);

const run = randomBytes(3).toString("hex").toUpperCase();
/** A symbol at 100 (the tick of 0.01 fine for it) and one at one and a half ticks (the tick coarse for it). */
const SYM = `H65B${run}USDT`;
const LOW = `H65C${run}USDT`;
const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
let barNo = 0;

async function peek(path: string): Promise<any> {
  const r = await fetch(`${rig.gateways.plain}${path}`, { headers: { authorization: `Bearer ${rig.who.alice.token}` }, signal: AbortSignal.timeout(30_000) });
  return r.status === 200 ? r.json() : undefined;
}
/** The trading suites' poll (until a value), with this file's default time. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, ms = 90_000): Promise<T> => waitUntil(what, fn, ms);
/** A quiet bar (open = high = low = close unless given), posted to data-bridge's ingest and waited for at the engine. */
async function bar(symbol: string, p: { close: string; low?: string }) {
  const openTime = T0 + 60_000 * ++barNo;
  const b = { symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: p.close, high: p.close, low: p.low ?? p.close, close: p.close, volume: "1000" };
  const r = await rig.p.services.get("data-bridge")!.app.inject({ method: "POST", url: "/internal/bars", payload: { bars: [b] } });
  expect(r.statusCode, r.body).toBe(200);
  await waitFor(`the engine's bar ${openTime} of ${symbol}`, async () => ((await peek(`/api/trading/last/${symbol}`))?.bar?.openTime === openTime ? true : undefined));
}
const limit = (side: "buy" | "sell", limitPrice: string, symbol = SYM) => ({ symbol, side, type: "limit", quantity: "0.1", limitPrice });
const order = (body: Record<string, unknown>) => gw("alice", "POST", "/api/orders", { body, headers: { "idempotency-key": `k-${randomBytes(8).toString("hex")}` } });

beforeAll(async () => {
  await bar(SYM, { close: "100" });
  await bar(LOW, { close: "0.015" });
}, 180_000);

describe("a limit price between the paper exchange's ticks: a 400 naming limitPrice and the tick, nothing stored", () => {
  it("/api/orders and /api/risk/check alike; on the tick, and a cheap symbol's price the tick is coarse for, taken", async () => {
    const before = (await peek("/api/orders?limit=500")).orders.length;
    const cases: StatusCase[] = [];
    for (const path of ["/api/orders", "/api/risk/check"])
      for (const body of [limit("buy", "99.995"), limit("sell", "99.995"), limit("buy", "100.001"), limit("sell", "99.12345678"), limit("buy", "12345.678")])
        cases.push(["alice", "POST", path, body, 400, "limitPrice"]);
    await check(cases);
    const refused = await order(limit("buy", "99.995"));
    expect(refused.json?.error?.message, refused.text).toContain("tick 0.01");
    expect((await peek("/api/orders?limit=500")).orders.length).toBe(before);

    // The risk check answers for these as order-management takes them (200 with its verdict, not a 400).
    for (const body of [limit("buy", "99.99"), limit("buy", "0.015", LOW), limit("buy", "0.01234567", LOW)]) {
      const c = await gw("alice", "POST", "/api/risk/check", { body });
      expect(c.status, c.text).toBe(200);
    }
    const onTick = await order(limit("buy", "99.99"));
    expect([onTick.status, onTick.json?.status, onTick.json?.limitPrice], onTick.text).toEqual([201, "accepted", "99.99"]);
    const cheap = await order(limit("buy", "0.01234567", LOW));
    expect([cheap.status, cheap.json?.limitPrice], cheap.text).toEqual([201, "0.01234567"]);
    expect(failures).toEqual([]);
  });

  it("an order on the tick rests and fills at its limit, the books at the tick", async () => {
    const r = await order(limit("buy", "99.5"));
    expect([r.status, r.json?.status], r.text).toEqual([201, "accepted"]);
    await bar(SYM, { close: "100", low: "99" });
    const o = await waitFor(`order ${r.json.orderId} filled`, async () => {
      const got = await peek(`/api/orders/${r.json.orderId}`);
      return got?.status === "filled" ? got : undefined;
    });
    expect(o.avgFillPrice).toBe("99.5");
    expect(failures).toEqual([]);
  });
});

describe("a backtest's fixed quantity off its lot: a 400 naming quantity", () => {
  const BACKTEST = { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-03-01T00:00:00Z" }, data: { source: "synthetic", seed: 7 } };
  it("1.5 in lots of 1 and 0.15 in lots of 0.1 refused; whole lots, and a quantity without a lot, run", async () => {
    await check([
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 1.5, quantityStep: 1 }, 400, "quantity"],
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 0.15, quantityStep: 0.1 }, 400, "quantity"],
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 1001, quantityStep: 2 }, 400, "quantity"],
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 1, quantityStep: 2 }, 400, "quantityStep"],
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 0.3, quantityStep: 0.1 }, 202, undefined],
      ["alice", "POST", "/api/backtests/", { ...BACKTEST, quantity: 1.5 }, 202, undefined],
    ]);
    const r = await gw("alice", "POST", "/api/backtests/", { body: { ...BACKTEST, quantity: 1.5, quantityStep: 1 } });
    expect(r.json?.error?.message, r.text).toContain("1 or 2");
    expect(failures).toEqual([]);
  });
});
