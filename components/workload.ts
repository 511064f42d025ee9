/**
 * The deployment-target abstraction: a workload spec says WHAT runs (image, env, ports, storage,
 * health, resources, security, who it talks to); a runtime (Docker or Kubernetes) decides HOW.
 * Components build specs; they never touch `@pulumi/docker` or `@pulumi/kubernetes` directly.
 */
import * as pulumi from "@pulumi/pulumi";
import { LABEL_NAME, LABEL_PART_OF, LABEL_ROLE, LABEL_SINGLETON, LABEL_WORKLOAD, PART_OF, WorkloadRole } from "../catalog/labels";

export type { WorkloadRole };
export { LABEL_BACKUP_OF, LABEL_PROMETHEUS_RULES, LABEL_ROLE, LABEL_SINGLETON, LABEL_WORKLOAD } from "../catalog/labels";
export type WorkloadKind = "stateful" | "stateless" | "job";

export interface PortSpec {
  name: string;
  port: number;
  /**
   * Publish outside the private network. Docker: bound to 127.0.0.1 on this host port only (never
   * 0.0.0.0). Kubernetes: only the edge is reachable from outside, through the Ingress.
   */
  hostPort?: number;
  /** Docker: host address the published port binds to; 127.0.0.1 unless an operator says otherwise. */
  bindAddress?: string;
}

export interface VolumeSpec {
  name: string;
  mountPath: string;
  sizeGi: number;
}

export interface FileSpec {
  path: string;
  content: pulumi.Input<string>;
  /** Secret files go to a Kubernetes Secret instead of a ConfigMap. */
  secret?: boolean;
}

export interface ProbeSpec {
  /** Command run inside the container (exec form). */
  exec?: string[];
  /** HTTP GET against the container's own port. */
  http?: { path: string; port: number; scheme?: "HTTP" | "HTTPS" };
  intervalSeconds: number;
  timeoutSeconds: number;
  retries: number;
  startPeriodSeconds: number;
}

export interface SecuritySpec {
  /** Numeric uid/gid the image runs as; undefined only for images that must start as root. */
  runAsUser?: number;
  runAsGroup?: number;
  /** Group owning mounted volumes (Kubernetes fsGroup). */
  fsGroup?: number;
  readOnlyRootFilesystem: boolean;
  /**
   * Docker: user (name or uid) the container runs as, stated explicitly even where the image
   * declares it, so a changed image cannot silently run as root. Defaults to runAsUser.
   */
  dockerUser?: string;
  /** Writable scratch directories (tmpfs on Docker, emptyDir on Kubernetes). */
  scratchDirs: string[];
  /**
   * Docker: numeric owner of the scratch dirs. The engine copies the image directory's mode into
   * the tmpfs but not its owner, so a dir the image keeps private (0700) needs its owner here.
   */
  scratchOwnerUid?: number;
  /** Capabilities added back after dropping ALL (for example NET_BIND_SERVICE); keep empty. */
  addCapabilities?: string[];
}

export interface ResourceSpec {
  /** CPU limit as a Kubernetes quantity, e.g. "500m" or "2". */
  cpu: string;
  /** Memory limit as a Kubernetes quantity, e.g. "512Mi" or "2Gi". */
  memory: string;
}

