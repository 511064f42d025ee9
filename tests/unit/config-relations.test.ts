/**
 * Session 51: pairs of related service variables (a batch size and its cap, a default and the most a
 * client may ask, a heartbeat and the session it keeps, a wait and the timeout it runs inside), each
 * in range alone, are refused at start in the wrong order, naming both (kit config-relations.ts, the
 * schema's `atMost`). No server: loadConfig judges the schema of each service of the registry.
 */
import { Type } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { loadConfig, type ConfigSchema, type EnvRelation } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { configProblems } from "../helpers/config-problems";

async function schemaOf(service: string): Promise<ConfigSchema> {
  return (await registry[service]()).config ?? {};
}

/** service, the variable, the one it may not exceed, a pair refused (its problem), a pair taken. */
const PAIRS: Array<[string, string, string, Record<string, string>, RegExp, Record<string, string>]> = [
  ["data-bridge", "CH_BATCH_BYTES", "CH_MAX_BATCH_BYTES", { CH_BATCH_BYTES: "8388608", CH_MAX_BATCH_BYTES: "4194304" }, /^CH_BATCH_BYTES \(8388608\) must be <= CH_MAX_BATCH_BYTES \(4194304\): an INSERT takes at most/, { CH_BATCH_BYTES: "4194304", CH_MAX_BATCH_BYTES: "4194304" }],
  ["notification-service", "NOTIFY_BACKOFF_BASE_MS", "NOTIFY_BACKOFF_MAX_MS", { NOTIFY_BACKOFF_BASE_MS: "60000", NOTIFY_BACKOFF_MAX_MS: "1000" }, /^NOTIFY_BACKOFF_BASE_MS \(60000\) must be <= NOTIFY_BACKOFF_MAX_MS \(1000\): the first retry's wait/, { NOTIFY_BACKOFF_BASE_MS: "50", NOTIFY_BACKOFF_MAX_MS: "200" }],
  ["central-hub", "HUB_INSTANCE_TTL_MS", "HUB_MAX_TTL_MS", { HUB_INSTANCE_TTL_MS: "600000" }, /^HUB_INSTANCE_TTL_MS \(600000\) must be <= HUB_MAX_TTL_MS \(300000\): a heartbeat without ttlMs/, { HUB_INSTANCE_TTL_MS: "300000" }],
  ["api-gateway", "PROXY_TIMEOUT_MS", "REQUEST_TIMEOUT_MS", { PROXY_TIMEOUT_MS: "60000", REQUEST_TIMEOUT_MS: "30000" }, /^PROXY_TIMEOUT_MS \(60000\) must be <= REQUEST_TIMEOUT_MS \(30000\): the upstream's wait runs inside/, { PROXY_TIMEOUT_MS: "10000", REQUEST_TIMEOUT_MS: "30000" }],
  // Session 53: a charge's every attempt runs inside its deadline (processor.ts).
  ["payment-service", "PAYMENT_PROCESSOR_TIMEOUT_MS", "PAYMENT_CHARGE_DEADLINE_MS", { PAYMENT_PROCESSOR_TIMEOUT_MS: "30000" }, /^PAYMENT_PROCESSOR_TIMEOUT_MS \(30000\) must be <= PAYMENT_CHARGE_DEADLINE_MS \(25000\): each attempt of a charge runs inside/, { PAYMENT_PROCESSOR_TIMEOUT_MS: "10000", PAYMENT_CHARGE_DEADLINE_MS: "10000" }],
  // Kafka's consumer timing (trading/infra/kafka.ts consumerEnv), in every service that consumes with it.
  ["notification-service", "KAFKA_HEARTBEAT_MS", "KAFKA_SESSION_TIMEOUT_MS", { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "3000" }, /^KAFKA_HEARTBEAT_MS \(3000\) must be <= KAFKA_SESSION_TIMEOUT_MS \/ 3 \(6000 \/ 3 = 2000\): Kafka evicts a member/, { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "2000" }],
  ["compliance-monitor", "KAFKA_FETCH_MAX_WAIT_MS", "KAFKA_SESSION_TIMEOUT_MS", { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "5000" }, /^KAFKA_FETCH_MAX_WAIT_MS \(5000\) must be <= KAFKA_SESSION_TIMEOUT_MS \/ 3 \(6000 \/ 3 = 2000\)/, { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "2000" }],
  // Session 57: billing's wait in a batch (since session 60 for a held row only: an unknown invoice's event is parked) holds the batch (payment-events.ts).
  ["billing-service", "BILLING_UNKNOWN_INVOICE_WAIT_MS", "KAFKA_SESSION_TIMEOUT_MS", { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "1000", BILLING_UNKNOWN_INVOICE_WAIT_MS: "3000" }, /^BILLING_UNKNOWN_INVOICE_WAIT_MS \(3000\) must be <= KAFKA_SESSION_TIMEOUT_MS \/ 3 \(6000 \/ 3 = 2000\): the wait holds a batch, and a rebalance begun meanwhile waits for it/, { KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "1000", BILLING_UNKNOWN_INVOICE_WAIT_MS: "2000" }],
  ["database-service", "DEAD_LETTER_REPLAY_SEND_MS", "DEAD_LETTER_REPLAY_CLAIM_MS", { DEAD_LETTER_REPLAY_SEND_MS: "20000" }, /^DEAD_LETTER_REPLAY_SEND_MS \(20000\) must be <= DEAD_LETTER_REPLAY_CLAIM_MS \/ 8 \(120000 \/ 8 = 15000\): a replay's claim must outlive/, { DEAD_LETTER_REPLAY_SEND_MS: "15000" }],
  // Session 59: a ClickHouse letter's replay ledger row is deleted only once the letter is (clickhouse-dead-letter-retention.ts).
  ["database-service", "DEAD_LETTER_CH_RETENTION_DAYS", "DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS", { DEAD_LETTER_CH_RETENTION_DAYS: "181" }, /^DEAD_LETTER_CH_RETENTION_DAYS \(181\) must be <= DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS \(180\): a letter's replay ledger row must outlive the letter/, { DEAD_LETTER_CH_RETENTION_DAYS: "180" }],
];

/** What a service requires besides (none of it in a relation). */
const REQUIRED: Record<string, Record<string, string>> = { "api-gateway": { JWT_SECRET: "s".repeat(64) } };

describe("related variables of the services", () => {
  it.each(PAIRS)("%s refuses %s above %s at start, naming both; equal or below is taken", async (service, _small, _large, bad, message, good) => {
    const schema = await schemaOf(service);
    const required = REQUIRED[service] ?? {};
    expect(configProblems(service, schema, { ...required, ...bad })).toEqual([expect.stringMatching(message)]);
    expect(configProblems(service, schema, { ...required, ...good })).toEqual([]);
    expect(configProblems(service, schema, required)).toEqual([]); // the defaults keep every relation
  });

  it("every relation declared in a service's schema is in the table above (a new one gets its test), and names a variable of that schema", async () => {
    const declared = new Set<string>();
    for (const service of Object.keys(registry)) {
      const schema = await schemaOf(service);
      for (const [name, s] of Object.entries(schema)) {
        const rel = (s as { atMost?: EnvRelation }).atMost;
        if (!rel) continue;
        expect(Object.keys(schema), `${service} ${name}`).toContain(rel.key);
        declared.add(`${name} <= ${rel.key}`);
      }
    }
    expect([...declared].sort()).toEqual([...new Set(PAIRS.map(([, small, large]) => `${small} <= ${large}`))].sort());
  });

  it("a variable refused alone is not judged against its pair (one problem each, the range's)", async () => {
    const schema = await schemaOf("data-bridge");
    expect(configProblems("data-bridge", schema, { CH_BATCH_BYTES: "99999999", CH_MAX_BATCH_BYTES: "65536" })).toEqual(['CH_BATCH_BYTES must be <= 16777216 (got "99999999")']);
    expect(configProblems("data-bridge", schema, { CH_BATCH_BYTES: "2000000", CH_MAX_BATCH_BYTES: "" })).toEqual([expect.stringMatching(/^CH_MAX_BATCH_BYTES is set but empty/)]);
  });
});

describe("the kit's atMost", () => {
  it("names a secret without its value, and refuses a relation to a variable of another schema as the schema's mistake", () => {
    const schema = { LOW_MS: Type.Integer({ atMost: { key: "PIN", why: "w" } }), PIN: Type.Integer({ secret: true }) };
    expect(configProblems("s", schema, { LOW_MS: "5000", PIN: "1234" })).toEqual(["LOW_MS (5000) must be <= PIN: w"]);
    expect(() => loadConfig("s", { A: Type.Integer({ atMost: { key: "B", why: "w" } }) }, { A: "1" })).toThrow("A's atMost names B, which is not a variable of the same schema");
  });

  it("an optional variable left unset is not judged", () => {
    const schema = { A: Type.Optional(Type.Integer({ atMost: { key: "B", why: "w" } })), B: Type.Integer({ default: 10 }) };
    expect(configProblems("s", schema, {})).toEqual([]);
    expect(configProblems("s", schema, { A: "11" })).toEqual(["A (11) must be <= B (10): w"]);
  });
});
