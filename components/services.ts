/**
 * The microservices: one image built from `services/`, one workload per catalog entry, and the
 * pre-deploy jobs (database migrations) that must finish before the fleet starts.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { scheduledJobSizing, ServiceDefinition, sizingOf } from "../catalog";
import { FLOATING_TAGS, isPinnedBuildTag } from "../catalog/images";
import { DataComponent } from "../stacks/config";
import { Datastore } from "./data";
import type { InternetEgress } from "./internet-egress";
import { migrationJobName, scheduledJobName, serviceDatastores } from "./topology";
import { BuiltImage, DeployedWorkload, probe, Runtime, WorkloadSpec } from "./workload";

export const SERVICE_UID = 10001;
/** The services image's entry point (services/Dockerfile ENTRYPOINT), relative to its WORKDIR /app. */
export const SERVICES_MAIN = ["node", "dist/services/src/main.js"];
/** The cron runner in the services image and every image built on it (services/src/cron.ts). */
export const SERVICES_CRON_RUNNER = ["node", "dist/services/src/cron.js"];

/**
 * The tag an image the program builds is pushed and run under: a version, never a floating tag (the
 * policy pack's list, catalog/images.ts), as the stack config checks `servicesImageTag`.
 */
function checkBuildTag(tag: string, image: string, resource: pulumi.Resource): void {
  if (!isPinnedBuildTag(tag)) {
    throw new pulumi.ResourceError(`${image} image tag '${tag}' must be pinned: a version such as 0.1.0, not a floating tag (${FLOATING_TAGS.join(", ")})`, resource);
  }
}

export interface ServicesImageArgs {
  runtime: Runtime;
  /** Full image name without tag, e.g. "localhost/ai-trading/services" or "registry.example.com/ai-trading/services". */
  repository: string;
  tag: string;
  /** Node runtime base image (local Debian build or the pinned upstream one). */
  nodeImage: string;
  /** Credentials for the push, when the registry needs them. */
  registryAuth?: { username: string; password: pulumi.Output<string> };
}

/** The one image every service runs from, selected by name at start. */
export class ServicesImage extends pulumi.ComponentResource {
  readonly ref: pulumi.Output<string>;
  /** The built image (reference and content id), for images built FROM it (the trainer). */
  readonly image: BuiltImage;

  constructor(name: string, args: ServicesImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:app:ServicesImage", name, {}, opts);
    checkBuildTag(args.tag, "services", this);
    const root = path.join(__dirname, "..");
    this.image = args.runtime.buildImage(
      `${name}-build`,
      {
        repository: args.repository,
        tag: args.tag,
        // The repository root: the services compile the shared catalog/ (the root .dockerignore
        // sends only services/ and catalog/).
        context: root,
        dockerfile: path.join(root, "services", "Dockerfile"),
        buildArgs: { NODE_IMAGE: args.nodeImage },
        registryAuth: args.registryAuth,
      },
      this,
    );
    this.ref = this.image.ref;
    this.registerOutputs({ ref: this.ref });
  }
}

export interface TrainerImageArgs {
  runtime: Runtime;
  /** Full image name without tag, e.g. "localhost/ai-trading/trainer". */
  repository: string;
  tag: string;
  /** The services image it is built FROM (the program's build of it). */
  servicesImage: BuiltImage;
  registryAuth?: { username: string; password: pulumi.Output<string> };
}

/**
 * The image of ml-predictor's retraining runs: the services image plus Debian's Python, a venv of
 * ml/requirements.txt installed from wheels downloaded on the host (scripts/ml/prepare-wheels.sh,
 * so the build needs no PyPI) and the training code (ml/Dockerfile; context ml/).
 */
export class TrainerImage extends pulumi.ComponentResource {
  readonly ref: pulumi.Output<string>;

  constructor(name: string, args: TrainerImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:app:TrainerImage", name, {}, opts);
    checkBuildTag(args.tag, "trainer", this);
    const ml = path.join(__dirname, "..", "ml");
    this.ref = args.runtime.buildImage(
      `${name}-build`,
      {
        repository: args.repository,
        tag: args.tag,
        context: ml,
        dockerfile: path.join(ml, "Dockerfile"),
        // The content id too: a rebuilt services image keeps its local tag, and the trainer must
        // be rebuilt FROM the new one (its Dockerfile records it in a label).
        buildArgs: { SERVICES_IMAGE: args.servicesImage.ref, SERVICES_IMAGE_ID: args.servicesImage.contentId },
        registryAuth: args.registryAuth,
      },
      this,
    ).ref;
    this.registerOutputs({ ref: this.ref });
  }
}

export interface AppServiceArgs {
  runtime: Runtime;
  definition: ServiceDefinition;
  image: pulumi.Input<string>;
  replicas: number;
  datastores: Partial<Record<DataComponent, Datastore>>;
  /** Values from stack secrets and generated credentials, by the catalog's SecretRef. */
  secretEnv: Record<string, pulumi.Input<string>>;
  env: Record<string, string>;
  connectsTo: string[];
  acceptsFrom: string[];
  internetEgress: InternetEgress | undefined;
  dependsOn: pulumi.Resource[];
  /**
   * The catalog's scheduled job of the service, where the stack runs it: the image of its runs
   * (services or trainer), its cron expression, the time limit of a run and the workloads it connects to.
   */
  scheduledJob?: { image: pulumi.Input<string>; schedule: string; runTimeoutSeconds: number; connectsTo: string[] };
}

