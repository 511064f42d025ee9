/**
 * Service variables a stack may set (`trading:serviceSettings`) because another part of the platform
 * depends on their value: a token's life and the gateway's oldest accepted token, a wait inside a
 * request and the gateway's timeout around it, the connection pools and PostgreSQL's max_connections.
 * Each is in range alone (the bounds here are the service's schema's: the services take them from
 * this file), yet across services in the wrong order every token is refused after an age, or every
 * such request answers 504 before the service does. The stack configuration refuses those orders
 * before anything is deployed (stacks/service-settings.ts), naming both variables and the stack.
 *
 * Pure data with no imports outside catalog/, like the rest of the catalog.
 */
import type { ServiceDefinition, ServiceName } from "./services";

export interface SettingBounds {
  default: number;
  minimum: number;
  maximum: number;
}

/** A setting of one service. */
export interface SettingKey {
  service: ServiceName;
  key: string;
}

/** A setting of one service (or of the edge, which is no service: a fixed value). */
export type SettingRef = SettingKey | { fixed: number; name: string };

export interface SettingRelation {
  /** The setting, or the waits one after another in one request (their sum), that must fit. */
  smaller: SettingKey | readonly SettingKey[];
  /** A fixed part of that request beside the settings (its own writes around a call), added to them. */
  plus?: { ms: number; name: string };
  larger: SettingRef;
  /** Must be below (a wait that must end before the timeout around it), not merely at most. */
  strict?: boolean;
  why: string;
}

/** The settings a relation adds up on its smaller side. */
export function smallerKeys(rel: SettingRelation): readonly SettingKey[] {
  return "service" in rel.smaller ? [rel.smaller as SettingKey] : (rel.smaller as readonly SettingKey[]);
}

/** PostgreSQL pool of every service that uses it (kit datastores/env.ts POSTGRES_POOL_MAX). */
export const POSTGRES_POOL_MAX: SettingBounds = { default: 10, minimum: 1, maximum: 200 };

/**
 * How long making one PostgreSQL connection may take (kit datastores/env.ts POSTGRES_CONNECT_TIMEOUT_MS,
 * pg-pool's connectionTimeoutMillis). No stack sets it: every service runs with the default.
 */
export const POSTGRES_CONNECT_TIMEOUT_MS: SettingBounds = { default: 10_000, minimum: 100, maximum: 120_000 };

/**
 * How long a transaction with a `lock` waits for its turn and the advisory lock before the request
 * answers 503 (kit datastores/env.ts POSTGRES_LOCK_WAIT_MS, datastores/postgres-contention.ts), in every
 * service using PostgreSQL. A stack may set it per service, as POSTGRES_POOL_MAX: a stack that shortens
 * the gateway's PROXY_TIMEOUT_MS to 10 s or less shortens it too (ROUTED_POSTGRES_USER_RELATIONS).
 */
export const POSTGRES_LOCK_WAIT_MS: SettingBounds = { default: 10_000, minimum: 100, maximum: 600_000 };

/**
 * A Kafka consumer group member's session timeout (trading/infra/kafka.ts consumerEnv): a member silent
 * that long is evicted and its group rebalances. A stack may set it for each of KAFKA_CONSUMERS. The
 * stack's least is three heartbeats at KAFKA_HEARTBEAT_MS's default (3 s, which no stack sets): below it the
 * service refuses to start (its heartbeat must come three times in a session); the service's own schema
 * takes down to 6 s (the tests run 6 s sessions with 500 ms heartbeats), its default and most are these.
 */
export const KAFKA_SESSION_TIMEOUT_MS: SettingBounds = { default: 30_000, minimum: 9_000, maximum: 300_000 };

/**
 * The services that consume Kafka through trading/infra/kafka.ts (consumerEnv in their schema:
 * KAFKA_SESSION_TIMEOUT_MS, KAFKA_HEARTBEAT_MS, KAFKA_FETCH_MAX_WAIT_MS); tests/unit/kafka-consumer-relations
 * checks the list against the services' schemas.
 */
export const KAFKA_CONSUMERS: readonly ServiceName[] = [
  "ai-chain-analytics",
  "billing-service",
  "compliance-monitor",
  "data-bridge",
  "notification-service",
  "order-management",
  "performance-analytics",
  "portfolio-manager",
  "revenue-analytics",
  "trading-engine",
  "usage-monitoring",
];

