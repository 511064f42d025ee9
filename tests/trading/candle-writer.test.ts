/**
 * data-bridge's ClickHouse writer (services/src/services/data-bridge/candle-writer.ts) SIGKILLed
 * mid-batch, against real Kafka, Redis and ClickHouse: no bar lost, none duplicated for readers.
 * data-bridge runs as its own process and reaches ClickHouse through a TCP proxy the test controls,
 * so each kill lands at a chosen point of an INSERT, without timing:
 *   A. the INSERT reached ClickHouse and was executed, but its answer is held: killed before the
 *      writer could commit its Kafka offsets (the batch is replayed: duplicate rows);
 *   B. the INSERT request is held before ClickHouse sees it: killed mid-request (nothing written);
 *   C. restarted with the proxy open: every bar is in ClickHouse once for readers (FINAL), the
 *      replayed rows collapse in the ReplacingMergeTree (OPTIMIZE ... FINAL), values intact.
 *   D. the topic's formats (trading/marketdata/candleMessages.ts): a batch with poison bars has its
 *      good bars stored and the message set aside as received in consumer_dead_letters; a one-bar message (the
 *      old format) is still stored; bars posted as positional series are stored like bar objects.
 * ClickHouse 18.16 here; the dedup relies on ReplacingMergeTree only, which 24.8 keeps.
 */
import { randomBytes } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { ensureKafkaTopics } from "../../services/src/migrations";
import { TOPICS } from "../../services/src/trading/events";
import { encodeCandleMessages } from "../../services/src/trading/marketdata/candleMessages";
import { SyntheticSource } from "../../services/src/trading/marketdata/synthetic";
import type { Bar } from "../../services/src/trading/types";
import { freePort, kafkajs } from "../harness";
import { useServersWith } from "../harness/shared";
import { parseSamples } from "../helpers/promql";
import { ChildService, http, waitUntil } from "./e2e-helpers";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServersWith({ privateKafka: true }, "redis", "kafka", "clickhouse");
const run = randomBytes(3).toString("hex").toUpperCase();
const A = `WA${run}USDT`;
const B = `WB${run}USDT`;
const N_A = 2000;
const N_B = 1000;

