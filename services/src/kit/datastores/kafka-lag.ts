/**
 * `kafka_consumer_lag{group,topic,partition}`: the messages of a partition a consumer group has not
 * processed yet. Set from two sources: kafkajs after each batch (END_BATCH_PROCESS `offsetLag`: the
 * partition's high watermark - 1 - the batch's last offset), and every LAG_REFRESH_MS from the
 * broker for every partition assigned to the replica (the high watermark less the further of the
 * group's committed offset and what this replica processed). The broker's figure is what sees a
 * consumer whose handler keeps failing (no batch ends: before, the gauge kept the lag of its last
 * processed batch while the partition filled up) and a partition that has delivered no batch since
 * the assignment (before, no series). Every consumer the kit creates reports it. A replica reports
 * only the partitions assigned to it: a rebalance drops the series of the partitions it lost and a
 * stopped consumer drops all of its own, so `max by (group, topic, partition)` over replicas never
 * keeps a figure nobody measures any more.
 *
 * A partition on which the group has never committed and this replica has processed nothing
 * counts from where the consumer starts: its low watermark for a topic subscribed `fromBeginning`
 * (a first deploy whose handler fails from the first message shows the whole topic waiting).
 * What it cannot see: such a partition of a topic subscribed from the latest offset (where it
 * started is not known afterwards), and anything while the broker does not answer (the last
 * figures stay; Kafka's own alerts apply).
 */
import type { Consumer } from "kafkajs";
import { Gauge, type Registry } from "prom-client";

export const CONSUMER_LAG_METRIC = "kafka_consumer_lag";

/** The registry's lag gauge (one per registry, whatever the number of consumers or restarts). */
export function consumerLagGauge(registry: Registry): Gauge<"group" | "topic" | "partition"> {
  const existing = registry.getSingleMetric(CONSUMER_LAG_METRIC);
  if (existing) return existing as Gauge<"group" | "topic" | "partition">;
  return new Gauge({
    name: CONSUMER_LAG_METRIC,
    help: "messages of a partition the consumer group has not processed yet (after each batch this replica processed, and from the broker every 15 s)",
    labelNames: ["group", "topic", "partition"],
    registers: [registry],
  });
}

/** How often each consumer asks the broker for its partitions' offsets (a scrape is every 15 s). */
export const LAG_REFRESH_MS = 15_000;

/** What the broker says of a group's partitions (kit kafka.ts: one admin client per service). */
export interface BrokerOffsets {
  /** The group's committed offsets (the next offset it will read), -1 where it committed none. */
  committed(group: string, topics: string[]): Promise<Array<{ topic: string; partition: number; offset: number }>>;
  /** The topic's watermarks by partition: `low` its first offset still kept, `high` the offset its next message will get. */
  watermarks(topic: string): Promise<Array<{ partition: number; low: number; high: number }>>;
}

const keyOf = (topic: string, partition: number) => `${topic}\0${partition}`;

/** One consumer's lag series: set per processed batch and per refresh from the broker, dropped when the partition is no longer its own. */
export class ConsumerLag {
  private readonly owned = new Map<string, { topic: string; partition: number }>();
  /** The next offset to process of each partition, by the batches this replica handled. */
  private readonly processed = new Map<string, number>();
  private assignment: Record<string, number[]> = {};
  /** The topics subscribed from their beginning (a partition with no committed offset starts at its low watermark). */
  private readonly fromBeginning = new Set<string>();

  constructor(
    private readonly gauge: Gauge<"group" | "topic" | "partition">,
    readonly group: string,
  ) {}

  batchProcessed(b: { topic: string; partition: number; offsetLag: string | number; lastOffset?: string | number }): void {
    const key = keyOf(b.topic, b.partition);
    const next = Number(b.lastOffset) + 1;
    if (Number.isSafeInteger(next)) this.processed.set(key, Math.max(next, this.processed.get(key) ?? -1));
    const lag = Math.max(0, Number(b.offsetLag));
    if (Number.isFinite(lag)) this.set(b.topic, b.partition, lag);
  }