/**
 * How long the edge waits for the gateway's answer (Nginx `proxy_read_timeout`, the Ingress's
 * `nginx.ingress.kubernetes.io/proxy-read-timeout`), in seconds: past it the edge answers 504 itself.
 */
export const EDGE_READ_TIMEOUT_S = 30;

/**
 * What a card charge's request spends beside its waits: the idempotency key's lookup, the intent's
 * insert before the processor call and the answer's commit after it (a few milliseconds each), and
 * the gateway's own hop. The charge's lock wait and processor deadline plus this must end before the
 * gateway's PROXY_TIMEOUT_MS, or the client gets a 504 for a charge that was made.
 */
export const CHARGE_WRITES_MS = 1_000;

/** The settings of each service a stack may set, with their schema's default and range. */
export const SERVICE_SETTINGS = {
  "api-gateway": {
    ACCESS_TOKEN_MAX_AGE_S: { default: 3_600, minimum: 60, maximum: 86_400 },
    PROXY_TIMEOUT_MS: { default: 30_000, minimum: 100, maximum: 600_000 },
    REQUEST_TIMEOUT_MS: { default: 30_000, minimum: 100, maximum: 600_000 },
    HEALTH_TIMEOUT_MS: { default: 2_000, minimum: 50, maximum: 60_000 },
  },
  "user-management": {
    ACCESS_TOKEN_TTL_S: { default: 900, minimum: 30, maximum: 3_600 },
  },
  "database-service": {
    DATASTORE_CHECK_TIMEOUT_MS: { default: 2_000, minimum: 50, maximum: 60_000 },
  },
  "order-management": {
    // trading/submitDeadline.ts SUBMIT_COMMIT_DEADLINE_DEFAULT_MS and _MAX_MS (the recovery window is computed from the maximum).
    OM_SUBMIT_DEADLINE_MS: { default: 2_000, minimum: 100, maximum: 3_000 },
  },
  "ai-orchestrator": {
    ORCH_EVALUATION_WAIT_MS: { default: 20_000, minimum: 0, maximum: 60_000 },
    ORCH_PREDICT_TIMEOUT_MS: { default: 10_000, minimum: 100, maximum: 600_000 },
    ORCH_REGIMES_TIMEOUT_MS: { default: 2_000, minimum: 100, maximum: 60_000 },
  },
  "payment-service": {
    PAYMENT_IDEMPOTENT_WAIT_MS: { default: 15_000, minimum: 0, maximum: 120_000 },
    PAYMENT_CHARGE_LOCK_CONNECTIONS: { default: 4, minimum: 1, maximum: 50 },
    PAYMENT_CHARGE_LOCK_WAIT_MS: { default: 2_000, minimum: 100, maximum: 60_000 },
    PAYMENT_PROCESSOR_TIMEOUT_MS: { default: 20_000, minimum: 100, maximum: 120_000 },
    // 25 s: a first attempt's 20 s and a retry's few seconds, with the lock wait and CHARGE_WRITES_MS, below the gateway's 30 s.
    PAYMENT_CHARGE_DEADLINE_MS: { default: 25_000, minimum: 100, maximum: 600_000 },
  },
} as const satisfies Partial<Record<ServiceName, Record<string, SettingBounds>>>;

type Settings = typeof SERVICE_SETTINGS;
/** The bounds of one setting, for the service's schema (`Type.Integer({ ...setting("api-gateway", "PROXY_TIMEOUT_MS") })`). */
export function setting<S extends keyof Settings, K extends keyof Settings[S]>(service: S, key: K): SettingBounds {
  return SERVICE_SETTINGS[service][key] as SettingBounds;
}

/**
 * The least POSTGRES_POOL_MAX of a service with a migration job (catalog `preDeployJob`), which takes
 * the service's environment: the job holds its run lock (a session advisory lock) on one connection of
 * the pool and migrates on another; with one it failed after POSTGRES_CONNECT_TIMEOUT_MS ("timeout
 * exceeded when trying to connect", session 54).
 */
export const MIGRATION_JOB_POOL_MIN = 2;

/** Beside POSTGRES_POOL_MAX, the connections a service's replica holds in a pool of its own. */
export const EXTRA_POSTGRES_POOLS: Partial<Record<ServiceName, string>> = { "payment-service": "PAYMENT_CHARGE_LOCK_CONNECTIONS" };

