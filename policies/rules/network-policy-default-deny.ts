import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { isEmptySelector, selectorMatches } from "../lib/selectors";
import { plainResources, StackResource } from "../lib/stack";
import { arr, hasUnknown, isRecord, str } from "../lib/values";
import { K8S, K8S_LONG_RUNNING, namespaceOf, objectName, podTemplate } from "../lib/workloads";

export interface NetworkPolicyConfig {
    /** Also require the default-deny policy to cover Egress. */
    requireEgressDeny: boolean;
}

const defaults: NetworkPolicyConfig = { requireEgressDeny: true };

function policyTypes(np: Record<string, any>): string[] {
    const types = arr(np.spec?.policyTypes).map((t) => str(t)).filter((t): t is string => !!t);
    if (types.length) return types;
    // Kubernetes default: Ingress always, Egress only when egress rules are present.
    return arr(np.spec?.egress).length ? ["Ingress", "Egress"] : ["Ingress"];
}

/** A default-deny policy: selects every pod and allows nothing for the directions it covers. */
export function isDefaultDeny(np: Record<string, any>): { ingress: boolean; egress: boolean } {
    if (!isEmptySelector(np.spec?.podSelector)) return { ingress: false, egress: false };
    const types = policyTypes(np);
    return {
        ingress: types.includes("Ingress") && arr(np.spec?.ingress).length === 0,
        egress: types.includes("Egress") && arr(np.spec?.egress).length === 0,
    };
}

/**
 * Ingress rules of a NetworkPolicy that admit every source, each as `ingress[i] (why)`: a rule
 * without `from` (every source), an ipBlock of the whole IPv4 or IPv6 space, or a bare
 * `namespaceSelector: {}` (every pod of every namespace). Any of them undoes the namespace's
 * default deny for the pods the policy selects. Rules unknown during preview are skipped.
 */
export function openIngressRules(np: Record<string, any>): string[] {
    const out: string[] = [];
    arr(np.spec?.ingress).forEach((rule, i) => {
        if (!isRecord(rule) || hasUnknown(rule.from)) return;
        const from = arr(rule.from);
        if (from.length === 0) {
            out.push(`ingress[${i}] (no from)`);
            return;
        }
        for (const peer of from.filter(isRecord)) {
            const everyNamespace = isRecord(peer.namespaceSelector) && (isEmptySelector(peer.namespaceSelector) || selectsEveryNamespace(peer.namespaceSelector));
            if (everyNamespace && (peer.podSelector === undefined || (isRecord(peer.podSelector) && isEmptySelector(peer.podSelector)))) {
                out.push(`ingress[${i}] (a namespaceSelector matching every namespace, ${peer.podSelector === undefined ? "without podSelector" : "with podSelector {}"})`);
            }
            const cidr = str(peer.ipBlock?.cidr)?.trim();
            if (cidr !== undefined && isWideBlock(cidr)) out.push(`ingress[${i}] (ipBlock ${cidr})`);
        }
    });
    return out;
}

/** A namespaceSelector every namespace matches: `kubernetes.io/metadata.name` (set on every namespace) with Exists. */
function selectsEveryNamespace(selector: Record<string, any>): boolean {
    if (isRecord(selector.matchLabels) && Object.keys(selector.matchLabels).length > 0) return false;
    const exprs = arr(selector.matchExpressions).filter(isRecord);
    return exprs.length > 0 && exprs.every((e) => str(e.key) === "kubernetes.io/metadata.name" && str(e.operator) === "Exists");
}

/**
 * An ipBlock wider than /8 (IPv4) or /16 (IPv6): the whole address space split into halves or
 * quarters admits every source as 0.0.0.0/0 does.
 */
export function isWideBlock(cidr: string): boolean {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr);
    if (!m) return false;
    const bits = Number(m[2]);
    return m[1].includes(":") ? bits < 16 : bits < 8;
}

export interface NetworkPolicyFinding {
    urn?: string;
    message: string;
}

