import { ResourceValidationPolicy } from "@pulumi/policy";
import { isRecord, isUnknown, plain, str } from "../lib/values";
import { describe, K8S, K8S_WORKLOAD_TYPES, kubernetesKind } from "../lib/workloads";

/**
 * Resources that run containers the pack's workload policies never see, each with what the program
 * declares instead. A `helm.sh/v3` Release hands its chart to Helm inside the provider: the
 * Deployments, RBAC and Services it installs never reach the engine as resources (`helm.sh/v4` Chart
 * renders the same chart into resources of their own). A Docker Swarm Service runs its task's
 * containers with a spec of its own (privileges, capabilities, mounts) that no container policy
 * reads. A Docker Plugin runs as root with the host access it is granted.
 */
const UNCHECKED = new Map<string, { runs: (props: Record<string, any>) => string; instead: string }>(Object.entries({
    "kubernetes:helm.sh/v3:Release": {
        runs: (p) => `installs the objects of ${str(p.chart) === undefined ? "its chart" : `the chart "${str(p.chart)}"`} inside the provider (Helm applies them)`,
        instead: "deploy the chart with kubernetes:helm.sh/v4:Chart, whose objects the pack checks like any other",
    },
    "docker:index/service:Service": {
        runs: () => "runs Swarm tasks whose containers (taskSpec.containerSpec) no container policy reads",
        instead: "declare the container as docker.Container, which every container policy checks",
    },
    "docker:index/plugin:Plugin": {
        runs: (p) => `installs the engine plugin ${str(p.name) === undefined ? "it names" : `"${str(p.name)}"`}, which runs as root with the host access it is granted`,
        instead: "run what it does as a docker.Container the pack checks, or install the plugin outside the program after review",
    },
}));

/**
 * Session 51: charts and manifests a controller of the cluster installs (any version): k3s's helm-controller
 * (`HelmChart`; `HelmChartConfig`, the values of a chart it installs, its Traefik's included), Flux's `HelmRelease`
 * and `Kustomization`, Argo CD's `Application` and `ApplicationSet`. None names an image field, and the objects they
 * install never are resources of the program: a Release's case by other hands.
 */
const CLUSTER_INSTALLERS = /^kubernetes:(helm\.cattle\.io\/[^:]+:(HelmChart|HelmChartConfig)|helm\.toolkit\.fluxcd\.io\/[^:]+:HelmRelease|kustomize\.toolkit\.fluxcd\.io\/[^:]+:Kustomization|argoproj\.io\/[^:]+:(Application|ApplicationSet))$/;
const CLUSTER_INSTALLED = {
    runs: () => "installs the objects a controller of the cluster renders (a chart, a repository's manifests, or the values of a chart it installs)",
    instead: "deploy the chart with kubernetes:helm.sh/v4:Chart (or the manifests as resources), whose objects the pack checks like any other",
};

/**
 * Kubernetes kinds whose `image` fields run nothing of themselves: a ConfigMap's or Secret's data is
 * opaque text; a PodTemplate is a template no controller runs until a workload copies it (and the
 * workload is checked), and a ControllerRevision a record of a template a workload ran. Every workload
 * kind is checked by the pod policies already.
 */
const RUN_NOTHING = new Set<string>([
    K8S.configMap, K8S.secret, "kubernetes:core/v1:PodTemplate", "kubernetes:apps/v1:ControllerRevision", ...K8S_WORKLOAD_TYPES,
]);

/** A field `image` inside a resource, as its path and value (a string, or unknown during preview). */
export interface ImageField { path: string; ref: string | undefined }

/**
 * Every `image` field of a Kubernetes object's properties outside metadata and status, at any depth
 * (`spec.template.spec.containers[0].image`, a Workflow's `spec.templates[1].container.image`, an
 * operator's `spec.image`): the shapes are the kinds' own, so the walk looks for the field, not a
 * path. Walked with a stack, not recursion, so no nesting depth makes it throw.
 */
export function imageFields(props: Record<string, any>): ImageField[] {
    const found: ImageField[] = [];
    const stack: Array<[unknown, string]> = Object.entries(props)
        .filter(([k]) => k !== "metadata" && k !== "status")
        .map(([k, v]): [unknown, string] => [v, k])
        .reverse();
    while (stack.length > 0) {
        const [value, path] = stack.pop()!;
        const entries: Array<[unknown, string, string]> = Array.isArray(value)
            ? value.map((v, i) => [v, `${path}[${i}]`, ""])
            : isRecord(value) ? Object.entries(value).map(([k, v]) => [v, `${path}.${k}`, k]) : [];
        for (const [v, at, key] of entries.reverse()) {
            if (key === "image" && (typeof v === "string" || isUnknown(v))) found.push({ path: at, ref: str(v) });
            else if (key === "image" && isRecord(v) && (typeof v.repository === "string" || typeof v.reference === "string")) {
                // Operators' and charts' spelling: { repository, tag } (or an image volume's { reference }).
                const ref = typeof v.reference === "string" ? v.reference : `${v.repository}${typeof v.tag === "string" ? `:${v.tag}` : ""}`;
                found.push({ path: at, ref });
            } else stack.push([v, at]);
        }
    }
    return found;
}

