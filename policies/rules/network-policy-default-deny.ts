import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { readConfig } from "../lib/config";
import { coveredAddresses, isWideBlock } from "../lib/cidr";
import { clusterRangeRules, metadataEgressRules } from "../lib/ip-blocks";
import { excludesOnly, isEmptySelector, selectorMatches } from "../lib/selectors";
import { plainResources, StackResource } from "../lib/stack";
import { arr, hasUnknown, isRecord, str } from "../lib/values";
import { K8S, K8S_LONG_RUNNING, K8S_WORKLOAD_TYPES, NAMESPACE_NAME_LABEL, namespaceOf, objectName, podTemplate } from "../lib/workloads";

export interface NetworkPolicyConfig {
    /** Also require the default-deny policy to cover Egress. */
    requireEgressDeny: boolean;
    /**
     * Workloads (trading.io/workload) whose own NetworkPolicy may open egress to the internet (an ipBlock
     * wider than /8); none by default, so an undeclared one is reported.
     */
    internetEgressWorkloads: string[];
    /**
     * Session 50: the cluster's pod and Service address ranges, which no ingress (session 50b: nor egress) ipBlock may hold (`except` counts).
     * By default every private and shared range (RFC 1918, 100.64.0.0/10, fc00::/7): the pack does not know the
     * cluster's; prod.json and local-k8s.json name theirs.
     */
    podCidrs: string[];
    serviceCidrs: string[];
}

const PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];
const defaults: NetworkPolicyConfig = { requireEgressDeny: true, internetEgressWorkloads: [], podCidrs: PRIVATE_RANGES, serviceCidrs: [] };

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
 * Rules of a NetworkPolicy, in one direction, whose peers are everything, each as `<direction>[i] (why)`:
 * a rule without peers (`from` for ingress, `to` for egress: every address), an ipBlock of the whole
 * IPv4 or IPv6 space, or a namespaceSelector matching every namespace without a podSelector or with
 * `podSelector: {}` (every pod of the cluster), and, for ingress (session 49), with any podSelector: the
 * pods of every namespace carrying its labels, which whoever creates a pod sets. Ingress: any of them undoes the namespace's default
 * deny for the pods the policy selects. Egress: the pods reach the internet, or every pod of the
 * cluster. `wideBlock` tells the two apart (an opted-in workload may reach the internet through a
 * wide ipBlock, never everything). Rules unknown during preview are skipped.
 */
