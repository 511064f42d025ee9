/**
 * The service catalog: the single source of truth for every microservice of the platform.
 *
 * The Pulumi program deploys exactly these services (containers on Docker, Deployments on
 * Kubernetes), Nginx routes and Prometheus scrape targets are generated from it, the API gateway
 * proxies `/api/<route>/...` with it, and the tests iterate over it. A service joins the catalog
 * only once it is built and does its job; there are no placeholders here.
 *
 * This module is pure data with no imports, so the Pulumi program, the services and the tests can
 * all load it.
 */

/** The datastores a service can depend on. `redpanda` is any Kafka-protocol broker. */
export type Datastore = "postgres" | "dragonfly" | "clickhouse" | "weaviate" | "arangodb" | "redpanda";

/** Credentials a service receives from stack secrets (never from literals). */
export type SecretRef = "jwt" | "binance" | "notification";

export type Tier = "core" | "trading" | "support" | "analytics";

export interface ServiceScaling {
  /** Replicas on Kubernetes when the stack does not override them. Stateless services use >= 2. */
  replicas: number;
  /** Bounds for the HorizontalPodAutoscaler on Kubernetes. */
  minReplicas: number;
  maxReplicas: number;
}

export interface ServiceResources {
  /** Kubernetes quantity, e.g. "250m"; also mapped to Docker CPU shares / nano CPUs. */
  cpu: string;
  /** Kubernetes quantity, e.g. "256Mi"; also the Docker memory limit. */
  memory: string;
}

export interface ServiceDefinition {
  /** DNS name of the service on both targets (container hostname / Kubernetes Service name). */
  name: string;
  description: string;
  tier: Tier;
  /** HTTP port the service listens on (also serves /health, /ready, /metrics). */
  port: number;
  /**
   * Public route segment: the gateway proxies `/api/<route>/...` to this service and Nginx forwards
   * `/api/<route>/` to the gateway. `null` means internal only (reachable inside the network).
   */
  route: string | null;
  /**
   * Paths under the route that the gateway forwards without a token (for example login). Everything
   * else behind the gateway requires a valid JWT or API key.
   */
  anonymousPaths: string[];
  /** Datastores that must be enabled in the stack for this service to be deployed. */
  requires: Datastore[];
  /** Datastores used when enabled; the service degrades clearly without them. */
  optional: Datastore[];
  /** Other catalog services this one calls over HTTP (network policy allows, start order). */
  calls: string[];
  secrets: SecretRef[];
  scaling: ServiceScaling;
  resources: ServiceResources;
  /**
   * When set, the service is also run once as a one-shot job (container or Kubernetes Job) with
   * these arguments before the rest of the fleet starts; database-service runs migrations this way.
   */
  preDeployJob?: { args: string[] };
}

const small: ServiceResources = { cpu: "250m", memory: "256Mi" };
const stateless: ServiceScaling = { replicas: 2, minReplicas: 2, maxReplicas: 6 };

