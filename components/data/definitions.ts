/**
 * What each datastore is, as pure data: its workload spec, the environment its clients receive
 * (per docs/conventions.md) and its connection string. No resources are created here, so the
 * definitions are tested without an engine; `components/data/index.ts` turns them into components.
 */
import * as pulumi from "@pulumi/pulumi";
import { DataComponent, dockerAdminHostPorts } from "../../stacks/config";
import type { ContainerImage } from "../../stacks/images";
import { probe, ProbeSpec, ResourceSpec, SecuritySpec, WorkloadSpec } from "../workload";
import { arangoStartScript } from "./arangodb-start";
import { POSTGRES_CPU, POSTGRES_MEMORY_GI } from "../../catalog/sizing";

export interface DatastoreContext {
  name: DataComponent;
  /** The image and what it pins (user, HTTP client, server build): stacks/images.ts. */
  image: ContainerImage;
  /** Generated credential; undefined for stores without authentication (Redpanda). */
  password?: pulumi.Output<string>;
  storageGi: number;
  /** Docker only: publish the client port on <bindAddress>:<hostPort> for operators. */
  publish: boolean;
  /** Docker only: host address published ports bind to (127.0.0.1 by default). */
  bindAddress?: string;
  /** Kubernetes only: a LoadBalancer Service instead of ClusterIP (rejected by policy on prod). */
  exposeService?: boolean;
  /** Host that operators use to reach the store: 127.0.0.1 on Docker, the in-cluster FQDN on Kubernetes. */
  externalHost: string;
  acceptsFrom: string[];
  /** PostgreSQL only: its max_connections (the stack config sizes or checks it against every pool). */
  maxConnections?: number;
  /** PostgreSQL only: its memory limit in GiB (trading:postgresMemoryGi; catalog/sizing.ts POSTGRES_MEMORY_GI by default). */
  memoryGi?: number;
}

export interface DatastoreDefinition {
  spec: Omit<WorkloadSpec, "acceptsFrom" | "connectsTo" | "replicas" | "dependsOn">;
  /** Variables every client service receives. */
  clientEnv: Record<string, pulumi.Input<string>>;
  clientSecretEnv: Record<string, pulumi.Input<string>>;
  /** Connection string for operators (stack output, secret). */
  connectionString: pulumi.Output<string>;
  port: number;
}

/** Host ports used on Docker (the stack config checks the edge's ports against them). */
export const hostPorts: Record<DataComponent, number> = dockerAdminHostPorts;

export const DB_USER = "trading";
export const DB_NAME = "ai_trading";

const dataSecurity = (uid: number | undefined): SecuritySpec => ({
  runAsUser: uid,
  runAsGroup: uid,
  fsGroup: uid,
  // Database servers write lock files and sockets outside their data volume.
  readOnlyRootFilesystem: false,
  scratchDirs: [],
});

/** An in-container HTTP check with the client the image carries (the manifest says which). */
export function httpCheck(image: Pick<ContainerImage, "httpClient">, url: string): string[] {
  return image.httpClient === "curl" ? ["curl", "-fsS", "-o", "/dev/null", url] : ["wget", "-q", "-O", "/dev/null", url];
}

function requirePassword(ctx: DatastoreContext): pulumi.Output<string> {
  if (!ctx.password) throw new Error(`datastore ${ctx.name} needs a generated password`);
  return ctx.password;
}

function port(ctx: DatastoreContext, name: string, p: number) {
  return { name, port: p, hostPort: ctx.publish ? hostPorts[ctx.name] : undefined, bindAddress: ctx.bindAddress };
}

function base(
  ctx: DatastoreContext,
  parts: {
    ports: WorkloadSpec["ports"];
    mountPath: string;
    liveness: ProbeSpec;
    readiness?: ProbeSpec;
    resources: ResourceSpec;
    env?: Record<string, pulumi.Input<string>>;
    secretEnv?: Record<string, pulumi.Input<string>>;
    command?: string[];
    args?: string[];
    files?: WorkloadSpec["files"];
    /** Every secret variable is read from a file (by the check or the entrypoint), whatever the image manifest says. */
    secretEnvFromFiles?: boolean;
  },
): DatastoreDefinition["spec"] {
  return {
    name: ctx.name,
    role: "datastore",
    kind: "stateful",
    image: ctx.image.ref,
    command: parts.command,
    args: parts.args,
    env: parts.env ?? {},
    secretEnv: parts.secretEnv ?? {},
    // Where the image's entrypoint reads <NAME>_FILE (stacks/images.ts): Docker writes the credentials as files.
    secretEnvFiles: ctx.image.secretFiles || parts.secretEnvFromFiles ? "_FILE" : undefined,
    ports: parts.ports,
    volumes: [{ name: "data", mountPath: parts.mountPath, sizeGi: ctx.storageGi }],
    files: parts.files ?? [],
    liveness: parts.liveness,
    readiness: parts.readiness,
    resources: parts.resources,
    // The uid the image documents or pins (numeric: Kubernetes verifies runAsNonRoot); Docker
    // runs it by name where the image declares one.
    security: { ...dataSecurity(ctx.image.user?.uid), dockerUser: ctx.image.user?.name },
    serviceType: ctx.exposeService ? "LoadBalancer" : undefined,
  };
}

