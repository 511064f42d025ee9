import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import { ResourceValidation, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface PrivilegedConfig {
    /** Host paths that a Kubernetes hostPath volume may mount (none by default, as in PSS baseline). */
    allowedK8sHostPaths: string[];
    /** Host paths a Docker container may bind-mount (none by default: named volumes and uploads instead). */
    allowedDockerHostPaths: string[];
    /**
     * RuntimeClasses a pod may name (none by default): a class's handler is node configuration the
     * pack cannot read, and the platform's pods run under the cluster's default one.
     */
    allowedRuntimeClasses: string[];
    /**
     * Docker runtimes (HostConfig.Runtime) a container may name besides the engine's default `runc`
     * (none by default, session 42): a runtime registered on the engine is host configuration the pack
     * cannot read (sysbox-runc, kata, a custom binary), and `nvidia` hands over the host's GPUs.
     */
    allowedDockerRuntimes: string[];
    /**
     * DRA ResourceClaims and ResourceClaimTemplates (by name) that may request `adminAccess` to their
     * devices (none by default, session 42).
     */
    allowedAdminAccessClaims: string[];
}

const defaults: PrivilegedConfig = {
    allowedK8sHostPaths: [], allowedDockerHostPaths: [], allowedRuntimeClasses: [], allowedDockerRuntimes: [], allowedAdminAccessClaims: [],
};

/** The engine's own runtime: what every isolation the pack assumes (namespaces, seccomp, cgroups) is judged under. */
const DEFAULT_DOCKER_RUNTIME = "runc";

/** Container runtime sockets: mounting one gives root on the host. */
const RUNTIME_SOCKETS = [
    "/var/run/docker.sock", "/run/docker.sock", "/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock", "/run/crio/crio.sock", "/var/run/podman/podman.sock", "/run/podman/podman.sock",
];
/** Host paths whose bind mount is equivalent to host access. */
const SENSITIVE_HOST_PATHS = ["/", "/proc", "/sys", "/etc", "/root", "/boot", "/dev", "/var/lib/docker", "/var/run", "/run"];

function normalizePath(p: string): string {
    return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

export function hostPathProblem(path: string): string | undefined {
    const p = normalizePath(path);
    if (RUNTIME_SOCKETS.includes(p) || /\/(docker|containerd|crio|podman)\.sock$/.test(p)) {
        return `mounts the container runtime socket ${p} (root on the host)`;
    }
    if (SENSITIVE_HOST_PATHS.includes(p)) return `bind-mounts the host path ${p}`;
    return undefined;
}

/**
 * The host directory a volume of Docker's local driver binds: driver options `o` holding `bind` and
 * `device` the path (`type=none,o=bind,device=/etc`), a bind mount under a volume's name.
 */
export function boundHostPath(driverOptions: unknown): string | undefined {
    if (!isRecord(driverOptions)) return undefined;
    const raw = (str(driverOptions.o) ?? "").split(",").map((o) => o.trim());
    const options = raw.map((o) => o.toLowerCase());
    if (options.includes("bind") || options.includes("rbind")) return str(driverOptions.device);
    // An overlay mount (type=overlay, o=lowerdir=/,upperdir=...,workdir=...) shows the host directories
    // it layers: its lower directory is the host's filesystem as a bind would be.
    const lower = raw.find((o) => /^lowerdir=/i.test(o));
    return lower === undefined ? undefined : lower.slice("lowerdir=".length).split(":")[0];
}

export function dockerPrivilegeProblems(props: Record<string, any>, cfg: PrivilegedConfig = defaults): string[] {
    const bind = (path: string): string | undefined => hostPathProblem(path)
        ?? (cfg.allowedDockerHostPaths.includes(normalizePath(path)) ? undefined : `bind-mounts the host path ${normalizePath(path)} (use a named volume or an upload)`);
    const out: string[] = [];
    // The provider takes the string "true" for a boolean as well.
    if (props.privileged === true || str(props.privileged)?.trim().toLowerCase() === "true") out.push("runs privileged");
    for (const [field, label] of [["networkMode", "network"], ["pidMode", "PID"], ["ipcMode", "IPC"], ["usernsMode", "user"], ["cgroupnsMode", "cgroup"]] as const) {
        const mode = str(props[field]);
        if (mode === "host") out.push(`shares the host ${label} namespace (${field}: "host")`);
        // "container:<name|id>" joins another container's namespace: its processes (their memory
        // and environment, PID), its shared memory (IPC) or its loopback-only ports (network).
        else if (mode !== undefined && /^container:/i.test(mode.trim())) {
            out.push(`joins the ${label} namespace of another container (${field}: "${mode.trim()}")`);
        }
    }
    // The first of networksAdvanced is the container's network mode (the engine's HostConfig.NetworkMode):
    // the network named "host" is the host's network namespace, as networkMode: "host" is.
    arr(props.networksAdvanced).forEach((n) => {
        if (isRecord(n) && str(n.name) === "host") out.push("shares the host network namespace (networksAdvanced name \"host\")");
    });
    arr(props.volumes).forEach((v) => {
        // The provider writes each entry into the engine's Binds as "<volumeName or hostPath>:<containerPath>",
        // volumeName first, and the engine binds any source that is an absolute path: a volumeName of
        // "/var/run/docker.sock" is a host bind mount however the field is called.
        const hp = isRecord(v) ? str(v.hostPath) : undefined;
        const problem = hp ? bind(hp) : undefined;
        if (problem) out.push(problem);
        const name = isRecord(v) ? str(v.volumeName) : undefined;
        const named = name?.startsWith("/") ? bind(name) : undefined;
        if (named) out.push(`${named}, given as volumes[].volumeName (an absolute path there is a bind mount to the engine)`);
        // volumes-from: every mount of that container, a docker.sock or a host directory included, unseen here.
        const from = isRecord(v) ? str(v.fromContainer) : undefined;
        if (from !== undefined) out.push(`mounts every volume of the container "${from}" (volumes fromContainer), host paths included, unchecked here`);
    });
    arr(props.mounts).forEach((m) => {
        const src = isRecord(m) && str(m.type) === "bind" ? str(m.source) : undefined;
        // A volume mount whose local-driver options bind a host directory is a bind mount too.
        const bound = isRecord(m) && str(m.type) === "volume" ? boundHostPath(m.volumeOptions?.driverOptions) : undefined;
        const problem = src ? bind(src) : bound ? bind(bound) : undefined;
        if (problem) out.push(problem);
    });
    if (arr(props.devices).length) out.push("passes host devices into the container (devices)");
    // Device cgroup rules let the container open host devices it creates (e.g. "c *:* rwm"); device
    // requests and gpus hand it the host's GPUs with their driver's device files.
    if (arr(props.deviceCgroupRules).length) out.push("opens host devices to the container (deviceCgroupRules)");
    const gpus = arr(props.deviceRequests).length > 0 || (str(props.gpus) ?? "") !== "";
    if (gpus) out.push("passes host GPUs into the container (deviceRequests/gpus)");
    // Session 42: any runtime but the engine's default runc, unless allowed. The NVIDIA runtime hands
    // over the devices NVIDIA_VISIBLE_DEVICES names, as gpus would (said once when gpus already is);
    // another (sysbox-runc, kata, a custom runtime registered on the engine) runs the container as its
    // configuration says, which the pack cannot read.
    const runtime = str(props.runtime)?.trim();
    if (runtime && runtime !== DEFAULT_DOCKER_RUNTIME && !cfg.allowedDockerRuntimes.includes(runtime)) {
        if (runtime.toLowerCase() !== "nvidia") out.push(`runs under the Docker runtime "${runtime}" (runtime)`);
        else if (!gpus) out.push("passes host GPUs into the container (runtime nvidia)");
    }
    // The engine creates the container's cgroup under this parent instead of its own (HostConfig.CgroupParent).
    const cgroupParent = str(props.cgroupParent)?.trim();
    if (cgroupParent) out.push(`sets cgroupParent "${cgroupParent}"`);
    return out;
}

/** Problems that join another container's namespaces (not the host's): their message names that risk. */
function isSiblingNamespaceProblem(problem: string): boolean {
    return problem.startsWith("joins the ") || problem.startsWith("sets shareProcessNamespace");
}

/** The report of a problem: what a compromised process reaches through it, and the fix. */
function privilegeMessage(w: Workload, p: string): string {
    if (isSiblingNamespaceProblem(p)) {
        return `${w.label} ${p}. A compromised process there reads the other container's secrets: remove it ` +
            "(containers talk over the network by service name and share files through a volume).";
    }
    if (p.startsWith("runs under the RuntimeClass ")) {
        return `${w.label} ${p}. Its containers run as that handler runs them, which the pack cannot see (a handler may run them ` +
            "privileged, or without the runtime's isolation): remove it, or list the class in allowedRuntimeClasses after review.";
    }
    if (p.startsWith("runs under the Docker runtime ")) {
        return `${w.label} ${p}. The engine runs it as that runtime's registration says, which the pack cannot see (a runtime may run it ` +
            "without runc's namespaces, seccomp or cgroup limits, or with the host's devices): remove it (the engine's default runc), " +
            "or list the runtime in allowedDockerRuntimes after review.";
    }
    if (p.startsWith("sets cgroupParent ")) {
        return `${w.label} ${p}: the engine makes its cgroup there, outside the parent the engine's own limits hold every container ` +
            "under, beside the host's services. Remove it (the engine's default parent keeps it with the other containers).";
    }
    return `${w.label} ${p}. A compromised process there owns the host: remove it ` +
        "(use published loopback ports, named volumes and a user-defined network instead).";
}

export function privilegeProblems(w: Workload, cfg: PrivilegedConfig = defaults): string[] {
    if (w.target === "docker") return dockerPrivilegeProblems(w.props, cfg);
    const out: string[] = [];
    if (!w.pod) return out;
    const spec = w.pod.spec;
    for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
        if (spec[field] === true) out.push(`sets ${field}: true`);
    }
    // One PID namespace for the pod's containers: each sees the others' processes and, as the same
    // user or with CAP_SYS_PTRACE, reads their memory and /proc/<pid>/environ (a companion's password).
    // No workload of the platform needs it (components/runtime/kubernetes/pod.ts never sets it).
    if (spec.shareProcessNamespace === true) out.push("sets shareProcessNamespace: true (its containers see each other's processes, memory and environment)");
    for (const v of arr(spec.volumes)) {
        const hp = isRecord(v) ? str(v.hostPath?.path) : undefined;
        if (hp === undefined) continue;
        if (cfg.allowedK8sHostPaths.includes(normalizePath(hp))) continue;
        out.push(hostPathProblem(hp) ?? `mounts the hostPath volume ${hp} (use a PersistentVolumeClaim, emptyDir or ConfigMap)`);
    }
    if (spec.securityContext?.windowsOptions?.hostProcess === true) out.push("sets windowsOptions.hostProcess: true (a Windows HostProcess pod)");
    const runtimeClass = str(spec.runtimeClassName);
    if (runtimeClass && !cfg.allowedRuntimeClasses.includes(runtimeClass)) out.push(`runs under the RuntimeClass "${runtimeClass}" (runtimeClassName)`);
    for (const c of w.containers) {
        if (c.container.securityContext?.privileged === true) out.push(`container "${c.name}" runs privileged`);
        if (c.container.securityContext?.windowsOptions?.hostProcess === true) out.push(`container "${c.name}" sets windowsOptions.hostProcess: true`);
    }
    return out;
}

/** What a container mounting a volume or claim reaches: the same host paths a bind or hostPath would. */
const reachesHost = (path: string, allowed: string[]): string | undefined =>
    allowed.includes(normalizePath(path)) ? undefined : hostPathProblem(path)?.replace(/^bind-mounts|^mounts/, "binds") ?? `binds the host path ${normalizePath(path)}`;

/**
 * Storage declared apart from the workloads that is a host directory all the same: a Docker volume
 * whose local-driver options bind one, a Kubernetes PersistentVolume of `hostPath` or `local` type
 * (a pod claiming it passes the pod's own hostPath check and the volume-type policy).
 */
const hostStorageRules = [
    validateResourceOfType(docker.Volume, (props, args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const path = boundHostPath(plain(props as Record<string, any>).driverOpts);
        const problem = path === undefined ? undefined : reachesHost(path, cfg.allowedDockerHostPaths);
        if (problem) reportViolation(`${describe(args.type, args.name)} ${problem} (driverOpts, a bind device or an overlay lowerdir): every container mounting it reaches ` +
            "the host there as a bind mount would; use a plain named volume (no bind options), or list the path in allowedDockerHostPaths after review.");
    }),
    validateResourceOfType(k8s.core.v1.PersistentVolume, (props, args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const spec = plain(props as Record<string, any>).spec;
        for (const kind of ["hostPath", "local"] as const) {
            const path = isRecord(spec) && isRecord(spec[kind]) ? str(spec[kind].path) : undefined;
            const problem = path === undefined ? undefined : reachesHost(path, cfg.allowedK8sHostPaths);
            if (problem) reportViolation(`${describe(args.type, args.name)} ${problem} (spec.${kind}): a pod claiming it mounts a node's directory past the ` +
                "hostPath check on pods; provision storage through a StorageClass, or list the path in allowedK8sHostPaths after review.");
        }
    }),
];

/** DRA claims and claim templates of every served version (resource.k8s.io v1alpha3, v1beta1, v1beta2, v1), and their Lists. */
const DRA_CLAIM = /^kubernetes:resource\.k8s\.io\/v1(?:alpha\d+|beta\d+)?:(ResourceClaim|ResourceClaimTemplate)(List)?$/;

/**
 * Requests of a DRA ResourceClaim (or claim template, or a List of either) asking for admin access:
 * `spec.devices.requests[].adminAccess` (v1alpha3, v1beta1), `requests[].exactly.adminAccess` (v1beta2,
 * v1), and a `firstAvailable` sub-request's, should a version carry one. Returns "<claim>: <where>".
 */
export function adminAccessRequests(type: string, props: Record<string, any>, name: string): { claim: string; at: string }[] {
    const m = DRA_CLAIM.exec(type);
    if (!m) return [];
    const objects = m[2] ? arr(props.items).filter(isRecord) : [props];
    const out: { claim: string; at: string }[] = [];
    for (const o of objects) {
        const claim = str(o.metadata?.name) ?? name;
        const spec = m[1] === "ResourceClaimTemplate" ? o.spec?.spec : o.spec;
        arr(isRecord(spec) && isRecord(spec.devices) ? spec.devices.requests : undefined).forEach((r, i) => {
            if (!isRecord(r)) return;
            const request = str(r.name) ?? String(i);
            const on = (v: unknown) => v === true || str(v)?.trim().toLowerCase() === "true";
            const path = `${m[1] === "ResourceClaimTemplate" ? "spec.spec" : "spec"}.devices.requests[${request}]`;
            if (on(r.adminAccess)) out.push({ claim, at: `${path}.adminAccess` });
            if (isRecord(r.exactly) && on(r.exactly.adminAccess)) out.push({ claim, at: `${path}.exactly.adminAccess` });
            arr(r.firstAvailable).forEach((sub, j) => {
                if (isRecord(sub) && on(sub.adminAccess)) out.push({ claim, at: `${path}.firstAvailable[${str(sub.name) ?? j}].adminAccess` });
            });
        });
    }
    return out;
}

const draAdminAccessRule: ResourceValidation = (args, reportViolation) => {
    if (!DRA_CLAIM.test(args.type)) return;
    const cfg = readConfig(args, defaults);
    for (const f of adminAccessRequests(args.type, plain(args.props), args.name)) {
        if (cfg.allowedAdminAccessClaims.includes(f.claim) || cfg.allowedAdminAccessClaims.includes(args.name)) continue;
        reportViolation(`${describe(args.type, args.name)} requests admin access to its devices (${f.at}): a pod using the claim gets privileged ` +
            "access to devices already allocated to other pods (their memory and state included), past the scheduler's allocation; remove " +
            `it, or list the claim ("${f.claim}") in allowedAdminAccessClaims after review.`);
    }
};

export const noPrivilegedContainers: ResourceValidationPolicy = {
    name: "no-privileged-containers",
    description:
        "No container runs privileged (or as a Windows HostProcess), shares host namespaces (network, PID, IPC) or another " +
        "container's (Docker network/PID/IPC mode container:<name>, Kubernetes shareProcessNamespace), mounts " +
        "the Docker/containerd socket or any host path (Docker bind mounts and volumes bound to a host directory, Kubernetes " +
        "hostPath, and PersistentVolumes of hostPath or local type), or receives host devices " +
        "(Docker devices, device cgroup rules, GPUs); no pod names a RuntimeClass not listed in allowedRuntimeClasses, " +
        "no Docker container sets a cgroupParent or a runtime other than runc not listed in allowedDockerRuntimes, and no DRA " +
        "ResourceClaim or claim template requests adminAccess unless listed in allowedAdminAccessClaims.",
    severity: "critical",
    configSchema: {
        properties: {
            allowedK8sHostPaths: { type: "array", items: { type: "string" }, default: [] },
            allowedDockerHostPaths: { type: "array", items: { type: "string" }, default: [] },
            allowedRuntimeClasses: { type: "array", items: { type: "string" }, default: [] },
            allowedDockerRuntimes: { type: "array", items: { type: "string" }, default: [] },
            allowedAdminAccessClaims: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: [
        workloadRule(defaults, privilegeProblems, privilegeMessage),
        // Session 53: a PersistentVolumeList's items are PersistentVolumes the API server applies.
        ...readingListItems(hostStorageRules),
        draAdminAccessRule,
    ],
};
