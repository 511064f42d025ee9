import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { stackWorkloads } from "../lib/rule";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { describe, K8S, namespaceOf, objectName, projectedTokenVolumes } from "../lib/workloads";

/** namespaceOf's answer for a namespace unknown during preview: it matches any, judged at `up`. */
const UNKNOWN_NS = "<unknown>";

const sameNamespace = (a: string, b: string) => a === b || a === UNKNOWN_NS || b === UNKNOWN_NS;
/** An object's namespace; unknown too while its whole metadata is. */
const nsOf = (props: Record<string, any>) => (isUnknown(props.metadata) ? UNKNOWN_NS : namespaceOf(props));

/**
 * Whether a binding of the stack grants the ServiceAccount `name` of namespace `ns` a role: a ServiceAccount subject (a
 * RoleBinding's subject without a namespace is of the binding's), or the groups every ServiceAccount (of the namespace) is
 * in. True as well while a binding's subjects are unknown during preview (judged at `up`).
 */
export function isBound(name: string, ns: string, resources: StackResource[]): boolean {
    return resources.some((b) => {
        if (b.type !== K8S.roleBinding && b.type !== K8S.clusterRoleBinding) return false;
        if (isUnknown(b.props.subjects)) return true;
        return arr(b.props.subjects).some((s) => {
            if (!isRecord(s)) return false;
            if (isUnknown(s.kind) || isUnknown(s.name) || isUnknown(s.namespace)) return true;
            const kind = str(s.kind);
            if (kind === "Group") {
                const group = str(s.name);
                return group === "system:serviceaccounts" || (ns !== UNKNOWN_NS && group === `system:serviceaccounts:${ns}`);
            }
            if (kind !== "ServiceAccount" || str(s.name) !== name) return false;
            const subjectNs = str(s.namespace) ?? (b.type === K8S.roleBinding ? nsOf(b.props) : undefined);
            return subjectNs !== undefined && sameNamespace(subjectNs, ns);
        });
    });
}

/** The stack's ServiceAccount `name` in namespace `ns`, if it declares it. */
function declaredAccount(name: string, ns: string, resources: StackResource[]): StackResource | undefined {
    return resources.find((r) => r.type === K8S.serviceAccount && objectName(r.props, r.name) === name && sameNamespace(nsOf(r.props), ns));
}

/**
 * Session 64. A pod holds a Kubernetes API credential when it mounts its ServiceAccount's token: its spec sets
 * `automountServiceAccountToken: true`, or leaves it unset and its ServiceAccount (`default` when it names none) does not
 * set it false (the stack's declaration says; an account it does not declare, the namespace's default included, mounts),
 * or a projected volume carries a `serviceAccountToken` source. Such a token is of use only to a workload the stack binds
 * to a role; any other holds a credential it has no use for, which whoever takes the container takes with it (and which
 * the API server answers with whatever a later binding grants, discovery at least). automount-service-account-token reads
 * the pod spec alone, its exemptions by configuration; this reads the ServiceAccount and the bindings the stack declares.
 * A ServiceAccount the stack declares without `automountServiceAccountToken: false` and binds to no role is reported too:
 * every pod it runs mounts its token unless the pod says otherwise.
 *
 * Session 65 decided who owns which finding, so a pod gets one report per fault: a pod that mounts a token is
 * automount-service-account-token's (its spec is the fault, whatever the bindings say), unless that policy exempts its
 * workload (`exemptWorkloads`: a workload reviewed as calling the Kubernetes API). Only then is the pod this policy's: an
 * exempt workload whose ServiceAccount no binding names holds a token for an API it is granted nothing in. `exempt` is
 * that list (this policy's config of the same name, which pack.test.ts holds equal to automount-service-account-token's
 * in every config file). The ServiceAccount's own finding is this policy's alone (automount reads no ServiceAccount).
 */
export function unboundTokens(resources: StackResource[], exempt: string[] = []): Finding[] {
    const out: Finding[] = [];
    for (const { workload: w, urn } of stackWorkloads(resources)) {
        if (w.target !== "kubernetes" || !w.pod || !exempt.includes(w.id.workload)) continue;
        const spec = w.pod.spec;
        const rawAccount = spec.serviceAccountName ?? spec.serviceAccount;
        if (isUnknown(rawAccount) || isUnknown(spec.automountServiceAccountToken)) continue;
        const account = str(rawAccount) || "default";
        const ns = nsOf(w.props);
        if (isBound(account, ns, resources)) continue;
        const declared = declaredAccount(account, ns, resources);
        const accountSetting = declared?.props.automountServiceAccountToken;
        if (isUnknown(accountSetting)) continue;
        const how: string[] = [];
        if (spec.automountServiceAccountToken === true) how.push("automountServiceAccountToken: true");
        else if (spec.automountServiceAccountToken === undefined && accountSetting !== false) {
            how.push(`automountServiceAccountToken unset, and ${declared ? "its ServiceAccount leaves it unset or true" : "its ServiceAccount, which the stack does not declare, mounts by default"}`);
        }
        for (const name of projectedTokenVolumes(spec)) how.push(`the projected volume "${name}"`);
        if (how.length === 0) continue;
        out.push({
            urn,
            message: `${w.label} is exempt from automount-service-account-token (a workload calling the Kubernetes API) and mounts the token of the ` +
                `ServiceAccount "${account}" (${how.join("; ")}), which no RoleBinding or ClusterRoleBinding of the stack binds to a role: a Kubernetes ` +
                "API credential it is granted nothing with, taken with the container by whoever takes it; bind the ServiceAccount to the role it needs, " +
                "or take the workload out of exemptWorkloads and set automountServiceAccountToken: false on its pod template.",
        });
    }
    for (const sa of resources.filter((r) => r.type === K8S.serviceAccount)) {
        const setting = sa.props.automountServiceAccountToken;
        if (isUnknown(setting) || setting === false || isUnknown(sa.props.metadata) || isUnknown(sa.props.metadata?.name)) continue;
        if (isBound(objectName(sa.props, sa.name), nsOf(sa.props), resources)) continue;
        out.push({
            urn: sa.urn,
            message: `${describe(sa.type, sa.name)} is bound to no role by the stack and does not set automountServiceAccountToken: false, so every pod ` +
                "running as it that does not refuse the token mounts a Kubernetes API credential it has no use for; set automountServiceAccountToken: false " +
                "on it, or bind it to the role it needs.",
        });
    }
    return out;
}

export const serviceAccountTokensBound: StackValidationPolicy = {
    name: "service-account-tokens-bound",
    description:
        "A pod mounts a ServiceAccount token (automountServiceAccountToken true, or unset with its ServiceAccount's unset or true; a projected " +
        "token) only when a RoleBinding or ClusterRoleBinding of the stack binds that ServiceAccount to a role; a ServiceAccount bound to none " +
        "sets automountServiceAccountToken: false (session 64). A pod that mounts one is automount-service-account-token's finding, unless " +
        "that policy exempts its workload (session 65: one report per fault).",
    severity: "medium",
    configSchema: {
        properties: {
            exemptWorkloads: {
                type: "array", items: { type: "string" }, default: [],
                description: "automount-service-account-token's exemptWorkloads (the same list): the workloads whose pods this policy judges",
            },
        },
    },
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const { exemptWorkloads } = readConfig(args, { exemptWorkloads: [] as string[] });
        for (const f of unboundTokens(resources, exemptWorkloads)) reportViolation(f.message, f.urn);
    },
};