function postgres(ctx: DatastoreContext): DatastoreDefinition {
  const password = requirePassword(ctx);
  const url = (host: string) => pulumi.secret(pulumi.interpolate`postgresql://${DB_USER}:${password}@${host}/${DB_NAME}`);
  return {
    port: 5432,
    spec: base(ctx, {
      ports: [port(ctx, "postgres", 5432)],
      mountPath: "/var/lib/postgresql/data",
      env: {
        POSTGRES_USER: DB_USER,
        POSTGRES_DB: DB_NAME,
        // A subfolder that initdb creates: a fresh volume's root may hold lost+found or belong to
        // root (Kubernetes hostPath-style provisioners), and initdb must own its directory (0700).
        PGDATA: "/var/lib/postgresql/data/pgdata",
      },
      secretEnv: { POSTGRES_PASSWORD: password },
      // Both images' entrypoints run `postgres` with the arguments after it (a setting as on the command line).
      args: ctx.maxConnections !== undefined ? ["postgres", "-c", `max_connections=${ctx.maxConnections}`] : undefined,
      liveness: probe({ exec: ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", DB_USER, "-d", DB_NAME] }, { startPeriodSeconds: 30 }),
      // The stack's memory limit, which the stack config checks the memory of max_connections against.
      resources: { cpu: POSTGRES_CPU, memory: `${ctx.memoryGi ?? POSTGRES_MEMORY_GI}Gi` },
    }),
    clientEnv: {},
    clientSecretEnv: { POSTGRES_URL: url("postgres:5432") },
    connectionString: url(`${ctx.externalHost}:${ctx.publish ? hostPorts.postgres : 5432}`),
  };
}

/**
 * Dragonfly's flag file (`--flagfile`, the abseil flags its packaging starts it with): its password
 * as `--requirepass=`, a secret file, so it is neither a container variable (`docker inspect`) nor an
 * argument (`ps`).
 */
export const DRAGONFLY_FLAGFILE = "/etc/dragonfly/secret.flags";

/** Dragonfly, or Redis standing in for it (same protocol); also the legacy Redis. */
function redisProtocol(ctx: DatastoreContext, envVar: string): DatastoreDefinition {
  const password = requirePassword(ctx);
  const url = (host: string) => pulumi.secret(pulumi.interpolate`redis://:${password}@${host}`);
  const isDragonfly = ctx.image.server === "dragonfly";
  // The official Redis image has no password variable: it reads a generated config file.
  const isUpstreamRedis = ctx.image.server === "redis";
  const secretEnv: Record<string, pulumi.Input<string>> = {
    // redis-cli reads REDISCLI_AUTH, so the health check never puts the password on a command line.
    REDISCLI_AUTH: password,
  };
  // The local build's entrypoint reads REDIS_PASSWORD (or its _FILE); Dragonfly and the official Redis
  // read their password from a secret file (the flag file, redis.conf), never from a variable.
  if (!isDragonfly && !isUpstreamRedis) secretEnv.REDIS_PASSWORD = password;
  return {
    port: 6379,
    spec: base(ctx, {
      ports: [port(ctx, "redis", 6379)],
      mountPath: "/data",
      secretEnv,
      // The health check below reads REDISCLI_AUTH_FILE with any image, so on Docker REDISCLI_AUTH is a
      // file for Dragonfly and the official Redis too (before session 45 it was a container variable).
      secretEnvFromFiles: isDragonfly || isUpstreamRedis,
      args: isDragonfly
        ? [`--flagfile=${DRAGONFLY_FLAGFILE}`, "--dir", "/data", "--dbfilename", "dump", "--snapshot_cron", "*/5 * * * *"]
        : isUpstreamRedis
          ? ["redis-server", "/usr/local/etc/redis/redis.conf"]
          : undefined,
      files: isUpstreamRedis
        ? [{ path: "/usr/local/etc/redis/redis.conf", secret: true, content: pulumi.interpolate`requirepass ${password}\nappendonly yes\ndir /data\n` }]
        : isDragonfly
          ? [{ path: DRAGONFLY_FLAGFILE, secret: true, content: pulumi.interpolate`--requirepass=${password}\n` }]
          : [],
      // redis-cli exits 0 on an error reply (NOAUTH), so the answer itself is checked.
      // Where the password is a file (REDISCLI_AUTH_FILE, Docker with an image reading files), the
      // check reads it into REDISCLI_AUTH for redis-cli alone.
      liveness: probe({
        exec: ["sh", "-c", 'if [ -n "${REDISCLI_AUTH_FILE:-}" ]; then REDISCLI_AUTH="$(cat "$REDISCLI_AUTH_FILE")"; export REDISCLI_AUTH; fi; redis-cli -h 127.0.0.1 -p 6379 --no-auth-warning ping | grep -q PONG'],
      }),
      resources: { cpu: "500m", memory: ctx.name === "redis" ? "256Mi" : "1Gi" },
    }),
    clientEnv: {},
    clientSecretEnv: { [envVar]: url(`${ctx.name}:6379`) },
    connectionString: url(`${ctx.externalHost}:${ctx.publish ? hostPorts[ctx.name] : 6379}`),
  };
}

function clickhouse(ctx: DatastoreContext): DatastoreDefinition {
  const password = requirePassword(ctx);
  const url = (host: string) => pulumi.secret(pulumi.interpolate`http://${DB_USER}:${password}@${host}/?database=${DB_NAME}`);
  return {
    port: 8123,
    spec: base(ctx, {
      ports: [port(ctx, "http", 8123), { name: "native", port: 9000 }],
      mountPath: "/var/lib/clickhouse",
      // TZ: the server's time zone is what toDate/toStartOfDay of a DateTime answer in (migration 0009's
      // change markers, the services' day buckets); the platform's days are UTC days (PostgreSQL's
      // AT TIME ZONE 'UTC', the risk check's loss day), so it is pinned, not left to the image or host.
      env: { CLICKHOUSE_USER: DB_USER, CLICKHOUSE_DB: DB_NAME, CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: "0", TZ: "UTC" },
      secretEnv: { CLICKHOUSE_PASSWORD: password },
      liveness: probe({ exec: httpCheck(ctx.image, "http://127.0.0.1:8123/ping") }, { startPeriodSeconds: 30 }),
      resources: { cpu: "1", memory: "2Gi" },
    }),
    clientEnv: { CLICKHOUSE_URL: "http://clickhouse:8123", CLICKHOUSE_USER: DB_USER, CLICKHOUSE_DATABASE: DB_NAME },
    clientSecretEnv: { CLICKHOUSE_PASSWORD: password },
    connectionString: url(`${ctx.externalHost}:${ctx.publish ? hostPorts.clickhouse : 8123}`),
  };
}

function weaviate(ctx: DatastoreContext): DatastoreDefinition {
  const apiKey = requirePassword(ctx);
  return {
    port: 8080,
    spec: base(ctx, {
      ports: [port(ctx, "http", 8080), { name: "grpc", port: 50051 }],
      mountPath: "/var/lib/weaviate",
      env: {
        AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED: "false",
        AUTHENTICATION_APIKEY_ENABLED: "true",
        AUTHENTICATION_APIKEY_USERS: DB_USER,
        AUTHORIZATION_ADMINLIST_ENABLED: "true",
        AUTHORIZATION_ADMINLIST_USERS: DB_USER,
        PERSISTENCE_DATA_PATH: "/var/lib/weaviate",
        DEFAULT_VECTORIZER_MODULE: "none",
        ENABLE_MODULES: "",
        CLUSTER_HOSTNAME: "node1",
        DISABLE_TELEMETRY: "true",
      },
      secretEnv: { AUTHENTICATION_APIKEY_ALLOWED_KEYS: apiKey },
      liveness: probe({ exec: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/v1/.well-known/live"] }),
      readiness: probe({ http: { path: "/v1/.well-known/ready", port: 8080 } }),
      resources: { cpu: "1", memory: "2Gi" },
    }),
    clientEnv: { WEAVIATE_URL: "http://weaviate:8080" },
    clientSecretEnv: { WEAVIATE_API_KEY: apiKey },
    connectionString: pulumi.secret(
      pulumi.interpolate`http://${ctx.externalHost}:${ctx.publish ? hostPorts.weaviate : 8080} (Authorization: Bearer ${apiKey})`,
    ),
  };
}

function arangodb(ctx: DatastoreContext): DatastoreDefinition {
  const password = requirePassword(ctx);
  const url = (host: string) => pulumi.secret(pulumi.interpolate`http://root:${password}@${host}/_db/${DB_NAME}`);
  return {
    port: 8529,
    spec: base(ctx, {
      ports: [port(ctx, "http", 8529)],
      mountPath: "/var/lib/arangodb3",
      secretEnv: { ARANGO_ROOT_PASSWORD: password },
      // Not the vendor's entrypoint, which exports the password into arangod's environment: the
      // platform's start script gives it to the first start's arango-init-database alone (./arangodb-start.ts).
      command: ["/bin/sh", "-c", arangoStartScript()],
      // Availability needs no credentials, so the probe carries none.
      liveness: probe({ exec: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8529/_admin/server/availability"] }, { startPeriodSeconds: 30 }),
      readiness: probe({ http: { path: "/_admin/server/availability", port: 8529 } }),
      resources: { cpu: "1", memory: "1Gi" },
    }),
    clientEnv: { ARANGO_URL: "http://arangodb:8529", ARANGO_USER: "root", ARANGO_DATABASE: DB_NAME },
    clientSecretEnv: { ARANGO_PASSWORD: password },
    connectionString: url(`${ctx.externalHost}:${ctx.publish ? hostPorts.arangodb : 8529}`),
  };
}

function redpanda(ctx: DatastoreContext): DatastoreDefinition {
  const internal = "redpanda:9092";
  // Apache Kafka (the offline stand-in, same protocol) has one listener, so only Redpanda gets the operators' host listener.
  const isRedpanda = ctx.image.server === "redpanda";
  // Advertised as operators reach it: the admin bind address it is published on (a VPN interface
  // too), not a fixed 127.0.0.1 that a client elsewhere would be sent to.
  const external = ctx.publish && isRedpanda ? `${ctx.externalHost}:${hostPorts.redpanda}` : undefined;
  // Two listeners: one for the private network, one for operators on the host (Docker only).
  const listeners = external
    ? ["--kafka-addr", "internal://0.0.0.0:9092,external://0.0.0.0:19092", "--advertise-kafka-addr", `internal://${internal},external://${external}`]
    : ["--kafka-addr", "internal://0.0.0.0:9092", "--advertise-kafka-addr", `internal://${internal}`];
  return {
    port: 9092,
    spec: base(ctx, {
      ports: external
        ? [{ name: "kafka", port: 9092 }, { name: "kafka-external", port: 19092, hostPort: hostPorts.redpanda, bindAddress: ctx.bindAddress }]
        : [{ name: "kafka", port: 9092 }],
      mountPath: isRedpanda ? "/var/lib/redpanda/data" : "/var/lib/kafka/data",
      args: isRedpanda
        ? ["redpanda", "start", "--smp", "1", "--memory", "1G", "--reserve-memory", "0M", "--overprovisioned", "--node-id", "0", "--check=false", ...listeners]
        : undefined,
      // One combined broker + controller: fencing itself when a heartbeat is late (9 s by default,
      // missed on a starved node) only takes every partition's leader away until it recovers.
      env: isRedpanda
        ? {}
        : { KAFKA_ADVERTISED_HOST: "redpanda", KAFKA_PORT: "9092", KAFKA_EXTRA_CONFIG: "broker.session.timeout.ms=120000" },
      liveness: isRedpanda
        ? probe({ exec: ["rpk", "cluster", "health", "--exit-when-healthy"] }, { startPeriodSeconds: 30 })
        : probe({ exec: ["/usr/local/bin/kafka-healthcheck.sh"] }, { startPeriodSeconds: 60, retries: 10 }),
      resources: { cpu: "1", memory: "1536Mi" },
    }),
    clientEnv: { KAFKA_BROKERS: internal },
    clientSecretEnv: {},
    // Kafka (the stand-in) is never published: its address inside the network, not a host port it lacks.
    connectionString: pulumi.secret(pulumi.output(external ?? (ctx.publish ? internal : `${ctx.externalHost}:9092`))),
  };
}

export function datastoreDefinition(ctx: DatastoreContext): DatastoreDefinition {
  switch (ctx.name) {
    case "postgres":
      return postgres(ctx);
    case "dragonfly":
      return redisProtocol(ctx, "DRAGONFLY_URL");
    case "redis":
      return redisProtocol(ctx, "LEGACY_REDIS_URL");
    case "clickhouse":
      return clickhouse(ctx);
    case "weaviate":
      return weaviate(ctx);
    case "arangodb":
      return arangodb(ctx);
    case "redpanda":
      return redpanda(ctx);
  }
}

/** Datastores without authentication of their own; the network policy is their only guard. */
export const unauthenticated: readonly DataComponent[] = ["redpanda"];
