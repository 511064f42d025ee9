import * as k8s from "@pulumi/kubernetes";
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";

const ESCALATING_VERBS = ["escalate", "bind", "impersonate"];
const READ_VERBS = ["get", "list", "watch"];

/** Problems of a Role/ClusterRole's rules: wildcards, escalation verbs, reading Secrets, exec into pods. */
export function roleProblems(props: Record<string, any>): string[] {
    const out: string[] = [];
    arr(props.rules).forEach((r, i) => {
        if (!isRecord(r)) return;
        const list = (v: unknown) => arr(v).map((x) => str(x)).filter((x): x is string => x !== undefined);
        const verbs = list(r.verbs);
        const resources = list(r.resources);
        const groups = list(r.apiGroups);
        for (const [field, values] of [["verbs", verbs], ["resources", resources], ["apiGroups", groups]] as const) {
            if (values.includes("*")) out.push(`rules[${i}] grants "*" in ${field}`);
        }
        const escalating = verbs.filter((v) => ESCALATING_VERBS.includes(v));
        if (escalating.length) out.push(`rules[${i}] grants ${escalating.join(", ")} (privilege escalation)`);
        if (resources.includes("secrets") && verbs.some((v) => READ_VERBS.includes(v) || v === "*")) out.push(`rules[${i}] reads secrets`);
        if (resources.some((x) => x === "pods/exec" || x === "pods/attach") && verbs.some((v) => v === "create" || v === "*")) {
            out.push(`rules[${i}] allows exec/attach into pods`);
        }
    });
    return out;
}

/** Bindings to cluster-admin, or to the system:masters / system:anonymous / system:unauthenticated groups. */
export function bindingProblems(props: Record<string, any>): string[] {
    const out: string[] = [];
    if (str(props.roleRef?.name) === "cluster-admin") out.push("binds the cluster-admin ClusterRole");
    for (const s of arr(props.subjects)) {
        const name = isRecord(s) ? str(s.name) : undefined;
        if (name && ["system:masters", "system:anonymous", "system:unauthenticated"].includes(name)) out.push(`binds the subject ${name}`);
    }
    return out;
}

function rule(problems: (props: Record<string, any>) => string[]) {
    return (props: object, args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        for (const p of problems(plain(props as Record<string, any>))) {
            reportViolation(`${describe(args.type, args.name)} ${p}; grant only the named verbs on the named resources the ` +
                "workload needs (least privilege), in a namespaced Role where possible.");
        }
    };
}

export const rbacLeastPrivilege: ResourceValidationPolicy = {
    name: "rbac-least-privilege",
    description:
        "RBAC grants least privilege: no \"*\" verbs, resources or API groups, no escalate/bind/impersonate, no reading " +
        "Secrets or exec into pods, no binding of cluster-admin or system:masters/anonymous.",
    severity: "high",
    validateResource: [
        validateResourceOfType(k8s.rbac.v1.Role, rule(roleProblems)),
        validateResourceOfType(k8s.rbac.v1.ClusterRole, rule(roleProblems)),
        validateResourceOfType(k8s.rbac.v1.RoleBinding, rule(bindingProblems)),
        validateResourceOfType(k8s.rbac.v1.ClusterRoleBinding, rule(bindingProblems)),
    ],
};
