/**
 * Deployment sizing defaults per catalog service: replicas, autoscaler bounds and CPU/memory. Kept
 * apart from the runtime contract (./services.ts): the services never read these, stacks override
 * replicas (`trading:replicas`, `trading:serviceReplicas`), and operators tune them per cluster.
 */
import { ServiceDefinition, ServiceName } from "./services";

export interface ServiceScaling {
  /** Replicas on Kubernetes when the stack does not override them. Stateless services use >= 2. */
  replicas: number;
  /** Bounds for the HorizontalPodAutoscaler on Kubernetes. */
  minReplicas: number;
  maxReplicas: number;
}

export interface ServiceResources {
  /** Kubernetes quantity, e.g. "250m"; also mapped to Docker CPU limits. */
  cpu: string;
  /** Kubernetes quantity, e.g. "256Mi"; also the Docker memory limit. */
  memory: string;
}

export interface ServiceSizing {
  scaling: ServiceScaling;
  resources: ServiceResources;
}

/**
 * The highest Docker PID limit (HostConfig.PidsLimit: processes and threads) accepted by default: above
 * it a limit no longer bounds a fork bomb on the host. The policy pack's `pids-limit` takes it as its
 * default `maxPidsLimit` (a stack's policy config may change it there), and the stack config refuses
 * `trading:dockerPidsLimit*` above it, so a value the config accepts is one the pack's default accepts.
 */
export const MAX_PIDS_LIMIT = 32_768;

const small: ServiceResources = { cpu: "250m", memory: "256Mi" };
const stateless: ServiceScaling = { replicas: 2, minReplicas: 2, maxReplicas: 6 };
/** The only sizing a singleton (catalog `singleton: true`) can have. */
const single: ServiceScaling = { replicas: 1, minReplicas: 1, maxReplicas: 1 };

/** `scaling` is omitted for singletons: they run exactly one instance. */
const defaults: Record<ServiceName, { scaling?: ServiceScaling; resources: ServiceResources }> = {
  "api-gateway": { scaling: { replicas: 2, minReplicas: 2, maxReplicas: 10 }, resources: { cpu: "500m", memory: "256Mi" } },
  "user-management": { scaling: stateless, resources: small },
  "configuration-service": { scaling: stateless, resources: small },
  "database-service": { scaling: stateless, resources: small },
  "central-hub": { scaling: stateless, resources: small },
  "data-bridge": { resources: small },
  "order-management": { scaling: stateless, resources: small },
  "trading-engine": { resources: { cpu: "500m", memory: "256Mi" } },
  "portfolio-manager": { scaling: stateless, resources: small },
  "risk-analyzer": { scaling: stateless, resources: small },
  "compliance-monitor": { resources: small },
  // onnxruntime's native session (~50 MB) next to Node.
  "ml-predictor": { scaling: stateless, resources: { cpu: "500m", memory: "512Mi" } },
  // CPU-bound jobs, one at a time per replica: more replicas, not more threads, run sweeps faster.
  "backtesting-engine": { scaling: { replicas: 2, minReplicas: 2, maxReplicas: 8 }, resources: { cpu: "1", memory: "1Gi" } },
  "ai-orchestrator": { resources: small },
  "ai-chain-analytics": { resources: small },
  "payment-service": { scaling: stateless, resources: small },
  "usage-monitoring": { scaling: stateless, resources: small },
  "billing-service": { scaling: stateless, resources: small },
  "notification-service": { scaling: stateless, resources: small },
  "performance-analytics": { scaling: stateless, resources: small },
  "revenue-analytics": { scaling: stateless, resources: small },
  "chain-debug": { scaling: stateless, resources: small },
};

/**
 * CPU and memory of each run of a service's scheduled job (catalog `scheduledJob`): the retraining
 * (features, 4-fold walk-forward LightGBM, ONNX export) needs more than serving.
 */
const scheduledJobResources: Partial<Record<ServiceName, ServiceResources>> = {
  "ml-predictor": { cpu: "1", memory: "1Gi" },
};

/** Resources of a service's scheduled job; throws when catalog/sizing.ts has none for it. */
export function scheduledJobSizing(service: Pick<ServiceDefinition, "name">): ServiceResources {
  const resources = (scheduledJobResources as Record<string, ServiceResources | undefined>)[service.name];
  if (!resources) throw new Error(`catalog/sizing.ts has no scheduled-job resources for service '${service.name}'`);
  return resources;
}

/** Sizing of a catalog service; throws for a service without an entry or a contradictory one. */
export function sizingOf(service: Pick<ServiceDefinition, "name" | "singleton">): ServiceSizing {
  const entry = (defaults as Record<string, (typeof defaults)[ServiceName] | undefined>)[service.name];
  if (!entry) throw new Error(`catalog/sizing.ts has no entry for service '${service.name}'`);
  if (service.singleton) {
    if (entry.scaling) throw new Error(`catalog/sizing.ts: '${service.name}' is a singleton; it takes no scaling`);
    return { scaling: single, resources: entry.resources };
  }
  if (!entry.scaling) throw new Error(`catalog/sizing.ts: '${service.name}' needs scaling (it is not a singleton)`);
  return { scaling: entry.scaling, resources: entry.resources };
}

