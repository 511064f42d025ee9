/**
 * Kafka topics of the platform (Redpanda in the stack, Apache Kafka in tests), created with the
 * kafkajs admin client when missing. Existing topics get missing partitions added, and those whose
 * declared configs differ from the broker's get them applied; partitions are never reduced (Kafka cannot).
 */
import type { Admin, ConfigEntries, ITopicConfig } from "kafkajs";
import { createTopicsReady, waitForTopicLeaders } from "../kit/datastores/kafka";

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Wanted replication factor; capped at the broker count (1 in tests, 3 in production). */
  replicationFactor: number;
  cleanupPolicy: "delete" | "compact" | "compact,delete";
  /** retention.ms; -1 = forever. Omitted for compacted topics that keep everything. */
  retentionMs?: number;
  /**
   * segment.ms: how long a partition's active segment takes records before it rolls. Required with a
   * finite retentionMs (checked by ensureKafkaTopics), since a broker deletes whole segments once
   * their newest record is past retention.ms: a record can outlive retention.ms by up to this much,
   * and consumers such as compliance-monitor size their own retention on that sum. Left to the
   * broker it is 7 days on Apache Kafka (`log.roll.hours` 168, which topic `segment.ms` overrides:
   * kafka.apache.org topic_config) and 2 weeks on Redpanda (cluster property `log_segment_ms`,
   * `std::chrono::weeks{2}` in redpanda src/v/config/configuration.cc, alias `log.roll.ms`; a topic's
   * `segment.ms` is clamped to `log_segment_ms_min` 10 min .. `log_segment_ms_max` 365 d).
   */
  segmentMs?: number;
  /** Any further topic config (string values as Kafka expects). */
  config?: Record<string, string>;
  description: string;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/**
 * The segment roll of topics keeping a week or more: a day keeps the overrun past retention.ms
 * under a seventh of it (a thirtieth for the 30-day topics) and costs at most one segment a
 * partition a day (365 a partition for billing.events' year, small files for these rates).
 * Shorter retentions roll at a twenty-fourth of it (market.ticks hourly), above Redpanda's 10-minute clamp.
 */
const SEGMENT_DAY = DAY;

