/**
 * Lazily created datastore clients. A service only gets accessors for the datastores its catalog
 * entry lists (`requires` + `optional`); a client is created on first use, each exposes `ping()`
 * for /ready and is closed on shutdown. An `optional` datastore whose variables are absent is
 * `disabled`: its accessor throws a clear `DatastoreDisabledError`, /ready reports it as disabled.
 * Services reach them as typed Fastify decorators (`app.pg`, `app.redis`, ...: ../decorators.ts).
 */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Datastore, ServiceDefinition } from "../../catalog";
import { createArango, type ArangoKitClient } from "./arango";
import { createClickHouse, type ClickHouseKitClient } from "../clickhouse/client";
import { createDragonfly, type DragonflyClient } from "./dragonfly";
import { DatastoreDisabledError, type DatastoreConfig, type DatastoreState } from "./env";
import { createKafka, type KafkaKitClient } from "./kafka";
import { createPostgres, type PostgresClient } from "./postgres";
import { createWeaviate, type WeaviateKitClient } from "./weaviate";

export * from "./env";
export * from "./postgres";
export * from "./dragonfly";
export * from "./dragonfly-subscriber";
export * from "../clickhouse/client";
export * from "./kafka";
export * from "./kafka-deadline";
export * from "./kafka-lag";
export * from "./arango";
export * from "./weaviate";

/** What every client offers the registry: a readiness probe and a close for shutdown. */
export interface Pingable {
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatastoreClients {
  postgres: PostgresClient;
  dragonfly: DragonflyClient;
  clickhouse: ClickHouseKitClient;
  redpanda: KafkaKitClient;
  arangodb: ArangoKitClient;
  weaviate: WeaviateKitClient;
}

/** Lazily creates and caches the clients of one service. */
export class Datastores {
  private readonly clients = new Map<Datastore, Pingable>();

  constructor(
    readonly service: ServiceDefinition,
    readonly configs: Partial<DatastoreConfig>,
    readonly states: Partial<Record<Datastore, DatastoreState>>,
    private readonly log: Logger,
    /** The service's metrics registry: clients that report metrics (Kafka consumer lag) register there. */
    private readonly metrics?: Registry,
  ) {}

  /** Enabled and listed for this service. */
  isEnabled(ds: Datastore): boolean {
    return this.states[ds]?.status === "enabled";
  }

  get<D extends Datastore>(ds: D): DatastoreClients[D] {
    const existing = this.clients.get(ds);
    if (existing) return existing as DatastoreClients[D];
    if (!this.isEnabled(ds)) throw new DatastoreDisabledError(this.service.name, ds);
    const log = this.log.child({ datastore: ds });
    let c: Pingable;
    switch (ds) {
      case "postgres":
        c = createPostgres(this.configs.postgres!, log);
        break;
      case "dragonfly":
        c = createDragonfly(this.configs.dragonfly!, log);
        break;
      case "clickhouse":
        c = createClickHouse(this.configs.clickhouse!);
        break;
      case "redpanda":
        c = createKafka(this.configs.redpanda!, this.service.name, log, this.metrics);
        break;
      case "arangodb":
        c = createArango(this.configs.arangodb!);
        break;
      case "weaviate":
        c = createWeaviate(this.configs.weaviate!);
        break;
      default:
        throw new Error(`unknown datastore ${String(ds)}`);
    }
    this.clients.set(ds, c);
    return c as DatastoreClients[D];
  }

  get postgres() {
    return this.get("postgres");
  }
  get dragonfly() {
    return this.get("dragonfly");
  }
  get clickhouse() {
    return this.get("clickhouse");
  }
  get kafka() {
    return this.get("redpanda");
  }
  get arango() {
    return this.get("arangodb");
  }
  get weaviate() {
    return this.get("weaviate");
  }

  /** Every datastore of the service with its state, for /ready. */
  list(): Array<{ name: Datastore; state: DatastoreState }> {
    return Object.entries(this.states).map(([name, state]) => ({ name: name as Datastore, state: state! }));
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.entries()];
    this.clients.clear();
    await Promise.allSettled(
      all.map(([name, c]) =>
        c.close().catch((err: Error) => this.log.warn({ err: { message: err.message }, datastore: name }, "close failed")),
      ),
    );
  }
}
