/**
 * Realises workload specs on a single Docker engine: one private bridge network, named volumes,
 * containers with health checks, resource limits (memory, CPU, processes) and a hardened security
 * profile. Published ports are bound to 127.0.0.1 only; the private network is the only way in
 * otherwise.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_PART_OF, LABEL_PULUMI_STATE, LABEL_WORKLOAD, PART_OF } from "../../catalog/labels";
import {
  BuiltImage,
  canSchedule,
  cpuToCores,
  CRON_RUNNER_STATUS_PORT,
  DeployedWorkload,
  EdgeSpec,
  ExposedEdge,
  ImageBuildSpec,
  memoryToMiB,
  ONE_SHOT_JOB_DEADLINE_SECONDS,
  probe,
  ProbeSpec,
  Runtime,
  RuntimeCapabilities,
  ScheduledJobSpec,
  SecuritySpec,
  validateWorkloadSpec,
  WorkloadKind,
  WorkloadSpec,
  workloadLabels,
} from "../workload";
import { Container } from "./docker-container";
import { buildImage } from "./image-build";

export interface DockerRuntimeArgs {
  /** Prefix of container, volume and network names on the host, e.g. "ai-trading-dev". */
  prefix: string;
  /** Host address operators reach published ports on (the stack's adminBindAddress). */
  operatorBindAddress: string;
  /** IPv4 CIDR of the private network (the gateway trusts X-Forwarded-For from it); Docker picks one when unset. */
  subnet?: string;
  /** Most processes and threads of each container (HostConfig.PidsLimit), by workload kind (the stack's dockerPidsLimit* keys). */
  pidsLimits: Record<WorkloadKind, number>;
  /**
   * Where the stack's state lives (stacks/state-location.ts), set on every container as the label
   * trading.io/pulumi-state: `npm run up` tells this clone's containers from another clone's by it.
   * Not on volumes or the network: a label change replaces those, and a volume holds data.
   */
  stateLocation?: string;
}

/**
 * One engine and no scheduler of its own: a scheduled job is a long-running container of the job's
 * image running the platform's cron runner, so only images carrying it can be scheduled (the
 * services and trainer images; not the datastore images of the backups, see components/topology.ts).
 * The edge is our own Nginx workload.
 */
export const DOCKER_CAPABILITIES: RuntimeCapabilities = { scheduledJobs: true, scheduledJobImages: "with-cron-runner", edge: "proxy-workload", jobCompanions: false };

/**
 * The long-running scheduler container of a scheduled job: the image's cron runner runs the job's
 * command at each tick, never two runs at once (a CronJob's concurrencyPolicy Forbid), and serves
 * its status (last success, last exit code) on CRON_RUNNER_STATUS_PORT, which the health check reads.
 * A run past the job's time limit is stopped (--timeout), as a CronJob's activeDeadlineSeconds does.
 */
export function schedulerWorkload(spec: ScheduledJobSpec): WorkloadSpec {
  const { schedule, cronRunner, command, runTimeoutSeconds, ...rest } = spec;
  if (!cronRunner) throw new Error(`workload '${spec.name}': no cron runner in its image`);
  return {
    ...rest,
    kind: "stateless",
    replicas: 1,
    singleton: true,
    command: [...cronRunner, "--name", spec.name, "--schedule", schedule, "--timeout", String(runTimeoutSeconds), "--port", String(CRON_RUNNER_STATUS_PORT), "--", ...command],
    args: undefined,
    ports: [{ name: "cron-status", port: CRON_RUNNER_STATUS_PORT }],
    liveness: probe({ http: { path: "/health", port: CRON_RUNNER_STATUS_PORT } }, { startPeriodSeconds: 10 }),
    readiness: undefined,
  };
}

/**
 * An HTTP probe run by bash inside the container: GET over /dev/tcp, healthy on a 200 status line.
 * Docker runs it every interval in each container; the `node -e fetch(...)` it replaces started a
 * Node runtime each time, 399 ms of CPU a check here, most of what the idle dev fleet burnt (bash:
 * 46 ms, nearly all of it Docker's exec; README, "What the idle dev fleet burns"). Port and path are arguments ($0, $1), never
 * part of the script. Every image with an HTTP probe is built from Debian, where bash is essential.
 */
export const HTTP_PROBE_SCRIPT = String.raw`exec 3<>"/dev/tcp/127.0.0.1/$0" && printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3 && read -t 4 -r status <&3 && [[ $status == "HTTP/1."?" 200 "* ]]`;