export function openRules(np: Record<string, any>, direction: "ingress" | "egress"): Array<{ where: string; wideBlock: boolean }> {
    const peersKey = direction === "ingress" ? "from" : "to";
    const out: Array<{ where: string; wideBlock: boolean }> = [];
    arr(np.spec?.[direction]).forEach((rule, i) => {
        if (!isRecord(rule) || hasUnknown(rule[peersKey])) return;
        const peers = arr(rule[peersKey]);
        if (peers.length === 0) {
            out.push({ where: `${direction}[${i}] (no ${peersKey})`, wideBlock: false });
            return;
        }
        for (const peer of peers.filter(isRecord)) {
            // Session 48: a selector that only excludes (NotIn, DoesNotExist) matches every namespace, or pod, it does not name;
            // `Exists` on the name label the API server sets on every namespace matches them all.
            const everyNamespace = excludesOnly(peer.namespaceSelector, [NAMESPACE_NAME_LABEL]);
            if (everyNamespace && (peer.podSelector === undefined || excludesOnly(peer.podSelector))) {
                const pods = peer.podSelector === undefined ? "without podSelector" : isEmptySelector(peer.podSelector) ? "with podSelector {}" : "with a podSelector that only excludes";
                out.push({
                    where: `${direction}[${i}] (a namespaceSelector matching every namespace, ${pods})`,
                    wideBlock: false,
                });
            } else if (everyNamespace && direction === "ingress" && !hasUnknown(peer.podSelector)) {
                // Session 49: labels name no client when any namespace may hold the pod: whoever can create a pod
                // anywhere in the cluster gives it those labels. (Egress to kube-dns by its labels in any namespace
                // is the common DNS rule, and reaches, not admits: kept.)
                out.push({
                    where: `${direction}[${i}] (a namespaceSelector matching every namespace, with podSelector ${JSON.stringify(peer.podSelector)}: ` +
                        "pods carrying those labels in any namespace, set by whoever creates the pod)",
                    wideBlock: false,
                });
            }
            // Session 65: a podSelector alone selects in the policy's own namespace; `{}` (or one that only excludes) every pod
            // there, whatever runs in it, so the namespace's default deny no longer separates its workloads from one another.
            if (peer.namespaceSelector === undefined && peer.ipBlock === undefined && isRecord(peer.podSelector) && excludesOnly(peer.podSelector)) {
                const pods = isEmptySelector(peer.podSelector) ? "podSelector {}" : `a podSelector that only excludes, ${JSON.stringify(peer.podSelector)}`;
                out.push({ where: `${direction}[${i}] (${pods} without namespaceSelector: every pod of the policy's namespace)`, wideBlock: false });
            }
            const cidr = str(peer.ipBlock?.cidr)?.trim();
            if (cidr !== undefined && isWideBlock(cidr)) out.push({ where: `${direction}[${i}] (ipBlock ${cidr})`, wideBlock: true });
        }
    });
    // Session 48: narrow blocks adding up to the internet (256 /8s, a /8 and its neighbours), over every rule of the direction.
    const narrow = arr(np.spec?.[direction]).flatMap((rule) => (isRecord(rule) && !hasUnknown(rule[peersKey]) ? arr(rule[peersKey]) : []))
        .filter(isRecord).map((peer) => str(peer.ipBlock?.cidr)?.trim()).filter((c): c is string => c !== undefined && !isWideBlock(c));
    // As wide as a single block reported above (a /7, an IPv6 /15): as many addresses as the blocks' union.
    for (const [family, wide, prefix] of [["ipv4", 1n << 25n, "/8"], ["ipv6", 1n << 113n, "/16"]] as const) {
        if (coveredAddresses(narrow, family) >= wide) out.push({ where: `${direction} (its ipBlocks together, wider than a ${prefix})`, wideBlock: true });
    }
    return out;
}

/**
 * The trading.io/workload values a podSelector requires (`matchLabels`, or `In` values): every pod it
 * selects is one of those workloads. Undefined when the selector does not pin the label.
 */
function pinnedWorkloads(selector: unknown): string[] | undefined {
    if (!isRecord(selector)) return undefined;
    const label = isRecord(selector.matchLabels) ? str(selector.matchLabels[LABEL_WORKLOAD]) : undefined;
    if (label !== undefined) return [label];
    const expr = arr(selector.matchExpressions).find((e) => isRecord(e) && str(e.key) === LABEL_WORKLOAD && str(e.operator) === "In");
    return expr ? arr(expr.values).map((v) => str(v)).filter((v): v is string => v !== undefined) : undefined;
}

/**
 * Egress rules of a policy that reach beyond what they name. A wide ipBlock (the internet) is allowed
 * only to a policy whose podSelector pins trading.io/workload to workloads of `internetEgressWorkloads`
 * (the platform's market data ingester, exchange connector, card processor client and notification
 * sender: the program gives them `0.0.0.0/0` minus the private ranges on the ports they need,
 * components/internet-egress.ts); a rule with no `to` or a peer matching every
 * pod of the cluster is reported for every policy, opted-in or not.
 */
export function openEgressRules(np: Record<string, any>, internetEgressWorkloads: readonly string[]): string[] {
    const optedIn = internetOptedIn(np, internetEgressWorkloads);
    return openRules(np, "egress").filter((r) => !(r.wideBlock && optedIn)).map((r) => r.where);
}

