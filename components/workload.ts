/**
 * The deployment-target abstraction: a workload spec says WHAT runs (image, env, ports, storage,
 * health, resources, security, who it talks to); a runtime (Docker or Kubernetes, in
 * components/runtime/) decides HOW. Components build specs and call the runtime's capabilities
 * (deploy, schedule, expose, buildImage, operator addresses); they never import `@pulumi/docker` or
 * `@pulumi/kubernetes` and never ask which runtime they have. What a target cannot do is stated in
 * `RuntimeCapabilities`, not discovered by testing a class.
 */
import * as pulumi from "@pulumi/pulumi";
import type { InternetEgress } from "./internet-egress";
import { LABEL_NAME, LABEL_PART_OF, LABEL_ROLE, LABEL_SINGLETON, LABEL_WORKLOAD, PART_OF, WorkloadRole } from "../catalog/labels";

export type { WorkloadRole };
export { LABEL_BACKUP_OF, LABEL_PROMETHEUS_RULES, LABEL_ROLE, LABEL_SINGLETON, LABEL_WORKLOAD } from "../catalog/labels";
export type WorkloadKind = "stateful" | "stateless" | "job";

/**
 * Time limit of a one-shot job (kind "job" given to `deploy`: the migrations), in seconds: an hour, on
 * every runtime (Kubernetes: the Job's activeDeadlineSeconds, retries included; Docker: the provider's
 * attachTimeout of the one-shot container). A migration run waits up to MIGRATE_LOCK_TIMEOUT_MS (5 min
 * by default) for another run's lock before migrating, so an hour leaves a slow migration room, and a
 * run still going then is stuck (a peer that never answers), holding its advisory lock and
 * connections, and on Docker `pulumi up` and the stack's lock with them: stopped instead of kept
 * forever (policy job-active-deadlines).
 */
export const ONE_SHOT_JOB_DEADLINE_SECONDS = 3_600;

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

/** How an image names the file of a secret variable NAME: NAME_FILE, or NAME__FILE (Grafana). */
export type SecretFileSuffix = "_FILE" | "__FILE";

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
  /**
   * The image reads each secret variable NAME from the file another variable names: NAME + this
   * suffix ("_FILE": the services' kit, the local datastore images' entrypoints; "__FILE": Grafana).
   * Docker then writes secretEnv as owner-only files under /run/secrets and sets only those path
   * variables (a container's variables are shown by `docker inspect` and inherited by every child
   * process); Kubernetes keeps secretKeyRef. Without it Docker sets secretEnv as variables.
   */
  secretEnvFiles?: SecretFileSuffix;
  ports: PortSpec[];
  volumes: VolumeSpec[];
  files: FileSpec[];
  /** Required for everything but jobs (a job runs to completion; nothing restarts it on a probe). */
  liveness?: ProbeSpec;
  readiness?: ProbeSpec;
  resources: ResourceSpec;
  replicas: number;
  security: SecuritySpec;
  /** Workloads this one opens connections to (network policy egress, start order). */
  connectsTo: string[];
  /** Workloads allowed to connect to this one (network policy ingress). */
  acceptsFrom: string[];
  /** What it must reach outside the platform (the exchange in live mode, an SMTP relay): components/internet-egress.ts. */
  internetEgress?: InternetEgress;
  /**
   * Exactly one instance, never two even during a rollout (Kubernetes: Recreate strategy, no
   * autoscaler; labelled trading.io/singleton so the availability policies know why).
   */
  singleton?: boolean;
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

/** A job run on a cron schedule (the datastore backups, ml-predictor's retraining). */
export interface ScheduledJobSpec extends WorkloadSpec {
  kind: "job";
  /** Five-field cron expression, UTC. */
  schedule: string;
  /**
   * Time limit of one run, in seconds: a CronJob's activeDeadlineSeconds, the cron runner's --timeout
   * on Docker. Every job has one, computed where its spec is made (runTimeoutSeconds of
   * components/monitoring/scheduled-jobs.ts: the schedule's default or the job's own, capped by its
   * schedule), so no runtime picks one of its own.
   */
  runTimeoutSeconds: number;
  /** The whole command of one run (exec form); a cron runner wraps it where the runtime has no scheduler. */
  command: string[];
  /**
   * How the job's image starts the platform's cron runner (services/src/cron.ts), when it carries
   * one (the services image and the trainer built on it do; the datastore images the backups run
   * in do not). Needed where `capabilities.scheduledJobImages` is "with-cron-runner".
   */
  cronRunner?: string[];
  /** A second container of each run, where the runtime can run one (`capabilities.jobCompanions`). */
  companion?: JobCompanionSpec;
}

