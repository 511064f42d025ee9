/**
 * What a validating admission (a webhook, or an admission policy through its binding) reaches: the namespaces the stack
 * declares, as the API server labels them, and whether its rules reach namespaced objects at all. Pure; read by
 * validating-webhooks-cover-namespaces and admission-policy-bindings-enforce (session 64).
 */
import { StackResource } from "./stack";
import { isEmptySelector, selectorMatches } from "./selectors";
import { arr, isRecord, isUnknown, str } from "./values";
import { K8S, NAMESPACE_NAME_LABEL } from "./workloads";

export interface DeclaredNamespace {
    name: string;
    labels: Record<string, string>;
}

/** A declared Namespace's labels as the API server holds them, or undefined while its name or a label is unknown. */
export function namespaceLabels(ns: StackResource): DeclaredNamespace | undefined {
    const name = ns.props.metadata?.name;
    const labels = ns.props.metadata?.labels;
    // A Namespace without metadata.name is auto-named by Pulumi (a random suffix): no selector can be judged against it.
    if (isUnknown(name) || str(name) === undefined || isUnknown(labels)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(isRecord(labels) ? labels : {})) {
        if (isUnknown(v)) return undefined;
        const s = str(v);
        if (s !== undefined) out[k] = s;
    }
    return { name: str(name)!, labels: { ...out, [NAMESPACE_NAME_LABEL]: str(name)! } };
}

/** The Namespaces the stack declares whose name and labels are known (the others are judged at `up`). */
export function declaredNamespaces(resources: StackResource[]): DeclaredNamespace[] {
    return resources.filter((r) => r.type === K8S.namespace).map(namespaceLabels).filter((n): n is DeclaredNamespace => n !== undefined);
}

/** The declared namespaces a namespaceSelector leaves out (none for no selector, `{}`, or one unknown during preview). */
export function namespacesLeftOut(selector: unknown, namespaces: DeclaredNamespace[]): string[] {
    if (isUnknown(selector) || isEmptySelector(selector)) return [];
    return namespaces.filter((n) => !selectorMatches(selector, n.labels)).map((n) => n.name);
}

/** Whether a label selector selects less than everything (an empty one, `{}`, selects every object). */
export function narrows(selector: unknown): boolean {
    return isRecord(selector) && (Object.keys(isRecord(selector.matchLabels) ? selector.matchLabels : {}).length > 0 || arr(selector.matchExpressions).length > 0);
}

/**
 * Resources served only inside a namespace (kubectl api-resources --namespaced=true, the ones a platform's guard is
 * about): a rule naming them under `scope: "Cluster"` matches none of them.
 */
const NAMESPACED_RESOURCES = new Set([
    "pods", "deployments", "statefulsets", "daemonsets", "replicasets", "replicationcontrollers", "jobs", "cronjobs",
    "services", "endpoints", "endpointslices", "secrets", "configmaps", "serviceaccounts", "roles", "rolebindings",
    "ingresses", "networkpolicies", "persistentvolumeclaims", "poddisruptionbudgets", "horizontalpodautoscalers",
    "limitranges", "resourcequotas", "leases", "events", "podtemplates", "controllerrevisions",
]);

export interface ScopeFinding {
    /** Every rule is scope Cluster: the whole admission reaches no namespaced object. */
    clusterOnly: boolean;
    /** Rules (by index) with scope Cluster naming namespaced resources, matching none of them, and those resources. */
    deadRules: Array<{ index: number; resources: string[] }>;
}

/**
 * What the `scope` of admission rules (a webhook's `rules`, a policy's `matchConstraints.resourceRules`, a binding's
 * `matchResources.resourceRules`; RuleWithOperations and NamedRuleWithOperations alike) leaves out. `scope: "Cluster"`
 * matches cluster-scoped objects only (Namespaces, ClusterRoles, Nodes): a rule so scoped judges nothing made in any
 * namespace, the platform's included, whatever its namespaceSelector says. "Namespaced" and "*" (the default) reach them.
 * Undefined when the rules are unknown during preview or there are none (no rules, nothing matched: not a scope matter).
 */