/** Whether the policy's podSelector pins trading.io/workload to workloads of `internetEgressWorkloads` only. */
function internetOptedIn(np: Record<string, any>, internetEgressWorkloads: readonly string[]): boolean {
    const pinned = pinnedWorkloads(np.spec?.podSelector);
    return pinned !== undefined && pinned.length > 0 && pinned.every((w) => internetEgressWorkloads.includes(w));
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
    // Every namespace that runs pods needs its default deny, Jobs' and CronJobs' too: counting only
    // long-running workloads let a CronJob in a namespace of its own reach anything (session 40).
    // Their pods need no policy of their own: the default deny closes them, and a job opens what it needs.
    const namespaces = [...new Set(resources.filter((r) => K8S_WORKLOAD_TYPES.includes(r.type)).map((w) => namespaceOf(w.props)))].sort();
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
            const open = openRules(p.props, "ingress").map((r) => r.where);
            if (open.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" admits every source in ${open.join(", ")}, which undoes the namespace's default deny: ` +
                    "name the clients (podSelector, or namespaceSelector with labels) in from.",
            });
        }
        for (const p of inNs.filter((x) => policyTypes(x.props).includes("Ingress"))) {
            const held = clusterRangeRules(p.props, cfg, "ingress");
            if (held.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" admits the cluster's own addresses in ${held.join(", ")}: under a CNI that matches ` +
                    "pod addresses against ipBlocks, every pod there, in any namespace, past the namespace's default deny; name in-cluster clients by podSelector and " +
                    "namespaceSelector, and add the cluster's ranges (podCidrs, serviceCidrs) to the ipBlock's except.",
            });
        }
        // Egress rules count only where the policy covers Egress (the API ignores them otherwise).
        for (const p of inNs.filter((x) => policyTypes(x.props).includes("Egress"))) {
            const open = openEgressRules(p.props, cfg.internetEgressWorkloads);
            if (open.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" lets its pods reach every destination in ${open.join(", ")}, ` +
                    "which undoes the namespace's default deny for egress: name the destinations in to (podSelector, namespaceSelector with labels, an ipBlock of /8 or narrower); " +
                    "a workload that must reach the internet is listed in the policy's internetEgressWorkloads and its policy selects it by trading.io/workload.",
            });
        }
        // Session 50b: an egress block of the cluster's ranges, the opted-in internet rule's included (its except must hold them).
        for (const p of inNs.filter((x) => policyTypes(x.props).includes("Egress"))) {
            const held = clusterRangeRules(p.props, cfg, "egress", internetOptedIn(p.props, cfg.internetEgressWorkloads));
            if (held.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" lets its pods reach the cluster's own addresses in ${held.join(", ")}: under a CNI ` +
                    "that matches pod addresses against ipBlocks, every pod and Service there, in any namespace, past the per-peer egress rules; name in-cluster " +
                    "destinations by podSelector and namespaceSelector (DNS: kube-system's pods on port 53), and add the cluster's ranges (podCidrs, serviceCidrs) to the ipBlock's except.",
            });
        }
        for (const p of inNs.filter((x) => policyTypes(x.props).includes("Egress"))) {
            const metadata = metadataEgressRules(p.props);
            if (metadata.length === 0) continue;
            findings.push({
                urn: p.urn,
                message: `NetworkPolicy "${objectName(p.props, p.name)}" in namespace "${ns}" lets its pods reach the cloud metadata service in ${metadata.join(", ")}, ` +
                    "which hands the node's cloud credentials to whatever runs in them: add 169.254.0.0/16 and 100.64.0.0/10 (for IPv6, fd00:ec2::254/128) to the ipBlock's except.",
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
        "Ingress and Egress) and each workload has its own NetworkPolicy listing who may reach it and (Egress) what it may reach; " +
        "no policy admits every source, or lets its pods reach every destination (no to, every pod of the cluster, an ipBlock wider than /8: " +
        "the internet only for the workloads of internetEgressWorkloads), no ipBlock (ingress or egress) holds the cluster's pod or Service " +
        "addresses (podCidrs, serviceCidrs; except counted), and none reaches the cloud metadata service (169.254.169.254, 100.100.100.200, fd00:ec2::254).",
    severity: "high",
    configSchema: {
        properties: {
            requireEgressDeny: { type: "boolean", default: true },
            internetEgressWorkloads: { type: "array", items: { type: "string" }, default: defaults.internetEgressWorkloads },
            podCidrs: { type: "array", items: { type: "string" }, default: defaults.podCidrs },
            serviceCidrs: { type: "array", items: { type: "string" }, default: defaults.serviceCidrs },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const resources = plainResources(args.resources);
        if (!resources.some((r) => K8S_WORKLOAD_TYPES.includes(r.type))) {
            args.notApplicable("no Kubernetes workloads in this stack");
        }
        for (const f of networkPolicyFindings(resources, cfg)) {
            reportViolation(f.message, f.urn);
        }
    },
};
