/**
 * `kafka_consumer_lag{group,topic,partition}`: the messages of a partition a consumer group has not
 * processed yet, as kafkajs reports it after each batch (END_BATCH_PROCESS `offsetLag`: the
 * partition's high watermark - 1 - the batch's last offset). Every consumer the kit creates reports
 * it. A replica reports only the partitions assigned to it: a rebalance drops the series of the
 * partitions it lost and a stopped consumer drops all of its own, so `max by (group, topic,
 * partition)` over replicas never keeps a figure nobody measures any more.
 *
 * What it cannot see: a partition that has not delivered a batch since the assignment has no series
 * yet, and a consumer whose handler keeps failing reports the lag of its last processed batch.
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
    help: "messages of a partition the consumer group has not processed yet (after the last batch this replica processed)",
    labelNames: ["group", "topic", "partition"],
    registers: [registry],
  });
}

/** One consumer's lag series: set per processed batch, dropped when the partition is no longer its own. */
export class ConsumerLag {
  private readonly owned = new Map<string, { topic: string; partition: number }>();

  constructor(
    private readonly gauge: Gauge<"group" | "topic" | "partition">,
    readonly group: string,
  ) {}

  batchProcessed(b: { topic: string; partition: number; offsetLag: string | number }): void {
    const lag = Math.max(0, Number(b.offsetLag));
    if (!Number.isFinite(lag)) return;
    this.owned.set(`${b.topic}\0${b.partition}`, { topic: b.topic, partition: b.partition });
    this.gauge.set({ group: this.group, topic: b.topic, partition: String(b.partition) }, lag);
  }

  /** After a rebalance: keeps the series of the partitions still assigned (topic -> partitions). */
  assigned(assignment: Record<string, number[]>): void {
    for (const [key, p] of this.owned) if (!assignment[p.topic]?.includes(p.partition)) this.drop(key);
  }

  stopped(): void {
    for (const key of [...this.owned.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const p = this.owned.get(key)!;
    this.gauge.remove({ group: this.group, topic: p.topic, partition: String(p.partition) });
    this.owned.delete(key);
  }
}

/** Wires a kafkajs consumer's instrumentation events to the registry's lag gauge. */
export function trackConsumerLag(consumer: Consumer, group: string, registry: Registry): ConsumerLag {
  const lag = new ConsumerLag(consumerLagGauge(registry), group);
  const { END_BATCH_PROCESS, GROUP_JOIN, STOP, DISCONNECT } = consumer.events;
  consumer.on(END_BATCH_PROCESS, (e) => lag.batchProcessed(e.payload));
  consumer.on(GROUP_JOIN, (e) => lag.assigned(e.payload.memberAssignment));
  consumer.on(STOP, () => lag.stopped());
  consumer.on(DISCONNECT, () => lag.stopped());
  return lag;
}
