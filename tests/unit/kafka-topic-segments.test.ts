/**
 * Every platform topic with a finite retention.ms declares its segment.ms (services/src/migrations/kafka.ts):
 * a broker deletes a segment once its newest record is past the retention, so a record outlives it by up
 * to a segment's roll, and left undeclared that roll is the broker's default (7 days on Apache Kafka,
 * 2 weeks on Redpanda). compliance-monitor's cm_position_fills floor is computed from the declared value.
 * (The real-broker side, a fresh topic and one created earlier without it: tests/services/database-service.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { ensureKafkaTopics, kafkaTopics, topicConfigEntries, type TopicSpec } from "../../services/src/migrations/kafka";
import { positionFillRetentionFloorDays } from "../../services/src/services/compliance-monitor/domain";

const DAY = 86_400_000;
// Redpanda clamps a topic's segment.ms to log_segment_ms_min (10 minutes by default).
const REDPANDA_SEGMENT_MS_MIN = 600_000;

describe("kafka topics' segment roll", () => {
  it("every topic with a finite retention declares segment.ms, at most a seventh of it and above Redpanda's clamp, sent to the broker", () => {
    const finite = kafkaTopics.filter((t) => t.retentionMs !== undefined && t.retentionMs >= 0);
    expect(finite.length).toBeGreaterThan(10);
    for (const t of finite) {
      expect(t.segmentMs, t.name).toBeDefined();
      expect(t.segmentMs! * 7, t.name).toBeLessThanOrEqual(t.retentionMs!);
      expect(t.segmentMs!, t.name).toBeGreaterThanOrEqual(REDPANDA_SEGMENT_MS_MIN);
      expect(topicConfigEntries(t), t.name).toContainEqual({ name: "segment.ms", value: String(t.segmentMs) });
    }
    expect(kafkaTopics.find((t) => t.name === "trading.executions")).toMatchObject({ retentionMs: 30 * DAY, segmentMs: DAY });
  });

  it("a declaration with a finite retention and no segment.ms, or one not below the retention, is refused before the broker is asked", async () => {
    const spec: TopicSpec = { name: "t.events", partitions: 1, replicationFactor: 1, cleanupPolicy: "delete", retentionMs: DAY, description: "" };
    const noBroker = {} as never; // any call on it would throw a TypeError, not the refusal
    await expect(ensureKafkaTopics(noBroker, [spec])).rejects.toThrow(/t\.events declares retention\.ms without segment\.ms/);
    await expect(ensureKafkaTopics(noBroker, [{ ...spec, segmentMs: DAY }])).rejects.toThrow(/segment\.ms \(86400000\) must be above 0 and below retention\.ms/);
  });

  it("compliance-monitor's cm_position_fills floor follows trading.executions' declared segment.ms", () => {
    const executions = kafkaTopics.find((t) => t.name === "trading.executions")!;
    const declared = { retentionMs: executions.retentionMs!, segmentMs: executions.segmentMs! };
    // 30 days + a day's roll + the replay's hour + a day's margin, rounded up.
    expect(positionFillRetentionFloorDays(declared, 3_600_000)).toBe(33);
    // Redpanda's default roll (2 weeks) would need 46, Apache Kafka's (7 days) 39: the floor moves with the declaration.
    expect(positionFillRetentionFloorDays({ ...declared, segmentMs: 14 * DAY }, 3_600_000)).toBe(46);
    expect(positionFillRetentionFloorDays({ ...declared, segmentMs: 7 * DAY }, 3_600_000)).toBe(39);
    expect(positionFillRetentionFloorDays({ ...declared, segmentMs: DAY + 1 }, 0)).toBe(33);
  });
});
