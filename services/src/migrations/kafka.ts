/**
 * Kafka topics of the platform (Redpanda in the stack, Apache Kafka in tests), created with the
 * kafkajs admin client when missing. Existing topics get missing partitions added and their
 * declared configs re-applied; partitions are never reduced (Kafka cannot).
 */
import type { Admin, ITopicConfig } from "kafkajs";
import { createTopicsReady } from "../kit/datastores/kafka";

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Wanted replication factor; capped at the broker count (1 in tests, 3 in production). */
  replicationFactor: number;
  cleanupPolicy: "delete" | "compact" | "compact,delete";
  /** retention.ms; -1 = forever. Omitted for compacted topics that keep everything. */
  retentionMs?: number;
  /** Any further topic config (string values as Kafka expects). */
  config?: Record<string, string>;
  description: string;
}

const DAY = 86_400_000;

export const kafkaTopics: readonly TopicSpec[] = [
  { name: "market.ticks", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 1 * DAY, description: "trades/quotes from the market data source" },
  { name: "market.candles", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, description: "closed OHLCV candles" },
  { name: "trading.signals", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, description: "strategy signals" },
  { name: "trading.orders", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, description: "order lifecycle events, keyed by order id" },
  { name: "trading.executions", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, description: "fills, expiries and cancel confirmations, keyed by user id (one user's in commit order)" },
  { name: "compliance.alerts", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, description: "compliance-monitor alerts (wash trades, spoofing, limits), keyed by user id" },
  { name: "risk.alerts", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, description: "risk limit breaches" },
  { name: "config.changes", partitions: 1, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, description: "configuration-service change notifications" },
  { name: "config.snapshot", partitions: 1, replicationFactor: 3, cleanupPolicy: "compact", description: "latest value per namespace/key (compacted)" },
  { name: "audit.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, description: "security and admin audit trail" },
  { name: "payments.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, description: "payment-service: payment succeeded / failed / refunded, keyed by user id" },
  { name: "billing.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 365 * DAY, description: "billing-service: subscriptions and invoices (created, paid, failed, canceled), keyed by user id" },
  { name: "platform.usage", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, description: "api-gateway: one event per request (user, key, route, status, latency), keyed by user id" },
  { name: "notifications.outbox", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 3 * DAY, description: "messages to deliver to users" },
];

export function topicConfigEntries(t: TopicSpec): ITopicConfig["configEntries"] {
  const c: Record<string, string> = { "cleanup.policy": t.cleanupPolicy, ...(t.config ?? {}) };
  if (t.retentionMs !== undefined) c["retention.ms"] = String(t.retentionMs);
  return Object.entries(c).map(([name, value]) => ({ name, value }));
}

export interface KafkaTopicsResult {
  created: string[];
  existing: string[];
  partitionsAdded: string[];
  replicationFactor: number;
}

export async function ensureKafkaTopics(
  admin: Admin,
  topics: readonly TopicSpec[] = kafkaTopics,
  opts: { log?: { info(o: object, m?: string): void } } = {},
): Promise<KafkaTopicsResult> {
  const seen = new Set<string>();
  for (const t of topics) {
    if (seen.has(t.name)) throw new Error(`kafka topic ${t.name} is declared twice`);
    seen.add(t.name);
  }
  const { brokers } = await admin.describeCluster();
  const cap = Math.max(1, brokers.length);
  const existingNames = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existingNames.has(t.name));
  const rf = (t: TopicSpec) => Math.min(t.replicationFactor, cap);
  if (missing.length) {
    await createTopicsReady(
      admin,
      missing.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions,
        replicationFactor: rf(t),
        configEntries: topicConfigEntries(t),
      })),
    );
    opts.log?.info({ topics: missing.map((t) => t.name) }, "kafka topics created");
  }
  const present = topics.filter((t) => existingNames.has(t.name));
  const partitionsAdded: string[] = [];
  if (present.length) {
    const md = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
    const grow = present.filter((t) => (md.topics.find((m) => m.name === t.name)?.partitions.length ?? 0) < t.partitions);
    if (grow.length) {
      await admin.createPartitions({ topicPartitions: grow.map((t) => ({ topic: t.name, count: t.partitions })) });
      partitionsAdded.push(...grow.map((t) => t.name));
    }
    // Re-apply declared configs (incremental semantics are not in kafkajs; alterConfigs sets these keys).
    const { ConfigResourceTypes } = require("kafkajs") as typeof import("kafkajs");
    await admin.alterConfigs({
      validateOnly: false,
      resources: present.map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.name, configEntries: topicConfigEntries(t)! })),
    });
  }
  return { created: missing.map((t) => t.name), existing: present.map((t) => t.name), partitionsAdded, replicationFactor: cap };
}
