import { env } from "../../kit";

/** Consumer-group timing. A SIGKILLed member is only evicted after the session timeout, so a
 * restarted singleton (trading-engine) waits that long before it gets its partitions back. */
export const consumerEnv = {
  KAFKA_SESSION_TIMEOUT_MS: env.int({ default: 30_000, min: 6_000 }),
  KAFKA_HEARTBEAT_MS: env.int({ default: 3_000, min: 100 }),
};
export const consumerConfig = (c: { KAFKA_SESSION_TIMEOUT_MS: number; KAFKA_HEARTBEAT_MS: number }) => ({
  sessionTimeout: c.KAFKA_SESSION_TIMEOUT_MS,
  heartbeatInterval: c.KAFKA_HEARTBEAT_MS,
  rebalanceTimeout: Math.max(c.KAFKA_SESSION_TIMEOUT_MS, 10_000),
});