/**
 * POSTGRES_POOL_MAX of a horizontally scaled service's replica on Kubernetes, where the stack sets
 * none (a singleton keeps the service's own default, 10: its one replica carries all the load, and
 * ai-orchestrator's ORCH_EVAL_CONCURRENCY of 8 evaluations hold one connection each). At 10 a replica,
 * the autoscalers' maxima and a surge pod made 951 connections against one PostgreSQL. A replica is one
 * Node event loop on 250m of CPU: a statement holds its connection for a round trip (about a
 * millisecond in the cluster), a transaction for a few, so a replica at its CPU limit keeps about one
 * busy (a few hundred statements a second); the autoscaler adds replicas, and pools, before it needs
 * more. Three: one for a background loop (an outbox drain holds its connection through the publish,
 * a reconciler, a sweep) and two for requests, which past them wait for one (POSTGRES_CONNECT_TIMEOUT_MS)
 * rather than fail; the migration job needs two (its run lock and the migrations' own connection).
 */
export const KUBERNETES_REPLICA_POSTGRES_POOL = 3;

/** The pool a replica of `service` runs with on Kubernetes where the stack sets none; undefined for a singleton (the service's default). */
export function kubernetesPostgresPool(service: Pick<ServiceDefinition, "singleton">): number | undefined {
  return service.singleton ? undefined : KUBERNETES_REPLICA_POSTGRES_POOL;
}

/**
 * The PostgreSQL server's memory limit in GiB where the stack sets none (`trading:postgresMemoryGi`),
 * on both runtimes (Docker's memory limit too): what PostgreSQL can use at max_connections
 * (postgresMemoryNeed) at the catalog's defaults, 335 connections on Kubernetes at the autoscalers'
 * maxima (3,746 MiB), 184 on Docker (2,228 MiB). At 1 GiB, the size before session 54, it held 64.
 */
export const POSTGRES_MEMORY_GI = 4;
/** The PostgreSQL server's CPU limit. */
export const POSTGRES_CPU = "1";

/**
 * What PostgreSQL's memory is made of, in MiB, at the settings the stacks run it with (the server's
 * defaults: they set none but max_connections).
 */
export const POSTGRES_MEMORY = {
  /** shared_buffers (128MB, the default). */
  sharedBuffersMiB: 128,
  /** The rest of its shared memory at no connections (`postgres -C shared_memory_size`: 138 MB at 100 connections, of which 128 are the buffers). */
  otherSharedMiB: 10,
  /** Shared memory each max_connections slot adds (locks, PGPROC): shared_memory_size grows 46 MB from 100 to 1000. */
  sharedPerConnectionKiB: 52,
  /**
   * A backend's own memory (anonymous pages and page tables) once it has read and prepared a statement
   * on every table of the schema, as a pool's connection has after a while: 5.6 MiB the largest of 40
   * (bench/postgres-connection-memory.ts, PostgreSQL 15), rounded up.
   */
  backendMiB: 6,
  /** work_mem (4MB, the default): what one sort or hash of a running query may take before it spills to disk. */
  workMemMiB: 4,
  /** autovacuum_max_workers (3) and maintenance_work_mem (64MB), which each worker may take for a large table. */
  autovacuumWorkers: 3,
  maintenanceWorkMemMiB: 64,
  /** The other server processes (checkpointer, background writer, WAL writer, autovacuum launcher, logical replication launcher). */
  backgroundProcesses: 5,
} as const;

export interface MemoryNeed {
  totalMiB: number;
  /** What makes up the total, for the refusal. */
  parts: string[];
}

/**
 * The memory PostgreSQL can use at `maxConnections`: every connection a backend's own memory plus one
 * work_mem (one sort or hash at its limit at once: the platform's statements are lookups by key and
 * small sorts; a query of several sort nodes may take more), the shared memory (shared_buffers and what
 * grows with max_connections), the autovacuum workers with their maintenance_work_mem, the other
 * server processes. The page cache is left out: the kernel reclaims it before it kills.
 */
export function postgresMemoryNeed(maxConnections: number, m: typeof POSTGRES_MEMORY = POSTGRES_MEMORY): MemoryNeed {
  const perConnection = m.backendMiB + m.workMemMiB;
  const connections = maxConnections * perConnection;
  const shared = m.sharedBuffersMiB + m.otherSharedMiB + Math.ceil((maxConnections * m.sharedPerConnectionKiB) / 1024);
  const autovacuum = m.autovacuumWorkers * (m.backendMiB + m.maintenanceWorkMemMiB);
  const background = m.backgroundProcesses * m.backendMiB;
  return {
    totalMiB: connections + shared + autovacuum + background,
    parts: [
      `${maxConnections} connections x ${perConnection} MiB (a backend's own ${m.backendMiB} MiB and one work_mem of ${m.workMemMiB} MiB) = ${connections} MiB`,
      `shared memory ${shared} MiB (shared_buffers ${m.sharedBuffersMiB} MiB)`,
      `${m.autovacuumWorkers} autovacuum workers x ${m.backendMiB + m.maintenanceWorkMemMiB} MiB (maintenance_work_mem ${m.maintenanceWorkMemMiB} MiB) = ${autovacuum} MiB`,
      `${m.backgroundProcesses} server processes x ${m.backendMiB} MiB = ${background} MiB`,
    ],
  };
}