/** A TCP proxy to ClickHouse's HTTP port that can hold requests or answers. */
class HoldingProxy {
  mode: "pass" | "hold-requests" | "hold-responses" = "pass";
  /** INSERT requests that arrived while requests were held. */
  heldInserts = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  constructor(private readonly upstreamPort: number) {}
  async listen(): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(this.upstreamPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on("data", (d) => {
        if (this.mode !== "hold-requests") upstream.write(d);
        else if (/query=INSERT(%20|\+)INTO(%20|\+)market_candles/.test(d.toString("latin1"))) this.heldInserts++;
      });
      upstream.on("data", (d) => {
        if (this.mode !== "hold-responses") client.write(d);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return (this.server.address() as { port: number }).port;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}

let proxy: HoldingProxy;
let bridge: ChildService;
let ch: ClickHouseKitClient;
let bars: { a: Bar[]; b: Bar[] };

const rowsOf = async (sql: string) => Number((await ch.query<{ n: string }>(sql.replace("$mine", `symbol IN ('${A}', '${B}')`)))[0].n);

beforeAll(async () => {
  const chPort = Number(new URL(srv.env.CLICKHOUSE_URL).port);
  proxy = new HoldingProxy(chPort);
  const proxyPort = await proxy.listen();
  ch = await migratedClickHouse(srv.env);
  const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  const origin = Date.UTC(2021, 0, 1);
  bars = {
    a: await new SyntheticSource({ seed: "writer-a", origin }).history(A, "1m", { limit: N_A }),
    b: await new SyntheticSource({ seed: "writer-b", origin }).history(B, "1m", { limit: N_B }),
  };
  bridge = new ChildService("data-bridge", await freePort(), {
    ...srv.env,
    CLICKHOUSE_URL: `http://127.0.0.1:${proxyPort}`,
    LOG_LEVEL: "error",
    MARKET_SUBSCRIBE: "false",
    CANDLES_WRITER_GROUP: `writer-${run}`,
    CH_FLUSH_MS: "100",
    CH_BATCH_BYTES: "1",
    CH_MAX_BATCH_BYTES: "65536",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    // F posts 10,000 bars at the longest decimals (3.5 MB as objects): more than Kafka takes in one send.
    BODY_LIMIT_BYTES: String(8 * 1_048_576),
  });
}, 600_000);

afterAll(async () => {
  await bridge?.stop();
  await proxy?.close();
  await ch?.close();
});

describe("data-bridge's ClickHouse writer under SIGKILL", { timeout: 900_000 }, () => {
  it("A: killed after ClickHouse executed an INSERT whose answer it never got", async () => {
    proxy.mode = "hold-responses";
    await bridge.start();
    // Two posts: two record batches on the partition (a fetch returns whole record batches).
    for (const half of [bars.a.slice(0, N_A / 2), bars.a.slice(N_A / 2)]) expect((await http("POST", `${bridge.url}/internal/bars`, { body: { bars: half } })).status).toBe(200);
    // The first batch is in ClickHouse; the writer waits for the answer, its offsets uncommitted.
    const written = await waitUntil("the first INSERT executed", async () => (await rowsOf("SELECT count() AS n FROM market_candles WHERE $mine")) || undefined, 300_000);
    await bridge.kill();
    expect(written).toBeLessThan(N_A); // one batch of a larger stream: killed mid-stream
  });

  it("B: killed while an INSERT request is on its way (nothing of it reaches ClickHouse)", async () => {
    const before = await rowsOf("SELECT count() AS n FROM market_candles WHERE $mine");
    proxy.mode = "hold-requests";
    proxy.heldInserts = 0;
    await bridge.start();
    expect((await http("POST", `${bridge.url}/internal/bars`, { body: { bars: bars.b } })).status).toBe(200);
    await waitUntil("an INSERT request held", async () => proxy.heldInserts > 0, 300_000);
    await bridge.kill();
    expect(await rowsOf("SELECT count() AS n FROM market_candles WHERE $mine")).toBe(before);
  });

  it("C: restarted, every bar is stored once for readers, replayed rows collapse, values intact", async () => {
    proxy.mode = "pass";
    await bridge.start();
    const total = N_A + N_B;
    await waitUntil("every bar in ClickHouse", async () => (await rowsOf("SELECT uniqExact(symbol, open_time) AS n FROM market_candles WHERE $mine")) === total, 300_000, 500);
    // Nothing was ever committed (A and B died mid-INSERT): the restarted writer replayed it all,
    // so the rows of A's executed batch were written twice.
    const status = await waitUntil("writer caught up", async () => {
      const s = (await http("GET", `${bridge.url}/status`)).body;
      return s.stored >= total ? s : undefined;
    });
    expect(status.stored).toBe(total);
    expect(await rowsOf("SELECT count() AS n FROM market_candles FINAL WHERE $mine")).toBe(total);
    await ch.command("OPTIMIZE TABLE market_candles FINAL");
    expect(await rowsOf("SELECT count() AS n FROM market_candles WHERE $mine")).toBe(total);
    const stored = await ch.query<{ symbol: string; t: number; open: number; high: number; low: number; close: number; volume: number }>(
      `SELECT symbol, toUInt32(open_time) AS t, open, high, low, close, volume FROM market_candles WHERE symbol IN ('${A}', '${B}') ORDER BY symbol, t`,
    );
    // ClickHouse 18.16 reads decimal text into Float64 without correct rounding ("15.5499" becomes
    // 15.549900000000001): values compared to 12 significant digits.
    const round = (x: number) => Number(x.toPrecision(12));
    const row = (symbol: string, t: number, p: Array<number | string>) => ({ symbol, t, open: round(Number(p[0])), high: round(Number(p[1])), low: round(Number(p[2])), close: round(Number(p[3])), volume: round(Number(p[4])) });
    const expected = [...bars.a, ...bars.b]
      .map((b) => row(b.symbol, b.openTime / 1000, [b.open, b.high, b.low, b.close, b.volume]))
      .sort((x, y) => (x.symbol === y.symbol ? x.t - y.t : x.symbol < y.symbol ? -1 : 1));
    expect(stored.map((r) => row(r.symbol, Number(r.t), [r.open, r.high, r.low, r.close, r.volume]))).toEqual(expected);
  });

  it("D: a batch's poison bars are set aside, its good bars stored; a one-bar message (old format) is stored", async () => {
    const D = `WD${run}USDT`;
    const OLD = `WO${run}USDT`;
    const good = await new SyntheticSource({ seed: "writer-d", origin: Date.UTC(2022, 0, 1) }).history(D, "1m", { limit: 5 });
    const [old] = await new SyntheticSource({ seed: "writer-o", origin: Date.UTC(2022, 0, 1) }).history(OLD, "1m", { limit: 1 });
    const [batch] = encodeCandleMessages(good);
    const v = JSON.parse(batch.value);
    v.bars.splice(2, 0, [v.bars[1][0] + 30_000, v.bars[1][1], "100", "99", "98", "100", "1"]); // high below open
    // A bar whose openTime its double does not carry (it parses to a valid time): set aside alone too (it was the whole batch).
    v.bars.splice(4, 0, [v.bars[3][0] + 30_000, v.bars[3][1], "100", "100", "100", "100", "1"]);
    const text = JSON.stringify(v).replace(`[${v.bars[4][0]},`, `[${v.bars[4][0]}.0000000000000000001,`);
    const producer = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({ topic: TOPICS.candles, messages: [{ key: D, value: text }, { key: OLD, value: JSON.stringify(old) }] });
    } finally {
      await producer.disconnect();
    }
    const count = async (symbol: string) => Number((await ch.query<{ n: string }>(`SELECT uniqExact(open_time) AS n FROM market_candles WHERE symbol = '${symbol}'`))[0].n);
    await waitUntil("the good bars and the old-format bar in ClickHouse", async () => (await count(D)) === good.length && (await count(OLD)) === 1, 300_000, 500);
    const [stored] = await ch.query<{ close: number }>(`SELECT close FROM market_candles WHERE symbol = '${OLD}'`);
    expect(stored.close).toBeCloseTo(Number(old.close), 9);
    const letters = await waitUntil("the poison bar set aside", async () => {
      const r = await ch.query<{ value: string; reason: string }>(
        "SELECT msg_value_base64 AS value, reason FROM consumer_dead_letters WHERE consumer_group = {g:String} AND topic = {t:String}",
        { g: `writer-${run}`, t: TOPICS.candles },
      );
      return r.length ? r : undefined;
    }, 300_000, 500);
    expect(letters).toHaveLength(1);
    expect(letters[0].reason).toMatch(/2 of 7 bars refused .*bars\.2\.high: must be >= open and close; bars\.4\.openTime: a number a double does not carry exactly/);
    // The message as received, byte for byte (the inexact literal included: a hand replay is refused again).
    expect(Buffer.from(letters[0].value, "base64").toString()).toBe(text);
    // Written to ClickHouse, counted once in data-bridge's consumer_dead_letters_total (the MessagesSetAside alert).
    const counted = parseSamples(await (await fetch(`${bridge.url}/metrics`)).text(), "consumer_dead_letters_total").filter((c) => c.labels.consumer_group === `writer-${run}`);
    expect(counted.map((c) => [c.labels.topic, c.value])).toEqual([[TOPICS.candles, 1]]);
  });

  it("E: bars posted as positional series are stored like bar objects; a bad one is a 400 naming it and nothing is written", async () => {
    const S = `WS${run}USDT`;
    const bars = await new SyntheticSource({ seed: "writer-s", origin: Date.UTC(2023, 0, 1) }).history(S, "1m", { limit: 2500 });
    const tuples = bars.map((b) => [b.openTime, b.closeTime, b.open, b.high, b.low, b.close, b.volume]);
    const bad = await http("POST", `${bridge.url}/internal/bars`, { body: { series: [{ symbol: S, interval: "1m", bars: [...tuples.slice(0, 10), [...tuples[10].slice(0, 5), "1e3", "1"]] }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("series.0.bars.10.close");
    for (const body of [{}, { bars: [bars[0]], series: [{ symbol: S, interval: "1m", bars: tuples.slice(0, 1) }] }]) expect((await http("POST", `${bridge.url}/internal/bars`, { body })).status).toBe(400);
    const r = await http("POST", `${bridge.url}/internal/bars`, { body: { series: [{ symbol: S, interval: "1m", bars: tuples }], flush: true } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ingested: bars.length, stored: true });
    const stored = await ch.query<{ t: number; close: number }>(`SELECT toUInt32(open_time) AS t, close FROM market_candles FINAL WHERE symbol = '${S}' ORDER BY t`);
    expect(stored.map((x) => [x.t, Number(x.close.toPrecision(12))])).toEqual(bars.map((b) => [b.openTime / 1000, Number(Number(b.close).toPrecision(12))]));
    expect((await http("GET", `${bridge.url}/last/${S}`)).body.bar).toEqual(bars[bars.length - 1]);
  });

  it("F: the largest post (10,000 bars of one symbol at the longest decimals) is accepted: sends stay under Kafka's 1 MiB", async () => {
    const L = `WL${run}USDT`;
    const t0 = Date.UTC(2024, 0, 1);
    const wide = "123456789012345.123456789012"; // 15 + 12 digits: the longest decimal a bar may carry
    const bars = Array.from({ length: 10_000 }, (_, i) => [t0 + i * 60_000, t0 + i * 60_000 + 59_999, wide, wide, wide, wide, wide]);
    for (const body of [{ series: [{ symbol: L, interval: "1m", bars }] }, { bars: bars.map((t) => ({ symbol: L, interval: "1m", openTime: t[0], closeTime: t[1], open: wide, high: wide, low: wide, close: wide, volume: wide })) }]) {
      const r = await http("POST", `${bridge.url}/internal/bars`, { body: { ...body, flush: true } });
      expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
      expect(r.body).toEqual({ ingested: 10_000, stored: true });
    }
    expect(await rowsOf(`SELECT count() AS n FROM market_candles FINAL WHERE symbol = '${L}'`)).toBe(10_000);
  });
});