/** Environment of a service: its identity plus every datastore it uses (per docs/conventions.md). */
export function serviceEnvironment(
  definition: ServiceDefinition,
  datastores: Partial<Record<DataComponent, Pick<Datastore, "clientEnv" | "clientSecretEnv">>>,
  extra: Record<string, string>,
): { env: Record<string, pulumi.Input<string>>; secretEnv: Record<string, pulumi.Input<string>> } {
  const env: Record<string, pulumi.Input<string>> = {
    SERVICE_NAME: definition.name,
    PORT: String(definition.port),
    NODE_ENV: "production",
    // Serve 3 s past SIGTERM with readiness failed and connections closed after each answer: a
    // replica being replaced leaves the load balancers and keep-alive pools before it stops
    // listening (Kubernetes' 30 s grace and Docker's 10 s stop timeout leave room for it).
    SHUTDOWN_DRAIN_MS: "3000",
    ...extra,
  };
  const secretEnv: Record<string, pulumi.Input<string>> = {};
  const enabled = Object.keys(datastores) as DataComponent[];
  for (const store of serviceDatastores(definition, enabled)) {
    const ds = datastores[store];
    if (!ds) throw new Error(`${definition.name} requires ${store}, which is not deployed`);
    Object.assign(env, ds.clientEnv);
    Object.assign(secretEnv, ds.clientSecretEnv);
  }
  return { env, secretEnv };
}

export class AppService extends pulumi.ComponentResource {
  readonly workload: DeployedWorkload;
  readonly preDeployJob?: DeployedWorkload;
  readonly scheduledJob?: DeployedWorkload;
  readonly url: string;

  constructor(name: string, args: AppServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:app:Service", name, {}, opts);
    const def = args.definition;
    if (args.replicas < 1) throw new pulumi.ResourceError(`${name}: replicas must be at least 1`, this);
    const { env, secretEnv } = serviceEnvironment(def, args.datastores, args.env);
    Object.assign(secretEnv, args.secretEnv);

    const spec: WorkloadSpec = {
      name: def.name,
      role: "service",
      kind: "stateless",
      image: args.image,
      args: [def.name],
      env,
      secretEnv,
      // The kit reads each secret variable from <NAME>_FILE (services/src/kit/secret-files.ts).
      secretEnvFiles: "_FILE",
      ports: [{ name: "http", port: def.port }],
      volumes: [],
      files: [],
      liveness: probe({ http: { path: "/health", port: def.port } }, { startPeriodSeconds: 15 }),
      readiness: probe({ http: { path: "/ready", port: def.port } }, { startPeriodSeconds: 10, retries: 3 }),
      resources: sizingOf(def).resources,
      replicas: args.replicas,
      singleton: def.singleton,
      security: { runAsUser: SERVICE_UID, runAsGroup: SERVICE_UID, readOnlyRootFilesystem: true, scratchDirs: ["/tmp"] },
      connectsTo: args.connectsTo,
      acceptsFrom: args.acceptsFrom,
      internetEgress: args.internetEgress,
      dependsOn: args.dependsOn,
    };

    let jobDeps: pulumi.Resource[] = [];
    if (def.preDeployJob) {
      this.preDeployJob = args.runtime.deploy(
        {
          ...spec,
          name: migrationJobName(def.name),
          role: "job",
          kind: "job",
          liveness: undefined,
          readiness: undefined,
          args: [def.name, ...def.preDeployJob.args],
          ports: [],
          replicas: 1,
          singleton: false,
          acceptsFrom: [],
        },
        this,
      );
      jobDeps = this.preDeployJob.ready;
    }
    this.workload = args.runtime.deploy({ ...spec, dependsOn: [...args.dependsOn, ...jobDeps] }, this);
    if (def.scheduledJob && args.scheduledJob) {
      // The service's own environment and credentials (same secret mechanism), its command as a
      // whole (a cron runner wraps it on Docker), no ports or probes of the service.
      this.scheduledJob = args.runtime.schedule(
        {
          ...spec,
          name: scheduledJobName(def.name, def.scheduledJob.name),
          role: "job",
          kind: "job",
          image: args.scheduledJob.image,
          schedule: args.scheduledJob.schedule,
          runTimeoutSeconds: args.scheduledJob.runTimeoutSeconds,
          command: [...SERVICES_MAIN, def.name, ...def.scheduledJob.args],
          cronRunner: SERVICES_CRON_RUNNER,
          args: undefined,
          liveness: undefined,
          readiness: undefined,
          ports: [],
          replicas: 1,
          singleton: false,
          resources: scheduledJobSizing(def),
          connectsTo: args.scheduledJob.connectsTo,
          acceptsFrom: [],
          internetEgress: undefined,
          dependsOn: [...args.dependsOn, ...jobDeps],
        },
        this,
      );
    }
    this.url = `http://${this.workload.host}:${def.port}`;
    this.registerOutputs({ url: this.url });
  }
}