/** How a message shows where an object names images: the first three, then how many more. */
function imagesNamed(fields: ImageField[]): string {
    const shown = fields.slice(0, 3).map((f) => `${f.ref === undefined ? "an image computed during preview" : `"${f.ref}"`} (${f.path})`);
    const more = fields.length > 3 ? ` and ${fields.length - 3} more` : "";
    return shown.join(", ") + more;
}

/** `@pulumi/command`'s resources: a shell command run on the deploying machine, or over SSH on a host. */
const COMMAND_TYPES = new Set(["command:local:Command", "command:remote:Command"]);
/** Container engines' and clusters' command-line tools: a command running one starts containers or applies objects itself. */
const CONTAINER_CLI = /(?:^|[\s;&|()`'"/])(docker|podman|nerdctl|ctr|crictl|runc|kubectl|helm|kustomize|oc|k3s|kind|minikube|docker-compose)(?=$|[\s;&|)`'"])/;

/**
 * Session 48: a `command:local:Command` or `command:remote:Command` whose `create`, `update` or
 * `delete` runs a container engine's or cluster's tool (`docker run --privileged -v /:/host`,
 * `kubectl apply -f pod.yaml`, `helm install`): the containers or objects it makes reach the engine or
 * the API server without ever being resources the pack checks. Each as "<field> runs <tool>".
 */
export function commandContainerTools(props: Record<string, any>): string[] {
    return ["create", "update", "delete"].flatMap((field) => {
        const tool = CONTAINER_CLI.exec(str(props[field]) ?? "")?.[1];
        return tool === undefined ? [] : [`${field} runs ${tool}`];
    });
}

export const noUncheckedWorkloads: ResourceValidationPolicy = {
    name: "no-unchecked-workloads",
    description:
        "Containers run only from resources the pack checks: no kubernetes:helm.sh/v3:Release (Helm installs its chart's " +
        "objects where no policy sees them; use kubernetes:helm.sh/v4:Chart, which registers each object), no Docker Swarm " +
        "Service (its containers' spec is read by no container policy; use docker.Container), no Docker engine Plugin " +
        "(root on the host with what it is granted), no chart or manifests a controller of the cluster installs (k3s HelmChart, Flux HelmRelease, Argo CD Application), no @pulumi/command Command running docker, kubectl, helm or the like, no other Kubernetes object naming an image (a custom resource such as an " +
        "Argo Rollout, a workload of an API version the pod policies do not read): its controller runs pods no policy checks.",
    severity: "high",
    validateResource: (args, reportViolation) => {
        if (COMMAND_TYPES.has(args.type)) {
            const runs = commandContainerTools(plain(args.props));
            if (runs.length > 0) {
                reportViolation(`${describe(args.type, args.name)} ${runs.join(", ")}, which makes containers or Kubernetes objects no policy of this ` +
                    "pack checks (they never are resources of the program); declare them as docker.Container or Kubernetes resources instead.");
            }
            return;
        }
        const unchecked = UNCHECKED.get(args.type) ?? (CLUSTER_INSTALLERS.test(args.type) ? CLUSTER_INSTALLED : undefined);
        if (unchecked === undefined) return otherImages(args.type, args.name, args.props, reportViolation, args.notApplicable);
        reportViolation(`${describe(args.type, args.name)} ${unchecked.runs(plain(args.props))}, where no policy of this pack checks ` +
            `what runs; ${unchecked.instead}.`);
    },
};

/**
 * Any other Kubernetes object that names an image (a custom resource such as an Argo Rollout or a
 * Knative Service, a Deployment of a version the pod policies do not match, a `DeploymentList`):
 * a controller runs those pods, and not one pod policy reads them.
 */
function otherImages(type: string, name: string, props: Record<string, any>,
    reportViolation: (message: string) => void, notApplicable: (reason: string) => void): void {
    if (kubernetesKind(type) === undefined || RUN_NOTHING.has(type) || type.endsWith("Patch")) {
        return notApplicable("only resources that run containers out of the pack's sight");
    }
    // Copied only now: most resources are not applicable, and a copy walks the engine's whole bag.
    const fields = imageFields(plain(props));
    if (fields.length === 0) return;
    reportViolation(`${describe(type, name)} names the image${fields.length > 1 ? "s" : ""} ${imagesNamed(fields)}, which its controller runs in pods ` +
        "no policy of this pack checks (the pod policies read Deployments, StatefulSets, DaemonSets, ReplicaSets, " +
        "ReplicationControllers, Jobs, CronJobs and Pods of the served versions); run them from one of those.");
}