export const kafkaTopics: readonly TopicSpec[] = [
  { name: "market.ticks", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 1 * DAY, segmentMs: HOUR, description: "trades/quotes from the market data source" },
  { name: "market.candles", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, segmentMs: SEGMENT_DAY, description: "closed OHLCV candles" },
  { name: "trading.signals", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, segmentMs: SEGMENT_DAY, description: "strategy signals" },
  { name: "trading.orders", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, segmentMs: SEGMENT_DAY, description: "order lifecycle events, keyed by order id" },
  { name: "trading.executions", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, segmentMs: SEGMENT_DAY, description: "fills, expiries and cancel confirmations, keyed by user id (one user's in commit order)" },
  { name: "compliance.alerts", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, segmentMs: SEGMENT_DAY, description: "compliance-monitor alerts (wash trades, spoofing, limits), keyed by user id" },
  { name: "risk.alerts", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 30 * DAY, segmentMs: SEGMENT_DAY, description: "risk limit breaches" },
  { name: "config.changes", partitions: 1, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, segmentMs: SEGMENT_DAY, description: "configuration-service change notifications" },
  { name: "config.snapshot", partitions: 1, replicationFactor: 3, cleanupPolicy: "compact", description: "latest value per namespace/key (compacted)" },
  { name: "audit.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, segmentMs: SEGMENT_DAY, description: "security and admin audit trail" },
  { name: "payments.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 90 * DAY, segmentMs: SEGMENT_DAY, description: "payment-service: payment succeeded / failed / refunded, keyed by user id" },
  { name: "billing.events", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 365 * DAY, segmentMs: SEGMENT_DAY, description: "billing-service: subscriptions and invoices (created, paid, failed, canceled), keyed by user id" },
  { name: "platform.usage", partitions: 6, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 7 * DAY, segmentMs: SEGMENT_DAY, description: "api-gateway: one event per request (user, key, route, status, latency), keyed by user id" },
  { name: "notifications.outbox", partitions: 3, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 3 * DAY, segmentMs: 3 * HOUR, description: "messages to deliver to users" },
];

/** A declared topic's retention.ms and segment.ms: a record of it can still be delivered for their sum. */
export interface TopicLifetime {
  retentionMs: number;
  segmentMs: number;
}

/**
 * The lifetime of declared topic `name`, for a consumer that remembers what it applied (`kept`, for the
 * message) and sizes that memory on it. Refused: a topic without a finite retention (`kept` could never
 * be deleted) or without a segment roll (how long a record outlives its retention would be the broker's default).
 */
export function declaredLifetime(name: string, kept: string): TopicLifetime {
  const t = kafkaTopics.find((k) => k.name === name);
  if (t?.retentionMs === undefined || t.retentionMs < 0) throw new Error(`${name} declares no finite retention: ${kept} could never be deleted`);
  if (t.segmentMs === undefined) throw new Error(`${name} declares no segment.ms: how long a record outlives its retention would be the broker's default`);
  return { retentionMs: t.retentionMs, segmentMs: t.segmentMs };
}

/**
 * The least whole days a consumer must remember a record it applied, so that the record delivered again
 * is still recognised: the topic's lifetime (a consumer group reset to the earliest offset reads all of
 * it; a broker deletes whole segments once their newest record is past the retention, so a record
 * outlives it by up to a segment's roll), `extraMs` of whatever else may bring it back, and a day's
 * margin (a retention check's lag, clocks), rounded up.
 */
export function redeliveryFloorDays(topic: TopicLifetime, extraMs = 0): number {
  return Math.ceil((topic.retentionMs + topic.segmentMs + extraMs + DAY) / DAY);
}

export function topicConfigEntries(t: TopicSpec): ITopicConfig["configEntries"] {
  const c: Record<string, string> = { "cleanup.policy": t.cleanupPolicy, ...(t.config ?? {}) };
  if (t.retentionMs !== undefined) c["retention.ms"] = String(t.retentionMs);
  if (t.segmentMs !== undefined) c["segment.ms"] = String(t.segmentMs);
  return Object.entries(c).map(([name, value]) => ({ name, value }));
}

export interface KafkaTopicsResult {
  created: string[];
  existing: string[];
  partitionsAdded: string[];
  /** Existing topics whose declared configs differed from the broker's and were applied. */
  configsUpdated: string[];
  replicationFactor: number;
}

/** A finite retention without a declared segment roll would leave records' lifetime to the broker's default. */
function checkSegmentRoll(t: TopicSpec): void {
  if (t.retentionMs === undefined || t.retentionMs < 0) return;
  if (t.segmentMs === undefined) throw new Error(`kafka topic ${t.name} declares retention.ms without segment.ms`);
  if (!(t.segmentMs > 0 && t.segmentMs < t.retentionMs)) throw new Error(`kafka topic ${t.name}: segment.ms (${t.segmentMs}) must be above 0 and below retention.ms (${t.retentionMs})`);
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
    checkSegmentRoll(t);
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
  const configsUpdated: string[] = [];
  if (present.length) {
    const md = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
    const grow = present.filter((t) => (md.topics.find((m) => m.name === t.name)?.partitions.length ?? 0) < t.partitions);
    if (grow.length) {
      await admin.createPartitions({ topicPartitions: grow.map((t) => ({ topic: t.name, count: t.partitions })) });
      // The broker's metadata shows the new partitions only once the controller's commit reaches it
      // (KRaft): a service started right after the migration would otherwise be assigned the old
      // partitions only, until its next metadata refresh (minutes), leaving the new ones unread.
      await waitForTopicLeaders(admin, grow.map((t) => ({ topic: t.name, numPartitions: t.partitions })));
      partitionsAdded.push(...grow.map((t) => t.name));
    }
    configsUpdated.push(...(await applyDeclaredConfigs(admin, present)));
    if (configsUpdated.length) opts.log?.info({ topics: configsUpdated }, "kafka topic configs updated");
  }
  return { created: missing.map((t) => t.name), existing: present.map((t) => t.name), partitionsAdded, configsUpdated, replicationFactor: cap };
}

/**
 * Brings existing topics' declared configs (a topic created before a key was declared, such as
 * segment.ms, or changed by hand) to the declared values; topics that already match are not
 * written, so a run over an up-to-date broker changes nothing. kafkajs has no
 * incrementalAlterConfigs, and the legacy alterConfigs replaces a topic's whole set of its own
 * configs: a key left out goes back to the broker's default. So a drifted topic is sent the
 * configs it holds itself (source TOPIC_CONFIG: set at creation or by hand, e.g. max.message.bytes)
 * with the declared values over them, and only the declared keys change.
 */
async function applyDeclaredConfigs(admin: Admin, present: readonly TopicSpec[]): Promise<string[]> {
  const { ConfigResourceTypes } = require("kafkajs") as typeof import("kafkajs");
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: present.map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.name })),
  });
  const updates: { name: string; configEntries: { name: string; value: string }[] }[] = [];
  for (const t of present) {
    const declared = topicConfigEntries(t)!;
    const actual = described.resources.find((r) => r.resourceName === t.name)?.configEntries ?? [];
    const drifted = declared.some((e) => actual.find((a) => a.configName === e.name)?.configValue !== e.value);
    if (drifted) updates.push({ name: t.name, configEntries: mergeOverOwnConfigs(t.name, actual, declared) });
  }
  if (updates.length)
    await admin.alterConfigs({
      validateOnly: false,
      resources: updates.map((u) => ({ type: ConfigResourceTypes.TOPIC, name: u.name, configEntries: u.configEntries })),
    });
  return updates.map((u) => u.name);
}

/** The topic's own configs (not defaults, broker or static ones) with the declared entries over them. */
function mergeOverOwnConfigs(
  topic: string,
  actual: readonly ConfigEntries[],
  declared: readonly { name: string; value: string }[],
): { name: string; value: string }[] {
  const { ConfigSource } = require("kafkajs") as typeof import("kafkajs");
  const declaredNames = new Set(declared.map((e) => e.name));
  const kept: { name: string; value: string }[] = [];
  for (const a of actual) {
    if (a.configSource !== ConfigSource.TOPIC_CONFIG || a.readOnly || declaredNames.has(a.configName)) continue;
    // A value the broker hides (sensitive) cannot be sent back: writing without it would reset it.
    if (a.configValue === null || a.configValue === undefined)
      throw new Error(`kafka topic ${topic}: its own config ${a.configName} has no readable value, so its declared configs cannot be applied without resetting it`);
    kept.push({ name: a.configName, value: a.configValue });
  }
  return [...kept, ...declared];
}
