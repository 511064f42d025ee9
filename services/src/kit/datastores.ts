/**
 * Lazily created datastore clients. A service only gets accessors for the datastores its catalog
 * entry lists (`requires` + `optional`); a client is created on first use, each exposes `ping()`
 * for /ready and is closed on shutdown. An `optional` datastore whose variables are absent is
 * `disabled`: its accessor throws a clear `DatastoreDisabledError`, /ready reports it as disabled.
 */
import type { Logger } from "pino";
import type { Pool, PoolConfig, QueryResultRow } from "pg";
import type { Redis, RedisOptions } from "ioredis";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Kafka, Producer, Consumer, EachMessagePayload, Message, ConsumerConfig } from "kafkajs";
import type { Database } from "arangojs";
import type { WeaviateClient } from "weaviate-client";
import type { Datastore, ServiceDefinition } from "../catalog";
import { ConfigError, env, loadConfig, type ConfigOf } from "./config";
import { bindParams } from "./clickhouse-params";

/* ------------------------------------------------------------------------------------------------
 * Environment variables of each datastore (the contract in docs/conventions.md). The first variable
 * decides whether the datastore is configured at all.
 * ---------------------------------------------------------------------------------------------- */
export const datastoreEnv = {
  postgres: {
    POSTGRES_URL: env.url({ protocols: ["postgres", "postgresql"], secret: true }),
    POSTGRES_POOL_MAX: env.int({ default: 10, min: 1, max: 200 }),
  },
  dragonfly: {
    DRAGONFLY_URL: env.url({ protocols: ["redis", "rediss"], secret: true }),
  },
  clickhouse: {
    CLICKHOUSE_URL: env.url({ protocols: ["http", "https"] }),
    CLICKHOUSE_USER: env.string({ default: "default" }),
    CLICKHOUSE_PASSWORD: env.string({ optional: true, secret: true }),
    CLICKHOUSE_DATABASE: env.string({ default: "default", pattern: /^[A-Za-z0-9_]+$/ }),
  },
  redpanda: {
    KAFKA_BROKERS: env.list({ itemPattern: /^[A-Za-z0-9.-]+:\d{1,5}$/, itemDescription: "host:port" }),
  },
  arangodb: {
    ARANGO_URL: env.url({ protocols: ["http", "https"] }),
    ARANGO_USER: env.string({ default: "root" }),
    ARANGO_PASSWORD: env.string({ optional: true, secret: true }),
    ARANGO_DATABASE: env.string({ default: "_system" }),
  },
  weaviate: {
    WEAVIATE_URL: env.url({ protocols: ["http", "https"] }),
    WEAVIATE_API_KEY: env.string({ optional: true, secret: true }),
    /** gRPC port of Weaviate (v3 client uses gRPC for queries); same host as WEAVIATE_URL. */
    WEAVIATE_GRPC_PORT: env.int({ default: 50051, min: 1, max: 65535 }),
  },
} as const;

export type DatastoreConfig = { [D in Datastore]: ConfigOf<(typeof datastoreEnv)[D]> };

const primaryVar: Record<Datastore, string> = {
  postgres: "POSTGRES_URL",
  dragonfly: "DRAGONFLY_URL",
  clickhouse: "CLICKHOUSE_URL",
  redpanda: "KAFKA_BROKERS",
  arangodb: "ARANGO_URL",
  weaviate: "WEAVIATE_URL",
};

export type DatastoreState = { status: "enabled"; required: boolean } | { status: "disabled" };

/**
 * Validates the variables of every datastore of `def`. Required ones must be set (the error names
 * the variable); optional ones without their primary variable are disabled.
 */
