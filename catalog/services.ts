/**
 * The service catalog: the runtime contract of every microservice of the platform.
 *
 * The Pulumi program deploys exactly these services (containers on Docker, Deployments on
 * Kubernetes), Nginx routes, Prometheus scrape targets and network policies are generated from it,
 * the API gateway proxies `/api/<route>/...` with it, and the tests iterate over it. A service joins
 * the catalog only once it is built and does its job; there are no placeholders here.
 *
 * This is the contract only (what a service is and needs); how many replicas and how much CPU and
 * memory a deployment gives it are in ./sizing.ts. Pure data with no imports outside catalog/, so
 * the Pulumi program, the services, the policy pack and the tests can all load it.
 */
import type { Datastore } from "./datastores";
import { businessContracts } from "./business";

/** Credentials a service receives from stack secrets (never from literals). */
export type SecretRef = "jwt" | "binance" | "notification" | "payment";

export type Tier = "core" | "trading" | "support" | "analytics";

export interface ServiceDefinition {
  /** DNS name of the service on both targets (container hostname / Kubernetes Service name). */
  name: string;
  description: string;
  tier: Tier;
  /** HTTP port the service listens on (also serves /health, /ready, /metrics). */
  port: number;
  /**
   * The platform's single public entry: the edge (Nginx on Docker, the Ingress on Kubernetes)
   * forwards every public route to it, it authenticates and proxies to the routed services (its
   * `calls` are every routed service), and it receives the stack's rate limits. Exactly one.
   */
  entryPoint: boolean;
  /**
   * Public route segment: the entry point proxies `/api/<route>/...` to this service and the edge
   * forwards `/api/<route>/` to the entry point. `null` means internal only.
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
  /**
   * Never more than one instance, not even during a rollout: its state or subscription lives in one
   * process. Deployments run exactly one replica with stop-before-start rollouts.
   */
  singleton: boolean;
  /**
   * When set, the service is also run once as a one-shot job (container or Kubernetes Job) with
   * these arguments before the rest of the fleet starts; database-service runs migrations this way.
   */
  preDeployJob?: { args: string[] };
  /**
   * When set, a command of the service also runs on a schedule (a Kubernetes CronJob; on Docker a
   * long-running container whose cron runner starts it), as the workload `<service>-<name>`, with
   * the service's environment and credentials, in the named image: `services`, or `trainer` (the
   * services image plus Python and the training code, ml/Dockerfile). The cron expression is the
   * stack configuration key `scheduleKey` (trading:<key>). ml-predictor retrains its model this way.
   * `minRunSeconds` is the least time one run needs (default 10 min): the stack refuses a schedule
   * whose shortest gap is under twice it (stacks/config.ts), as every run would be stopped unfinished.
   * `runTimeoutSeconds` bounds one run (default 1 h, at most half the schedule's shortest gap:
   * components/monitoring/scheduled-jobs.ts runTimeoutSeconds): a CronJob's activeDeadlineSeconds,
   * the Docker cron runner's --timeout, and when ScheduledJobRunUnfinished reports a run with no end.
   */
  scheduledJob?: { name: string; args: string[]; image: "services" | "trainer"; scheduleKey: string; runTimeoutSeconds?: number; minRunSeconds?: number };
  /**
   * Scheduled jobs outside the catalog whose runs (scheduled_job_runs) this service exports on
   * /metrics with its own job's, by workload name: the backup CronJobs (postgres-backup, written by
   * its script; clickhouse-backup, written by its run recorder container; components/data/backup.ts),
   * which run in the datastores' images and have no service of their own.
   * database-service, which owns the schema, exports it; the gauges are absent while no run is recorded.
   */
  exportsJobRuns?: string[];
  /**
   * The platform's trace collector (chain-debug): every other deployed service exports its spans to
   * it (OTLP/HTTP at `otlpTracesUrl`), which the network policies allow. At most one.
   */
  collectsTraces: boolean;
  /**
   * Reads the stack's market data source (trading:marketDataSource): with `binance` it calls
   * Binance's REST API and subscribes to its websocket stream, so it needs internet egress then
   * (components/internet-egress.ts). data-bridge only.
   */
  ingestsMarketData?: boolean;
}

export type Contract = Omit<ServiceDefinition, "name" | "entryPoint" | "singleton" | "calls" | "collectsTraces"> &
  Partial<Pick<ServiceDefinition, "entryPoint" | "singleton" | "calls" | "collectsTraces">>;

