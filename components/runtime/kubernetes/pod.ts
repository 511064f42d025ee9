/** The pod template of a workload: its container (and a scheduled job's companion), probes, mounts and restricted security context. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_WORKLOAD } from "../../../catalog/labels";
import { cpuToCores, JobCompanionSpec, memoryToMiB, ProbeSpec, ResourceSpec, SecuritySpec, WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";
import { WorkloadFiles } from "./secrets";
import { WorkloadStorage } from "./storage";

/** Kubernetes probe from a probe spec. */
export function k8sProbe(probe: ProbeSpec): k8s.types.input.core.v1.Probe {
  return {
    ...(probe.exec
      ? { exec: { command: probe.exec } }
      : { httpGet: { path: probe.http!.path, port: probe.http!.port, scheme: probe.http!.scheme ?? "HTTP" } }),
    periodSeconds: probe.intervalSeconds,
    timeoutSeconds: probe.timeoutSeconds,
    failureThreshold: probe.retries,
    initialDelaySeconds: Math.min(probe.startPeriodSeconds, 30),
  };
}

/** How long a container may take to start before its liveness probe may kill it. */
export const STARTUP_BUDGET_SECONDS = 300;

/**
 * The startup probe guarding a liveness check: the same check, retried for STARTUP_BUDGET_SECONDS
 * (at least the spec's start period), during which the liveness probe does not run. Without it a
 * container still connecting to its datastores on a starved node (a broker electing a leader, a
 * loaded machine) is killed after initialDelay + retries x interval and starts over, slower each
 * time. Readiness still keeps traffic away until it answers.
 */
export function k8sStartupProbe(probe: ProbeSpec): k8s.types.input.core.v1.Probe {
  const budget = Math.max(STARTUP_BUDGET_SECONDS, probe.startPeriodSeconds + probe.retries * probe.intervalSeconds);
  return { ...k8sProbe(probe), initialDelaySeconds: 0, failureThreshold: Math.ceil(budget / probe.intervalSeconds) };
}

/**
 * CPU request for a limit scaled by `ratio` (a Kubernetes CPU quantity: "250m", "1", "0.5"),
 * rounded up to a whole millicore; the limit itself when ratio is 1.
 */
export function scaledCpu(limit: string, ratio: number): string {
  if (ratio === 1) return limit;
  return `${Math.max(1, Math.ceil(Math.round(cpuToCores(limit) * 1000) * ratio))}m`;
}

/**
 * Memory request for a limit scaled by `ratio` (a quantity in Mi or Gi), rounded up to a whole MiB;
 * the limit itself when ratio is 1. A request below the limit makes the pod Burstable: the
 * scheduler reserves less, the limit still caps it.
 */
export function scaledMemory(limit: string, ratio: number): string {
  if (ratio === 1) return limit;
  return `${Math.max(1, Math.ceil(memoryToMiB(limit) * ratio))}Mi`;
}

/** Port names are at most 15 characters on Kubernetes. */
export const portName = (name: string) => name.slice(0, 15);