/** Docker's health check from a probe spec; HTTP probes run inside the container with bash (HTTP_PROBE_SCRIPT). */
export function dockerHealthcheck(probe: ProbeSpec): docker.types.input.ContainerHealthcheck {
  if (probe.http && !/^\/[\x21-\x7e]*$/.test(probe.http.path)) throw new Error(`probe path ${JSON.stringify(probe.http.path)} must be an absolute path of visible ASCII`);
  const tests = probe.exec ? ["CMD", ...probe.exec] : ["CMD", "bash", "-c", HTTP_PROBE_SCRIPT, String(probe.http!.port), probe.http!.path];
  return {
    tests,
    interval: `${probe.intervalSeconds}s`,
    timeout: `${probe.timeoutSeconds}s`,
    retries: probe.retries,
    startPeriod: `${probe.startPeriodSeconds}s`,
  };
}

/**
 * tmpfs options of a scratch dir: owned by the container's user when known, else world-writable
 * with the sticky bit like /tmp (the engine mounts tmpfs root-owned).
 */
export function dockerTmpfsOptions(ownerUid?: number): string {
  const base = "rw,noexec,nosuid,size=64m";
  return ownerUid !== undefined ? `${base},uid=${ownerUid},gid=${ownerUid}` : `${base},mode=1777`;
}

/**
 * The numeric uid and gid a container of `security` runs as, where the spec tells: a numeric
 * dockerUser ("uid" or "uid:gid"); else runAsUser, the uid of the image manifest's user that
 * components give beside its name (stacks/images.ts), or else scratchOwnerUid, the same uid where a
 * component gives only that (the edge); the gid is runAsGroup, else the uid. Undefined when the
 * spec names its user only by name, or no user (the image's own).
 */
export function dockerNumericUser(security: SecuritySpec): { uid: number; gid: number } | undefined {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(security.dockerUser ?? "");
  const uid = numeric ? Number(numeric[1]) : (security.runAsUser ?? security.scratchOwnerUid);
  if (uid === undefined) return undefined;
  return { uid, gid: numeric?.[2] !== undefined ? Number(numeric[2]) : (security.runAsGroup ?? uid) };
}

/**
 * Docker's uploads of a workload's files: root-owned 0444, except secret files: 0400 and owned by
 * the container's numeric user (dockerNumericUser), the only one that can read them then. A spec
 * with secret files and no numeric user fails here, rather than deploying a file its container
 * cannot read.
 */
export function dockerUploads(spec: WorkloadSpec, parent?: pulumi.Resource): docker.types.input.ContainerUpload[] {
  const user = dockerNumericUser(spec.security);
  const fail = (msg: string): never => {
    throw new pulumi.ResourceError(`workload '${spec.name}': ${msg}`, parent);
  };
  return spec.files.map((f) => {
    if (!f.secret) return { file: f.path, content: f.content, permissions: "0444" };
    if (!user) {
      const who = spec.security.dockerUser !== undefined ? `its user '${spec.security.dockerUser}' is a name` : "it names no user";
      return fail(
        `secret file ${f.path} is written owner-only (0400) for the container's user, whose numeric uid the spec does not give (${who}): set security.runAsUser (the image manifest's uid, stacks/images.ts) or a numeric dockerUser`,
      );
    }
    for (const [what, id] of [["uid", user.uid], ["gid", user.gid]] as const) {
      if (!Number.isInteger(id) || id < 0) fail(`secret file ${f.path}: the container's ${what} ${id} is not a non-negative integer`);
    }
    // Secret in the state whatever the caller passed (a plain string given as a secret file's content).
    return { file: f.path, content: pulumi.secret(f.content), permissions: "0400", owner: String(user.uid), group: String(user.gid) };
  });
}

/** Where the Docker runtime writes the secret variables of a workload whose image reads them from files. */
export const DOCKER_SECRETS_DIR = "/run/secrets";

/**
 * A workload whose image reads each secret variable from a file (spec.secretEnvFiles): its secretEnv
 * becomes secret files `/run/secrets/<name>` (0400, the container's user's: dockerUploads) and plain
 * variables `<NAME>_FILE` (or `<NAME>__FILE`) naming them, so no credential is a container variable:
 * `docker inspect` shows those to anyone with the Docker socket, and every child process inherits
 * them. Any other workload is returned as it is (its secretEnv stays variables).
 */
export function dockerSecretsAsFiles(spec: WorkloadSpec, parent?: pulumi.Resource): WorkloadSpec {
  const suffix = spec.secretEnvFiles;
  if (!suffix || Object.keys(spec.secretEnv).length === 0) return spec;
  const fail = (msg: string): never => {
    throw new pulumi.ResourceError(`workload '${spec.name}': ${msg}`, parent);
  };
  const env = { ...spec.env };
  const files = [...spec.files];
  const paths = new Set(files.map((f) => f.path));
  for (const name of Object.keys(spec.secretEnv).sort()) {
    const path = `${DOCKER_SECRETS_DIR}/${name.toLowerCase()}`;
    const pathVar = `${name}${suffix}`;
    if (pathVar in env || pathVar in spec.secretEnv) fail(`${pathVar} would name the file of the secret variable ${name}, but the spec sets it too`);
    if (paths.has(path)) fail(`the secret variable ${name} would be written to ${path}, which another file of the spec uses`);
    paths.add(path);
    env[pathVar] = path;
    files.push({ path, content: spec.secretEnv[name], secret: true });
  }
  return { ...spec, env, secretEnv: {}, files };
}

