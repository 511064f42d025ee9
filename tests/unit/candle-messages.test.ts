/**
 * The `market.candles` formats (services/src/trading/marketdata/candleMessages.ts) as every consumer
 * sees them through the topic schema (trading/infra/topicSchemas.ts checkMessage): data-bridge's
 * batches round-trip, a one-bar message (the old format) still reads as a batch of one, a bad bar of a
 * batch is split off with a reason naming it while the good bars go on, and a message that is not a
 * batch is refused whole.
 */
import { describe, expect, it } from "vitest";
import { candleTsv } from "../../services/src/services/data-bridge/domain";
import { commandOf } from "../../services/src/services/trading-engine/messages";
import { TOPICS } from "../../services/src/trading/events";
import { checkMessage, messageProblem } from "../../services/src/trading/infra/topicSchemas";
import { barsOf, encodeCandleMessages, MAX_BARS_PER_MESSAGE, type CandleBatch } from "../../services/src/trading/marketdata/candleMessages";
import { SyntheticSeries } from "../../services/src/trading/marketdata/synthetic";
import type { Bar } from "../../services/src/trading/types";

const T = TOPICS.candles;
const seriesOf = (symbol: string, interval: string, n: number, seed = symbol) => {
  const s = new SyntheticSeries(symbol, interval, { seed });
  return Array.from({ length: n }, () => s.next());
};
const read = (value: string) => {
  const c = checkMessage(T, value);
  if (c.problem !== undefined) throw new Error(c.problem);
  return { batch: c.json as CandleBatch, aside: c.aside };
};