const GATEWAY = "api-gateway";
const PROXY_TIMEOUT = { service: GATEWAY, key: "PROXY_TIMEOUT_MS" } as const;
/** The cross-service orders the stack refuses (each pair in range alone). */
export const SETTING_RELATIONS: readonly SettingRelation[] = [
  {
    smaller: { service: "user-management", key: "ACCESS_TOKEN_TTL_S" },
    larger: { service: GATEWAY, key: "ACCESS_TOKEN_MAX_AGE_S" },
    why: "the gateway refuses an access token older than its ACCESS_TOKEN_MAX_AGE_S: every token would be refused for the rest of its life",
  },
  {
    smaller: { service: GATEWAY, key: "PROXY_TIMEOUT_MS" },
    larger: { service: GATEWAY, key: "REQUEST_TIMEOUT_MS" },
    why: "the upstream's wait runs inside the request's budget: a longer one never fires (the gateway refuses it at start too)",
  },
  {
    smaller: { service: GATEWAY, key: "REQUEST_TIMEOUT_MS" },
    larger: { fixed: EDGE_READ_TIMEOUT_S * 1_000, name: `the edge's read timeout (${EDGE_READ_TIMEOUT_S} s: Nginx proxy_read_timeout, the Ingress's proxy-read-timeout)` },
    why: "the edge stops waiting for the gateway then and answers 504 itself, without the platform's error body or the request's id",
  },
  {
    smaller: { service: "ai-orchestrator", key: "ORCH_EVALUATION_WAIT_MS" },
    larger: { service: GATEWAY, key: "PROXY_TIMEOUT_MS" },
    strict: true,
    why: "a manual evaluation asked while another runs waits this long for its answer; the gateway would answer 504 first",
  },
  {
    smaller: { service: "payment-service", key: "PAYMENT_IDEMPOTENT_WAIT_MS" },
    larger: { service: GATEWAY, key: "PROXY_TIMEOUT_MS" },
    strict: true,
    why: "a payment request repeated with its idempotency key waits this long for the first one's outcome; the gateway would answer 504 first",
  },
  {
    smaller: { service: "payment-service", key: "PAYMENT_CHARGE_LOCK_WAIT_MS" },
    larger: { fixed: POSTGRES_CONNECT_TIMEOUT_MS.default, name: `payment-service POSTGRES_CONNECT_TIMEOUT_MS (${POSTGRES_CONNECT_TIMEOUT_MS.default}, the kit's default: no stack sets it)` },
    strict: true,
    why: "a charge's wait for a lock connection runs inside the pool's own bound, which is the making's: at or over it the pool's timeout ends the wait first, and a charge that met connections still being made answers a datastore outage instead of 503 CHARGE_LOCKS_BUSY with its Retry-After (the service refuses it at start too)",
  },
  {
    smaller: { service: "payment-service", key: "PAYMENT_PROCESSOR_TIMEOUT_MS" },
    larger: { service: "payment-service", key: "PAYMENT_CHARGE_DEADLINE_MS" },
    why: "each attempt at the processor runs inside the charge's deadline: a longer one is cut at the deadline (the service refuses it at start too)",
  },
  {
    smaller: [
      { service: "payment-service", key: "PAYMENT_CHARGE_LOCK_WAIT_MS" },
      { service: "payment-service", key: "PAYMENT_CHARGE_DEADLINE_MS" },
    ],
    plus: { ms: CHARGE_WRITES_MS, name: "the charge's own writes" },
    larger: PROXY_TIMEOUT,
    strict: true,
    why: "a card charge waits for a lock connection, then for the processor until its deadline (the SDK's retries inside it): the gateway would answer 504 for a charge the processor made",
  },
  {
    smaller: [
      { service: "ai-orchestrator", key: "ORCH_PREDICT_TIMEOUT_MS" },
      { service: "ai-orchestrator", key: "ORCH_REGIMES_TIMEOUT_MS" },
    ],
    larger: PROXY_TIMEOUT,
    strict: true,
    why: "an evaluation asked through the API waits for ml-predictor's prediction, then for each symbol's similar regimes (one symbol counted here): the gateway would answer 504 for an evaluation that decides and submits after",
  },
  {
    smaller: { service: "order-management", key: "OM_SUBMIT_DEADLINE_MS" },
    larger: PROXY_TIMEOUT,
    strict: true,
    why: "an order's submit may commit until its deadline: the gateway would answer 504 for an order that was placed",
  },
  {
    smaller: { service: "database-service", key: "DATASTORE_CHECK_TIMEOUT_MS" },
    larger: PROXY_TIMEOUT,
    strict: true,
    why: "GET /datastores waits this long for a datastore's probe: the gateway would answer 504 in place of the report naming the datastore that did not answer",
  },
  {
    smaller: { service: GATEWAY, key: "HEALTH_TIMEOUT_MS" },
    larger: { service: GATEWAY, key: "REQUEST_TIMEOUT_MS" },
    strict: true,
    why: "the gateway's /api/health waits this long for each service's health inside the request's budget: the request's 504 would come first, in place of the report naming the service that did not answer",
  },
];