  /** What the consumer subscribed to (kafkajs `subscribe`; a pattern names no topic and is left out). */
  subscribed(topics: ReadonlyArray<string | RegExp>, fromBeginning: boolean): void {
    for (const t of topics) if (typeof t === "string") (fromBeginning ? this.fromBeginning.add(t) : this.fromBeginning.delete(t));
  }

  /** After a rebalance: keeps the series of the partitions still assigned (topic -> partitions). */
  assigned(assignment: Record<string, number[]>): void {
    this.assignment = assignment;
    for (const [key, p] of this.owned) if (!assignment[p.topic]?.includes(p.partition)) this.drop(key);
    for (const key of [...this.processed.keys()]) if (!this.isAssigned(key)) this.processed.delete(key);
  }

  stopped(): void {
    this.assignment = {};
    this.processed.clear();
    for (const key of [...this.owned.keys()]) this.drop(key);
  }

  /** Each assigned partition's lag as the broker has it now (see the file's comment); a partition unassigned meanwhile is left alone. */
  async refresh(broker: BrokerOffsets): Promise<void> {
    const topics = Object.keys(this.assignment).filter((t) => this.assignment[t].length > 0);
    if (topics.length === 0) return;
    const committed = new Map((await broker.committed(this.group, topics)).map((c) => [keyOf(c.topic, c.partition), c.offset]));
    for (const topic of topics) {
      for (const { partition, low, high } of await broker.watermarks(topic)) {
        const key = keyOf(topic, partition);
        if (!this.isAssigned(key)) continue;
        const known = Math.max(committed.get(key) ?? -1, this.processed.get(key) ?? -1);
        const position = known >= 0 ? known : this.fromBeginning.has(topic) ? low : -1;
        if (position >= 0 && Number.isSafeInteger(high)) this.set(topic, partition, Math.max(0, high - position));
      }
    }
  }

  private isAssigned(key: string): boolean {
    const [topic, partition] = key.split("\0");
    return this.assignment[topic]?.includes(Number(partition)) ?? false;
  }

  private set(topic: string, partition: number, lag: number): void {
    this.owned.set(keyOf(topic, partition), { topic, partition });
    this.gauge.set({ group: this.group, topic, partition: String(partition) }, lag);
  }

  private drop(key: string): void {
    const p = this.owned.get(key)!;
    this.gauge.remove({ group: this.group, topic: p.topic, partition: String(p.partition) });
    this.owned.delete(key);
  }
}

/**
 * Wires a kafkajs consumer's instrumentation events to the registry's lag gauge and, given the
 * broker's offsets, refreshes every assigned partition's lag every `refreshMs` while the consumer
 * is in its group (one refresh at a time; a broker that does not answer leaves the last figures).
 */
export function trackConsumerLag(consumer: Consumer, group: string, registry: Registry, broker?: BrokerOffsets, refreshMs = LAG_REFRESH_MS): ConsumerLag {
  const lag = new ConsumerLag(consumerLagGauge(registry), group);
  const { END_BATCH_PROCESS, GROUP_JOIN, STOP, DISCONNECT } = consumer.events;
  let timer: NodeJS.Timeout | undefined;
  let refreshing = false;
  const refresh = () => {
    if (refreshing || !broker) return;
    refreshing = true;
    void lag.refresh(broker).catch(() => undefined).finally(() => (refreshing = false));
  };
  const stopped = () => {
    clearInterval(timer);
    timer = undefined;
    lag.stopped();
  };
  // kafkajs tells no event where a subscription starts: the call is watched instead.
  const subscribe = consumer.subscribe.bind(consumer);
  consumer.subscribe = (s) => {
    lag.subscribed("topics" in s ? s.topics : [s.topic], s.fromBeginning ?? false);
    return subscribe(s);
  };
  consumer.on(END_BATCH_PROCESS, (e) => lag.batchProcessed(e.payload));
  consumer.on(GROUP_JOIN, (e) => {
    lag.assigned(e.payload.memberAssignment);
    if (broker && !timer) {
      timer = setInterval(refresh, refreshMs);
      timer.unref();
    }
  });
  consumer.on(STOP, stopped);
  consumer.on(DISCONNECT, stopped);
  return lag;
}
