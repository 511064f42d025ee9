import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { arr, isRecord, isUnknown, str, unwrap } from "../lib/values";
import {
    describe, DOCKER_CONTAINER, identity, isDockerOneShot, isK8sWorkload, K8S_LONG_RUNNING, podContainers, podTemplate,
} from "../lib/workloads";

export interface HealthConfig {
    /** Workload names exempted (e.g. a sidecar without an endpoint). */
    exemptWorkloads: string[];
}

const defaults: HealthConfig = { exemptWorkloads: [] };

export function dockerHealthProblems(name: string, props: Record<string, any>, cfg: HealthConfig = defaults): string[] {
    const id = identity(DOCKER_CONTAINER, name, props);
    if (isDockerOneShot(props, id) || cfg.exemptWorkloads.includes(id.workload)) return [];
    const hc = props.healthcheck;
    if (isUnknown(hc)) return [];
    const tests = isRecord(hc) ? arr(hc.tests) : [];
    if (tests.length === 0 || str(tests[0])?.toUpperCase() === "NONE") {
        return ["has no healthcheck (healthcheck.tests), so Docker and dependants cannot tell a hung process from a healthy one"];
    }
    return [];
}

export function k8sProbeProblems(type: string, name: string, props: Record<string, any>, cfg: HealthConfig = defaults): string[] {
    if (!K8S_LONG_RUNNING.includes(type)) return [];
    const id = identity(type, name, props);
    if (cfg.exemptWorkloads.includes(id.workload)) return [];
    const tmpl = podTemplate(type, props);
    const out: string[] = [];
    for (const c of tmpl ? podContainers(tmpl.spec) : []) {
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
    validateResource: (args, reportViolation) => {
        const props = unwrap(args.props);
        const cfg = readConfig(args, defaults);
        let problems: string[] = [];
        if (args.type === DOCKER_CONTAINER) problems = dockerHealthProblems(args.name, props, cfg);
        else if (isK8sWorkload(args.type)) problems = k8sProbeProblems(args.type, args.name, props, cfg);
        else args.notApplicable("only containers");
        for (const p of problems) {
            const fix = args.type === DOCKER_CONTAINER
                ? "add healthcheck { tests: [\"CMD\", ...], interval, timeout, retries, startPeriod } hitting /health or the datastore's ping"
                : "add livenessProbe (/health) and readinessProbe (/ready)";
            reportViolation(`${describe(args.type, args.name)} ${p}; ${fix}.`);
        }
    },
};
