/**
 * "A rule over every workload on either target": the one place that knows which resource classes
 * are workloads (a Docker container; a Kubernetes Deployment, StatefulSet, DaemonSet, ReplicaSet,
 * ReplicationController, Job, CronJob or Pod), turns the engine's property bag into a plain
 * `Workload` and hands it to the rule. Built on `validateResourceOfType`, so the engine skips every
 * other resource type.
 */
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { ReportViolation, ResourceValidation, ResourceValidationArgs, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "./config";
import { readingListItems } from "./lists";
import {
    buildArgImages, dockerBuildImageBuild, remoteImageBuild, DOCKER_BUILD_IMAGE, DOCKER_BUILD_INDEX, DOCKER_REGISTRY_IMAGE, dockerfileImages, dockerImageBuild,
    type ImageResourceBuild,
} from "./image-builds";
import type { StackResource } from "./stack";
import { arr, isRecord, plain, str } from "./values";
import {
    describe, identity, K8sContainer, podContainers, podTemplate, PodTemplate, WorkloadIdentity,
} from "./workloads";

export type Target = "docker" | "kubernetes";

export interface Workload {
    target: Target;
    /** Pulumi type token, e.g. "kubernetes:apps/v1:Deployment". */
    type: string;
    /** Pulumi resource name. */
    name: string;
    /** `Deployment "api-gateway-deployment"`: how every message names the resource. */
    label: string;
    /** The plain property bag (see values.ts: unknown values are UNKNOWN). */
    props: Record<string, any>;
    id: WorkloadIdentity;
    /** Kubernetes: the pod template (labels and pod spec); undefined on Docker or when unknown. */
    pod?: PodTemplate;
    /** Kubernetes: init and app containers of the pod spec; [] on Docker. */
    containers: K8sContainer[];
}

type ResourceClass = { new (name: string, args: any, ...rest: any[]): pulumi.Resource };

/** The workload resource classes, by target. */
export const WORKLOAD_CLASSES: ReadonlyArray<[Target, ResourceClass]> = [
    ["docker", docker.Container],
    ["kubernetes", k8s.apps.v1.Deployment],
    ["kubernetes", k8s.apps.v1.StatefulSet],
    ["kubernetes", k8s.apps.v1.DaemonSet],
    ["kubernetes", k8s.apps.v1.ReplicaSet],
    ["kubernetes", k8s.core.v1.ReplicationController],
    ["kubernetes", k8s.batch.v1.Job],
    ["kubernetes", k8s.batch.v1.CronJob],
    ["kubernetes", k8s.core.v1.Pod],
];

/** The plain workload view of a resource's (already plain) properties. */
export function workloadOf(target: Target, type: string, name: string, props: Record<string, any>): Workload {
    const pod = target === "kubernetes" ? podTemplate(type, props) : undefined;
    return {
        target, type, name, props, pod,
        label: describe(type, name),
        id: identity(type, name, props),
        containers: pod ? podContainers(pod.spec) : [],
    };
}

/** The target of a workload's type token (as the engine's `isType` answers for the SDK classes), or undefined for any other type. */
export function workloadTarget(type: string): Target | undefined {
    return WORKLOAD_CLASSES.find(([, cls]) => (cls as unknown as { isInstance(o: unknown): boolean }).isInstance({ __pulumiType: type }))?.[0];
}

/**
 * The workloads among a stack policy's plain resources (`plainResources`), each with its URN. Session 53: each is read
 * from its own entry, never paired with the engine's resources by position: `plainResources` expands a `*List` into its
 * items, so after a ConfigMapList the positions shifted and a workload was judged on another resource's properties.
 * A workload that is a list's item is one too (with the list's URN).
 */
export function stackWorkloads(resources: readonly StackResource[]): Array<{ workload: Workload; urn: string }> {
    return resources.flatMap((r) => {
        const target = workloadTarget(r.type);
        return target ? [{ workload: workloadOf(target, r.type, r.name, r.props), urn: r.urn }] : [];
    });
}

export type WorkloadValidation = (w: Workload, args: ResourceValidationArgs, reportViolation: ReportViolation) => void;

/**
 * Runs `validate` on every workload of the given targets (both by default); any other resource is
 * reported not applicable. One validation (not one per class) so the engine hears "not applicable"
 * only for resources that are not workloads at all. Session 54: and on each workload item of a `*List`
 * (`DeploymentList`, `StatefulSetList`, a `v1` `List`: lib/lists.ts `readingListItems`), named by its own
 * kind and name, as the API server applies it (no-unchecked-workloads refuses the list itself besides).
 */
export function forEveryWorkload(validate: WorkloadValidation, targets: Target[] = ["docker", "kubernetes"]): ResourceValidation {
    const classes = WORKLOAD_CLASSES.filter(([t]) => targets.includes(t));
    const one: ResourceValidation = (args, reportViolation) => {
        const hit = classes.find(([, cls]) => args.isType(cls));
        if (!hit) return args.notApplicable(`only ${targets.length === 2 ? "workloads" : `${targets[0]} workloads`}`);
        validate(workloadOf(hit[0], args.type, args.name, plain(args.props)), args, reportViolation);
    };
    return readingListItems(one)[0];
}

/**
 * The common shape: `problems` lists what is wrong with a workload under the policy's config, and
 * each problem is reported as `<label> <problem>` followed by `fix(w)`.
 */
export function workloadRule<C extends object>(
    defaults: C,
    problems: (w: Workload, cfg: C) => string[],
    message: (w: Workload, problem: string, cfg: C) => string,
    targets?: Target[],
): ResourceValidation {
    return forEveryWorkload((w, args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of problems(w, cfg)) reportViolation(message(w, p, cfg));
    }, targets);
}

