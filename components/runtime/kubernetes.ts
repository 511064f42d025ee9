/**
 * Realises workload specs on Kubernetes: a namespace with a default-deny network policy, per
 * workload a Secret (credentials, referenced with secretKeyRef), a ConfigMap (files), a
 * StatefulSet (data), Deployment (services), Job or CronJob, a Service, a NetworkPolicy with the
 * explicit allows, and for replicated services a PodDisruptionBudget and an autoscaler.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { cpuToCores, DeployedWorkload, ProbeSpec, Runtime, validateWorkloadSpec, WorkloadSpec, workloadLabels, LABEL_WORKLOAD } from "../workload";

export interface KubernetesRuntimeArgs {
  namespace: string;
  storageClass?: string;
  /** Render manifests into this folder instead of applying them to a cluster. */
  renderYamlTo?: string;
  /** Namespace of the ingress controller, allowed to reach workloads that accept "@ingress". */
  ingressControllerNamespace?: string;
  /** Autoscaler bounds per workload name. */
  autoscale?: Record<string, { min: number; max: number }>;
  /** Pull policy of every container (default IfNotPresent; Never for images imported into the nodes). */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** CPU request as a fraction of the CPU limit (default 1: requests = limits, Guaranteed QoS). */
  cpuRequestRatio?: number;
}

/** Pseudo-workload meaning "the ingress controller" in `acceptsFrom`. */
export const INGRESS_CONTROLLER = "@ingress";

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

/**
 * CPU request for a limit scaled by `ratio` (a Kubernetes CPU quantity: "250m", "1", "0.5"),
 * rounded up to a whole millicore; the limit itself when ratio is 1.
 */
export function scaledCpu(limit: string, ratio: number): string {
  if (ratio === 1) return limit;
  return `${Math.max(1, Math.ceil(Math.round(cpuToCores(limit) * 1000) * ratio))}m`;
}

/** ConfigMap/Secret keys must match [-._a-zA-Z0-9]+; derive one from the file path. */
export function fileKey(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^-._a-zA-Z0-9]/g, "_");
}

export class KubernetesRuntime extends pulumi.ComponentResource implements Runtime {
  readonly target = "kubernetes" as const;
  readonly namespace: pulumi.Output<string>;
  readonly provider?: k8s.Provider;
  private readonly args: KubernetesRuntimeArgs;
  private readonly nsResource: k8s.core.v1.Namespace;

