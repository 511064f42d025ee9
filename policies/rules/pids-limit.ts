import { ResourceValidationPolicy } from "@pulumi/policy";
import { MAX_PIDS_LIMIT } from "../../catalog/sizing";
import { readConfig } from "../lib/config";
import { forDockerContainer } from "../lib/remediation";
import { Workload, workloadRule } from "../lib/rule";
import { isUnknown, num } from "../lib/values";

export interface PidsLimitConfig {
    /** Highest accepted limit: above it a limit no longer bounds a fork bomb on the host. */
    maxPidsLimit: number;
    /** What the remediation sets where no positive limit is given (generous: the platform's largest default). */
    remediationPidsLimit: number;
}

/** maxPidsLimit: the stack config refuses trading:dockerPidsLimit* above the same constant. */
const defaults: PidsLimitConfig = { maxPidsLimit: MAX_PIDS_LIMIT, remediationPidsLimit: 4096 };

/**
 * A Docker container's `pidsLimit` (HostConfig.PidsLimit; the repo's Docker provider implements it,
 * components/runtime/docker-container.ts sets it). The engine reads 0 and -1 as unlimited. A value
 * unknown during preview is skipped.
 */
export function pidsLimitProblems(w: Workload, cfg: PidsLimitConfig = defaults): string[] {
    const value = w.props.pidsLimit;
    if (isUnknown(value)) return [];
    const n = num(value);
    if (value === undefined || value === null) return ["has no PID limit (pidsLimit)"];
    if (n === undefined || !Number.isInteger(n) || n < 1) return [`has pidsLimit ${JSON.stringify(value)}, which is no limit (the engine reads 0 and -1 as unlimited)`];
    if (n > cfg.maxPidsLimit) return [`has pidsLimit ${n}, above the highest accepted ${cfg.maxPidsLimit}`];
    return [];
}

export const pidsLimit: ResourceValidationPolicy = {
    name: "pids-limit",
    description:
        "Every Docker container has a PID limit (pidsLimit: processes and threads), so a fork bomb or a thread " +
        "leak in one container cannot exhaust the host's process table and take every other workload down.",
    severity: "medium",
    configSchema: {
        properties: {
            maxPidsLimit: { type: "integer", minimum: 1, default: defaults.maxPidsLimit },
            remediationPidsLimit: { type: "integer", minimum: 1, default: defaults.remediationPidsLimit },
        },
    },
    validateResource: workloadRule(defaults, pidsLimitProblems, (w, p, cfg) =>
        `${w.label} ${p}; set pidsLimit to a positive integer of at most ${cfg.maxPidsLimit} sized to the workload ` +
        "(the stack's trading:dockerPidsLimitStateless/Stateful/Job; components/runtime/docker-container.ts passes it).",
        ["docker"]),
    // Mechanical: a missing or unlimited PID limit becomes the configured generous limit; a limit that
    // is set but too high is left alone (lowering it could starve the workload) and stays a violation.
    remediateResource: forDockerContainer((props, _id, args) => {
        const n = num(props.pidsLimit);
        if (props.pidsLimit === undefined || props.pidsLimit === null || (n !== undefined && n < 1)) {
            props.pidsLimit = readConfig(args, defaults).remediationPidsLimit;
        }
    }),
};