/** A container's restricted security context: its user, no privilege, every capability dropped. */
function restrictedSecurityContext(security: Pick<SecuritySpec, "runAsUser" | "runAsGroup" | "readOnlyRootFilesystem" | "addCapabilities">): k8s.types.input.core.v1.SecurityContext {
  return {
    runAsNonRoot: security.runAsUser !== undefined && security.runAsUser !== 0,
    runAsUser: security.runAsUser,
    runAsGroup: security.runAsGroup ?? security.runAsUser,
    readOnlyRootFilesystem: security.readOnlyRootFilesystem,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ["ALL"], add: security.addCapabilities },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** A container's variables: plain values, then credentials by secretKeyRef to the workload's Secret. */
function containerEnv(env: Record<string, pulumi.Input<string>>, secretEnv: Record<string, pulumi.Input<string>>, files: WorkloadFiles): k8s.types.input.core.v1.EnvVar[] {
  return [
    ...Object.keys(env)
      .sort()
      .map((name) => ({ name, value: env[name] })),
    ...Object.keys(secretEnv)
      .sort()
      .map((name) => ({ name, valueFrom: { secretKeyRef: { name: files.secretName, key: name } } })),
  ];
}

/** Requests (scaled by the stack's ratios) and limits of a container. */
function containerResources(ctx: KubernetesContext, resources: ResourceSpec): k8s.types.input.core.v1.ResourceRequirements {
  return {
    requests: { cpu: scaledCpu(resources.cpu, ctx.settings.cpuRequestRatio ?? 1), memory: scaledMemory(resources.memory, ctx.settings.memoryRequestRatio ?? 1) },
    limits: { cpu: resources.cpu, memory: resources.memory },
  };
}

/** Volume both containers of a job with a companion mount (an emptyDir: it lives as long as the run's pod). */
export const COMPANION_SHARED_VOLUME = "companion-shared";

/**
 * A scheduled job's companion: a second container of the pod, of its own image and user, with only
 * its own variables (its credentials by secretKeyRef to the job's Secret, whose other keys it never
 * references), read-only root, and the shared emptyDir at `sharedDir`, its only mount.
 */
function companionContainer(ctx: KubernetesContext, companion: JobCompanionSpec, files: WorkloadFiles): k8s.types.input.core.v1.Container {
  return {
    name: companion.name,
    image: companion.image,
    imagePullPolicy: ctx.settings.imagePullPolicy ?? "IfNotPresent",
    command: companion.command,
    env: containerEnv(companion.env, companion.secretEnv, files),
    volumeMounts: [{ name: COMPANION_SHARED_VOLUME, mountPath: companion.sharedDir }],
    resources: containerResources(ctx, companion.resources),
    securityContext: restrictedSecurityContext({ runAsUser: companion.runAsUser, runAsGroup: companion.runAsGroup, readOnlyRootFilesystem: true }),
  };
}

export function podTemplate(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  files: WorkloadFiles,
  storage: WorkloadStorage,
  /** A scheduled job's companion (ScheduledJobSpec.companion): a second container sharing an emptyDir with the job's. */
  companion?: JobCompanionSpec,
): { metadata: { labels: Record<string, string> }; spec: k8s.types.input.core.v1.PodSpec } {
  const shared = companion ? [{ name: COMPANION_SHARED_VOLUME, mountPath: companion.sharedDir }] : [];
  const runsAsNonRoot = spec.security.runAsUser !== undefined && spec.security.runAsUser !== 0;
  const probes =
    spec.kind === "job" || !spec.liveness
      ? {}
      : { startupProbe: k8sStartupProbe(spec.liveness), livenessProbe: k8sProbe(spec.liveness), readinessProbe: k8sProbe(spec.readiness ?? spec.liveness) };
  const container: k8s.types.input.core.v1.Container = {
    name: spec.name,
    image: spec.image,
    imagePullPolicy: ctx.settings.imagePullPolicy ?? "IfNotPresent",
    command: spec.command,
    args: spec.args,
    env: containerEnv(spec.env, spec.secretEnv, files),
    ports: spec.ports.map((p) => ({ name: portName(p.name), containerPort: p.port })),
    volumeMounts: [...storage.mounts, ...files.mounts, ...shared],
    resources: containerResources(ctx, spec.resources),
    ...probes,
    securityContext: restrictedSecurityContext(spec.security),
  };
  return {
    metadata: { labels },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { fsGroup: spec.security.fsGroup, runAsNonRoot: runsAsNonRoot, seccompProfile: { type: "RuntimeDefault" } },
      containers: [container, ...(companion ? [companionContainer(ctx, companion, files)] : [])],
      // 1Mi: the companion directory carries a one-line file (the ClickHouse backup's outcome for its
      // recorder, components/data/backup.ts); bounded like every emptyDir (policy emptydir-size-limit).
      volumes: [...storage.volumes, ...files.volumes, ...(companion ? [{ name: COMPANION_SHARED_VOLUME, emptyDir: { sizeLimit: "1Mi" } }] : [])],
      // Replicas spread over nodes where there are several (soft: a one-node cluster still runs them all).
      ...(spec.kind === "job"
        ? {}
        : {
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { [LABEL_WORKLOAD]: spec.name } } },
            ],
          }),
    },
  };
}
