/**
 * data-bridge's writes, per accepted batch of bars: `market.candles` keyed by symbol, up to
 * CANDLES_PER_MESSAGE bars of a symbol per message (the batched format of
 * trading/marketdata/candleMessages.ts), with the kit's idempotent producer and acks from all
 * replicas (once ingest() resolves the bars are durable), and the
 * last price / last bar of each symbol in Dragonfly (only moving forward in time). ClickHouse is
 * written from the topic by ./candle-writer.ts, never from here: a bar acknowledged is a bar stored,
 * whatever happens to this process afterwards.
 */
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { KafkaKitClient, ServiceContext } from "../../kit";
import { lastBarKey, lastPriceKey, TOPICS } from "../../trading/events";
import { barOf, batchesOf, candleMessage, type CandleBatch } from "../../trading/marketdata/candleMessages";
import type { Bar } from "../../trading/types";
import { BarTimes, checkBar, checkSeries, type Series } from "./domain";

/** Sets the last price/bar only when the bar is newer than the stored one (atomic in Redis). */
const SET_IF_NEWER = `
local cur = redis.call('HGET', KEYS[2], 'openTime')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'openTime', ARGV[1], 'json', ARGV[3])
return 1`;

// kafkajs groups a send's messages per partition by copying an array per message (quadratic in the
// send's size): sends of at most SEND_CHUNK messages keep that linear for posts of many symbols. And a
// send's messages to one partition are one record batch, which the broker refuses above its
// message.max.bytes (1 MiB by default, Redpanda's too): sends of at most SEND_BYTES keep under it
// (one message is at most MAX_BARS_PER_PRODUCED_MESSAGE bars, under 1 MiB at the longest decimals).
const SEND_CHUNK = 1000;
const SEND_BYTES = 768 * 1024;

export class BarIngest {
  readonly stats = { ingested: 0 };
  private readonly barsIn: Counter<string>;

  constructor(
    ctx: ServiceContext,
    private readonly kafka: KafkaKitClient,
    private readonly redis: Redis,
    private readonly barsPerMessage: number,
  ) {
    this.barsIn = new Counter({ name: "data_bridge_bars_total", help: "bars ingested", labelNames: ["symbol"], registers: [ctx.metrics.registry] });
  }

  /**
   * Checks every bar first (400 naming the field: nothing of a bad batch is written), then publishes
   * them. Resolves with the market.candles partitions written to.
   */
  async ingest(bars: Bar[], at = "bars", opensBy?: number): Promise<number[]> {
    if (bars.length === 0) return [];
    const seen = new BarTimes(opensBy);
    bars.forEach((b, i) => seen.add(checkBar(b, `${at}.${i}`).symbol, b.interval, b.openTime, `${at}.${i}.openTime`));
    return this.publish(batchesOf(bars, this.barsPerMessage));
  }

  /** ingest() for bars posted as positional series (checkSeries names a bad field). */
  ingestSeries(series: Series[], at = "series", opensBy?: number): Promise<number[]> {
    return this.publish(checkSeries(series, this.barsPerMessage, at, opensBy));
  }

  private async publish(batches: CandleBatch[]): Promise<number[]> {
    const partitions = new Set<number>();
    // As bytes: the text is ASCII (checked symbols, intervals and decimals), so latin1 is a plain copy,
    // where a string value costs kafkajs a UTF-8 length scan and an encode per message.
    const messages = batches.map((b) => ({ key: b.symbol, value: Buffer.from(candleMessage(b).value, "latin1") }));
    for (let i = 0; i < messages.length; ) {
      let end = i + 1;
      let bytes = messages[i].value.length;
      while (end < messages.length && end - i < SEND_CHUNK && bytes + messages[end].value.length <= SEND_BYTES) bytes += messages[end++].value.length;
      const meta = await this.kafka.send(TOPICS.candles, messages.slice(i, end));
      for (const m of meta) partitions.add(m.partition);
      i = end;
    }
    // Only the newest bar of each symbol can move its last price: one script call per symbol.
    const newest = new Map<string, { bar: Bar; count: number }>();
    for (const b of batches) {
      let last = b.bars[0];
      // The first of equal open times, as the engine keeps it (bars of one symbol in two intervals may share one).
      for (const t of b.bars) if (t[0] > last[0]) last = t;
      const cur = newest.get(b.symbol);
      if (!cur) newest.set(b.symbol, { bar: barOf(b.symbol, b.interval, last), count: b.bars.length });
      else {
        cur.count += b.bars.length;
        if (last[0] > cur.bar.openTime) cur.bar = barOf(b.symbol, b.interval, last);
      }
    }
    const pipe = this.redis.pipeline();
    for (const { bar: b } of newest.values()) pipe.eval(SET_IF_NEWER, 2, lastPriceKey(b.symbol), lastBarKey(b.symbol), String(b.openTime), b.close, JSON.stringify(b));
    await pipe.exec();
    let total = 0;
    for (const [symbol, { count }] of newest) {
      this.barsIn.inc({ symbol }, count);
      total += count;
    }
    this.stats.ingested += total;
    return [...partitions];
  }
}