/** In deployment order of importance; the order is also the order of lists shown to users. */
const contracts = {
  "api-gateway": {
    description: "Single entry behind Nginx: JWT/API-key auth, rate limits, proxy to the services",
    tier: "core",
    port: 3001,
    entryPoint: true,
    route: null,
    anonymousPaths: [],
    requires: ["dragonfly"],
    // Usage events (one per request) go to the event stream when it is deployed.
    optional: ["redpanda"],
    // calls: every routed service (derived below)
    secrets: ["jwt"],
  },
  "user-management": {
    description: "Registration, login, JWT access/refresh tokens, roles, lockout, API keys",
    tier: "support",
    port: 8010,
    route: "users",
    anonymousPaths: ["/register", "/login", "/refresh"],
    requires: ["postgres", "dragonfly"],
    optional: [],
    secrets: ["jwt"],
  },
  "configuration-service": {
    description: "Versioned per-namespace configuration with audit trail, cache and change notification",
    tier: "core",
    port: 8012,
    route: "config",
    anonymousPaths: [],
    requires: ["postgres", "dragonfly"],
    optional: [],
    secrets: [],
  },
  "database-service": {
    description: "Owns schema migrations of every datastore and reports their health and latency",
    tier: "core",
    port: 8008,
    route: "database",
    anonymousPaths: [],
    requires: ["postgres"],
    optional: ["dragonfly", "clickhouse", "redpanda", "arangodb", "weaviate"],
    secrets: [],
    preDeployJob: { args: ["migrate"] },
    exportsJobRuns: ["postgres-backup", "clickhouse-backup"],
  },
  "central-hub": {
    description: "Service registry with TTL heartbeats, fleet view and locks for singleton jobs",
    tier: "support",
    port: 7000,
    route: "hub",
    anonymousPaths: [],
    requires: ["dragonfly"],
    optional: [],
    secrets: [],
  },
  "data-bridge": {
    description: "Market data in: synthetic / replay / Binance bars to Kafka, ClickHouse batches and last prices in Dragonfly",
    tier: "trading",
    port: 5001,
    route: "market",
    anonymousPaths: [],
    requires: ["redpanda", "dragonfly"],
    optional: ["clickhouse"],
    secrets: [],
    // One subscriber per symbol set: a second instance would publish every bar twice.
    singleton: true,
    ingestsMarketData: true,
  },
  "order-management": {
    description: "Order lifecycle in PostgreSQL: idempotent submission, pre-trade risk, state machine, transactional outbox",
    tier: "trading",
    port: 9002,
    route: "orders",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: ["dragonfly"],
    secrets: [],
  },
  "trading-engine": {
    description: "Executes accepted orders on the paper exchange (or Binance in live mode) and emits fills",
    tier: "trading",
    port: 9000,
    route: "trading",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    secrets: ["binance"],
    // The order book lives in one process (state rebuilt from PostgreSQL on restart).
    singleton: true,
  },
  "portfolio-manager": {
    description: "Positions, cash and PnL per user from fills, idempotent per fill id",
    tier: "trading",
    port: 9001,
    route: "portfolio",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: ["dragonfly"],
    secrets: [],
  },
  "risk-analyzer": {
    description: "Pre-trade risk check endpoint, historical VaR from ClickHouse candles, and the kill switch (audited writer of the trading state)",
    tier: "trading",
    port: 8022,
    route: "risk",
    anonymousPaths: [],
    requires: ["postgres"],
    optional: ["dragonfly", "clickhouse"],
    secrets: [],
  },
  "compliance-monitor": {
    description: "Surveillance of orders and fills (wash trades, spoofing, limits) with an append-only audit trail",
    tier: "trading",
    port: 8014,
    route: "compliance",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    secrets: [],
    // Rule state (time windows) is per process: one consumer sees every event.
    singleton: true,
  },
  "ml-predictor": {
    description: "Serves the promoted LightGBM model (ONNX) on features from the latest bars; model registry, promote/rollback, retraining job",
    tier: "analytics",
    port: 8021,
    route: "ml",
    anonymousPaths: [],
    requires: ["postgres", "clickhouse"],
    optional: ["weaviate"],
    secrets: [],
    // 3,000 bars train in ~13 s (README); an hour leaves room for the full history of every symbol.
    scheduledJob: { name: "retrain", args: ["train"], image: "trainer", scheduleKey: "mlRetrainSchedule", runTimeoutSeconds: 3_600 },
  },
  "backtesting-engine": {
    description: "Backtests, parameter sweeps and walk-forward runs of the built-in strategies as jobs shared by the replicas; results in PostgreSQL, curves in ClickHouse",
    tier: "analytics",
    port: 8015,
    route: "backtests",
    anonymousPaths: [],
    requires: ["postgres", "clickhouse"],
    optional: [],
    secrets: [],
  },
  "ai-orchestrator": {
    description: "Per-user AI strategies: predictions, market state and similar past regimes into orders, within risk, the kill switch and each strategy's stop; every decision recorded",
    tier: "analytics",
    port: 8020,
    route: "ai",
    anonymousPaths: [],
    requires: ["postgres", "dragonfly"],
    optional: ["weaviate"],
    calls: ["ml-predictor", "order-management"],
    secrets: [],
    // The scheduler lives in one process: two would evaluate every strategy twice.
    singleton: true,
  },
  "ai-chain-analytics": {
    description: "The AI tier's decision chains (signal, decision, order, fills, PnL): hit rate, PnL attribution, slippage and latency per model version and strategy; graph in ArangoDB",
    tier: "analytics",
    port: 8031,
    route: "ai-chains",
    anonymousPaths: [],
    requires: ["clickhouse", "redpanda"],
    optional: ["arangodb"],
    calls: ["ai-orchestrator"],
    secrets: [],
    // The decision pull keeps its cursor in the process: one instance.
    singleton: true,
  },
  ...businessContracts,
  "chain-debug": {
    description: "Error tracking and request traces: OTLP spans from every service in ClickHouse, errors grouped by fingerprint, one request's path across services (admin)",
    tier: "support",
    port: 8030,
    route: "debug",
    anonymousPaths: [],
    requires: ["clickhouse"],
    optional: [],
    secrets: [],
    collectsTraces: true,
  },
} satisfies Record<string, Contract>;

