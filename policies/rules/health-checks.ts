import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { isDockerOneShot, K8S_LONG_RUNNING } from "../lib/workloads";

export interface HealthConfig {
    /** Workload names exempted (e.g. a sidecar without an endpoint). */
    exemptWorkloads: string[];
}

const defaults: HealthConfig = { exemptWorkloads: [] };

export function healthProblems(w: Workload, cfg: HealthConfig = defaults): string[] {
    if (cfg.exemptWorkloads.includes(w.id.workload)) return [];
    if (w.target === "docker") {
        if (isDockerOneShot(w.props, w.id)) return [];
        const hc = w.props.healthcheck;
        if (isUnknown(hc)) return [];
        const tests = isRecord(hc) ? arr(hc.tests) : [];
        if (tests.length === 0 || str(tests[0])?.toUpperCase() === "NONE") {
            return ["has no healthcheck (healthcheck.tests), so Docker and dependants cannot tell a hung process from a healthy one"];
        }
        return [];
    }
    if (!K8S_LONG_RUNNING.includes(w.type)) return [];
    const out: string[] = [];
    for (const c of w.containers) {
        if (c.init) continue;
        const missing = ["livenessProbe", "readinessProbe"].filter((p) => !isRecord(c.container[p]) && !isUnknown(c.container[p]));
        if (missing.length) out.push(`container "${c.name}" has no ${missing.join(" and no ")}`);
    }
    return out;
}

export const healthChecks: ResourceValidationPolicy = {
    name: "health-checks",
    description:
        "Long-running containers declare health checks: a Docker healthcheck, or Kubernetes liveness and readiness " +
        "probes (one-shot jobs are exempt).",
    severity: "medium",
    configSchema: {
        properties: {
            exemptWorkloads: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: workloadRule(defaults, healthProblems, (w, p) => {
        const fix = w.target === "docker"
            ? "add healthcheck { tests: [\"CMD\", ...], interval, timeout, retries, startPeriod } hitting /health or the datastore's ping"
            : "add livenessProbe (/health) and readinessProbe (/ready)";
        return `${w.label} ${p}; ${fix}.`;
    }),
};