export function scopeFinding(rules: unknown): ScopeFinding | undefined {
    if (isUnknown(rules)) return undefined;
    const list = arr(rules).filter(isRecord);
    if (list.length === 0 || list.some((r) => isUnknown(r.scope) || isUnknown(r.resources))) return undefined;
    const cluster = (r: Record<string, any>) => str(r.scope) === "Cluster";
    const deadRules = list.flatMap((r, index) => {
        if (!cluster(r)) return [];
        // A subresource ("pods/exec") belongs to its resource.
        const named = arr(r.resources).map((x) => str(x) ?? "").filter((x) => NAMESPACED_RESOURCES.has(x.split("/")[0]));
        return named.length > 0 ? [{ index, resources: named }] : [];
    });
    const clusterOnly = list.every(cluster);
    return clusterOnly || deadRules.length > 0 ? { clusterOnly, deadRules } : undefined;
}

/** The sentence of a ScopeFinding, after the object (and webhook) it is about. */
export function scopeProblems(f: ScopeFinding, field: string, leftOut: string[]): string[] {
    if (f.clusterOnly) {
        return [`matches only cluster-scoped objects (scope: "Cluster" on every rule of ${field}), so it judges nothing made in ` +
            (leftOut.length ? `the namespace${leftOut.length > 1 ? "s" : ""} ${leftOut.map((n) => `"${n}"`).join(", ")} the stack declares` : "any namespace")];
    }
    return f.deadRules.map((r) => `${field}[${r.index}] names the namespaced ${r.resources.join(", ")} under scope: "Cluster", matching none of them`);
}

/** Kubernetes kinds whose controllers make objects of other resources in the same namespace: what the platform runs there too. */
const CONTROLLED: Record<string, string[]> = {
    deployments: ["replicasets", "pods"],
    statefulsets: ["pods", "controllerrevisions"],
    daemonsets: ["pods", "controllerrevisions"],
    replicasets: ["pods"],
    jobs: ["pods"],
    cronjobs: ["jobs", "pods"],
};

/** A kind's resource as admission rules name it: lower case, plural (Ingress: ingresses, NetworkPolicy: networkpolicies). */
export function resourceOfKind(kind: string): string {
    const k = kind.toLowerCase();
    if (k === "endpoints") return k;
    if (k.endsWith("y")) return `${k.slice(0, -1)}ies`;
    if (k.endsWith("s")) return `${k}es`;
    return `${k}s`;
}

/**
 * One resource the platform runs in a declared namespace: the namespaces, the names the stack gives, and the stems of the
 * names generated for it (session 65): an object the program leaves unnamed is auto-named by Pulumi `<resource name>-<hex>`,
 * one with `generateName` by the API server `<generateName><random>`, and what a controller makes by the controller: a
 * Deployment's ReplicaSets `<deployment>-<hash>` and their pods `<deployment>-<hash>-<random>`, a StatefulSet's pods
 * `<statefulset>-<ordinal>` and its claims `<template>-<statefulset>-<ordinal>`, a DaemonSet's, ReplicaSet's or Job's pods `<owner>-<random>`, a CronJob's Jobs
 * `<cronjob>-<minutes>` and their pods. A name is of the platform when it is one the stack gives, or a stem followed by
 * generated parts (`-` and lower-case letters and digits).
 */
export interface PlatformResource {
    namespaces: Set<string>;
    names: Set<string>;
    stems: Set<string>;
    /** The group/version each object is served under, as `apps/v1` (`v1` for the core group): what matchPolicy Exact compares. */
    versions: Set<string>;
}

/** The group and version a controller makes its objects under. */
const MADE_VERSION: Record<string, string> = { replicasets: "apps/v1", controllerrevisions: "apps/v1", pods: "v1", jobs: "batch/v1", persistentvolumeclaims: "v1" };

/** Whether `name` is one the platform's object of this resource has or may be given (above). */
export function platformNamed(resource: PlatformResource, name: string): boolean {
    if (resource.names.has(name)) return true;
    return [...resource.stems].some((stem) => name.startsWith(`${stem}-`) && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name.slice(stem.length + 1)));
}