export const catalog: readonly ServiceDefinition[] = [
  {
    name: "api-gateway",
    description: "Single entry behind Nginx: JWT/API-key auth, rate limits, proxy to the services",
    tier: "core",
    port: 3001,
    route: null,
    anonymousPaths: [],
    requires: ["dragonfly"],
    optional: [],
    calls: [], // filled below from every routed service
    secrets: ["jwt"],
    scaling: { replicas: 2, minReplicas: 2, maxReplicas: 10 },
    resources: { cpu: "500m", memory: "256Mi" },
  },
  {
    name: "user-management",
    description: "Registration, login, JWT access/refresh tokens, roles, lockout, API keys",
    tier: "support",
    port: 8010,
    route: "users",
    anonymousPaths: ["/register", "/login", "/refresh"],
    requires: ["postgres", "dragonfly"],
    optional: [],
    calls: [],
    secrets: ["jwt"],
    scaling: stateless,
    resources: small,
  },
  {
    name: "configuration-service",
    description: "Versioned per-namespace configuration with audit trail, cache and change notification",
    tier: "core",
    port: 8012,
    route: "config",
    anonymousPaths: [],
    requires: ["postgres", "dragonfly"],
    optional: [],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
  },
  {
    name: "database-service",
    description: "Owns schema migrations of every datastore and reports their health and latency",
    tier: "core",
    port: 8008,
    route: "database",
    anonymousPaths: [],
    requires: ["postgres"],
    optional: ["dragonfly", "clickhouse", "redpanda", "arangodb", "weaviate"],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
    preDeployJob: { args: ["migrate"] },
  },
  {
    name: "central-hub",
    description: "Service registry with TTL heartbeats, fleet view and locks for singleton jobs",
    tier: "support",
    port: 7000,
    route: "hub",
    anonymousPaths: [],
    requires: ["dragonfly"],
    optional: [],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
  },
  {
    name: "data-bridge",
    description: "Market data in: synthetic / replay / Binance bars to Kafka, ClickHouse batches and last prices in Dragonfly",
    tier: "trading",
    port: 5001,
    route: "market",
    anonymousPaths: [],
    requires: ["redpanda", "dragonfly"],
    optional: ["clickhouse"],
    calls: [],
    secrets: [],
    // One subscriber per symbol set: a second replica would publish every bar twice.
    scaling: { replicas: 1, minReplicas: 1, maxReplicas: 1 },
    resources: small,
  },
  {
    name: "order-management",
    description: "Order lifecycle in PostgreSQL: idempotent submission, pre-trade risk, state machine, transactional outbox",
    tier: "trading",
    port: 9002,
    route: "orders",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: ["dragonfly"],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
  },
  {
    name: "trading-engine",
    description: "Executes accepted orders on the paper exchange (or Binance in live mode) and emits fills",
    tier: "trading",
    port: 9000,
    route: "trading",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    calls: [],
    secrets: ["binance"],
    // The order book lives in one process (state rebuilt from PostgreSQL on restart).
    scaling: { replicas: 1, minReplicas: 1, maxReplicas: 1 },
    resources: { cpu: "500m", memory: "256Mi" },
  },
  {
    name: "portfolio-manager",
    description: "Positions, cash and PnL per user from fills, idempotent per fill id",
    tier: "trading",
    port: 9001,
    route: "portfolio",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: ["dragonfly"],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
  },
  {
    name: "risk-analyzer",
    description: "Pre-trade risk check endpoint and historical VaR from ClickHouse candles",
    tier: "trading",
    port: 8022,
    route: "risk",
    anonymousPaths: [],
    requires: ["postgres"],
    optional: ["dragonfly", "clickhouse"],
    calls: [],
    secrets: [],
    scaling: stateless,
    resources: small,
  },
  {
    name: "compliance-monitor",
    description: "Surveillance of orders and fills (wash trades, spoofing, limits) with an append-only audit trail",
    tier: "trading",
    port: 8014,
    route: "compliance",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    calls: [],
    secrets: [],
    // Rule state (time windows) is per process: one consumer sees every event.
    scaling: { replicas: 1, minReplicas: 1, maxReplicas: 1 },
    resources: small,
  },
];

// The gateway calls every routed service; derive it instead of keeping a second list in sync.
const gateway = catalog.find((s) => s.name === "api-gateway");
if (gateway) {
  gateway.calls.push(...catalog.filter((s) => s.route !== null).map((s) => s.name));
}

export function findService(name: string): ServiceDefinition | undefined {
  return catalog.find((s) => s.name === name);
}

/** Environment variable a service reads for a peer's base URL (tests point it at loopback). */
export function serviceUrlEnvVar(name: string): string {
  return `SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`;
}

/** Default base URL of a service on both targets: its DNS name and catalog port. */
export function defaultServiceUrl(service: ServiceDefinition): string {
  return `http://${service.name}:${service.port}`;
}
