/** Environment variables of each datastore (the contract in docs/conventions.md). */
import { POSTGRES_CONNECT_TIMEOUT_MS, POSTGRES_LOCK_WAIT_MS, POSTGRES_POOL_MAX, type Datastore, type ServiceDefinition } from "../../catalog";
import { Type } from "@sinclair/typebox";
import { ConfigError, envList, envUrl, loadConfig, type ConfigOf } from "../config";
import { givenInEnv } from "../secret-files";

/* ------------------------------------------------------------------------------------------------
 * Environment variables of each datastore (the contract in docs/conventions.md). The first variable
 * decides whether the datastore is configured at all.
 * ---------------------------------------------------------------------------------------------- */
export const datastoreEnv = {
  postgres: {
    POSTGRES_URL: envUrl({ protocols: ["postgres", "postgresql"], secret: true }),
    // The stack counts every pool against PostgreSQL's max_connections (stacks/service-settings.ts).
    POSTGRES_POOL_MAX: Type.Integer(POSTGRES_POOL_MAX),
    /** How long a request waits for a new pool connection before answering 503 (a loaded host needs more than 5 s). */
    POSTGRES_CONNECT_TIMEOUT_MS: Type.Integer(POSTGRES_CONNECT_TIMEOUT_MS),
    /**
     * How long a transaction with a `lock` waits for its turn and the advisory lock before answering 503
     * (postgres-contention.ts); a stack may set it, below the gateway's PROXY_TIMEOUT_MS (catalog/service-settings.ts).
     */
    POSTGRES_LOCK_WAIT_MS: Type.Integer(POSTGRES_LOCK_WAIT_MS),
  },
  dragonfly: {
    DRAGONFLY_URL: envUrl({ protocols: ["redis", "rediss"], secret: true }),
  },
  clickhouse: {
    // A login in the URL named a second one beside CLICKHOUSE_USER (default "default"), in a variable
    // that is not secret (session 50): the login goes in the two variables.
    CLICKHOUSE_URL: envUrl({ protocols: ["http", "https"], loginIn: "CLICKHOUSE_USER and CLICKHOUSE_PASSWORD" }),
    CLICKHOUSE_USER: Type.String({ default: "default" }),
    CLICKHOUSE_PASSWORD: Type.Optional(Type.String({ secret: true })),
    CLICKHOUSE_DATABASE: Type.String({ default: "default", pattern: "^[A-Za-z0-9_]+$" }),
  },
  redpanda: {
    // The port 1-65535 (session 50: \d{1,5} took 0 and 99999, where no broker can listen).
    KAFKA_BROKERS: envList(Type.String({ pattern: "^[A-Za-z0-9.-]+:(6553[0-5]|655[0-2]\\d|65[0-4]\\d{2}|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3})$", description: "host:port, the port 1-65535" })),
    /** TCP connect bound per broker; kafkajs retries with backoff on top of it. */
    KAFKA_CONNECT_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
  },
  arangodb: {
    // arangojs refuses a URL with a login on every request (naming it whole in its error).
    ARANGO_URL: envUrl({ protocols: ["http", "https"], loginIn: "ARANGO_USER and ARANGO_PASSWORD" }),
    ARANGO_USER: Type.String({ default: "root" }),
    ARANGO_PASSWORD: Type.Optional(Type.String({ secret: true })),
    ARANGO_DATABASE: Type.String({ default: "_system" }),
  },
  weaviate: {
    WEAVIATE_URL: envUrl({ protocols: ["http", "https"], loginIn: "WEAVIATE_API_KEY" }),
    WEAVIATE_API_KEY: Type.Optional(Type.String({ secret: true })),
    /** gRPC port of Weaviate (v3 client uses gRPC for queries); same host as WEAVIATE_URL. */
    WEAVIATE_GRPC_PORT: Type.Integer({ default: 50051, minimum: 1, maximum: 65535 }),
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
    // Given as itself or, a secret, as the file holding it (POSTGRES_URL_FILE on Docker).
    if (!required && !givenInEnv(source, primaryVar[ds])) {
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

