/**
 * Real-server test harness: private PostgreSQL, Redis (Dragonfly stand-in), Kafka (KRaft) and
 * ClickHouse servers on free 127.0.0.1 ports with data in temp dirs. See README.md.
 */
export { startPostgres, PostgresServer, type PostgresEnv, type StartPostgresOptions } from "./postgres";
export { startRedis, RedisServer, type RedisEnv, type StartRedisOptions } from "./redis";
export { startKafka, KafkaServer, kafkaHome, type KafkaEnv, type StartKafkaOptions } from "./kafka";
export { startClickHouse, ClickHouseServer, type ClickHouseEnv, type StartClickHouseOptions } from "./clickhouse";
export { startWeaviate, WeaviateServer, weaviateBinary, weaviateVersion, weaviateAvailability, type WeaviateEnv, type StartWeaviateOptions } from "./weaviate";
export type { ServerHandle, ServerKind } from "./server";
export { freePort, generatePassword, waitFor, sleep } from "./proc";
export { deadAddress, deadPort } from "./dead-address";
export { pg, Redis, kafkajs, type KafkaJs, type IORedis } from "./deps";
