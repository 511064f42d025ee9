/**
 * Datastore clients as typed Fastify decorators: a service writes `app.pg.query(...)`,
 * `app.redis.get(...)`, `app.clickhouse.query(...)`, `app.kafka.send(...)`, `app.arango.db`,
 * `app.weaviate.client()`. Each is a getter over the service's `Datastores` registry, so a client is
 * still created (and connects) on first use, and only for the datastores of the service's catalog
 * entry: reading one that is disabled or not listed throws `DatastoreDisabledError` naming it.
 * `app.datastores` is the registry itself (`isEnabled(ds)` for optional datastores).
 *
 * Decorated on the root instance before any service route is registered, so every encapsulated
 * plugin of the service inherits them.
 */
import type { Redis } from "ioredis";
import type { App } from "./app";
import type {
  ArangoKitClient,
  ClickHouseKitClient,
  Datastores,
  KafkaKitClient,
  PostgresClient,
  WeaviateKitClient,
} from "./datastores";

declare module "fastify" {
  interface FastifyInstance {
    /** The service's lazily created datastore clients (`isEnabled`, `get`, `list`). */
    readonly datastores: Datastores;
    /** PostgreSQL: `{ pool, query(text, values), transaction(fn) }`. */
    readonly pg: PostgresClient;
    /** DragonflyDB (Redis protocol): the ioredis client. */
    readonly redis: Redis;
    /** ClickHouse: `{ query(sql, params), command(sql, params), insert(table, rows) }`. */
    readonly clickhouse: ClickHouseKitClient;
    /** Redpanda (Kafka protocol): `{ kafka, producer(), send(topic, messages), consume(...) }`. */
    readonly kafka: KafkaKitClient;
    /** ArangoDB: `{ db }` (arangojs). */
    readonly arango: ArangoKitClient;
    /** Weaviate: `{ client() }` (weaviate-client v3). */
    readonly weaviate: WeaviateKitClient;
  }
}

export function decorateDatastores(app: App, datastores: Datastores): void {
  app.decorate("datastores", datastores);
  app.decorate("pg", { getter: () => datastores.get("postgres") });
  app.decorate("redis", { getter: () => datastores.get("dragonfly").redis });
  app.decorate("clickhouse", { getter: () => datastores.get("clickhouse") });
  app.decorate("kafka", { getter: () => datastores.get("redpanda") });
  app.decorate("arango", { getter: () => datastores.get("arangodb") });
  app.decorate("weaviate", { getter: () => datastores.get("weaviate") });
}