/** An image a workload runs, as far as it is known during preview. */
export interface WorkloadImage {
    ref: string;
    /** Kubernetes: the container (or init container) running it; undefined for a Docker container's own image. */
    container?: K8sContainer;
    /** Kubernetes: the image volume (`volumes[].image.reference`, an OCI image mounted as files) pulling it. */
    volume?: string;
}

/**
 * A Docker container's image, or every container's and init container's of a pod template, and the
 * images its image volumes pull (mounted, not run, but pulled from a registry all the same); images
 * unknown during preview left out.
 */
export function workloadImages(w: Workload): WorkloadImage[] {
    const images: Array<{ ref: string | undefined; container?: K8sContainer; volume?: string }> = w.target === "docker"
        ? [{ ref: str(w.props.image) }]
        : [
            ...w.containers.map((c) => ({ ref: str(c.container.image), container: c })),
            ...arr(w.pod?.spec.volumes).filter((v) => isRecord(v) && isRecord(v.image))
                .map((v) => ({ ref: str(v.image.reference), volume: str(v.name) ?? "<unnamed>" })),
        ];
    return images.filter((i): i is WorkloadImage => i.ref !== undefined);
}

/**
 * The image resources are checked as a workload's images are: `RemoteImage.name`, `RegistryImage.name`
 * (the image pushed), a `@pulumi/docker-build` `Index`'s `tag` and `sources`; a `@pulumi/docker`
 * `Image`'s `imageName`, a `@pulumi/docker-build` `Image`'s `tags`, and the images either build pulls
 * (`buildArgImages`, `dockerfileImages`). `problems(where, ref, cfg)` for each value known during
 * preview, `where` naming the field ("imageName", "build argument NODE_IMAGE"); each problem reported
 * as `message(<resource>, problem, cfg)`. An image build whose Dockerfile cannot be read is a violation
 * of its own: the images it pulls would otherwise pass unseen.
 */
export function imageResourceRules<C extends object>(
    defaults: C,
    problems: (where: string, ref: string, cfg: C) => string[],
    message: (who: string, problem: string, cfg: C) => string,
): ResourceValidation[] {
    const check = (args: ResourceValidationArgs, reportViolation: ReportViolation, names: Array<[string, unknown]>, build?: ImageResourceBuild) => {
        const cfg = readConfig(args, defaults);
        const who = describe(args.type, args.name);
        const dockerfile = build ? dockerfileImages(build) : { bases: [] };
        const refs: Array<[string, string | undefined]> = [
            ...names.map(([where, ref]): [string, string | undefined] => [where, str(ref)]),
            ...(build ? buildArgImages(build) : []).map(([arg, ref]): [string, string] => [`build argument ${arg}`, ref]),
            ...dockerfile.bases,
        ];
        for (const [where, ref] of refs) {
            for (const p of ref === undefined ? [] : problems(where, ref, cfg)) reportViolation(message(who, p, cfg));
        }
        if (dockerfile.unreadable && build) {
            reportViolation(`${who}: its Dockerfile "${dockerfile.unreadable.unreadable}" cannot be read where the policies run (${dockerfile.unreadable.why}), ` +
                `so the images it pulls go unchecked; ${build.fix}`);
        }
    };
    return [
        validateResourceOfType(docker.RemoteImage, (props, args, report) => {
            const p = plain(props as Record<string, any>);
            // A RemoteImage with `build` builds its image too: what its Dockerfile pulls is checked as an Image's is.
            check(args, report, [["name", p.name]], remoteImageBuild(p));
        }),
        validateResourceOfType(docker.Image, (props, args, report) => {
            const p = plain(props as Record<string, any>);
            check(args, report, [["imageName", p.imageName]], dockerImageBuild(p));
        }),
        (args, report) => {
            if (args.type === DOCKER_BUILD_IMAGE) {
                const p = plain(args.props);
                check(args, report, arr(p.tags).map((tag): [string, unknown] => ["tag", tag]), dockerBuildImageBuild(p));
            } else if (args.type === DOCKER_BUILD_INDEX) {
                const p = plain(args.props);
                check(args, report, [["tag", p.tag], ...arr(p.sources).map((source): [string, unknown] => ["source", source])]);
            } else if (args.type === DOCKER_REGISTRY_IMAGE) {
                check(args, report, [["name", plain(args.props).name]]);
            }
        },
    ];
}
