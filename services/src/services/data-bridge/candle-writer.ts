/**
 * data-bridge's ClickHouse writer: a consumer group on `market.candles` that turns each fetched batch
 * into ONE `INSERT INTO market_candles FORMAT TabSeparated`. The broker gathers the batch: a fetch
 * answers once CH_BATCH_BYTES are there or CH_FLUSH_MS passed, so under load inserts are large (up
 * to CH_MAX_BATCH_BYTES per partition) and when idle a bar waits at most CH_FLUSH_MS.
 *
 * Guarantees: offsets are committed only after the INSERT succeeded (consumeBatches), so a crash or
 * SIGKILL replays the uncommitted batches (at-least-once), and the table's ReplacingMergeTree keeps
 * one row per (symbol, timeframe, open_time): a replayed bar is a duplicate row until the next merge,
 * never a second bar for readers using FINAL or argMax. (Insert-level dedup tokens need a Replicated
 * table or ClickHouse >= 22.2's non_replicated_deduplication_window; the engine works on 18.16 too.)
 * Messages are one bar or a batch of one symbol's bars (trading/marketdata/candleMessages.ts), each
 * handed over as a batch. Poison never reaches write(): the topic schema (barRules) sets it aside in
 * consumer_dead_letters, a whole message or only the bad bars of a batch (the good ones are written).
 */
import type { Admin } from "kafkajs";
import { Counter } from "prom-client";
import type { ClickHouseKitClient, ServiceContext } from "../../kit";
import { TOPICS } from "../../trading/events";
import { consumeBatches, type BatchMessage, type ConsumerTiming } from "../../trading/infra/kafka";
import { candleBatchOf } from "../../trading/infra/topicSchemas";
import { CANDLE_TSV_COLUMNS, candleTsv } from "./domain";

export interface CandleWriterOptions {
  groupId: string;
  source: string;
  flushMs: number;
  batchBytes: number;
  maxBatchBytes: number;
}

type WriterCtx = ServiceContext<ConsumerTiming>;

export class CandleWriter {
  readonly stats = { stored: 0, inserts: 0 };
  /** Per partition of market.candles, the last offset written (or set aside). */
  private readonly done = new Map<number, bigint>();
  private readonly waiters = new Set<() => void>();
  private admin?: Promise<Admin>;
  private closed = false;
  private readonly rows: Counter<string>;

  constructor(
    private readonly ctx: WriterCtx,
    private readonly ch: ClickHouseKitClient,
    private readonly o: CandleWriterOptions,
  ) {
    this.rows = new Counter({ name: "data_bridge_clickhouse_rows_total", help: "rows inserted into ClickHouse", registers: [ctx.metrics.registry] });
    ctx.onClose(async () => {
      this.closed = true;
      for (const wake of this.waiters) wake();
      if (this.admin) await this.admin.then((a) => a.disconnect()).catch(() => undefined);
    });
  }

  start(): Promise<void> {
    return consumeBatches(this.ctx, {
      groupId: this.o.groupId,
      topics: [TOPICS.candles],
      fetch: { minBytes: this.o.batchBytes, maxWaitTimeInMs: this.o.flushMs, maxBytesPerPartition: this.o.maxBatchBytes, maxBytes: 2 * this.o.maxBatchBytes },
      handle: (msgs) => this.write(msgs),
      onDone: (_topic, partition, offset) => {
        this.done.set(partition, BigInt(offset));
        for (const wake of this.waiters) wake();
      },
    });
  }

  async write(msgs: BatchMessage[]): Promise<void> {
    const batches = msgs.map((m) => candleBatchOf(m.json));
    const rows = batches.reduce((n, b) => n + b.bars.length, 0);
    await this.ch.insertTsv("market_candles", CANDLE_TSV_COLUMNS, candleTsv(batches, this.o.source));
    this.stats.stored += rows;
    this.stats.inserts++;
    this.rows.inc(rows);
  }

  /**
   * Resolves true once everything published so far to `partitions` of market.candles is in
   * ClickHouse (or set aside), false after `timeoutMs`.
   */
  async waitStored(partitions: number[], timeoutMs: number): Promise<boolean> {
    if (partitions.length === 0) return true;
    const admin = await this.adminClient();
    const ends = await admin.fetchTopicOffsets(TOPICS.candles);
    const targets = ends.filter((e) => partitions.includes(e.partition)).map((e) => ({ partition: e.partition, last: BigInt(e.high) - 1n }));
    const reached = () => targets.every((t) => (this.done.get(t.partition) ?? -1n) >= t.last);
    const deadline = Date.now() + timeoutMs;
    while (!reached()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
    return true;
  }

  private adminClient(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.ctx.app.kafka.kafka.admin();
      this.admin = admin.connect().then(() => admin);
      this.admin.catch(() => (this.admin = undefined));
    }
    return this.admin;
  }
}