describe("market.candles batched format", () => {
  it("data-bridge's messages: per symbol in order, at most N bars of one interval each, read back exactly", () => {
    const a = seriesOf("AAAUSDT", "1m", 25);
    const b = seriesOf("BBBUSDT", "1m", 7);
    const a5 = seriesOf("AAAUSDT", "5m", 3, "a5");
    // Interleaved symbols, and an interval change inside A's run.
    const bars: Bar[] = [];
    for (let i = 0; i < 25; i++) {
      bars.push(a[i]);
      if (i < 7) bars.push(b[i]);
      if (i === 12) bars.push(...a5);
    }
    const messages = encodeCandleMessages(bars, 10);
    for (const m of messages) expect(messageProblem(T, m.value), m.value.slice(0, 80)).toBeUndefined();
    const batches = messages.map((m) => ({ key: m.key, ...read(m.value) }));
    for (const m of batches) {
      expect(m.key).toBe(m.batch.symbol);
      expect(m.aside).toBeUndefined();
      expect(m.batch.bars.length).toBeLessThanOrEqual(10);
    }
    // Each symbol's bars come back in the order they were given, whatever the messages' boundaries.
    for (const symbol of ["AAAUSDT", "BBBUSDT"]) {
      const got = batches.filter((m) => m.key === symbol).flatMap((m) => barsOf(m.batch));
      expect(got).toEqual(bars.filter((x) => x.symbol === symbol));
    }
    expect(batches.filter((m) => m.key === "AAAUSDT").map((m) => `${m.batch.interval}:${m.batch.bars.length}`)).toEqual(["1m:10", "1m:3", "5m:3", "1m:10", "1m:2"]);
    // Compact: well under half the bytes of one JSON object per bar.
    expect(messages.reduce((n, m) => n + m.value.length, 0)).toBeLessThan(bars.reduce((n, x) => n + JSON.stringify(x).length, 0) / 2);
  });

  it("a one-bar message (the old format) is still read, as a batch of one, by both consumers", () => {
    const [bar] = seriesOf("OLDUSDT", "1m", 1);
    const { batch, aside } = read(JSON.stringify(bar));
    expect(aside).toBeUndefined();
    expect(barsOf(batch)).toEqual([bar]);
    expect(candleTsv([batch], "replay").toString()).toBe(`OLDUSDT\t1m\t${bar.openTime / 1000}\t${bar.open}\t${bar.high}\t${bar.low}\t${bar.close}\t${bar.volume}\t0\treplay\n`);
    expect(commandOf(T, batch)).toEqual({ kind: "bars", bars: [bar] });
  });

  it("a batch with poison bars: the good bars go on, the bad ones are split off with reasons naming them", () => {
    const bars = seriesOf("MIXUSDT", "1m", 6);
    const [m] = encodeCandleMessages(bars);
    const v = JSON.parse(m.value);
    v.bars[1][5] = "0x64"; // close
    v.bars[3] = [v.bars[3][0], v.bars[3][1], "100", "99", "98", "100", "1"]; // high < open
    v.bars[4] = "not a bar";
    const { batch, aside } = read(JSON.stringify(v));
    expect(barsOf(batch)).toEqual([bars[0], bars[2], bars[5]]);
    expect(aside).toBeDefined();
    expect(aside!.problem).toMatch(/^market\.candles message: 3 of 6 bars refused/);
    expect(aside!.problem).toContain("bars.1.close: must be a decimal string");
    expect(aside!.problem).toContain("bars.3.high: must be >= open and close");
    expect(aside!.problem).toContain("bars.4.bar: must be [openTime, closeTime, open, high, low, close, volume]");
    expect(commandOf(T, batch)).toEqual({ kind: "bars", bars: [bars[0], bars[2], bars[5]] });
    expect(messageProblem(T, JSON.stringify(v))).toBe(aside!.problem);
  });

  it("a bar holding a number its double does not carry is set aside like other bad bars, the others applied; elsewhere the message is refused whole", () => {
    const bars = seriesOf("INXUSDT", "1m", 4);
    const [m] = encodeCandleMessages(bars);
    const v = JSON.parse(m.value);
    v.bars[0][5] = "0x64"; // close: a bad bar by the bar rules
    // openTime with 20 significant digits: parses to the bar's own openTime, valid to the bar rules (before: the whole batch set aside).
    const text = JSON.stringify(v).replace(`[${v.bars[2][0]},`, `[${v.bars[2][0]}.0000000000000000001,`).replace(`,${v.bars[3][1]},`, `,${v.bars[3][1]}.00000000000000000002,`);
    const { batch, aside } = read(text);
    expect(barsOf(batch)).toEqual([bars[1]]);
    expect(aside!.problem).toMatch(/^market\.candles message: 3 of 4 bars refused \(the message is set aside as received\): /);
    expect(aside!.problem).toMatch(/bars\.0\.close: must be a decimal string.*; bars\.2\.openTime: a number a double does not carry exactly/);
    expect(aside!.problem).toContain("bars.3.closeTime: a number a double does not carry exactly");
    // Only the reason: the consumer sets the message aside as received (the bad bars re-serialised would hold the literals' doubles).
    expect(Object.keys(aside!)).toEqual(["problem"]);
    expect(commandOf(T, batch)).toEqual({ kind: "bars", bars: [bars[1]] });
    // Every bar inexact: the message is refused whole, naming them.
    const allInexact = JSON.stringify({ ...v, bars: [v.bars[1]] }).replace(`[${v.bars[1][0]},`, `[${v.bars[1][0]}.0000000000000000001,`);
    expect(checkMessage(T, allInexact).problem).toMatch(/^market\.candles message: bars\.0\.openTime: a number a double does not carry exactly/);
    // In the envelope or in a one-bar (old format) message: refused whole.
    expect(checkMessage(T, m.value.replace('"v":2', '"v":2.00000000000000000001')).problem).toMatch(/^market\.candles message: v: a number a double does not carry exactly/);
    const old = JSON.stringify(bars[0]).replace(`"openTime":${bars[0].openTime}`, `"openTime":${bars[0].openTime}.0000000000000000001`);
    expect(checkMessage(T, old).problem).toMatch(/^market\.candles message: openTime: a number a double does not carry exactly/);
  });

  it("a message that is not a valid batch is refused whole", () => {
    const [m] = encodeCandleMessages(seriesOf("BADUSDT", "1m", 3));
    const v = JSON.parse(m.value);
    const cases: Array<[string, unknown, RegExp]> = [
      ["unknown version", { ...v, v: 3 }, /v: must be 2/],
      ["version as text", { ...v, v: "2" }, /v: must be 2/],
      ["no symbol", { ...v, symbol: undefined }, /symbol: must be an upper-case symbol/],
      ["lowercase symbol", { ...v, symbol: "badusdt" }, /symbol: /],
      ["bad interval", { ...v, interval: "1x" }, /interval: /],
      ["bars not an array", { ...v, bars: { 0: v.bars[0] } }, /bars: must be an array/],
      ["no bars", { ...v, bars: [] }, /bars: must be an array of 1 to/],
      ["too many bars", { ...v, bars: Array.from({ length: MAX_BARS_PER_MESSAGE + 1 }, () => v.bars[0]) }, /bars: must be an array of 1 to/],
      ["every bar bad", { ...v, bars: v.bars.map((t: unknown[]) => [t[0], t[1], " 1", ...t.slice(3)]) }, /bars\.0\.open: .*bars\.2\.open: /],
      ["short tuple", { ...v, bars: [[1, 2, "1", "1", "1", "1"]] }, /bars\.0\.bar: must be/],
    ];
    for (const [name, value, reason] of cases) {
      const c = checkMessage(T, JSON.stringify(value));
      expect(c.problem, name).toMatch(reason);
      expect(c.problem, name).toMatch(/^market\.candles message: /);
    }
  });

  it("longer tuples (a later field) are read by their first seven elements", () => {
    const bars = seriesOf("NEWUSDT", "1m", 2);
    const [m] = encodeCandleMessages(bars);
    const v = JSON.parse(m.value);
    v.bars = v.bars.map((t: unknown[]) => [...t, 42]);
    expect(barsOf(read(JSON.stringify(v)).batch).map((b) => ({ ...b }))).toEqual(bars.map((b) => ({ ...b })));
  });
});
