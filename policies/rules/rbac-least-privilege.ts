import * as k8s from "@pulumi/kubernetes";
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

const ESCALATING_VERBS = ["escalate", "bind", "impersonate"];
const WRITE_VERBS = ["create", "update", "patch"];
const WORKLOADS: Array<[group: string, resource: string]> = [
    ["", "pods"], ["", "replicationcontrollers"], ["apps", "deployments"], ["apps", "replicasets"], ["apps", "statefulsets"],
    ["apps", "daemonsets"], ["batch", "jobs"], ["batch", "cronjobs"],
];

/**
 * Permissions that reach beyond the role itself, after the CIS Kubernetes Benchmark 5.1 (the
 * section numbers in the comments): each lets its holder read credentials, run code in other
 * workloads, mint identities or rewrite what the API server admits. Matched as the API server
 * matches rules, so a subresource wildcard (an asterisk, a slash, then "exec") is caught too; a bare
 * "*" is reported as a wildcard already.
 */
/** `group`: the API group serving the resources, or each of the groups that serve them (Events: the core group and events.k8s.io). */
const SENSITIVE_GRANTS: Array<{ group: string | string[]; resources: string[]; verbs: string[]; what: string; clusterRoleOnly?: boolean }> = [
    { group: "", resources: ["secrets"], verbs: ["get", "list", "watch"], what: "reads secrets" }, // 5.1.2
    // `get` too: before Kubernetes 1.35 a WebSocket exec/attach was authorised as a `get`.
    { group: "", resources: ["pods/exec", "pods/attach"], verbs: ["create", "get"], what: "allows exec/attach into pods" },
    { group: "", resources: ["pods/ephemeralcontainers"], verbs: ["update", "patch"], what: "adds ephemeral containers to running pods (exec by another name)" },
    ...WORKLOADS.map(([group, resource]) => ({
        group, resources: [resource], verbs: WRITE_VERBS,
        what: `creates or changes ${resource} (a pod runs as any ServiceAccount of its namespace and mounts any of its Secrets)`, // 5.1.4
    })),
    { group: "", resources: ["persistentvolumes"], verbs: ["create"], what: "creates PersistentVolumes (a hostPath volume reaches the node's files)" }, // 5.1.9
    { group: "", resources: ["nodes/proxy"], verbs: ["get", "create", "update", "patch", "delete"], what: "reaches the kubelet API through nodes/proxy (exec into any pod of the node)" }, // 5.1.10
    { group: "certificates.k8s.io", resources: ["certificatesigningrequests/approval"], verbs: ["update", "patch"], what: "approves certificate signing requests (mints client credentials)" }, // 5.1.11
    {
        group: "admissionregistration.k8s.io", resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "changes admission webhooks (sees or rewrites every object the API server admits)", // 5.1.12
    },
    { group: "", resources: ["serviceaccounts/token"], verbs: ["create"], what: "mints ServiceAccount tokens" }, // 5.1.13
    // Session 48: the same token by another door. A Secret of type kubernetes.io/service-account-token
    // annotated with an account's name is filled by the token controller with a token of that account
    // that never expires: any ServiceAccount of the namespace, a more privileged one included.
    {
        group: "", resources: ["secrets"], verbs: ["create"],
        what: "creates Secrets (one of type kubernetes.io/service-account-token gets a never-expiring token of any ServiceAccount of its namespace)",
    },
    // Beyond CIS 5.1: reaching pods and Services past their NetworkPolicies, rerouting a Service's
    // traffic, relabelling a namespace's Pod Security, and removing the API server's own policies.
    { group: "", resources: ["pods/portforward", "pods/proxy", "services/proxy"], verbs: ["create", "get"], what: "reaches pods or Services through the API server (port-forward, proxy), past their NetworkPolicies" },
    { group: "", resources: ["endpoints"], verbs: WRITE_VERBS, what: "rewrites Endpoints (sends a Service's traffic anywhere)" },
    { group: "discovery.k8s.io", resources: ["endpointslices"], verbs: WRITE_VERBS, what: "rewrites EndpointSlices (sends a Service's traffic anywhere)" },
    { group: "", resources: ["namespaces"], verbs: ["update", "patch"], what: "changes Namespaces (their pod-security labels decide what pods are admitted)" },
    {
        group: "admissionregistration.k8s.io", resources: ["validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"],
        verbs: [...WRITE_VERBS, "delete", "deletecollection"], what: "changes admission policies (what the API server refuses or rewrites)",
    },
    // Session 41: objects the pack refuses when declared, made at run time by whoever holds the grant.
    {
        group: "apiregistration.k8s.io", resources: ["apiservices"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "registers or changes aggregated APIs (the API server hands a whole API group's requests, with the caller's identity, to a Service of its choosing)",
    },
    {
        group: "", resources: ["services", "services/status"], verbs: WRITE_VERBS,
        what: "creates or changes Services (externalIPs or a load balancer address capture what every pod sends there, CVE-2020-8554; a LoadBalancer or NodePort publishes any pod)",
    },
    {
        group: "networking.k8s.io", resources: ["ingresses"], verbs: WRITE_VERBS,
        what: "creates or changes Ingresses (the controller reads every Secret of the cluster, and an Ingress's annotations have served them, CVE-2021-25742, CVE-2023-5043)",
    },
    // Session 41, round 2. ConfigMaps only from a ClusterRole: a namespaced Role writes its own
    // namespace's (protected-namespaces keeps the platform out of kube-system), while a ClusterRole is
    // what a ClusterRoleBinding binds, and the pack judges the role, not every binding made of it later.
    {
        group: "", resources: ["configmaps"], verbs: [...WRITE_VERBS, "delete", "deletecollection"], clusterRoleOnly: true,
        what: "writes ConfigMaps of every namespace once a ClusterRoleBinding binds it (EKS's kube-system/aws-auth maps cloud identities to cluster roles; a workload's configuration files)",
    },
    {
        group: "", resources: ["nodes", "nodes/status"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes Nodes (their labels and taints draw pods to a node or evict them; a Node of its own receives pods and their Secrets)",
    },
    {
        group: "apiextensions.k8s.io", resources: ["customresourcedefinitions"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes CustomResourceDefinitions (a conversion webhook receives every object of its kind; deleting one deletes them all)",
    },
    {
        group: "networking.k8s.io", resources: ["networkpolicies"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes NetworkPolicies (one selecting a pod undoes its default deny)",
    },
    {
        group: "scheduling.k8s.io", resources: ["priorityclasses"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes PriorityClasses (a globalDefault one gives its priority to every new pod; a high one preempts every application pod)",
    },
    // Session 49: the storage and runtime classes the pack judges when declared, made or redefined at run time
    // (a StorageClass of a host-path provisioner; a RuntimeClass listed in allowedRuntimeClasses pointed at another handler).
    {
        group: "storage.k8s.io", resources: ["storageclasses", "csidrivers"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes StorageClasses or CSIDrivers (a class of a host-path or secrets-store driver serves every claim naming it, past allowed-storage-drivers)",
    },
    // Session 62: the kubelet authorises its /logs/ as nodes/log (the node's /var/log, every container's logs under
    // /var/log/pods included: whatever any pod of the node ever logged), and API Priority and Fairness decides whose
    // requests the API server serves (a FlowSchema of one's own in the exempt level is never queued; one matching
    // the controllers' or kubelets' requests to a one-seat level starves them).
    { group: "", resources: ["nodes/log"], verbs: ["get"], what: "reads the kubelet's logs through nodes/log (the node's /var/log: every pod's logs on the node)" },
    {
        group: "flowcontrol.apiserver.k8s.io", resources: ["flowschemas", "prioritylevelconfigurations"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "changes API Priority and Fairness (an exempt FlowSchema of its own is never throttled, another matching the controllers' requests to a small level starves them)",
    },
    // Session 63: an eviction (a create on pods/eviction, from a Role any pod of its namespace, from a ClusterRole any pod
    // of the cluster) deletes the pod; only a PodDisruptionBudget slows it, one replica at a time, and a pod no budget
    // covers (a datastore's single replica, the DNS, the ingress controller) goes at once: a denial of service on demand.
    // As the API server matches, "*/eviction" covers it and "pods/*" does not (a literal name: it grants nothing).
    {
        group: "", resources: ["pods/eviction"], verbs: ["create"],
        what: "evicts pods through pods/eviction (deletes any pod in its reach, every replica in turn as far as PodDisruptionBudgets allow, at once where none covers it: a denial of service on demand)",
    },
    // Session 63: deleting is what an eviction does without asking the PodDisruptionBudgets: every replica of a workload at
    // once (a workload's controller deletes its pods with it); a claim or volume deleted takes the datastore's data with it.
    ...WORKLOADS.map(([group, resource]) => ({
        group, resources: [resource], verbs: ["delete", "deletecollection"],
        what: `deletes ${resource} (every replica at once, past the PodDisruptionBudgets only evictions honour: a denial of service on demand)`,
    })),
    {
        group: "", resources: ["persistentvolumeclaims", "persistentvolumes"], verbs: ["delete", "deletecollection"],
        what: "deletes PersistentVolumeClaims or PersistentVolumes (a datastore's data, gone with its disk under reclaimPolicy Delete)",
    },
    {
        group: "node.k8s.io", resources: ["runtimeclasses"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes RuntimeClasses (a reviewed class's name given another handler runs pods as that handler says)",
    },
    // Session 63b: the same denial of service by the doors session 63 left open. Scaling to 0 stops every replica at once
    // (a scale-down asks no PodDisruptionBudget); a budget changed or deleted lets a drain or an eviction take every replica;
    // a quota or limit range removed unbounds what the namespace's pods take from the node.
    ...WORKLOADS.filter(([, resource]) => ["replicationcontrollers", "deployments", "replicasets", "statefulsets"].includes(resource)).map(([group, resource]) => ({
        group, resources: [`${resource}/scale`], verbs: ["update", "patch"],
        what: `scales ${resource} (to 0: every replica stopped at once, no PodDisruptionBudget asked: a denial of service on demand)`,
    })),
    {
        group: "policy", resources: ["poddisruptionbudgets"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "creates, changes or deletes PodDisruptionBudgets (one gone or allowing 100% lets a drain or an eviction take every replica at once)",
    },
    {
        group: "", resources: ["resourcequotas", "limitranges"], verbs: [...WRITE_VERBS, "delete", "deletecollection"],
        what: "changes or deletes ResourceQuotas or LimitRanges (the namespace's bounds on what its pods take from the nodes)",
    },
    // Session 63b: Leases are leader election and node heartbeats. From a ClusterRole (every namespace once bound by a
    // ClusterRoleBinding), kube-system's kube-scheduler and kube-controller-manager leases held stop the control loops, and
    // kube-node-lease's renewed keep a dead node looking alive; a Role's own namespace's leases are its own controllers'.
    {
        group: "coordination.k8s.io", resources: ["leases"], verbs: [...WRITE_VERBS, "delete", "deletecollection"], clusterRoleOnly: true,
        what: "writes Leases of every namespace once a ClusterRoleBinding binds it (kube-system's leader elections: the scheduler and controllers stop, and kube-node-lease's: a dead node looks alive)",
    },
    // Session 63b: Events are the record of what admission refused, what was evicted or killed and why; the audit log
    // aside, the only one a namespace's readers see.
    {
        group: ["", "events.k8s.io"], resources: ["events"], verbs: ["update", "patch", "delete", "deletecollection"],
        what: "rewrites or deletes Events (the record of what admission refused, what was evicted or killed and why)",
    },
];

/** Whether a rule's resource entry covers `resource` ("pods" or "pods/exec"), as the API server decides. */
function coversResource(ruleResource: string, resource: string): boolean {
    if (ruleResource === resource) return true;
    const slash = resource.indexOf("/");
    return slash > 0 && ruleResource === `*${resource.slice(slash)}`;
}

/** Problems of a Role's (or, `clusterRole`, a ClusterRole's) rules: wildcards, escalation verbs, and the grants above. */
export function roleProblems(props: Record<string, any>, clusterRole = false): string[] {
    const out: string[] = [];
    // The controller fills an aggregated ClusterRole with the rules of every ClusterRole its selectors
    // match (the built-in ones too, cluster-admin's "*" included): rules this check never sees.
    if (props.aggregationRule !== undefined && props.aggregationRule !== null) {
        out.push("aggregates the rules of the ClusterRoles its aggregationRule selects (filled in by the cluster, unchecked here)");
    }
    arr(props.rules).forEach((r, i) => {
        if (!isRecord(r)) return;
        const list = (v: unknown) => arr(v).map((x) => str(x)).filter((x): x is string => x !== undefined);
        const verbs = list(r.verbs);
        const resources = list(r.resources);
        const groups = list(r.apiGroups);
        for (const [field, values] of [["verbs", verbs], ["resources", resources], ["apiGroups", groups], ["nonResourceURLs", list(r.nonResourceURLs)]] as const) {
            if (values.includes("*")) out.push(`rules[${i}] grants "*" in ${field}`);
        }
        const escalating = verbs.filter((v) => ESCALATING_VERBS.includes(v));
        if (escalating.length) out.push(`rules[${i}] grants ${escalating.join(", ")} (privilege escalation)`);
        // Groups not known yet (preview) or absent count as matching: the check errs on the safe side.
        const inGroup = (g: string) => groups.length === 0 || groups.includes("*") || groups.includes(g);
        for (const grant of SENSITIVE_GRANTS) {
            if (grant.clusterRoleOnly && !clusterRole) continue;
            const granted = (typeof grant.group === "string" ? inGroup(grant.group) : grant.group.some(inGroup)) &&
                grant.resources.some((res) => resources.some((rr) => coversResource(rr, res))) &&
                verbs.some((v) => v === "*" || grant.verbs.includes(v));
            if (granted) out.push(`rules[${i}] ${grant.what}`);
        }
    });
    return out;
}

/** Groups every identity (or every workload) of the cluster belongs to, and the break-glass group. */
// system:nodes: every kubelet; rights bound there go to each node's credentials (and to any pod that
// escapes onto a node), past the NodeRestriction admission that keeps a kubelet to its own node's objects.
const BROAD_GROUPS = ["system:masters", "system:anonymous", "system:unauthenticated", "system:authenticated", "system:serviceaccounts", "system:nodes"];
/** Built-in ClusterRoles that read Secrets and exec into pods (CIS 5.1.1 names cluster-admin). */
const BROAD_CLUSTER_ROLES = ["cluster-admin", "admin", "edit"];

/** Bindings to cluster-admin/admin/edit, to cluster-wide groups, or to a namespace's default ServiceAccount. */
export function bindingProblems(props: Record<string, any>): string[] {
    const out: string[] = [];
    const role = str(props.roleRef?.name);
    if (role && BROAD_CLUSTER_ROLES.includes(role) && str(props.roleRef?.kind) !== "Role") out.push(`binds the ${role} ClusterRole`);
    // The cluster's own roles (system:controller:*, system:kube-controller-manager, system:aggregate-to-*):
    // made for its components, most reach far beyond any one workload's needs.
    else if (role?.startsWith("system:") && str(props.roleRef?.kind) !== "Role") out.push(`binds the cluster's own ClusterRole ${role}`);
    for (const s of arr(props.subjects)) {
        if (!isRecord(s)) continue;
        const name = str(s.name);
        const kind = str(s.kind);
        // system:serviceaccounts:<namespace> is every ServiceAccount of that namespace.
        if (name && (BROAD_GROUPS.includes(name) || (kind === "Group" && name.startsWith("system:serviceaccounts:")))) out.push(`binds the subject ${name}`);
        // CIS 5.1.5: every pod that names no account runs as `default`, so its rights go to all of them;
        // as a User it is spelt system:serviceaccount:<namespace>:default.
        if ((kind === "ServiceAccount" && name === "default") || (kind === "User" && /^system:serviceaccount:[^:]+:default$/.test(name ?? ""))) {
            out.push("binds a namespace's default ServiceAccount (every pod that names no account gets its rights)");
        }
    }
    return out;
}

/** The user-facing ClusterRoles (and cluster-admin's binding) every cluster bootstraps; the cluster's own roles and bindings are named system:*. */
const BUILT_IN_NAMES = ["cluster-admin", "admin", "edit", "view"];

/**
 * Session 63: a ClusterRole or ClusterRoleBinding declared under a built-in's name is applied over the built-in (or fails on
 * create and, taken over, is the program's): its rules then go to every holder of the built-in, whom the stack does not
 * declare (system:public-info-viewer is bound to every unauthenticated caller, view and edit to whoever the cluster gave them),
 * and a binding's subjects replace the cluster's (system:node's, system:kube-scheduler's). At its restart the API server only
 * adds back a built-in's missing rules and subjects (none to one annotated rbac.authorization.kubernetes.io/autoupdate: "false");
 * what the program added stays.
 */
export function builtInNameProblems(props: Record<string, any>, kind: "ClusterRole" | "ClusterRoleBinding"): string[] {
    const name = str(props.metadata?.name);
    if (name === undefined || !(BUILT_IN_NAMES.includes(name) || name.startsWith("system:"))) return [];
    return [`is named "${name}", a ${kind} the cluster bootstraps: applied, it replaces the built-in, and ${kind === "ClusterRole"
        ? "its rules go to every subject the cluster binds to it (system:public-info-viewer: every unauthenticated caller)"
        : "its subjects replace the cluster's own"}; the API server's restart only adds back what the built-in lacks, keeping the program's`];
}
const BUILT_IN_FIX = "give it a name of the platform's own (ai-trading-<purpose>), never a built-in's or one under system:.";

/** The aggregation label of the built-in admin, edit and view ClusterRoles (and of any aggregated ClusterRole written after them). */
const AGGREGATE_LABEL = /^rbac\.authorization\.k8s\.io\/aggregate-to-(.+)$/;
const READ_VERBS = ["get", "list", "watch"];

/** Session 49: the aggregated ClusterRoles (admin, edit, view, ...) a ClusterRole's `aggregate-to-<role>: "true"` labels add its rules to. */
export function aggregatedInto(props: Record<string, any>): string[] {
    const labels = isRecord(props.metadata?.labels) ? props.metadata.labels : {};
    return Object.keys(labels).sort().flatMap((k) => {
        const m = AGGREGATE_LABEL.exec(k);
        return m && str(labels[k]) === "true" ? [m[1]] : []; // the aggregation controller's selectors match "true" exactly
    });
}

/**
 * Session 49: a ClusterRole aggregated into the cluster's roles gives its rules to every holder of them,
 * whom the stack does not declare: the problems of its rules (as any ClusterRole's), and, into `view`
 * (read-only by contract, bound to whoever may look), any verb beyond get, list and watch.
 */
export function aggregatedRoleProblems(props: Record<string, any>): string[] {
    const into = aggregatedInto(props);
    if (into.length === 0) return [];
    const out = roleProblems(props, true);
    if (into.includes("view")) {
        arr(props.rules).forEach((r, i) => {
            const writes = isRecord(r) ? arr(r.verbs).map((v) => str(v)).filter((v): v is string => v !== undefined && v !== "*" && !READ_VERBS.includes(v)) : [];
            if (writes.length) out.push(`rules[${i}] grants ${writes.join(", ")} to every holder of view, which is read-only (get, list, watch)`);
        });
    }
    const roles = into.length === 1 ? `${into[0]} ClusterRole: every holder of it` : `${into.slice(0, -1).join(", ")} and ${into[into.length - 1]} ClusterRoles: every holder of them`;
    return out.sort(byRule).map((p) => `${p} (aggregated by its rbac.authorization.k8s.io/aggregate-to-* labels into the cluster's ${roles}, in every namespace ` +
        "under a ClusterRoleBinding, gets these rules)");
}

/** Problems in rule order (`rules[2] ...` before `rules[10] ...`), the role's own first. */
function byRule(a: string, b: string): number {
    const n = (p: string) => Number(/^rules\[(\d+)\]/.exec(p)?.[1] ?? -1);
    return n(a) - n(b);
}

const FIX = "grant only the named verbs on the named resources the workload needs (least privilege), in a namespaced Role where possible.";
const AGGREGATED_FIX = "remove the aggregate-to-* label and bind the role to the identities that need it, with only the verbs and resources they need (least privilege).";

function rule(problems: (props: Record<string, any>) => string[], fix = FIX) {
    return (props: object, args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        for (const p of problems(plain(props as Record<string, any>))) reportViolation(`${describe(args.type, args.name)} ${p}; ${fix}`);
    };
}

export const rbacLeastPrivilege: ResourceValidationPolicy = {
    name: "rbac-least-privilege",
    description:
        "RBAC grants least privilege (CIS Kubernetes Benchmark 5.1): no \"*\" verbs, resources, API groups or URLs, no " +
        "escalate/bind/impersonate, no reading or creating Secrets, exec/attach or ephemeral containers, no creating workloads or " +
        "PersistentVolumes, no nodes/proxy, CSR approval, webhook changes or token minting, no port-forward or API proxy, " +
        "no rewriting Endpoints, Namespaces or admission policies, no aggregated APIs, no writing Services or Ingresses, " +
        "no writing Nodes, CRDs, NetworkPolicies, PriorityClasses, StorageClasses, CSIDrivers or RuntimeClasses, no writing ConfigMaps from a ClusterRole, " +
        "no aggregated ClusterRole, and no ClusterRole aggregated into admin, edit or view (aggregate-to-* labels) with such rules, or with more than " +
        "get, list and watch into view; no binding of cluster-admin/admin/edit or a system: ClusterRole, of cluster-wide groups " +
        "(masters, anonymous, unauthenticated, authenticated, serviceaccounts, nodes, a namespace's serviceaccounts) or of a " +
        "default ServiceAccount (however spelt); no evicting pods (pods/eviction), no deleting workloads, pods, claims or volumes; no ClusterRole or ClusterRoleBinding declared " +
        "under a built-in's name (cluster-admin, admin, edit, view, system:*).",
    severity: "high",
    // Session 53: a RoleList's or ClusterRoleBindingList's items are the Roles and bindings the API server applies.
    validateResource: readingListItems([
        validateResourceOfType(k8s.rbac.v1.Role, rule(roleProblems)),
        validateResourceOfType(k8s.rbac.v1.ClusterRole, (props, args, reportViolation) => {
            rule((p) => builtInNameProblems(p, "ClusterRole"), BUILT_IN_FIX)(props, args, reportViolation);
            (aggregatedInto(plain(props)).length > 0 ? rule(aggregatedRoleProblems, AGGREGATED_FIX) : rule((p) => roleProblems(p, true)))(props, args, reportViolation);
        }),
        validateResourceOfType(k8s.rbac.v1.RoleBinding, rule(bindingProblems)),
        validateResourceOfType(k8s.rbac.v1.ClusterRoleBinding, (props, args, reportViolation) => {
            rule((p) => builtInNameProblems(p, "ClusterRoleBinding"), BUILT_IN_FIX)(props, args, reportViolation);
            rule(bindingProblems)(props, args, reportViolation);
        }),
    ]),
};
