/**
 * data-bridge's writes, per accepted bar: `market.candles` keyed by symbol (kit's idempotent
 * producer), the last price / last bar in Dragonfly (only moving forward in time), and ClickHouse
 * in batches (CH_BATCH_SIZE rows or every CH_FLUSH_MS; failed batches kept for retry up to
 * CH_MAX_BUFFER rows). ClickHouse writes use the client's `insert()` with JSONEachRow only (the data
 * travels in the body, never in SQL text), which works on Debian's ClickHouse 18.16.
 */
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { ClickHouseKitClient, KafkaKitClient, ServiceContext } from "../../kit";
import { lastBarKey, lastPriceKey, TOPICS } from "../../trading/events";
import type { Bar } from "../../trading/types";
import { candleRow, checkBar, type CandleRow } from "./domain";

/** Sets the last price/bar only when the bar is newer than the stored one (atomic in Redis). */
const SET_IF_NEWER = `
local cur = redis.call('HGET', KEYS[2], 'openTime')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'openTime', ARGV[1], 'json', ARGV[3])
return 1`;

const SEND_CHUNK = 1000;

export interface IngestOptions {
  source: string;
  batchSize: number;
  flushMs: number;
  maxBuffer: number;
}

export class BarIngest {
  readonly stats = { ingested: 0, clickhouseRows: 0, clickhouseFailures: 0, dropped: 0 };
  private buffer: CandleRow[] = [];
  private flushing?: Promise<void>;
  private readonly timer: NodeJS.Timeout;
  private readonly barsIn: Counter<string>;
  private readonly chRows: Counter<string>;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly kafka: KafkaKitClient,
    private readonly redis: Redis,
    private readonly ch: ClickHouseKitClient | undefined,
    private readonly o: IngestOptions,
  ) {
    this.barsIn = new Counter({ name: "data_bridge_bars_total", help: "bars ingested", labelNames: ["symbol"], registers: [ctx.metrics.registry] });
    this.chRows = new Counter({ name: "data_bridge_clickhouse_rows_total", help: "rows inserted into ClickHouse", registers: [ctx.metrics.registry] });
    this.timer = setInterval(() => void this.flush(), o.flushMs);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Checks every bar first (400 naming the field: nothing of a bad batch is written), then writes. */
  async ingest(bars: Bar[], at = "bars"): Promise<void> {
    if (bars.length === 0) return;
    bars.forEach((b, i) => checkBar(b, `${at}.${i}`));
    // kafkajs groups a send's messages per partition by copying an array per message (quadratic in
    // the send's size): sends of at most SEND_CHUNK messages keep that linear for large posts.
    for (let i = 0; i < bars.length; i += SEND_CHUNK)
      await this.kafka.send(TOPICS.candles, bars.slice(i, i + SEND_CHUNK).map((b) => ({ key: b.symbol, value: JSON.stringify(b) })));
    // Only the newest bar of each symbol can move its last price: one script call per symbol, not per bar.
    const newest = new Map<string, Bar>();
    for (const b of bars) {
      const cur = newest.get(b.symbol);
      if (!cur || b.openTime >= cur.openTime) newest.set(b.symbol, b);
    }
    const pipe = this.redis.pipeline();
    for (const b of newest.values()) pipe.eval(SET_IF_NEWER, 2, lastPriceKey(b.symbol), lastBarKey(b.symbol), String(b.openTime), b.close, JSON.stringify(b));
    await pipe.exec();
    for (const b of bars) {
      this.barsIn.inc({ symbol: b.symbol });
      if (this.ch) this.buffer.push(candleRow(b, this.o.source));
    }
    this.stats.ingested += bars.length;
    if (this.buffer.length >= this.o.batchSize) await this.flush();
  }

  async flush(): Promise<void> {
    const ch = this.ch;
    if (!ch || this.buffer.length === 0) return;
    if (this.flushing) return this.flushing;
    const rows = this.buffer;
    this.buffer = [];
    this.flushing = (async () => {
      try {
        await ch.insert("market_candles", rows); // client insert(), JSONEachRow: works on 18.16
        this.stats.clickhouseRows += rows.length;
        this.chRows.inc(rows.length);
      } catch (err) {
        this.stats.clickhouseFailures++;
        this.ctx.log.warn({ err: { message: (err as Error).message }, rows: rows.length }, "clickhouse insert failed; rows kept for retry");
        this.buffer = rows.concat(this.buffer);
        if (this.buffer.length > this.o.maxBuffer) {
          this.stats.dropped += this.buffer.length - this.o.maxBuffer;
          this.buffer = this.buffer.slice(this.buffer.length - this.o.maxBuffer);
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