  constructor(name: string, args: KubernetesRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:runtime:Kubernetes", name, {}, opts);
    this.args = args;
    if (args.renderYamlTo) {
      this.provider = new k8s.Provider(`${name}-provider`, { renderYamlToDirectory: args.renderYamlTo }, { parent: this });
    }
    this.nsResource = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.namespace,
          labels: {
            "app.kubernetes.io/part-of": "ai-trading",
            // The apiserver judges every pod against the restricted profile.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
          },
        },
      },
      this.childOpts(),
    );
    this.namespace = this.nsResource.metadata.name;

    new k8s.networking.v1.NetworkPolicy(
      `${name}-default-deny`,
      {
        metadata: { name: "default-deny", namespace: this.namespace },
        spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
      },
      this.childOpts(),
    );
    new k8s.networking.v1.NetworkPolicy(
      `${name}-allow-dns`,
      {
        metadata: { name: "allow-dns", namespace: this.namespace },
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            {
              to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }],
              ports: [
                { protocol: "UDP", port: 53 },
                { protocol: "TCP", port: 53 },
              ],
            },
          ],
        },
      },
      this.childOpts(),
    );
    this.registerOutputs({ namespace: this.namespace });
  }

  private childOpts(parent: pulumi.Resource = this, dependsOn?: pulumi.Input<pulumi.Resource>[]): pulumi.CustomResourceOptions {
    return { parent, provider: this.provider, dependsOn };
  }

  /** Options for resources other components create in this namespace (Ingress, CronJobs). */
  resourceOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
    return { parent, provider: this.provider, dependsOn: [this.nsResource] };
  }

  deploy(spec: WorkloadSpec, parent: pulumi.Resource): DeployedWorkload {
    validateWorkloadSpec(spec, parent);
    const ns = this.namespace;
    const labels = workloadLabels(spec);
    const selector = { [LABEL_WORKLOAD]: spec.name };
    const dependsOn = [this.nsResource, ...(spec.dependsOn ?? [])];

    const secretFiles = spec.files.filter((f) => f.secret);
    const plainFiles = spec.files.filter((f) => !f.secret);
    const hasSecret = Object.keys(spec.secretEnv).length > 0 || secretFiles.length > 0;
    const secretName = `${spec.name}-credentials`;
    if (hasSecret) {
      new k8s.core.v1.Secret(
        `${spec.name}-secret`,
        {
          metadata: { name: secretName, namespace: ns, labels },
          type: "Opaque",
          stringData: {
            ...spec.secretEnv,
            ...Object.fromEntries(secretFiles.map((f) => [fileKey(f.path), f.content])),
          },
        },
        { ...this.childOpts(parent, dependsOn), additionalSecretOutputs: ["data", "stringData"] },
      );
    }
    const configName = `${spec.name}-files`;
    if (plainFiles.length > 0) {
      new k8s.core.v1.ConfigMap(
        `${spec.name}-config`,
        {
          metadata: { name: configName, namespace: ns, labels: { ...labels } },
          data: Object.fromEntries(plainFiles.map((f) => [fileKey(f.path), f.content])),
        },
        this.childOpts(parent, dependsOn),
      );
    }

    const env: k8s.types.input.core.v1.EnvVar[] = [
      ...Object.keys(spec.env)
        .sort()
        .map((name) => ({ name, value: spec.env[name] })),
      ...Object.keys(spec.secretEnv)
        .sort()
        .map((name) => ({ name, valueFrom: { secretKeyRef: { name: secretName, key: name } } })),
    ];
    const volumeMounts: k8s.types.input.core.v1.VolumeMount[] = [
      ...spec.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })),
      ...spec.security.scratchDirs.map((d, i) => ({ name: `scratch-${i}`, mountPath: d })),
      ...plainFiles.map((f) => ({ name: "files", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
      ...secretFiles.map((f) => ({ name: "secret-files", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
    ];
    // StatefulSets get their volumes from claim templates; other kinds get a claim of their own.
    const claims =
      spec.kind === "stateful"
        ? []
        : spec.volumes.map(
            (v) =>
              new k8s.core.v1.PersistentVolumeClaim(
                `${spec.name}-${v.name}-pvc`,
                {
                  metadata: { name: `${spec.name}-${v.name}`, namespace: ns, labels },
                  spec: {
                    accessModes: ["ReadWriteOnce"],
                    storageClassName: this.args.storageClass,
                    resources: { requests: { storage: `${v.sizeGi}Gi` } },
                  },
                },
                this.childOpts(parent, dependsOn),
              ),
          );
    const podVolumes: k8s.types.input.core.v1.Volume[] = [
      ...claims.map((c, i) => ({ name: spec.volumes[i].name, persistentVolumeClaim: { claimName: c.metadata.name } })),
      ...spec.security.scratchDirs.map((_, i) => ({ name: `scratch-${i}`, emptyDir: { sizeLimit: "64Mi" } })),
      ...(plainFiles.length > 0 ? [{ name: "files", configMap: { name: configName } }] : []),
      ...(secretFiles.length > 0 ? [{ name: "secret-files", secret: { secretName, defaultMode: 0o400 } }] : []),
    ];
    const container: k8s.types.input.core.v1.Container = {
      name: spec.name,
      image: spec.image,
      imagePullPolicy: this.args.imagePullPolicy ?? "IfNotPresent",
      command: spec.command,
      args: spec.args,
      env,
      ports: spec.ports.map((p) => ({ name: p.name.slice(0, 15), containerPort: p.port })),
      volumeMounts,
      resources: {
        requests: { cpu: scaledCpu(spec.resources.cpu, this.args.cpuRequestRatio ?? 1), memory: spec.resources.memory },
        limits: { cpu: spec.resources.cpu, memory: spec.resources.memory },
      },
      livenessProbe: spec.kind === "job" ? undefined : k8sProbe(spec.liveness),
      readinessProbe: spec.kind === "job" ? undefined : k8sProbe(spec.readiness ?? spec.liveness),
      securityContext: {
        runAsNonRoot: spec.security.runAsUser !== undefined && spec.security.runAsUser !== 0,
        runAsUser: spec.security.runAsUser,
        runAsGroup: spec.security.runAsGroup ?? spec.security.runAsUser,
        readOnlyRootFilesystem: spec.security.readOnlyRootFilesystem,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ["ALL"], add: spec.security.addCapabilities },
        seccompProfile: { type: "RuntimeDefault" },
      },
    };
    const podSpec: k8s.types.input.core.v1.PodSpec = {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        fsGroup: spec.security.fsGroup,
        runAsNonRoot: spec.security.runAsUser !== undefined && spec.security.runAsUser !== 0,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [container],
      volumes: podVolumes,
      // Replicas spread over nodes where there are several (soft: a one-node cluster still runs them all).
      ...(spec.kind === "job"
        ? {}
        : {
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
            ],
          }),
    };
    const template = { metadata: { labels }, spec: podSpec };

    let ready: pulumi.Resource;
    if (spec.kind === "job" && spec.schedule) {
      ready = new k8s.batch.v1.CronJob(
        `${spec.name}-cronjob`,
        {
          metadata: { name: spec.name, namespace: ns, labels },
          spec: {
            schedule: spec.schedule,
            concurrencyPolicy: "Forbid",
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            jobTemplate: {
              metadata: { labels },
              spec: { backoffLimit: 2, template: { ...template, spec: { ...podSpec, restartPolicy: "OnFailure" } } },
            },
          },
        },
        this.childOpts(parent, dependsOn),
      );
    } else if (spec.kind === "job") {
      ready = new k8s.batch.v1.Job(
        `${spec.name}-job`,
        {
          metadata: { name: spec.name, namespace: ns, labels },
          spec: { backoffLimit: 4, template: { ...template, spec: { ...podSpec, restartPolicy: "OnFailure" } } },
        },
        this.childOpts(parent, dependsOn),
      );
    } else if (spec.kind === "stateful") {
      new k8s.core.v1.Service(
        `${spec.name}-headless`,
        {
          metadata: { name: `${spec.name}-headless`, namespace: ns, labels },
          spec: { clusterIP: "None", selector, ports: spec.ports.map((p) => ({ name: p.name.slice(0, 15), port: p.port, targetPort: p.port })) },
        },
        this.childOpts(parent, dependsOn),
      );
      ready = new k8s.apps.v1.StatefulSet(
        `${spec.name}-statefulset`,
        {
          metadata: { name: spec.name, namespace: ns, labels },
          spec: {
            serviceName: `${spec.name}-headless`,
            replicas: spec.replicas,
            selector: { matchLabels: selector },
            template,
            volumeClaimTemplates: spec.volumes.map((v) => ({
              metadata: { name: v.name, labels },
              spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: this.args.storageClass,
                resources: { requests: { storage: `${v.sizeGi}Gi` } },
              },
            })),
          },
        },
        this.childOpts(parent, dependsOn),
      );
    } else {
      ready = new k8s.apps.v1.Deployment(
        `${spec.name}-deployment`,
        {
          metadata: { name: spec.name, namespace: ns, labels },
          spec: {
            replicas: spec.replicas,
            selector: { matchLabels: selector },
            // A singleton is stopped before its successor starts; others roll with no capacity loss.
            strategy: spec.singleton ? { type: "Recreate" } : { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
            template,
          },
        },
        this.childOpts(parent, dependsOn),
      );
      if (spec.replicas >= 2) {
        new k8s.policy.v1.PodDisruptionBudget(
          `${spec.name}-pdb`,
          { metadata: { name: spec.name, namespace: ns, labels }, spec: { minAvailable: 1, selector: { matchLabels: selector } } },
          this.childOpts(parent, dependsOn),
        );
      }
      const bounds = this.args.autoscale?.[spec.name];
      if (bounds && !spec.singleton) {
        new k8s.autoscaling.v2.HorizontalPodAutoscaler(
          `${spec.name}-hpa`,
          {
            metadata: { name: spec.name, namespace: ns, labels },
            spec: {
              scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: spec.name },
              minReplicas: Math.max(bounds.min, spec.replicas),
              maxReplicas: Math.max(bounds.max, spec.replicas),
              metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
            },
          },
          this.childOpts(parent, dependsOn),
        );
      }
    }

    if (spec.kind !== "job" && spec.ports.length > 0) {
      new k8s.core.v1.Service(
        `${spec.name}-service`,
        {
          metadata: { name: spec.name, namespace: ns, labels },
          spec: {
            type: spec.serviceType ?? "ClusterIP",
            selector,
            ports: spec.ports.map((p) => ({ name: p.name.slice(0, 15), port: p.port, targetPort: p.port })),
          },
        },
        this.childOpts(parent, dependsOn),
      );
    }

    this.networkPolicy(spec, parent, dependsOn);
    return { name: spec.name, host: spec.name, ready: [ready] };
  }

  /** Explicit allows on top of the namespace's default deny. */
  private networkPolicy(spec: WorkloadSpec, parent: pulumi.Resource, dependsOn: pulumi.Resource[]): void {
    const peer = (name: string): k8s.types.input.networking.v1.NetworkPolicyPeer =>
      name === INGRESS_CONTROLLER
        ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": this.args.ingressControllerNamespace ?? "ingress-nginx" } } }
        : { podSelector: { matchLabels: { [LABEL_WORKLOAD]: name } } };
    const ingress: k8s.types.input.networking.v1.NetworkPolicyIngressRule[] =
      spec.acceptsFrom.length > 0 && spec.ports.length > 0
        ? [{ from: [...new Set(spec.acceptsFrom)].sort().map(peer), ports: spec.ports.map((p) => ({ protocol: "TCP", port: p.port })) }]
        : [];
    const egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [
      ...(spec.connectsTo.length > 0 ? [{ to: [...new Set(spec.connectsTo)].sort().map(peer) }] : []),
      ...(spec.internetEgress
        ? [
            {
              to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] } }],
              ports: [{ protocol: "TCP", port: 443 }],
            },
          ]
        : []),
    ];
    new k8s.networking.v1.NetworkPolicy(
      `${spec.name}-netpol`,
      {
        metadata: { name: spec.name, namespace: this.namespace, labels: workloadLabels(spec) },
        spec: {
          podSelector: { matchLabels: { [LABEL_WORKLOAD]: spec.name } },
          policyTypes: ["Ingress", "Egress"],
          ingress,
          egress,
        },
      },
      this.childOpts(parent, dependsOn),
    );
  }
}