/** Name of a catalog service (type-checked: sizing and tests cannot name a service that is not here). */
export type ServiceName = keyof typeof contracts;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function build(): readonly ServiceDefinition[] {
  const entries: ServiceDefinition[] = Object.entries(contracts as Record<string, Contract>).map(([name, c]) => ({
    name,
    ...c,
    entryPoint: c.entryPoint ?? false,
    singleton: c.singleton ?? false,
    calls: c.calls ?? [],
    collectsTraces: c.collectsTraces ?? false,
  }));
  const routed = entries.filter((s) => s.route !== null).map((s) => s.name);
  // The entry point calls every routed service; derived, not a second list kept in sync.
  return deepFreeze(entries.map((s) => (s.entryPoint ? { ...s, calls: [...s.calls, ...routed] } : s)));
}

export const catalog: readonly ServiceDefinition[] = build();

/**
 * Name of a service's scheduled job (catalog `scheduledJob`), e.g. ml-predictor-retrain: its
 * workload, and the key its runs are recorded under (scheduled_job_runs, the `scheduled_job` label).
 */
export const scheduledJobName = (service: string, job: string) => `${service}-${job}`;

export function findService(name: string): ServiceDefinition | undefined {
  return catalog.find((s) => s.name === name);
}

/** The platform's single public entry (the API gateway). */
export function entryPoint(services: readonly ServiceDefinition[] = catalog): ServiceDefinition | undefined {
  return services.find((s) => s.entryPoint);
}

/** The deployed trace collector (chain-debug), if any. */
export function traceCollector(services: readonly ServiceDefinition[] = catalog): ServiceDefinition | undefined {
  return services.find((s) => s.collectsTraces);
}

/** Where services export spans (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) on both targets. */
export function otlpTracesUrl(collector: ServiceDefinition): string {
  return `${defaultServiceUrl(collector)}/internal/otlp/v1/traces`;
}

/** Environment variable a service reads for a peer's base URL (tests point it at loopback). */
export function serviceUrlEnvVar(name: string): string {
  return `SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`;
}

/** Default base URL of a service on both targets: its DNS name and catalog port. */
export function defaultServiceUrl(service: ServiceDefinition): string {
  return `http://${service.name}:${service.port}`;
}