export interface WorkloadSpec {
  name: string;
  role: WorkloadRole;
  kind: WorkloadKind;
  image: pulumi.Input<string>;
  command?: string[];
  args?: string[];
  env: Record<string, pulumi.Input<string>>;
  /** Values that are credentials: Kubernetes Secret + secretKeyRef; secret in Pulumi state. */
  secretEnv: Record<string, pulumi.Input<string>>;
  ports: PortSpec[];
  volumes: VolumeSpec[];
  files: FileSpec[];
  liveness: ProbeSpec;
  readiness?: ProbeSpec;
  resources: ResourceSpec;
  replicas: number;
  security: SecuritySpec;
  /** Workloads this one opens connections to (network policy egress, start order). */
  connectsTo: string[];
  /** Workloads allowed to connect to this one (network policy ingress). */
  acceptsFrom: string[];
  /** Needs to reach the internet (for example the exchange API in live mode). */
  internetEgress?: boolean;
  /**
   * Exactly one instance, never two even during a rollout (Kubernetes: Recreate strategy, no
   * autoscaler; labelled trading.io/singleton so the availability policies know why).
   */
  singleton?: boolean;
  /** For Kubernetes jobs run on a schedule (backups). */
  schedule?: string;
  /**
   * Kubernetes Service type. ClusterIP unless an operator deliberately exposes a workload (the
   * policy pack rejects that for datastores and monitoring on prod).
   */
  serviceType?: "ClusterIP" | "LoadBalancer";
  /** Extra labels, e.g. trading.io/backup-of. */
  labels?: Record<string, string>;
  dependsOn?: pulumi.Resource[];
}

/** What a runtime hands back: how peers reach the workload and what to depend on. */
export interface DeployedWorkload {
  name: string;
  /** DNS name inside the private network (container alias / Service name). */
  host: string;
  /** Resources later workloads can depend on (container / StatefulSet / Job). */
  ready: pulumi.Resource[];
}

export interface Runtime {
  readonly target: "docker" | "kubernetes";
  deploy(spec: WorkloadSpec, parent: pulumi.Resource): DeployedWorkload;
}

export function workloadLabels(spec: Pick<WorkloadSpec, "name" | "role" | "labels" | "singleton">): Record<string, string> {
  return {
    [LABEL_NAME]: spec.name,
    [LABEL_PART_OF]: PART_OF,
    [LABEL_WORKLOAD]: spec.name,
    [LABEL_ROLE]: spec.role,
    ...(spec.singleton ? { [LABEL_SINGLETON]: "true" } : {}),
    ...(spec.labels ?? {}),
  };
}

/** "500m" -> 0.5, "2" -> 2 */
export function cpuToCores(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (!m) throw new Error(`invalid CPU quantity '${quantity}'`);
  return m[2] === "m" ? Number(m[1]) / 1000 : Number(m[1]);
}

/** "512Mi" -> 512, "2Gi" -> 2048 (MiB, as Docker's memory limit expects MB). */
export function memoryToMiB(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`invalid memory quantity '${quantity}' (use Mi or Gi)`);
  return m[2] === "Gi" ? Number(m[1]) * 1024 : Number(m[1]);
}

/** Validates a spec before any resource is created, so mistakes fail early and by name. */
export function validateWorkloadSpec(spec: WorkloadSpec, parent?: pulumi.Resource): void {
  const fail = (msg: string): never => {
    throw new pulumi.ResourceError(`workload '${spec.name}': ${msg}`, parent);
  };
  if (!/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(spec.name)) fail("name must be a DNS label of at most 52 characters");
  if (spec.replicas < 1 && spec.kind !== "job") fail("replicas must be at least 1");
  if (spec.kind === "stateful" && spec.volumes.length === 0) fail("a stateful workload needs a volume");
  if (spec.singleton && spec.replicas !== 1) fail(`a singleton runs exactly one replica, not ${spec.replicas}`);
  const portNumbers = new Set<number>();
  for (const p of spec.ports) {
    if (p.port < 1 || p.port > 65535) fail(`port ${p.port} out of range`);
    if (portNumbers.has(p.port)) fail(`port ${p.port} declared twice`);
    portNumbers.add(p.port);
  }
  for (const key of Object.keys(spec.env)) {
    if (key in spec.secretEnv) fail(`${key} is both a plain and a secret variable`);
  }
  cpuToCores(spec.resources.cpu);
  memoryToMiB(spec.resources.memory);
  if (!spec.liveness.exec && !spec.liveness.http) fail("a liveness check is required");
}

/** Probe defaults used by most workloads. */
export function probe(check: Pick<ProbeSpec, "exec" | "http">, overrides: Partial<ProbeSpec> = {}): ProbeSpec {
  return { intervalSeconds: 10, timeoutSeconds: 5, retries: 5, startPeriodSeconds: 20, ...check, ...overrides };
}
