/**
 * waitForTopicLeaders (services/src/kit/datastores/kafka.ts) against a scripted admin: a KRaft
 * broker can answer a topic it just created with UNKNOWN_TOPIC_OR_PARTITION, then with partitions
 * that have no leader yet; both mean "wait". Any other error is thrown at once, and a topic still
 * without leaders at the deadline fails naming it.
 */
import { describe, expect, it } from "vitest";
import { waitForTopicLeaders } from "../../services/src/kit/datastores/kafka";

type Answer = Error | { name: string; partitions: { leader: number; partitionErrorCode?: number }[] }[];
const kafkaError = (type: string) => Object.assign(new Error(type), { type });
/** An admin whose fetchTopicMetadata answers `answers` in turn (the last one forever). */
function scripted(answers: Answer[]) {
  let calls = 0;
  const admin = {
    async fetchTopicMetadata() {
      const a = answers[Math.min(calls++, answers.length - 1)];
      if (a instanceof Error) throw a;
      return { topics: a };
    },
  };
  return { admin: admin as unknown as Parameters<typeof waitForTopicLeaders>[0], calls: () => calls };
}

describe("waitForTopicLeaders", () => {
  it("waits through 'unknown topic' and leaderless partitions until every partition has a leader", async () => {
    const { admin, calls } = scripted([
      kafkaError("UNKNOWN_TOPIC_OR_PARTITION"),
      [{ name: "t", partitions: [{ leader: -1 }, { leader: 1 }] }],
      [{ name: "t", partitions: [{ leader: 1 }] }], // fewer partitions than created: not yet
      [{ name: "t", partitions: [{ leader: 1 }, { leader: 1 }] }],
    ]);
    await waitForTopicLeaders(admin, [{ topic: "t", numPartitions: 2 }], { timeoutMs: 10_000 });
    expect(calls()).toBe(4);
  });

  it("throws any other error at once", async () => {
    const { admin, calls } = scripted([kafkaError("TOPIC_AUTHORIZATION_FAILED")]);
    await expect(waitForTopicLeaders(admin, [{ topic: "t" }], { timeoutMs: 10_000 })).rejects.toThrow("TOPIC_AUTHORIZATION_FAILED");
    expect(calls()).toBe(1);
  });

  it("fails at the deadline naming the topics still without a leader", async () => {
    const { admin } = scripted([[{ name: "ok", partitions: [{ leader: 1 }] }, { name: "stuck", partitions: [{ leader: -1 }] }]]);
    await expect(waitForTopicLeaders(admin, [{ topic: "ok" }, { topic: "stuck" }], { timeoutMs: 300 })).rejects.toThrow(/without a leader after 300 ms: stuck$/);
  });
});