/**
 * A container run beside a scheduled job's command in each of its runs (Kubernetes: a second
 * container of the run's pod, so the time limit, a drain or a deletion stops both at once), from its
 * own image and with its own credentials, which the job's container never receives unless it holds
 * the same value already (one key of the Secret both reference). The two share one empty directory,
 * mounted in both at `sharedDir`, and nothing else: a backup's run recorder reads the backup's
 * outcome and heartbeat there (components/data/backup.ts).
 */
export interface JobCompanionSpec {
  name: string;
  image: pulumi.Input<string>;
  command: string[];
  env: Record<string, pulumi.Input<string>>;
  /** Credentials of the companion alone (Kubernetes: keys of the job's Secret that only its container references). */
  secretEnv: Record<string, pulumi.Input<string>>;
  resources: ResourceSpec;
  /** Numeric uid/gid the companion's image runs as: never root, like the job's. */
  runAsUser: number;
  runAsGroup?: number;
  /** Where both containers mount the shared directory. */
  sharedDir: string;
}

/** Port of the cron runner's status (GET /health, /metrics) inside a scheduler container. */
export const CRON_RUNNER_STATUS_PORT = 9464;

/** A public route: a path prefix (ending in "/") or an exact path, served by the entry point. */
export interface Route {
  path: string;
  /** Catalog service the route belongs to (behind the entry point). */
  service: string;
}

/** The platform's public edge: HTTPS routes to the entry point. */
export interface EdgeSpec {
  name: string;
  routes: Route[];
  /** The entry point every route goes to. */
  backend: { host: string; port: number };
  /** Public host name. */
  host: string;
  /** Certificate and key from the stack's secrets; without them the runtime's own TLS source (cert-manager, self-signed proxy). */
  tls?: { cert: pulumi.Output<string>; key: pulumi.Output<string> };
  /**
   * The reverse proxy a runtime without an ingress controller runs itself (Docker: an Nginx
   * workload terminating TLS). Runtimes with an ingress controller ignore it.
   */
  proxy: WorkloadSpec;
  /**
   * The default backend an ingress-nginx controller sends its own refusals to, so they answer in the
   * platform's JSON shape (components/edge/error-pages.ts). Deployed by the Kubernetes runtime when
   * the IngressClass is ingress-nginx's; others ignore it.
   */
  errorPages?: WorkloadSpec;
  dependsOn: pulumi.Resource[];
}

export interface ExposedEdge {
  url: string;
  /** The proxy workload, where the runtime runs one. */
  workload?: DeployedWorkload;
}

/** An image built from a Dockerfile by the program (the services image). */
export interface ImageBuildSpec {
  /** Full name without tag, e.g. "localhost/ai-trading/services" or "registry.example.com/ai-trading/services". */
  repository: string;
  tag: string;
  context: string;
  dockerfile: string;
  /** Values may be outputs (the trainer is built FROM the services image the program just built). */
  buildArgs: Record<string, pulumi.Input<string>>;
  /** Credentials for pushing, when the registry needs them. */
  registryAuth?: { username: string; password: pulumi.Output<string> };
}

/** An image the program built. */
export interface BuiltImage {
  /** The reference workloads run (Docker: the local tag; a registry: the pushed digest). */
  ref: pulumi.Output<string>;
  /**
   * Changes whenever the image's content does (Docker: the local image ID; a registry: the digest).
   * An image built FROM this one takes it as a build argument, so it is rebuilt with it (a local tag
   * alone stays the same string when its content changes).
   */
  contentId: pulumi.Output<string>;
}