export function loadDatastoreConfig(def: ServiceDefinition, source: NodeJS.ProcessEnv) {
  const configs: Partial<DatastoreConfig> = {};
  const states: Partial<Record<Datastore, DatastoreState>> = {};
  const problems: string[] = [];
  const all: Array<[Datastore, boolean]> = [
    ...def.requires.map((d) => [d, true] as [Datastore, boolean]),
    ...def.optional.map((d) => [d, false] as [Datastore, boolean]),
  ];
  for (const [ds, required] of all) {
    const primary = source[primaryVar[ds]];
    if (!required && (primary === undefined || primary.trim() === "")) {
      states[ds] = { status: "disabled" };
      continue;
    }
    try {
      (configs as Record<string, unknown>)[ds] = loadConfig(def.name, datastoreEnv[ds], source);
      states[ds] = { status: "enabled", required };
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigError(def.name, problems);
  return { configs, states };
}

export class DatastoreDisabledError extends Error {
  constructor(service: string, ds: Datastore) {
    super(
      `${ds} is ${ds === "redpanda" ? "not configured" : "disabled"} for ${service}` +
        ` (${primaryVar[ds]} is not set, or ${ds} is not in its catalog entry)`,
    );
    this.name = "DatastoreDisabledError";
  }
}

/* ------------------------------------------------------------------------------------------------
 * Clients
 * ---------------------------------------------------------------------------------------------- */
export interface Pingable {
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createPostgres(cfg: DatastoreConfig["postgres"], log: Logger, extra: PoolConfig = {}) {
  const { Pool } = require("pg") as typeof import("pg");
  const pool: Pool = new Pool({
    connectionString: cfg.POSTGRES_URL,
    max: cfg.POSTGRES_POOL_MAX,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    ...extra,
  });
  // An idle client losing its connection must not crash the process.
  pool.on("error", (err) => log.warn({ err: { message: err.message } }, "postgres idle client error"));
  return {
    pool,
    query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]) {
      return pool.query<R>(text, values);
    },
    /** Runs `fn` inside BEGIN/COMMIT on one client, ROLLBACK on error. */
    async transaction<T>(fn: (client: import("pg").PoolClient) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const r = await fn(client);
        await client.query("COMMIT");
        return r;
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}
export type PostgresClient = ReturnType<typeof createPostgres>;

export function createDragonfly(cfg: DatastoreConfig["dragonfly"], log: Logger, extra: RedisOptions = {}) {
  const IORedis = (require("ioredis") as typeof import("ioredis")).default;
  const redis: Redis = new IORedis(cfg.DRAGONFLY_URL, {
    // Fail commands fast while disconnected instead of queueing forever; reconnect in the background.
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
  let lastError = "";
  redis.on("error", (err) => {
    // ioredis emits on every reconnect attempt; log each distinct message once.
    if (err.message !== lastError) log.warn({ err: { message: err.message } }, "dragonfly connection error");
    lastError = err.message;
  });
  redis.on("ready", () => {
    if (lastError) log.info("dragonfly connection restored");
    lastError = "";
  });
  return {
    redis,
    async ping() {
      await redis.ping();
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
export type DragonflyClient = ReturnType<typeof createDragonfly>;

export function createClickHouse(cfg: DatastoreConfig["clickhouse"]) {
  const { createClient } = require("@clickhouse/client") as typeof import("@clickhouse/client");
  const client: ClickHouseClient = createClient({
    url: cfg.CLICKHOUSE_URL,
    username: cfg.CLICKHOUSE_USER,
    password: cfg.CLICKHOUSE_PASSWORD ?? "",
    database: cfg.CLICKHOUSE_DATABASE,
    request_timeout: 30_000,
  });
  /**
   * How `{name:Type}` placeholders reach the server. Servers from 20.x on take them as real query
   * parameters (sent separately from the SQL: the safe way, used in production with the pinned
   * 24.8 image). ClickHouse 18.16, which Debian ships and the local images and tests here run,
   * predates them, so against it the kit binds them itself (clickhouse-params.ts: type-checked
   * literals). Decided once per client from `SELECT version()`.
   */
  let binding: Promise<"server" | "client"> | undefined;
  const paramBinding = (): Promise<"server" | "client"> =>
    (binding ??= client
      .query({ query: "SELECT version() AS v", format: "JSONEachRow" })
      .then((rs) => rs.json<{ v: string }>())
      .then((rows) => (Number(String(rows[0]?.v ?? "0").split(".")[0]) >= 20 ? ("server" as const) : ("client" as const)))
      .catch((err) => {
        binding = undefined; // retry the detection on the next call
        throw err;
      }));
  return {
    client,
    paramBinding,
    /** SELECT with `{name:Type}` placeholders bound from `params` (never string concatenation). */
    async query<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
      const rs =
        (await paramBinding()) === "server"
          ? await client.query({ query, query_params: params, format: "JSONEachRow" })
          : await client.query({ query: bindParams(query, params), format: "JSONEachRow" });
      return rs.json<T>();
    },
    async command(query: string, params: Record<string, unknown> = {}) {
      if ((await paramBinding()) === "server") await client.command({ query, query_params: params });
      else await client.command({ query: bindParams(query, params) });
    },
    async insert<T>(table: string, values: T[]) {
      await client.insert({ table, values, format: "JSONEachRow" });
    },
    async ping() {
      const r = await client.ping();
      if (!r.success) throw r.error;
    },
    async close() {
      await client.close();
    },
  };
}
export type ClickHouseKitClient = ReturnType<typeof createClickHouse>;

export function createKafka(cfg: DatastoreConfig["redpanda"], clientId: string, log: Logger) {
  const kafkajs = require("kafkajs") as typeof import("kafkajs");
  const levelName: Record<number, "error" | "warn" | "info" | "debug"> = {
    [kafkajs.logLevel.ERROR]: "error",
    [kafkajs.logLevel.WARN]: "warn",
    [kafkajs.logLevel.INFO]: "info",
    [kafkajs.logLevel.DEBUG]: "debug",
  };
  const kafka: Kafka = new kafkajs.Kafka({
    clientId,
    brokers: cfg.KAFKA_BROKERS,
    connectionTimeout: 5_000,
    retry: { retries: 5 },
    logLevel: kafkajs.logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      log[levelName[entry.level] ?? "info"]({ kafka: { namespace: entry.namespace, ...rest } }, message);
    },
  });
  let producer: Promise<Producer> | undefined;
  const consumers = new Set<Consumer>();
  return {
    kafka,
    /** The idempotent producer (acks=all, exactly-once per partition), connected on first use. */
    producer(): Promise<Producer> {
      if (!producer) {
        const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
        producer = p.connect().then(() => p);
        producer.catch(() => (producer = undefined));
      }
      return producer;
    },
    async send(topic: string, messages: Message[]) {
      const p = await this.producer();
      return p.send({ topic, messages, acks: -1 });
    },
    /** Starts a consumer group on `topics`; it is disconnected on shutdown. */
    async consume(opts: {
      groupId: string;
      topics: string[];
      fromBeginning?: boolean;
      eachMessage: (payload: EachMessagePayload) => Promise<void>;
      config?: Partial<ConsumerConfig>;
    }): Promise<Consumer> {
      const consumer = kafka.consumer({ groupId: opts.groupId, ...opts.config });
      consumers.add(consumer);
      await consumer.connect();
      await consumer.subscribe({ topics: opts.topics, fromBeginning: opts.fromBeginning ?? false });
      await consumer.run({ eachMessage: opts.eachMessage });
      return consumer;
    },
    async ping() {
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.describeCluster();
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    async close() {
      await Promise.allSettled([...consumers].map((c) => c.disconnect()));
      if (producer) await producer.then((p) => p.disconnect()).catch(() => undefined);
    },
  };
}
export type KafkaKitClient = ReturnType<typeof createKafka>;

export function createArango(cfg: DatastoreConfig["arangodb"]) {
  const { Database } = require("arangojs") as typeof import("arangojs");
  const db: Database = new Database({
    url: cfg.ARANGO_URL,
    databaseName: cfg.ARANGO_DATABASE,
    auth: { username: cfg.ARANGO_USER, password: cfg.ARANGO_PASSWORD ?? "" },
  });
  return {
    db,
    async ping() {
      await db.version();
    },
    async close() {
      db.close();
    },
  };
}
export type ArangoKitClient = ReturnType<typeof createArango>;

export function createWeaviate(cfg: DatastoreConfig["weaviate"]) {
  const u = new URL(cfg.WEAVIATE_URL);
  const secure = u.protocol === "https:";
  let client: Promise<WeaviateClient> | undefined;
  const get = (): Promise<WeaviateClient> => {
    if (!client) {
      const w = require("weaviate-client") as typeof import("weaviate-client");
      client = w.default.connectToCustom({
        httpHost: u.hostname,
        httpPort: u.port ? Number(u.port) : secure ? 443 : 80,
        httpPath: u.pathname === "/" ? undefined : u.pathname,
        httpSecure: secure,
        grpcHost: u.hostname,
        grpcPort: cfg.WEAVIATE_GRPC_PORT,
        grpcSecure: secure,
        authCredentials: cfg.WEAVIATE_API_KEY ? new w.ApiKey(cfg.WEAVIATE_API_KEY) : undefined,
        skipInitChecks: true,
      });
      client.catch(() => (client = undefined));
    }
    return client;
  };
  return {
    client: get,
    async ping() {
      const c = await get();
      // /v1/.well-known/ready is unauthenticated: /v1/meta also proves the API key is accepted.
      if (!(await c.isReady())) throw new Error("weaviate is not ready");
      await c.getMeta();
    },
    async close() {
      if (client) await client.then((c) => c.close()).catch(() => undefined);
    },
  };
}
export type WeaviateKitClient = ReturnType<typeof createWeaviate>;

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
        c = createKafka(this.configs.redpanda!, this.service.name, log);
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
