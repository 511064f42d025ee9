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
