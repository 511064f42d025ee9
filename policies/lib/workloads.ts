/**
 * A uniform view of the workloads the program declares, on both targets:
 * - Docker: `docker:index/container:Container` (labels as [{label, value}]).
 * - Kubernetes: Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob
 *   and Pod (metadata and pod template labels, pod spec).
 * All functions are pure and take the plain (unwrapped) property bag.
 */
import { DATA_COMPONENTS } from "../../catalog/datastores";
import { LABEL_ROLE, LABEL_SINGLETON, LABEL_WORKLOAD } from "../../catalog/labels";
import { arr, isRecord, isUnknown, str } from "./values";

/**
 * A singleton Deployment: labelled trading.io/singleton=true AND rolled out with the Recreate
 * strategy, so the label alone cannot switch off the availability checks.
 */
export function isSingletonDeployment(type: string, props: Record<string, any>): boolean {
    return workloadLabels(type, props)[LABEL_SINGLETON] === "true" && props.spec?.strategy?.type === "Recreate" && (props.spec?.replicas ?? 1) === 1;
}

/** Every stateful component (the datastores and the legacy Redis), from the catalog. */
export const DATASTORES: readonly string[] = DATA_COMPONENTS;
export const MONITORING = ["prometheus", "grafana"];

export const DOCKER_CONTAINER = "docker:index/container:Container";
export const DOCKER_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const DOCKER_IMAGE = "docker:index/image:Image";
export const DOCKER_NETWORK = "docker:index/network:Network";
export const DOCKER_VOLUME = "docker:index/volume:Volume";

export const K8S = {
    deployment: "kubernetes:apps/v1:Deployment",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    replicaSet: "kubernetes:apps/v1:ReplicaSet",
    // Legacy, but still served (core/v1): a controller running pods like a ReplicaSet, so every
    // pod policy must see it, or it would run what a Deployment may not.
    replicationController: "kubernetes:core/v1:ReplicationController",
    job: "kubernetes:batch/v1:Job",
    cronJob: "kubernetes:batch/v1:CronJob",
    pod: "kubernetes:core/v1:Pod",
    service: "kubernetes:core/v1:Service",
    secret: "kubernetes:core/v1:Secret",
    configMap: "kubernetes:core/v1:ConfigMap",
    namespace: "kubernetes:core/v1:Namespace",
    networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    ingress: "kubernetes:networking.k8s.io/v1:Ingress",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    hpa: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    hpaV1: "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
    serviceAccount: "kubernetes:core/v1:ServiceAccount",
    role: "kubernetes:rbac.authorization.k8s.io/v1:Role",
    clusterRole: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    roleBinding: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    clusterRoleBinding: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
};

/** The label the API server sets on every namespace (1.21 on), whatever the object declares: its name. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

export const K8S_WORKLOAD_TYPES = [
    K8S.deployment, K8S.statefulSet, K8S.daemonSet, K8S.replicaSet, K8S.replicationController, K8S.job, K8S.cronJob, K8S.pod,
];

/** Long-running Kubernetes workloads (probes make sense for these, not for Jobs). */
export const K8S_LONG_RUNNING = [K8S.deployment, K8S.statefulSet, K8S.daemonSet, K8S.replicaSet, K8S.replicationController, K8S.pod];

/** The workloads that run `spec.replicas` copies of their pod (the availability policies weigh these). */
export const K8S_REPLICATED = [K8S.deployment, K8S.statefulSet, K8S.replicaSet, K8S.replicationController];

export type Labels = Record<string, string>;

/** Docker container labels ([{label, value}]) as a map; unknown entries are skipped. */
export function dockerLabels(props: Record<string, any>): Labels {
    const out: Labels = {};
    for (const l of arr(props.labels)) {
        if (!isRecord(l)) continue;
        const key = str(l.label);
        const value = str(l.value);
        if (key !== undefined && value !== undefined) out[key] = value;
    }
    return out;
}

function labelMap(value: unknown): Labels {
    const out: Labels = {};
    if (!isRecord(value)) return out;
    for (const [k, v] of Object.entries(value)) {
        const s = str(v);
        if (s !== undefined) out[k] = s;
    }
    return out;
}

/**
 * A HorizontalPodAutoscaler of either served version: autoscaling/v1 (CPU only) sets `minReplicas`
 * and `scaleTargetRef` as v2 does, and scales a workload below its spec.replicas just the same.
 */
export function isHpa(type: string): boolean {
    return type === K8S.hpa || type === K8S.hpaV1;
}

export function isK8sWorkload(type: string): boolean {
    return K8S_WORKLOAD_TYPES.includes(type);
}

/**
 * The Kind of a Kubernetes object type token ("kubernetes:apps/v1:Deployment"), undefined for other resources.
 * Session 50: a custom resource's version is any DNS label (`example.com/stable`, not only `v1beta1`) and its
 * Kind any DNS label in capitals (`Pod-Runner`), as the API server validates a CustomResourceDefinition's.
 */
export function kubernetesKind(type: string): string | undefined {
    const m = /^kubernetes:(?:([a-z0-9.-]+)\/[a-z][a-z0-9-]*|v[0-9][0-9a-z]*):([A-Za-z][A-Za-z0-9-]*)$/.exec(type);
    // Pulumi's own component types (Helm releases, YAML and Kustomize groups) are not API objects.
    if (!m || ["helm.sh", "yaml", "kustomize"].includes(m[1] ?? "")) return undefined;
    return m[2];
}