/** What a target can and cannot do, so components (and the topology) never test a runtime's class. */
export interface RuntimeCapabilities {
  /** Runs jobs on a schedule (Kubernetes: CronJobs; Docker: a container running the platform's cron runner). */
  scheduledJobs: boolean;
  /**
   * Which images a scheduled job may use. "any": the cluster starts a fresh pod of the job's image
   * at each tick (CronJob). "with-cron-runner": one long-running container of the job's image runs
   * the schedule itself, so the image must carry the cron runner (`ScheduledJobSpec.cronRunner`).
   */
  scheduledJobImages: "any" | "with-cron-runner";
  /**
   * Who receives public traffic: the cluster's ingress controller (the runtime turns the edge into an
   * Ingress; the entry point accepts traffic from INGRESS_CONTROLLER), or a proxy workload the
   * platform runs itself (the edge spec's proxy, which then connects to the entry point).
   */
  edge: "ingress-controller" | "proxy-workload";
  /**
   * Runs a scheduled job's `companion` beside its command in each run (Kubernetes: a second container
   * of the pod). The Docker runtime's scheduler runs one command per tick in one container: none.
   */
  jobCompanions: boolean;
}

export interface Runtime {
  readonly capabilities: RuntimeCapabilities;
  /** Long-running workloads (stateful, stateless) and one-shot jobs the fleet waits for. */
  deploy(spec: WorkloadSpec, parent: pulumi.Resource): DeployedWorkload;
  /**
   * A job on a schedule; only when `capabilities.scheduledJobs` and the image suits
   * `capabilities.scheduledJobImages` (`canSchedule`; throws a ResourceError otherwise).
   */
  schedule(spec: ScheduledJobSpec, parent: pulumi.Resource): DeployedWorkload;
  /** The public edge (Ingress, or the proxy workload). */
  expose(edge: EdgeSpec, parent: pulumi.Resource): ExposedEdge;
  /** Builds (and pushes, where the target pulls from a registry) an image; returns the reference pods run. */
  buildImage(name: string, spec: ImageBuildSpec, parent: pulumi.Resource): BuiltImage;
  /** Host name operators use to reach a workload (Docker: the admin bind address; Kubernetes: its cluster DNS name). */
  operatorHost(workload: string): string;
  /** URL an operator opens for a workload's HTTP port, or how to get there when it is not published. */
  operatorUrl(workload: string, port: number, hostPort?: number): string;
}

/** Whether a runtime can run a scheduled job whose image does (not) carry the cron runner. */
export function canSchedule(capabilities: RuntimeCapabilities, job: { cronRunner?: string[] }): boolean {
  return capabilities.scheduledJobs && (capabilities.scheduledJobImages === "any" || job.cronRunner !== undefined);
}

/** Pseudo-workload meaning "the cluster's ingress controller" in `acceptsFrom`. */
export const INGRESS_CONTROLLER = "@ingress";

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
  if (spec.kind !== "job" && !spec.liveness?.exec && !spec.liveness?.http) fail("a liveness check is required");
}

/** Validates a scheduled job's companion against the job it runs beside. */
export function validateJobCompanion(spec: ScheduledJobSpec, parent?: pulumi.Resource): void {
  const companion = spec.companion;
  if (!companion) return;
  const fail = (msg: string): never => {
    throw new pulumi.ResourceError(`workload '${spec.name}', companion '${companion.name}': ${msg}`, parent);
  };
  if (!/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(companion.name) || companion.name === spec.name) fail("name must be a DNS label other than the job's");
  if (companion.runAsUser === 0) fail("runs as root");
  if (!companion.sharedDir.startsWith("/")) fail(`sharedDir '${companion.sharedDir}' is not an absolute path`);
  // One Secret holds both containers' credentials, each referencing its own keys only.
  for (const key of Object.keys(companion.secretEnv)) {
    // The same credential (the same value) is one key both reference: the PostgreSQL backup's
    // recorder needs the password its pg_dump has. A different value would overwrite the job's.
    if (key in spec.env || (key in spec.secretEnv && spec.secretEnv[key] !== companion.secretEnv[key])) fail(`${key} is also a variable of the job's container, with another value`);
    if (key in companion.env) fail(`${key} is both a plain and a secret variable`);
  }
  cpuToCores(companion.resources.cpu);
  memoryToMiB(companion.resources.memory);
}

/** Probe defaults used by most workloads. */
export function probe(check: Pick<ProbeSpec, "exec" | "http">, overrides: Partial<ProbeSpec> = {}): ProbeSpec {
  return { intervalSeconds: 10, timeoutSeconds: 5, retries: 5, startPeriodSeconds: 20, ...check, ...overrides };
}
