/**
 * Session 60: a PostgreSQL lock wait inside a Kafka consumer's batch (POSTGRES_LOCK_WAIT_MS, a row or an
 * advisory lock) was related to nothing of the consumer: a handler waiting past KAFKA_SESSION_TIMEOUT_MS sent
 * no heartbeat (kafkajs sends them only between batches), its member was evicted, the group rebalanced and
 * the batch was delivered again. Now a batch in hand heartbeats (trading/infra/batchHeartbeats.ts; the real
 * Kafka case: tests/trading/consumer-heartbeats.test.ts), and the stack refuses a consumer's lock wait at
 * or over its session timeout (catalog POSTGRES_KAFKA_CONSUMER_RELATIONS), a setting of every consumer.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { catalog } from "../../catalog";
import { KAFKA_CONSUMERS, KAFKA_SESSION_TIMEOUT_MS, POSTGRES_KAFKA_CONSUMER_RELATIONS, settingRelations, usesPostgres } from "../../catalog/service-settings";
import { parseStackConfig } from "../../stacks/config";
import { crossServiceProblem, serviceSettingsProblem } from "../../stacks/service-settings";
import { registry } from "../../services/src/registry";
import { heartbeatWhileHandling } from "../../services/src/trading/infra/batchHeartbeats";
import { consumerEnv } from "../../services/src/trading/infra/kafka";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

const WHY = POSTGRES_KAFKA_CONSUMER_RELATIONS[0].why;

describe("a Kafka consumer's POSTGRES_LOCK_WAIT_MS below its KAFKA_SESSION_TIMEOUT_MS", () => {
  it("KAFKA_CONSUMERS are the services whose schema has the consumer settings; the schema's default and most are the catalog's", async () => {
    const withConsumerEnv: string[] = [];
    for (const [name, load] of Object.entries(registry)) if ("KAFKA_SESSION_TIMEOUT_MS" in ((await load()).config ?? {})) withConsumerEnv.push(name);
    expect([...KAFKA_CONSUMERS].sort()).toEqual(withConsumerEnv.sort());
    const s = consumerEnv.KAFKA_SESSION_TIMEOUT_MS;
    expect([s.default, s.maximum]).toEqual([KAFKA_SESSION_TIMEOUT_MS.default, KAFKA_SESSION_TIMEOUT_MS.maximum]);
    // The stack's least: three heartbeats at KAFKA_HEARTBEAT_MS's default, which no stack sets.
    expect(KAFKA_SESSION_TIMEOUT_MS.minimum).toBe(3 * consumerEnv.KAFKA_HEARTBEAT_MS.default);
  });

  it("is judged for every consumer that uses PostgreSQL, with its own values", () => {
    const judged = settingRelations(catalog).filter((r) => "service" in r.larger && r.larger.key === "KAFKA_SESSION_TIMEOUT_MS");
    const expected = catalog.filter((d) => KAFKA_CONSUMERS.includes(d.name as never) && usesPostgres(d)).map((d) => d.name);
    expect(expected).toContain("billing-service");
    expect(judged.map((r) => ("service" in r.smaller ? [r.smaller.service, r.smaller.key, r.strict] : []))).toEqual(expected.map((n) => [n, "POSTGRES_LOCK_WAIT_MS", true]));
    expect(judged.every((r) => "service" in r.larger && "service" in r.smaller && r.larger.service === r.smaller.service)).toBe(true);
  });

  it("refuses a session timeout shortened to the lock wait, naming both with their values; below is taken", () => {
    expect(crossServiceProblem({}, catalog)).toBeUndefined();
    expect(crossServiceProblem({ "billing-service": { KAFKA_SESSION_TIMEOUT_MS: 10_000 } }, catalog)).toBe(
      `billing-service POSTGRES_LOCK_WAIT_MS (10000, its default) must be below billing-service KAFKA_SESSION_TIMEOUT_MS (10000): ${WHY}`,
    );
    expect(crossServiceProblem({ "trading-engine": { KAFKA_SESSION_TIMEOUT_MS: 9_000, POSTGRES_LOCK_WAIT_MS: 9_000 } }, catalog)).toBe(
      `trading-engine POSTGRES_LOCK_WAIT_MS (9000) must be below trading-engine KAFKA_SESSION_TIMEOUT_MS (9000): ${WHY}`,
    );
    expect(crossServiceProblem({ "billing-service": { KAFKA_SESSION_TIMEOUT_MS: 10_000, POSTGRES_LOCK_WAIT_MS: 9_999 } }, catalog)).toBeUndefined();
    // A consumer without PostgreSQL has no lock wait to judge.
    expect(crossServiceProblem({ "usage-monitoring": { KAFKA_SESSION_TIMEOUT_MS: 9_000 } }, catalog)).toBeUndefined();
  });

  it("names both keys and the stack through the stack config, on either runtime; taken when it fits", () => {
    const e = error("prod", { ...k8s, serviceSettings: JSON.stringify({ "notification-service": { KAFKA_SESSION_TIMEOUT_MS: 9_000 } }) });
    expect(e.key).toBe("serviceSettings");
    expect(e.message).toBe(
      `Invalid configuration trading:serviceSettings on stack 'prod': notification-service POSTGRES_LOCK_WAIT_MS (10000, its default) must be below notification-service KAFKA_SESSION_TIMEOUT_MS (9000): ${WHY}`,
    );
    expect(error("dev", { ...docker, serviceSettings: JSON.stringify({ "order-management": { KAFKA_SESSION_TIMEOUT_MS: 12_000, POSTGRES_LOCK_WAIT_MS: 12_000 } }) }).message).toMatch(
      /^Invalid configuration trading:serviceSettings on stack 'dev': order-management POSTGRES_LOCK_WAIT_MS \(12000\) must be below order-management KAFKA_SESSION_TIMEOUT_MS \(12000\): /,
    );
    const fitting = { "order-management": { KAFKA_SESSION_TIMEOUT_MS: 12_000, POSTGRES_LOCK_WAIT_MS: 5_000 } };
    expect(parseStackConfig("dev", { ...docker, serviceSettings: JSON.stringify(fitting) }).serviceSettings).toEqual(fitting);
  });

  it("KAFKA_SESSION_TIMEOUT_MS is a setting of the consumers only, in the stack's range", () => {
    expect(serviceSettingsProblem({ "user-management": { KAFKA_SESSION_TIMEOUT_MS: 30_000 } }, catalog, catalog)).toMatch(/^'KAFKA_SESSION_TIMEOUT_MS' is not a setting of user-management the stack sets/);
    expect(serviceSettingsProblem({ "billing-service": { KAFKA_SESSION_TIMEOUT_MS: 6_000 } }, catalog, catalog)).toBe(
      "billing-service KAFKA_SESSION_TIMEOUT_MS must be an integer between 9000 and 300000 (the service refuses any other at start), got 6000",
    );
    expect(serviceSettingsProblem({ "usage-monitoring": { KAFKA_SESSION_TIMEOUT_MS: 60_000 } }, catalog, catalog)).toBeUndefined();
  });
});

describe("heartbeatWhileHandling", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("beats every interval until stopped, one at a time, and waits for one in flight on stop", async () => {
    let sent = 0;
    let answer: (() => void) | undefined;
    const heartbeat = () => new Promise<void>((resolve) => (answer = () => (sent++, resolve())));
    const beating = heartbeatWhileHandling(heartbeat, 500, () => undefined);
    await vi.advanceTimersByTimeAsync(499);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    const first = answer!;
    answer = undefined;
    // Still in flight: the next ticks send none beside it.
    await vi.advanceTimersByTimeAsync(1_500);
    expect(answer).toBeUndefined();
    first();
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toBe(1);
    expect(answer).toBeDefined();
    let stopped = false;
    const stopping = beating.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    answer!();
    await stopping;
    expect(sent).toBe(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toBe(2);
  });

  it("reports a failed beat and goes on; a rebalance (rejoin) stops the beats", async () => {
    const errors: Array<[string, boolean]> = [];
    const failures = [Object.assign(new Error("Connection timeout"), { type: "NETWORK" }), Object.assign(new Error("The group is rebalancing"), { type: "REBALANCE_IN_PROGRESS" })];
    let calls = 0;
    const beating = heartbeatWhileHandling(async () => {
      calls++;
      throw failures.shift() ?? new Error("unexpected");
    }, 100, (err, rejoin) => errors.push([err.message, rejoin]));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(errors).toEqual([["Connection timeout", false], ["The group is rebalancing", true]]);
    expect(calls).toBe(2);
    await beating.stop();
  });
});
