/**
 * One bar per (symbol, interval, open time) in a post to data-bridge (session 65,
 * tests/hostile/session-65.test.ts): two prices for one bar were each kept by a different reader (the
 * trading-engine the first, the last price and ClickHouse the last). A repeat is a 400 naming the
 * repeated bar's open time, in the object form and the positional one, across two series of one symbol
 * and interval too; one open time in two intervals or two symbols is two bars. And a posted bar that has not
 * opened yet (a bar of 2099 froze its symbol's market until 2099).
 */
import { describe, expect, it } from "vitest";
import { HttpError } from "../../services/src/kit";
import { BarTimes, checkSeries } from "../../services/src/services/data-bridge/domain";

const tuple = (openTime: number, close: string) => [openTime, openTime + 59_999, close, close, close, close, "1"];
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof HttpError ? [e.statusCode, e.field] : e;
  }
  return undefined;
};

describe("one bar per open time in a post", () => {
  it("positional series: a repeat within one series and across two of one symbol and interval", () => {
    expect(refusal(() => checkSeries([{ symbol: "BTCUSDT", interval: "1m", bars: [tuple(0, "1"), tuple(60_000, "2"), tuple(0, "3")] }], 1000))).toEqual([400, "series.0.bars.2.openTime"]);
    expect(refusal(() => checkSeries([{ symbol: "BTCUSDT", interval: "1m", bars: [tuple(0, "1")] }, { symbol: "BTCUSDT", interval: "1m", bars: [tuple(0, "1")] }], 1000))).toEqual([400, "series.1.bars.0.openTime"]);
  });
  it("two intervals or two symbols at one open time are two bars", () => {
    const batches = checkSeries([{ symbol: "BTCUSDT", interval: "1m", bars: [tuple(0, "1")] }, { symbol: "BTCUSDT", interval: "5m", bars: [tuple(0, "1")] }, { symbol: "ETHUSDT", interval: "1m", bars: [tuple(0, "1")] }], 1000);
    expect(batches.reduce((n, b) => n + b.bars.length, 0)).toBe(3);
    const seen = new BarTimes();
    seen.add("BTCUSDT", "1m", 0, "bars.0.openTime");
    seen.add("BTCUSDT", "1h", 0, "bars.1.openTime");
    expect(refusal(() => seen.add("BTCUSDT", "1m", 0, "bars.2.openTime"))).toEqual([400, "bars.2.openTime"]);
  });
  it("a post's bar opening after its bound (now + MAX_BAR_AHEAD_MS) is refused; at the bound it is taken", () => {
    const by = Date.UTC(2026, 11, 7, 23, 0);
    expect(refusal(() => checkSeries([{ symbol: "BTCUSDT", interval: "1m", bars: [tuple(by - 60_000, "1"), tuple(by + 60_000, "1")] }], 1000, "series", by))).toEqual([400, "series.0.bars.1.openTime"]);
    expect(checkSeries([{ symbol: "BTCUSDT", interval: "1m", bars: [tuple(by, "1")] }], 1000, "series", by)[0].bars.length).toBe(1);
    expect(refusal(() => new BarTimes(by).add("BTCUSDT", "1m", Date.UTC(2099, 0, 1), "bars.0.openTime"))).toEqual([400, "bars.0.openTime"]);
    // A configured feed is not held to the clock.
    expect(refusal(() => new BarTimes().add("BTCUSDT", "1m", Date.UTC(2099, 0, 1), "feed.BTCUSDT.openTime"))).toBeUndefined();
  });
});