/** Env map to Docker's "K=V" list, sorted so the diff is stable. */
export function dockerEnv(spec: WorkloadSpec): pulumi.Output<string[]> {
  const all = { ...spec.env, ...spec.secretEnv };
  const keys = Object.keys(all).sort();
  return pulumi.all(keys.map((k) => pulumi.output(all[k]).apply((v) => `${k}=${v}`)));
}

export class DockerRuntime extends pulumi.ComponentResource implements Runtime {
  readonly capabilities = DOCKER_CAPABILITIES;
  readonly network: docker.Network;
  readonly networkName: pulumi.Output<string>;
  private readonly prefix: string;
  private readonly operatorBindAddress: string;
  private readonly pidsLimits: Record<WorkloadKind, number>;
  private readonly stateLocation?: string;
  private readonly images = new Map<string, docker.RemoteImage>();

  constructor(name: string, args: DockerRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:runtime:Docker", name, {}, opts);
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(args.prefix)) {
      throw new pulumi.ResourceError(`invalid Docker name prefix '${args.prefix}'`, this);
    }
    for (const [kind, limit] of Object.entries(args.pidsLimits)) {
      if (!Number.isInteger(limit) || limit < 1) throw new pulumi.ResourceError(`PID limit of ${kind} workloads must be a positive integer, got ${limit}`, this);
    }
    if (args.stateLocation !== undefined && (args.stateLocation.trim() === "" || /[\0\n]/.test(args.stateLocation))) {
      throw new pulumi.ResourceError(`invalid state location ${JSON.stringify(args.stateLocation)} for the label ${LABEL_PULUMI_STATE}`, this);
    }
    this.prefix = args.prefix;
    this.stateLocation = args.stateLocation;
    this.pidsLimits = args.pidsLimits;
    this.operatorBindAddress = args.operatorBindAddress;
    this.network = new docker.Network(
      `${name}-network`,
      {
        name: `${args.prefix}-net`,
        driver: "bridge",
        // A known subnet: the gateway trusts X-Forwarded-For only from addresses in it (the edge).
        ...(args.subnet ? { ipamConfigs: [{ subnet: args.subnet }] } : {}),
        labels: [{ label: LABEL_PART_OF, value: PART_OF }],
      },
      { parent: this },
    );
    this.networkName = this.network.name;
    this.registerOutputs({ networkName: this.networkName });
  }

  /** One RemoteImage per reference, shared by every container using it. Local images are not pulled. */
  private image(ref: string): pulumi.Output<string> {
    let image = this.images.get(ref);
    if (!image) {
      const safe = ref.replace(/[^a-zA-Z0-9]+/g, "-").replace(/^-|-$/g, "");
      image = new docker.RemoteImage(`image-${safe}`, { name: ref, keepLocally: true }, { parent: this });
      this.images.set(ref, image);
    }
    return image.imageId;
  }

  deploy(declared: WorkloadSpec, parent: pulumi.Resource): DeployedWorkload {
    validateWorkloadSpec(declared, parent);
    const spec = dockerSecretsAsFiles(declared, parent);
    const uploads = dockerUploads(spec, parent);
    const opts: pulumi.CustomResourceOptions = { parent, dependsOn: spec.dependsOn };
    const image = typeof spec.image === "string" ? this.image(spec.image) : pulumi.output(spec.image);

    const volumes = spec.volumes.map(
      (v) =>
        new docker.Volume(
          `${spec.name}-${v.name}`,
          { name: `${this.prefix}-${spec.name}-${v.name}`, labels: [{ label: LABEL_WORKLOAD, value: spec.name }] },
          // Deleted with its workload (the default, written out): `npm run down` leaves no data behind (README),
          // and a renamed volume is a new, empty one. (Until session 63 this said the opposite of what the code does.)
          { parent, retainOnDelete: false },
        ),
    );
    const labels = Object.entries(workloadLabels(spec)).map(([label, value]) => ({ label, value }));
    if (this.stateLocation !== undefined) labels.push({ label: LABEL_PULUMI_STATE, value: this.stateLocation });
    const isJob = spec.kind === "job";
    const replicas = spec.kind === "stateless" ? spec.replicas : 1;
    const containers: Container[] = [];
    for (let i = 0; i < replicas; i++) {
      const suffix = replicas > 1 ? `-${i + 1}` : "";
      const container = new Container(
        `${spec.name}${suffix}-container`,
        {
          name: `${this.prefix}-${spec.name}${suffix}`,
          hostname: `${spec.name}${suffix}`,
          image,
          command: spec.args,
          entrypoints: spec.command,
          envs: dockerEnv(spec),
          networksAdvanced: [{ name: this.networkName, aliases: [spec.name] }],
          ports: i === 0
            ? spec.ports
                .filter((p) => p.hostPort !== undefined)
                .map((p) => ({ internal: p.port, external: p.hostPort!, ip: p.bindAddress ?? "127.0.0.1", protocol: "tcp" }))
            : [],
          volumes: volumes.map((vol, idx) => ({ volumeName: vol.name, containerPath: spec.volumes[idx].mountPath })),
          uploads,
          tmpfs: Object.fromEntries(spec.security.scratchDirs.map((d) => [d, dockerTmpfsOptions(spec.security.scratchOwnerUid)])),
          healthcheck: isJob || !spec.liveness ? undefined : dockerHealthcheck(spec.liveness),
          memory: memoryToMiB(spec.resources.memory),
          cpus: String(cpuToCores(spec.resources.cpu)),
          // A scheduled job's scheduler container (kind stateless, role job) runs the job: the job limit.
          pidsLimit: this.pidsLimits[spec.role === "job" ? "job" : spec.kind],
          user:
            spec.security.dockerUser ??
            (spec.security.runAsUser !== undefined ? `${spec.security.runAsUser}:${spec.security.runAsGroup ?? spec.security.runAsUser}` : undefined),
          readOnly: spec.security.readOnlyRootFilesystem,
          capabilities: { drops: ["ALL"], adds: spec.security.addCapabilities ?? [] },
          securityOpts: ["no-new-privileges:true"],
          privileged: false,
          labels,
          logDriver: "json-file",
          logOpts: { "max-size": "10m", "max-file": "3" },
          // A one-shot job runs to completion before anything that depends on it is created, within
          // the hour of every one-shot job: past it the provider stops and removes the container and
          // fails the update, which would otherwise wait for a stuck run, holding the stack's lock, forever.
          restart: isJob ? "no" : "unless-stopped",
          mustRun: !isJob,
          attach: isJob ? true : undefined,
          attachTimeout: isJob ? ONE_SHOT_JOB_DEADLINE_SECONDS : undefined,
          logs: isJob ? true : undefined,
          wait: isJob ? undefined : true,
          waitTimeout: isJob ? undefined : 300,
          destroyGraceSeconds: 30,
        },
        { ...opts, dependsOn: [...(spec.dependsOn ?? []), ...volumes] },
      );
      containers.push(container);
    }
    return { name: spec.name, host: spec.name, ready: containers };
  }

  schedule(spec: ScheduledJobSpec, parent: pulumi.Resource): DeployedWorkload {
    if (!canSchedule(this.capabilities, spec)) {
      throw new pulumi.ResourceError(
        `workload '${spec.name}': the Docker runtime schedules a job with the cron runner inside the job's image, and its image carries none (no cronRunner); such a job runs only on a runtime that schedules any image (Kubernetes)`,
        parent,
      );
    }
    if (spec.companion) {
      throw new pulumi.ResourceError(
        `workload '${spec.name}': the Docker runtime's cron runner runs one command per tick in one container, so it cannot run the companion '${spec.companion.name}' beside it (capabilities.jobCompanions)`,
        parent,
      );
    }
    validateWorkloadSpec(spec, parent);
    return this.deploy(schedulerWorkload(spec), parent);
  }

  /** Docker has no ingress controller: the edge's own proxy workload (Nginx) publishes the routes. */
  expose(edge: EdgeSpec, parent: pulumi.Resource): ExposedEdge {
    const workload = this.deploy({ ...edge.proxy, dependsOn: [...(edge.proxy.dependsOn ?? []), ...edge.dependsOn] }, parent);
    const https = edge.proxy.ports.find((p) => p.name === "https");
    if (https?.hostPort === undefined) throw new pulumi.ResourceError(`edge '${edge.name}': the proxy publishes no "https" port`, parent);
    return { url: `https://${edge.host}:${https.hostPort}/api/`, workload };
  }

  /** Built on the local engine and run by name; nothing is pushed. */
  buildImage(name: string, spec: ImageBuildSpec, parent: pulumi.Resource): BuiltImage {
    const image = buildImage(name, spec, false, parent);
    return { ref: image.imageName, contentId: image.id };
  }

  operatorHost(): string {
    return this.operatorBindAddress;
  }

  operatorUrl(_workload: string, _port: number, hostPort?: number): string {
    return hostPort !== undefined ? `http://${this.operatorBindAddress}:${hostPort}` : "(not published; docker exec into the network)";
  }
}
