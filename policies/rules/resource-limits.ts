import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { isRecord, num, positiveQuantity } from "../lib/values";

export interface LimitsConfig {
    /** Kubernetes: require limits.cpu as well as limits.memory. */
    requireCpuLimit: boolean;
    /** Kubernetes: require requests.cpu and requests.memory (scheduling). */
    requireRequests: boolean;
}

const defaults: LimitsConfig = { requireCpuLimit: true, requireRequests: true };

/** A limit set to something (zero is none: Docker reads 0 as unlimited, and a Kubernetes limit of zero leaves the container unbounded). */
const present = positiveQuantity;

export function dockerLimitProblems(props: Record<string, any>): string[] {
    const out: string[] = [];
    if (!present(props.memory)) out.push("has no memory limit (memory, in MB)");
    // Session 62: cpuShares is no limit. It is a weight (cgroup cpu.weight) the kernel applies only while the
    // CPUs are contended: a container with the host to itself, or with the largest weight (up to 262144), takes
    // every core. Only cpus, or a quota per period, caps what it takes.
    if (!present(props.cpus) && !(present(props.cpuQuota) && present(props.cpuPeriod))) {
        out.push(present(props.cpuShares)
            ? `has no CPU limit: cpuShares ${String(props.cpuShares)} is only a weight under contention, not a cap (cpus, or cpuQuota with cpuPeriod)`
            : "has no CPU limit (cpus, or cpuQuota with cpuPeriod)");
    }
    if (num(props.memorySwap) === -1) {
        out.push("sets memorySwap -1 (unlimited swap), so the memory limit no longer bounds what it takes from the host");
    }
    // Session 63: the kernel's OOM killer picks its victim by oom_score_adj when the host (not the container's cgroup)
    // runs out of memory; below 0 this container's processes are spared and the engine, the other containers or sshd
    // are killed first (-1000: never this one). The engine sets it as root, whoever asks.
    const oom = num(props.oomScoreAdj);
    if (oom !== undefined && oom < 0) {
        out.push(`sets oomScoreAdj ${oom}, so when the host runs out of memory its kernel kills the engine, the other containers or the host's own ` +
            "services before this one (-1000: never this one)");
    }
    return out;
}

export function limitProblems(w: Workload, cfg: LimitsConfig = defaults): string[] {
    if (w.target === "docker") return dockerLimitProblems(w.props);
    const out: string[] = [];
    for (const c of w.containers) {
        const res = isRecord(c.container.resources) ? c.container.resources : {};
        const missing: string[] = [];
        if (!present(res.limits?.memory)) missing.push("limits.memory");
        if (cfg.requireCpuLimit && !present(res.limits?.cpu)) missing.push("limits.cpu");
        if (cfg.requireRequests && !present(res.requests?.memory)) missing.push("requests.memory");
        if (cfg.requireRequests && !present(res.requests?.cpu)) missing.push("requests.cpu");
        if (missing.length) out.push(`container "${c.name}" has no resources.${missing.join(", resources.")}`);
    }
    return out;
}

export const resourceLimits: ResourceValidationPolicy = {
    name: "resource-limits",
    description:
        "Every container has CPU and memory limits (Docker memory and cpus, or cpuQuota with cpuPeriod: cpuShares is only a weight; Kubernetes resources " +
        "limits and requests), so one runaway service cannot starve the trading engine or the datastores; no Docker oomScoreAdj below 0 " +
        "(the host's OOM killer then spares it and kills the others).",
    severity: "medium",
    configSchema: {
        properties: {
            requireCpuLimit: { type: "boolean", default: true },
            requireRequests: { type: "boolean", default: true },
        },
    },
    validateResource: workloadRule(defaults, limitProblems, (w, p) => p.startsWith("sets oomScoreAdj")
        ? `${w.label} ${p}; leave oomScoreAdj unset (0) and bound the container by its memory limit.`
        : `${w.label} ${p}; size it from the guide's system requirements and set the limit explicitly.`),
};