/** Per namespace with long-running workloads: a default-deny policy, and an explicit allow for every workload. */
export function networkPolicyFindings(resources: StackResource[], cfg: NetworkPolicyConfig = defaults): NetworkPolicyFinding[] {
    const workloads = resources.filter((r) => K8S_LONG_RUNNING.includes(r.type));
    const policies = resources.filter((r) => r.type === K8S.networkPolicy);
    const findings: NetworkPolicyFinding[] = [];
    const namespaces = [...new Set(workloads.map((w) => namespaceOf(w.props)))].sort();
    for (const ns of namespaces) {
        const inNs = policies.filter((p) => namespaceOf(p.props) === ns);
        const deny = inNs.map((p) => isDefaultDeny(p.props));
        const ingressDeny = deny.some((d) => d.ingress);
        const egressDeny = deny.some((d) => d.egress);
        if (!ingressDeny || (cfg.requireEgressDeny && !egressDeny)) {
            const missing = [!ingressDeny ? "Ingress" : undefined, cfg.requireEgressDeny && !egressDeny ? "Egress" : undefined]
                .filter(Boolean).join(" and ");
            findings.push({
                message: `Namespace "${ns}" has no default-deny NetworkPolicy for ${missing}. Add a NetworkPolicy ` +
                    `with podSelector: {} and policyTypes: [Ingress, Egress] and no rules, then allow each flow explicitly.`,
            });
        }
        // Every policy, the ones selecting every pod too: NetworkPolicies add up, so a second policy with
        // podSelector {} and an open rule opens every pod of the namespace past its default deny.
        for (const p of inNs.filter((x) => policyTypes(x.props).includes("Ingress"))) {
            const open = openIngressRules(p.props);
            if (open.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" admits every source in ${open.join(", ")}, which undoes the namespace's default deny: ` +
                    "name the clients (podSelector, or namespaceSelector with labels) in from.",
            });
        }
        for (const w of workloads.filter((x) => namespaceOf(x.props) === ns)) {
            const tmpl = podTemplate(w.type, w.props);
            if (!tmpl) continue;
            // Its own policy: a non-empty podSelector matching its pods and covering Ingress. Its rules may be
            // empty (deliberately closed, e.g. Grafana reached only by port-forward): the decision is explicit.
            const own = inNs.filter((p) => !isEmptySelector(p.props.spec?.podSelector) && selectorMatches(p.props.spec?.podSelector, tmpl.labels));
            const explicit = own.some((p) => policyTypes(p.props).includes("Ingress"));
            if (explicit && cfg.requireEgressDeny && !own.some((p) => policyTypes(p.props).includes("Egress"))) {
                findings.push({
                    urn: w.urn,
                    message: `${w.type.split(":").pop()} "${objectName(w.props, w.name)}" in namespace "${ns}" has no NetworkPolicy of its own ` +
                        "covering Egress: add Egress to its policyTypes and list the destinations it may reach (an empty egress list keeps it closed).",
                });
            }
            if (!explicit) {
                findings.push({
                    urn: w.urn,
                    message: `${w.type.split(":").pop()} "${objectName(w.props, w.name)}" in namespace "${ns}" has no NetworkPolicy ` +
                        "of its own. Add one whose podSelector matches its pod labels (trading.io/workload) and whose ingress " +
                        "rules name the allowed clients and ports (an empty list keeps it closed).",
                });
            }
        }
    }
    return findings;
}

export const networkPolicyDefaultDeny: StackValidationPolicy = {
    name: "network-policy-default-deny",
    description:
        "Every Kubernetes namespace with workloads has a default-deny NetworkPolicy (podSelector {}, policyTypes " +
        "Ingress and Egress) and each workload has its own NetworkPolicy listing who may reach it and (Egress) what it may reach.",
    severity: "high",
    configSchema: {
        properties: {
            requireEgressDeny: { type: "boolean", default: true },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const resources = plainResources(args.resources);
        if (!resources.some((r) => K8S_LONG_RUNNING.includes(r.type))) {
            args.notApplicable("no Kubernetes workloads in this stack");
        }
        for (const f of networkPolicyFindings(resources, cfg)) {
            reportViolation(f.message, f.urn);
        }
    },
};