/**
 * The resources the stack runs in the namespaces it declares (`declaredNamespaces`): each object of a `kubernetes:` type
 * whose metadata.namespace is one of them (not a List or a Patch of objects), and what its controller makes there (a
 * Deployment's ReplicaSets and Pods, a CronJob's Jobs and Pods, ...). An object whose namespace is unknown during preview
 * counts at `up`.
 */
export function platformResources(resources: StackResource[], namespaces: DeclaredNamespace[]): Map<string, PlatformResource> {
    const declared = new Set(namespaces.map((n) => n.name));
    const out = new Map<string, PlatformResource>();
    const add = (resource: string, namespace: string, name: string | undefined, stem: string | undefined, version = MADE_VERSION[resource]) => {
        const entry = out.get(resource) ?? { namespaces: new Set<string>(), names: new Set<string>(), stems: new Set<string>(), versions: new Set<string>() };
        entry.namespaces.add(namespace);
        if (version !== undefined) entry.versions.add(version);
        if (name !== undefined) entry.names.add(name);
        if (stem !== undefined && stem !== "") entry.stems.add(stem);
        out.set(resource, entry);
    };
    for (const r of resources) {
        const [, groupVersion, kind] = /^kubernetes:([^:]+):([A-Z][A-Za-z0-9]*)$/.exec(r.type) ?? [];
        if (!kind || /(List|Patch)$/.test(kind)) continue;
        const namespace = str(r.props.metadata?.namespace);
        if (namespace === undefined || !declared.has(namespace)) continue;
        const resource = resourceOfKind(kind);
        const name = str(r.props.metadata?.name);
        const generateName = str(r.props.metadata?.generateName)?.replace(/-$/, "");
        // Unnamed: the API server's name from generateName, else Pulumi's auto-name from the resource's own.
        const stem = name === undefined ? (generateName ?? r.name) : undefined;
        add(resource, namespace, name, stem, groupVersion.replace(/^core\//, ""));
        for (const made of CONTROLLED[resource] ?? []) add(made, namespace, undefined, name ?? stem);
        // A StatefulSet's claims, one per template and pod: `<template>-<statefulset>-<ordinal>` (data-postgres-0).
        if (resource === "statefulsets") {
            for (const t of arr(r.props.spec?.volumeClaimTemplates)) {
                const template = isRecord(t) ? str(t.metadata?.name) : undefined;
                if (template !== undefined) add("persistentvolumeclaims", namespace, undefined, `${template}-${name ?? stem}`);
            }
        }
    }
    return out;
}

/** Operations that make or change an object: an exclude of deletes or connects only takes nothing the platform runs out of a guard. */
const WRITES = new Set(["*", "CREATE", "UPDATE"]);

/**
 * What a match block's `excludeResourceRules` (a binding's `matchResources`, a policy's `matchConstraints`) take out of
 * the policy that the platform runs in a namespace the stack declares: each rule (by index) and those resources with
 * their namespaces. The API server judges nothing an exclude matches, whatever the resourceRules and the
 * namespaceSelector say. Read as the API server matches: a resource by its name, whatever the apiGroups and apiVersions
 * (matchPolicy Equivalent, the default, matches an equivalent group and version too); `*` (alone or over every
 * subresource) every resource; a subresource (`pods/exec`) only that subresource, not its kind; `scope: "Cluster"` nothing namespaced; `resourceNames`
 * only the objects so named (the stack's own objects by their names, and, session 65, by the names generated for them or
 * for what their controllers make: `PlatformResource`); operations without CREATE, UPDATE or `*` nothing the platform writes. A rule
 * unknown during preview is judged at `up`.
 */
export function platformExcluded(rules: unknown, platform: Map<string, PlatformResource>): Array<{ index: number; resources: string[]; namespaces: string[] }> {
    if (isUnknown(rules)) return [];
    const out: Array<{ index: number; resources: string[]; namespaces: string[] }> = [];
    arr(rules).forEach((rule, index) => {
        if (!isRecord(rule) || [rule.scope, rule.resources, rule.operations, rule.resourceNames].some(isUnknown)) return;
        if (str(rule.scope) === "Cluster") return;
        const operations = arr(rule.operations).map((o) => str(o) ?? "");
        if (rule.operations !== undefined && !operations.some((o) => WRITES.has(o))) return;
        const named = arr(rule.resources).map((x) => str(x) ?? "");
        const reached = named.some((x) => x === "*" || x === "*/*") ? [...platform.keys()] : named.filter((x) => platform.has(x));
        const names = arr(rule.resourceNames).map((x) => str(x) ?? "");
        const hit = names.length === 0 ? reached : reached.filter((x) => names.some((n) => platformNamed(platform.get(x)!, n)));
        if (hit.length === 0) return;
        const namespaces = [...new Set(hit.flatMap((x) => [...platform.get(x)!.namespaces]))].sort();
        out.push({ index, resources: hit.sort(), namespaces });
    });
    return out;
}

/**
 * Groups other than its own a built-in resource was served under, whose rules `matchPolicy: Equivalent` converts to it
 * (Deployments, DaemonSets, ReplicaSets, Ingresses, NetworkPolicies were `extensions`; Events are `events.k8s.io` too).
 */
const EQUIVALENT_GROUPS: Record<string, string[]> = {
    deployments: ["extensions"], daemonsets: ["extensions"], replicasets: ["extensions"], ingresses: ["extensions"],
    networkpolicies: ["extensions"], events: ["events.k8s.io"],
};

/**
 * Session 65: under `matchPolicy: Exact` a rule matches an object only under the groups and versions it names (Equivalent,
 * the default, converts): a rule naming the platform's `deployments` only under `extensions/v1beta1` judges none of its
 * `apps/v1` Deployments. Each resource it names by name whose served group/version (`PlatformResource.versions`) no rule of
 * the block covers. Session 65b: a rule of every resource (`*`, or `*` over every subresource) too: it aims at each platform resource of a group it
 * names (`*`, the resource's own group, or one an equivalent was served under: EQUIVALENT_GROUPS), and one no rule covers at
 * its served group/version is missed (`extensions/v1beta1` `*` misses the `apps/v1` Deployments and the `networking.k8s.io/v1`
 * Ingresses; `*` groups under `v1beta1` every `v1` kind); `wildcardRules` says which rules so aim. Nothing while the match
 * policy or a rule is unknown during preview.
 */
export function exactMisses(match: Record<string, any>, platform: Map<string, PlatformResource>): Array<{ resource: string; served: string[]; wildcardRules?: number[] }> {
    if (str(match.matchPolicy) !== "Exact" || isUnknown(match.resourceRules)) return [];
    const rules = arr(match.resourceRules).filter(isRecord);
    if (rules.some((r) => [r.apiGroups, r.apiVersions, r.resources].some(isUnknown))) return [];
    const list = (v: unknown) => arr(v).map((x) => str(x) ?? "");
    const groupOf = (gv: string) => (gv.includes("/") ? gv.split("/")[0] : "");
    const everyResource = (r: Record<string, any>) => list(r.resources).some((x) => x === "*" || x === "*/*");
    const covers = (r: Record<string, any>, resource: string, gv: string) => {
        const [group, version] = gv.includes("/") ? gv.split("/") : ["", gv];
        return (list(r.resources).includes(resource) || everyResource(r))
            && list(r.apiGroups).some((g) => g === "*" || g === group) && list(r.apiVersions).some((v) => v === "*" || v === version);
    };
    const named = new Set(rules.flatMap((r) => list(r.resources)).filter((x) => platform.has(x)));
    return [...platform.keys()].sort().flatMap((resource) => {
        const served = [...platform.get(resource)!.versions].sort();
        const groups = new Set([...served.map(groupOf), ...(EQUIVALENT_GROUPS[resource] ?? [])]);
        const wildcardRules = arr(match.resourceRules).flatMap((r, i) =>
            isRecord(r) && everyResource(r) && list(r.apiGroups).some((g) => g === "*" || groups.has(g)) ? [i] : []);
        if (!named.has(resource) && wildcardRules.length === 0) return [];
        if (served.length === 0 || served.some((gv) => rules.some((r) => covers(r, resource, gv)))) return [];
        return named.has(resource) ? [{ resource, served }] : [{ resource, served, wildcardRules }];
    });
}