/** An order of a kit setting every service of a kind has (not one service's): judged for each such service. */
export interface KitSettingRelation {
  key: string;
  larger: SettingRef;
  strict?: boolean;
  why: string;
}

/**
 * The orders of a kit setting of every service that uses PostgreSQL and is routed by the gateway
 * (catalog `route`: the requests it proxies, bounded by its PROXY_TIMEOUT_MS), each judged with that
 * service's own value. An internal service's requests come from its peers, with timeouts of their own.
 */
export const ROUTED_POSTGRES_USER_RELATIONS: readonly KitSettingRelation[] = [
  {
    key: "POSTGRES_LOCK_WAIT_MS",
    larger: PROXY_TIMEOUT,
    strict: true,
    why: "a request's transaction waits this long for its lock's turn and the lock before answering 503: the gateway would answer 504 first, while the service goes on waiting and may still make the write after it",
  },
];

/** An order of two settings of one service, judged for each service of a kind with its own values. */
export interface OwnSettingRelation {
  key: string;
  largerKey: string;
  strict?: boolean;
  why: string;
}

/** The orders of the settings of every Kafka consumer that uses PostgreSQL (KAFKA_CONSUMERS). */
export const POSTGRES_KAFKA_CONSUMER_RELATIONS: readonly OwnSettingRelation[] = [
  {
    key: "POSTGRES_LOCK_WAIT_MS",
    largerKey: "KAFKA_SESSION_TIMEOUT_MS",
    strict: true,
    why: "a consumer's batch may wait this long for a row or an advisory lock; it heartbeats meanwhile (trading/infra/batchHeartbeats.ts), but a rebalance begun during the wait can take the member back only once the batch ends, and the group waits for it at most a session timeout: past it the member is thrown out and the batch delivered again",
  },
];

/** Whether `def` is one of KAFKA_CONSUMERS: it has the consumer settings (KAFKA_SESSION_TIMEOUT_MS). */
export const consumesKafka = (def: ServiceDefinition) => (KAFKA_CONSUMERS as readonly string[]).includes(def.name);

/** Whether `def` uses PostgreSQL (required or optional): it has the kit's POSTGRES_* settings. */
export const usesPostgres = (def: ServiceDefinition) => def.requires.includes("postgres") || def.optional.includes("postgres");

/**
 * Every cross-service order of the `deployed` services: SETTING_RELATIONS, then each of
 * ROUTED_POSTGRES_USER_RELATIONS for each routed PostgreSQL user, then each of
 * POSTGRES_KAFKA_CONSUMER_RELATIONS for each Kafka consumer using PostgreSQL, in catalog order.
 */
export function settingRelations(deployed: readonly ServiceDefinition[]): SettingRelation[] {
  const routedUsers = deployed.filter((def) => def.route !== null && usesPostgres(def));
  const perService = ROUTED_POSTGRES_USER_RELATIONS.flatMap((rel) =>
    routedUsers.map((def): SettingRelation => ({ smaller: { service: def.name as ServiceName, key: rel.key }, larger: rel.larger, strict: rel.strict, why: rel.why })),
  );
  const consumers = deployed.filter((def) => consumesKafka(def) && usesPostgres(def));
  const perConsumer = POSTGRES_KAFKA_CONSUMER_RELATIONS.flatMap((rel) =>
    consumers.map((def): SettingRelation => {
      const service = def.name as ServiceName;
      return { smaller: { service, key: rel.key }, larger: { service, key: rel.largerKey }, strict: rel.strict, why: rel.why };
    }),
  );
  return [...SETTING_RELATIONS, ...perService, ...perConsumer];
}