export function isK8sType(type: string): boolean {
    return type.startsWith("kubernetes:");
}

/** The pod template of a Kubernetes workload: its labels and pod spec. */
export interface PodTemplate {
    labels: Labels;
    annotations: Labels;
    spec: Record<string, any>;
}

/**
 * Where a Kubernetes workload keeps its pod template ({ metadata, spec }) as written: a Pod is its own,
 * a CronJob's is in its job template, every other kind's is `spec.template`. Reads only the path to
 * it, so the validations (on the plain copy) and the remediations (on the engine's live bag, which they
 * change) find the same pod.
 */
export function podTemplateObject(type: string, props: any): any {
    if (type === K8S.pod) return props;
    if (type === K8S.cronJob) return props.spec?.jobTemplate?.spec?.template;
    return props.spec?.template;
}

export function podTemplate(type: string, props: Record<string, any>): PodTemplate | undefined {
    const spec = isRecord(props.spec) ? props.spec : undefined;
    if (!spec) return undefined;
    if (type === K8S.pod) {
        return { labels: metadataLabels(props), annotations: metadataAnnotations(props), spec };
    }
    const template = podTemplateObject(type, props);
    if (!isRecord(template)) return undefined;
    return {
        labels: labelMap(template.metadata?.labels),
        annotations: labelMap(template.metadata?.annotations),
        spec: isRecord(template.spec) ? template.spec : {},
    };
}

export function metadataLabels(props: Record<string, any>): Labels {
    return labelMap(props.metadata?.labels);
}

export function metadataAnnotations(props: Record<string, any>): Labels {
    return labelMap(props.metadata?.annotations);
}

/** The namespace of a Kubernetes object ("default" when unset; the unknown sentinel when unknown). */
export function namespaceOf(props: Record<string, any>): string {
    const ns = props.metadata?.namespace;
    if (isUnknown(ns)) return "<unknown>";
    return str(ns) ?? "default";
}

/** The object's metadata.name, or the Pulumi resource name when the name is generated. */
export function objectName(props: Record<string, any>, resourceName: string): string {
    return str(props.metadata?.name) ?? resourceName;
}

export interface K8sContainer {
    container: Record<string, any>;
    name: string;
    init: boolean;
}

/**
 * Containers and init containers of a pod spec. Ephemeral containers are skipped: the API refuses
 * them when a Pod is created and in every pod template ("ephemeral containers not allowed in pod
 * template"); they are added to a running pod through its ephemeralcontainers subresource, never by
 * the program.
 */
export function podContainers(spec: Record<string, any>): K8sContainer[] {
    const out: K8sContainer[] = [];
    for (const c of arr(spec.initContainers)) {
        if (isRecord(c)) out.push({ container: c, name: str(c.name) ?? "<unnamed>", init: true });
    }
    for (const c of arr(spec.containers)) {
        if (isRecord(c)) out.push({ container: c, name: str(c.name) ?? "<unnamed>", init: false });
    }
    return out;
}

/** The labels that identify a workload: pod template labels win, metadata labels fill in. */
export function workloadLabels(type: string, props: Record<string, any>): Labels {
    if (type === DOCKER_CONTAINER) return dockerLabels(props);
    const tmpl = podTemplate(type, props);
    return { ...metadataLabels(props), ...(tmpl?.labels ?? {}) };
}

export interface WorkloadIdentity {
    /** `trading.io/workload`, else the resource name. */
    workload: string;
    role?: string;
}

export function identity(type: string, name: string, props: Record<string, any>): WorkloadIdentity {
    const labels = workloadLabels(type, props);
    return { workload: labels[LABEL_WORKLOAD] ?? name, role: labels[LABEL_ROLE] };
}

/** Is the workload a datastore (by role label, or by a well-known datastore workload name)? */
export function isDatastore(id: WorkloadIdentity): boolean {
    return id.role === "datastore" || DATASTORES.includes(id.workload);
}

export function isMonitoring(id: WorkloadIdentity): boolean {
    return id.role === "monitoring" || MONITORING.includes(id.workload);
}

/** A Docker container that runs once and exits (role=job, or mustRun=false / attach=true). */
export function isDockerOneShot(props: Record<string, any>, id: WorkloadIdentity): boolean {
    return id.role === "job" || props.mustRun === false || props.attach === true;
}

/** Human label for messages: `<type short> "<name>"`. */
export function describe(type: string, name: string): string {
    const short = type.split(":").pop() ?? type;
    return `${short} "${name}"`;
}

/**
 * The names of a pod spec's projected volumes that carry a service account token (a `serviceAccountToken` source),
 * `<unnamed>` for one without a name: a token mounted by hand, past automountServiceAccountToken (read by
 * automount-service-account-token and service-account-tokens-bound alike).
 */
export function projectedTokenVolumes(spec: Record<string, any>): string[] {
    return arr(spec.volumes)
        .filter((v) => isRecord(v) && arr(v.projected?.sources).some((src) => isRecord(src) && src.serviceAccountToken !== undefined))
        .map((v) => str(v.name) ?? "<unnamed>");
}
