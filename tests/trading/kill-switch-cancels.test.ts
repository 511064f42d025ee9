/**
 * Which open orders the kill switch cancels (no I/O): risk.ts reduceOnlyExcess (the pre-trade
 * check's reduce_only arithmetic over every open order together) and order-management's
 * killSwitchCancels (the effective state of each user: the stricter of global and own scope).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { OrderRow, RestrictedScope } from "../../services/src/services/order-management/data";
import { pairKey } from "../../services/src/services/order-management/domain";
import { killSwitchCancels } from "../../services/src/services/order-management/kill-switch";
import type { OrderStatus } from "../../services/src/trading/orderState";
import { checkOrder, reduceOnlyExcess, type OpenOrderExposure } from "../../services/src/trading/risk";

const o = (id: string, side: "buy" | "sell", remaining: string, cancelling = false): OpenOrderExposure => ({ id, side, remaining, cancelling });

describe("reduceOnlyExcess", () => {
  it("keeps, oldest first, what together at most closes the position; lists the rest", () => {
    expect(reduceOnlyExcess("2", [o("a", "sell", "1"), o("b", "sell", "2"), o("c", "buy", "1")])).toEqual(["b", "c"]);
    expect(reduceOnlyExcess("2", [o("a", "sell", "2"), o("b", "sell", "0.5")])).toEqual(["b"]);
    expect(reduceOnlyExcess("2", [o("a", "sell", "3"), o("b", "sell", "1")])).toEqual(["a"]); // a flips; b alone reduces
    expect(reduceOnlyExcess("-3", [o("a", "buy", "1"), o("b", "buy", "1"), o("c", "buy", "2"), o("d", "sell", "1")])).toEqual(["c", "d"]);
    expect(reduceOnlyExcess("0", [o("a", "buy", "1"), o("b", "sell", "1")])).toEqual(["a", "b"]); // flat: anything opens a position
  });

  it("weighs orders already being cancelled in their place (a fill may still win) and never lists them", () => {
    // b's cancel pending: kept in its place it counts, so the newer c no longer fits.
    expect(reduceOnlyExcess("2", [o("a", "sell", "1"), o("b", "sell", "0.5", true), o("c", "sell", "1")])).toEqual(["c"]);
    // b would cross zero after a: its pending cancel does not doom the older a that fits.
    expect(reduceOnlyExcess("2", [o("a", "sell", "1"), o("b", "sell", "1.5", true)])).toEqual([]);
    expect(reduceOnlyExcess("2", [o("a", "buy", "1", true)])).toEqual([]);
  });

  it("is stable: with the cancels it listed pending, it lists nothing more (the sweeper's next pass)", () => {
    // Every mix of up to four orders of sizes 0.5..3 on either side, against short, flat and long positions.
    const sizes = ["0.5", "1", "2", "3"];
    const orders: OpenOrderExposure[][] = [[]];
    for (let n = 0; n < 4; n++)
      for (const prefix of orders.filter((os) => os.length === n))
        for (const side of ["buy", "sell"] as const) for (const q of sizes) orders.push([...prefix, o(String.fromCharCode(97 + n), side, q)]);
    let checked = 0;
    for (const position of ["-2.5", "-1", "0", "1", "2.5"])
      for (const os of orders) {
        const listed = new Set(reduceOnlyExcess(position, os));
        const next = os.map((x) => (listed.has(x.id) ? { ...x, cancelling: true } : x));
        expect(reduceOnlyExcess(position, next), `${position} ${JSON.stringify(os)}`).toEqual([]);
        checked++;
      }
    expect(checked).toBeGreaterThan(20_000);
  });

  it("agrees with the pre-trade check for a single order", () => {
    for (const position of ["-2", "-0.5", "0", "0.5", "2"])
      for (const side of ["buy", "sell"] as const)
        for (const quantity of ["0.5", "1", "2", "3"]) {
          const refused = !checkOrder({ side, type: "market", quantity }, { position, tradingState: "reduce_only", lastPrice: "100", dailyPnl: "0", recentOrderTimes: [], now: 0 }).ok;
          expect(reduceOnlyExcess(position, [o("x", side, quantity)]).length > 0, `${position} ${side} ${quantity}`).toBe(refused);
        }
  });
});

describe("killSwitchCancels", () => {
  const row = (userId: string, side: "buy" | "sell", quantity: string, status: OrderStatus = "accepted", filled = "0"): OrderRow => ({
    order_id: randomUUID(), user_id: userId, client_order_id: "c", idempotency_key: null, request_hash: "h", symbol: "BTCUSDT", side, type: "limit",
    time_in_force: "GTC", quantity, limit_price: "100", status, filled_quantity: filled, avg_fill_price: null, fees: "0", reject_reason: null,
    reject_message: null, last_price: null, created_at: new Date(0), updated_at: new Date(0),
  });
  const [u1, u2, u3] = [randomUUID(), randomUUID(), randomUUID()];
  const ids = (cs: ReturnType<typeof killSwitchCancels>) => cs.map((c) => c.order.order_id);

  it("halted: every cancellable open order of the user; others and orders already pending_cancel are left alone", () => {
    const mine = [row(u1, "buy", "1"), row(u1, "sell", "2", "partially_filled", "1"), row(u1, "buy", "1", "pending_cancel")];
    const theirs = row(u2, "buy", "1");
    const scopes: RestrictedScope[] = [{ scope: `user:${u1}`, state: "halted", reason: "fraud" }];
    const cs = killSwitchCancels(scopes, [...mine, theirs], new Map());
    expect(ids(cs)).toEqual([mine[0].order_id, mine[1].order_id]);
    expect(cs[0]).toMatchObject({ state: "halted", message: `user:${u1} halted: fraud` });
  });

  it("the stricter of the global and the user's scope applies; the remaining quantity is weighed", () => {
    const a = [row(u1, "sell", "2", "partially_filled", "1.5"), row(u1, "sell", "1")]; // long 1: the 0.5 left reduces, another 1 would flip
    const b = [row(u2, "sell", "1")];
    const c = [row(u3, "buy", "1")];
    const positions = new Map([[pairKey(u1, "BTCUSDT"), "1"], [pairKey(u2, "BTCUSDT"), "5"]]);
    const scopes: RestrictedScope[] = [
      { scope: "global", state: "reduce_only", reason: "incident" },
      { scope: `user:${u3}`, state: "halted", reason: null },
    ];
    const cs = killSwitchCancels(scopes, [...a, ...b, ...c], positions);
    expect(ids(cs)).toEqual([a[1].order_id, c[0].order_id]);
    expect(cs.map((x) => x.message)).toEqual(["global reduce_only: incident", `user:${u3} halted`]);
    // A global halt outranks a user's reduce_only.
    const halted = killSwitchCancels([{ scope: "global", state: "halted", reason: "stop" }, { scope: `user:${u2}`, state: "reduce_only", reason: "x" }], b, positions);
    expect(halted.map((x) => x.message)).toEqual(["global halted: stop"]);
  });
});
