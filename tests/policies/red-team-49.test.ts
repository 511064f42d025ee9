/**
 * Session 49, red team round two: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 49".)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress, NS, networkPolicy, prodStack, replace, service, statefulSet } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

describe("network-policy-default-deny: a labelled podSelector in every namespace", () => {
    const pg = { matchLabels: { "trading.io/workload": "postgres" } };
    const clients = { matchLabels: { "trading.io/workload": "api-gateway" } };
    const head = (m: string) => m.split(", which undoes")[0];

    it("rejects ingress from a labelled podSelector under namespaceSelector {}, Exists on kubernetes.io/metadata.name, or one that only excludes", async () => {
        const open = networkPolicy("open", pg, ["Ingress"], {
            ingress: [
                { from: [{ namespaceSelector: {}, podSelector: clients }] },
                { from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "Exists" }] }, podSelector: clients }] },
                { from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"] }] }, podSelector: clients }] },
            ],
        });
        const any = "a namespaceSelector matching every namespace, with podSelector {\"matchLabels\":{\"trading.io/workload\":\"api-gateway\"}}: " +
            "pods carrying those labels in any namespace, set by whoever creates the pod";
        expect((await messages("network-policy-default-deny", [...prodStack(), open])).map(head)).toEqual([
            `NetworkPolicy "open" in namespace "ai-trading" admits every source in ingress[0] (${any}), ingress[1] (${any}), ingress[2] (${any})`,
        ]);
    });

    it("keeps the same peer in egress (DNS to kube-dns by its labels in any namespace is the common rule) and a labelled namespace with a podSelector", async () => {
        const dns = networkPolicy("dns", pg, ["Egress"], { egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }] }] });
        const named = networkPolicy("named", pg, ["Ingress"], {
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } }, podSelector: { matchLabels: { app: "x" } } }] }],
        });
        expect(await messages("network-policy-default-deny", [...prodStack(), dns, named])).toEqual([]);
    });
});

describe("no-public-exposure, ingress-internal-backends, hand-made-endpoints: a forwarding annotation naming an internal Service", () => {
    const annotated = (extra: Record<string, string>) => ingress({ annotations: { ...ingress().props.metadata.annotations, ...extra } });
    const MIRROR = "nginx.ingress.kubernetes.io/mirror-target";
    const AUTH = "nginx.ingress.kubernetes.io/auth-url";

    it("rejects mirror-target or auth-url naming a datastore's or monitoring's Service, by a single label or its cluster name", async () => {
        const rs = [
            annotated({ [MIRROR]: "http://postgres:5432$request_uri" }),
            edit(annotated({ [AUTH]: "http://prometheus.ai-trading.svc.cluster.local:9090/api/v1/status/config" }), (p) => { p.metadata.name = "second"; }),
        ];
        expect(await messages("no-public-exposure", rs)).toEqual([
            `Ingress "nginx-ingress" routes public traffic to postgres (by the annotation ${MIRROR}); datastores and monitoring stay internal (use a VPN or port-forward for admin access).`,
            `Ingress "nginx-ingress" routes public traffic to prometheus (by the annotation ${AUTH}); datastores and monitoring stay internal (use a VPN or port-forward for admin access).`,
        ]);
        const controller: TestResource = {
            type: "kubernetes:core/v1:ConfigMap", name: "ingress-nginx-controller",
            props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" }, data: { "global-auth-url": "http://grafana.ai-trading.svc:3000/api/user" } },
        };
        expect(await messages("no-public-exposure", [controller])).toEqual([
            "ConfigMap \"ingress-nginx-controller\" sets global-auth-url to grafana, which sends it the headers of every request to every Ingress of the controller " +
            "(their Authorization header and cookies); datastores and monitoring stay internal (name the platform's own authentication service).",
        ]);
        // The controller redirects the client to auth-signin (it requests nothing there), and an auth-url on the platform's own service passes.
        expect(await messages("no-public-exposure", [annotated({ [AUTH]: "http://api-gateway.ai-trading.svc:3001/auth", "nginx.ingress.kubernetes.io/auth-signin": "https://grafana/login" })])).toEqual([]);
    });

    it("rejects a forwarding annotation naming a Service (or a StatefulSet pod under it) that selects internal pods, in its own namespace", async () => {
        const reports = edit(service("reports", "service", 5432), (p) => { p.spec.selector = { "trading.io/workload": "postgres" }; p.spec.clusterIP = "None"; });
        const rs = [...replace(prodStack(), "nginx-ingress", (p) => { p.metadata.annotations[MIRROR] = "https://postgres-0.reports.ai-trading.svc:5432/"; }), reports];
        expect(await messages("ingress-internal-backends", rs)).toEqual([
            `Ingress "ai-trading" routes public traffic to Service "reports" (by the annotation ${MIRROR}), which selects the pods of postgres; ` +
            "datastores and monitoring stay internal (use a VPN or port-forward for admin access).",
        ]);
        // The same name in another namespace selects nothing of the platform's.
        const elsewhere = replace(rs, "nginx-ingress", (p) => { p.metadata.annotations[MIRROR] = "https://reports.tools.svc/"; });
        expect(await messages("ingress-internal-backends", elsewhere)).toEqual([]);
    });

    it("refuses hand-made endpoints for a Service an auth-url names (the controller sends it every request's headers)", async () => {
        const auth = edit(service("authz", "service", 443), (p) => { delete p.spec.selector; });
        const endpoints: TestResource = {
            type: "kubernetes:core/v1:Endpoints", name: "authz-endpoints",
            props: { apiVersion: "v1", kind: "Endpoints", metadata: { name: "authz", namespace: NS }, subsets: [{ addresses: [{ ip: "10.20.0.15" }], ports: [{ port: 443 }] }] },
        };
        const rs = [...replace(prodStack(), "nginx-ingress", (p) => { p.metadata.annotations[AUTH] = "https://authz.ai-trading.svc/check"; }), auth, endpoints];
        expect((await messages("hand-made-endpoints", rs)).map((m) => m.split(":")[0])).toEqual([
            "Endpoints \"authz\" gives Service \"authz\", which is reachable from outside the cluster (an Ingress routes to it), hand-made addresses (10.20.0.15)",
        ]);
    });

    it("already refuses custom-http-errors sent to a default-backend naming a datastore, and a snippet proxying to one", async () => {
        const errors = annotated({ "nginx.ingress.kubernetes.io/custom-http-errors": "401,403,500", "nginx.ingress.kubernetes.io/default-backend": "postgres" });
        expect((await messages("no-public-exposure", [errors])).length).toBe(1);
        const snippet = annotated({ "nginx.ingress.kubernetes.io/configuration-snippet": "mirror /m; location = /m { internal; proxy_pass http://postgres:5432; }" });
        const server = annotated({ "nginx.ingress.kubernetes.io/server-snippet": "location /db { proxy_pass http://clickhouse:8123; }" });
        expect((await messages("ingress-no-snippets", [snippet, server])).map((m) => m.split(" (")[0].split(" carries")[0])).toHaveLength(2);
    });
});

describe("rbac-least-privilege: a ClusterRole aggregated into the built-in roles, bindings to every identity", () => {
    const clusterRole = (name: string, labels: Record<string, string>, rules: unknown[]): TestResource => ({
        type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", name,
        props: { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name, labels }, rules },
    });
    const FIX = "; remove the aggregate-to-* label and bind the role to the identities that need it, with only the verbs and resources they need (least privilege).";

    it("rejects an aggregate-to-* ClusterRole whose rules the pack refuses, naming the roles it widens, and any verb beyond get/list/watch aggregated into view", async () => {
        const found = await messages("rbac-least-privilege", [
            clusterRole("secrets-for-admins", { "rbac.authorization.k8s.io/aggregate-to-admin": "true", "rbac.authorization.k8s.io/aggregate-to-edit": "true" },
                [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }, { apiGroups: [""], resources: ["pods/exec"], verbs: ["create"] }]),
            clusterRole("viewers-scale", { "rbac.authorization.k8s.io/aggregate-to-view": "true" },
                [{ apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["get", "update"] }, { apiGroups: [""], resources: ["pods"], verbs: ["list", "delete"] }]),
        ]);
        const into = (roles: string) => ` (aggregated by its rbac.authorization.k8s.io/aggregate-to-* labels into the cluster's ${roles}, in every namespace under a ClusterRoleBinding, gets these rules)`;
        expect(found).toEqual([
            `ClusterRole "secrets-for-admins" rules[0] reads secrets${into("admin and edit ClusterRoles: every holder of them")}${FIX}`,
            `ClusterRole "secrets-for-admins" rules[1] allows exec/attach into pods${into("admin and edit ClusterRoles: every holder of them")}${FIX}`,
            // Session 63b: scaling (to 0) is refused on its own too (red-team-63b).
            `ClusterRole "viewers-scale" rules[0] scales deployments (to 0: every replica stopped at once, no PodDisruptionBudget asked: a denial of service on demand)${into("view ClusterRole: every holder of it")}${FIX}`,
            `ClusterRole "viewers-scale" rules[0] grants update to every holder of view, which is read-only (get, list, watch)${into("view ClusterRole: every holder of it")}${FIX}`,
            // Session 63: deleting pods is refused on its own too (red-team-63).
            `ClusterRole "viewers-scale" rules[1] deletes pods (every replica at once, past the PodDisruptionBudgets only evictions honour: a denial of service on demand)${into("view ClusterRole: every holder of it")}${FIX}`,
            `ClusterRole "viewers-scale" rules[1] grants delete to every holder of view, which is read-only (get, list, watch)${into("view ClusterRole: every holder of it")}${FIX}`,
        ]);
        // Reading an operator's resources aggregated into view, or a label set to "false", passes.
        expect(await messages("rbac-least-privilege", [
            clusterRole("crd-view", { "rbac.authorization.k8s.io/aggregate-to-view": "true" }, [{ apiGroups: ["example.io"], resources: ["widgets"], verbs: ["get", "list", "watch"] }]),
            clusterRole("not-aggregated", { "rbac.authorization.k8s.io/aggregate-to-view": "false" }, [{ apiGroups: [""], resources: ["events"], verbs: ["create"] }]),
        ])).toEqual([]);
    });

    it("rejects writing StorageClasses, CSIDrivers or RuntimeClasses (what the pack judges when declared, made at run time)", async () => {
        const role: TestResource = {
            type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", name: "classes",
            props: {
                apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "classes" },
                rules: [{ apiGroups: ["storage.k8s.io"], resources: ["storageclasses"], verbs: ["create"] }, { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: ["patch"] },
                    { apiGroups: ["storage.k8s.io", "node.k8s.io"], resources: ["storageclasses", "runtimeclasses"], verbs: ["get", "list"] }],
            },
        };
        expect((await messages("rbac-least-privilege", [role])).map((m) => m.split(" (")[0])).toEqual([
            "ClusterRole \"classes\" rules[0] creates, changes or deletes StorageClasses or CSIDrivers",
            "ClusterRole \"classes\" rules[1] creates, changes or deletes RuntimeClasses",
        ]);
    });

    it("already rejects a binding of system:authenticated, system:unauthenticated, system:serviceaccounts or a namespace's accounts, to any role", async () => {
        const binding = (kind: string, subject: string): TestResource => ({
            type: `kubernetes:rbac.authorization.k8s.io/v1:${kind}`, name: `${kind}-${subject}`,
            props: {
                apiVersion: "rbac.authorization.k8s.io/v1", kind, metadata: { name: "b", namespace: NS },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "reader" },
                subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: subject }],
            },
        });
        const found = await messages("rbac-least-privilege", [
            binding("ClusterRoleBinding", "system:authenticated"), binding("RoleBinding", "system:unauthenticated"),
            binding("RoleBinding", "system:serviceaccounts"), binding("ClusterRoleBinding", "system:serviceaccounts:ai-trading"),
        ]);
        expect(found.map((m) => m.split(";")[0])).toEqual([
            "ClusterRoleBinding \"ClusterRoleBinding-system:authenticated\" binds the subject system:authenticated",
            "RoleBinding \"RoleBinding-system:unauthenticated\" binds the subject system:unauthenticated",
            "RoleBinding \"RoleBinding-system:serviceaccounts\" binds the subject system:serviceaccounts",
            "ClusterRoleBinding \"ClusterRoleBinding-system:serviceaccounts:ai-trading\" binds the subject system:serviceaccounts:ai-trading",
        ]);
    });
});

describe("allowed-storage-drivers: CSI inline and generic ephemeral volumes, CSI PersistentVolumes, StorageClasses", () => {
    const FIX = "a CSI driver decides what it mounts (a secrets store fetches secrets with the node's identity, a host-path driver a directory " +
        "of the node) past every pod check: use a reviewed driver, or list this one in allowedStorageDrivers once reviewed.";
    const withVolume = (volume: Record<string, unknown>) => edit(deployment("api-gateway", 3001), (p) => { p.spec.template.spec.volumes.push(volume); });
    const pv = (name: string, driver: string): TestResource => ({
        type: "kubernetes:core/v1:PersistentVolume", name,
        props: { apiVersion: "v1", kind: "PersistentVolume", metadata: { name }, spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], csi: { driver, volumeHandle: "h" } } },
    });
    const storageClass = (name: string, provisioner: string, version = "v1"): TestResource => ({
        type: `kubernetes:storage.k8s.io/${version}:StorageClass`, name,
        props: { apiVersion: `storage.k8s.io/${version}`, kind: "StorageClass", metadata: { name }, provisioner },
    });
    const ephemeral = { name: "scratch", ephemeral: { volumeClaimTemplate: { spec: { accessModes: ["ReadWriteOnce"], storageClassName: "node-disk", resources: { requests: { storage: "1Gi" } } } } } };

    it("passes the platform's stack: claims of the cluster's class, no driver named", async () => {
        expect(await messages("allowed-storage-drivers", prodStack())).toEqual([]);
    });

    it("rejects a secrets-store CSI inline volume, a host-path CSI PersistentVolume and a local-path StorageClass (naming its claims, an ephemeral volume's too)", async () => {
        const rs = [
            withVolume({ name: "vault", csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: "prod-db" } } }),
            pv("node-root", "hostpath.csi.k8s.io"),
            storageClass("node-disk", "rancher.io/local-path", "v1beta1"),
            edit(deployment("market-data", 3002), (p) => { p.spec.template.spec.volumes.push(ephemeral); }),
        ];
        expect(await messages("allowed-storage-drivers", rs)).toEqual([
            `Deployment "api-gateway-deployment" volume "vault" is a CSI inline volume of driver secrets-store.csi.k8s.io, not in allowedStorageDrivers: ${FIX}`,
            `PersistentVolume "node-root" is a CSI volume of driver hostpath.csi.k8s.io, not in allowedStorageDrivers: ${FIX}`,
            `StorageClass "node-disk" provisions with rancher.io/local-path, not in allowedStorageDrivers (claimed by Deployment "market-data-deployment" ephemeral volume "scratch"): ${FIX}`,
        ]);
        // Listed drivers pass; kubernetes.io/no-provisioner provisions nothing (its PersistentVolumes are judged as declared).
        const cfg = { all: "mandatory" as const, "allowed-storage-drivers": { allowedStorageDrivers: ["secrets-store.csi.k8s.io", "hostpath.csi.k8s.io", "rancher.io/local-path"] } };
        expect(await messages("allowed-storage-drivers", rs, cfg)).toEqual([]);
        expect(await messages("allowed-storage-drivers", [storageClass("manual", "kubernetes.io/no-provisioner")])).toEqual([]);
    });

    it("once allowedStorageClasses lists any (prod.json: the stack's trading:storageClass), rejects a claim of an undeclared class it does not list; and a class-less static claim", async () => {
        const claim = (name: string, storageClassName?: string): TestResource => ({
            type: "kubernetes:core/v1:PersistentVolumeClaim", name,
            props: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: NS }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, storageClassName } },
        });
        // A claim naming no class (the cluster's default) is session 50's (red-team-50.test.ts).
        const rs = [claim("listed", "standard"), claim("hostpath", "microk8s-hostpath"), claim("static", ""), claim("declared", "fast"), storageClass("fast", "ebs.csi.aws.com")];
        const prod = { all: "mandatory" as const, "allowed-storage-drivers": { allowedStorageDrivers: ["ebs.csi.aws.com"], allowedStorageClasses: ["standard"] } };
        expect(await messages("allowed-storage-drivers", rs, prod)).toEqual([
            "PersistentVolumeClaim \"hostpath\" claims StorageClass \"microk8s-hostpath\", which the stack does not declare and allowedStorageClasses does not list: its provisioner " +
            "is out of the pack's sight; list the class once its provisioner is reviewed, or declare the StorageClass.",
            "PersistentVolumeClaim \"static\" binds any PersistentVolume without a class the cluster holds (storageClassName \"\"), out of the pack's sight " +
            "(a node's directory, another workload's released data); let a StorageClass provision the claim, or name a declared PersistentVolume in volumeName.",
        ]);
        // prod.json lists the prod stack's class; with no list (the default) undeclared classes are not judged.
        expect((await messages("allowed-storage-drivers", rs, { all: "mandatory" })).filter((m) => m.includes("allowedStorageClasses"))).toEqual([]);
        expect((await messages("allowed-storage-drivers", rs)).filter((m) => m.includes("allowedStorageClasses"))).toHaveLength(1);
    });

    it("rejects a claim populated from another volume (a clone of a datastore's claim, its snapshot: PVC, claim template, ephemeral volume) or bound to an undeclared PersistentVolume", async () => {
        const clone = { kind: "PersistentVolumeClaim", name: "data-postgres-0" };
        const pvc: TestResource = {
            type: "kubernetes:core/v1:PersistentVolumeClaim", name: "copy",
            props: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "copy", namespace: NS }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: "standard", resources: { requests: { storage: "10Gi" } }, dataSource: clone } },
        };
        const sts = edit(statefulSet("clickhouse", "datastore", "clickhouse/clickhouse-server:24.8.4.13", 8123, 101), (p) => {
            p.spec.volumeClaimTemplates[0].spec.dataSourceRef = { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "postgres-nightly" };
        });
        const ephemeralClone = { ...ephemeral, ephemeral: { volumeClaimTemplate: { spec: { ...ephemeral.ephemeral.volumeClaimTemplate.spec, storageClassName: "standard", dataSource: clone } } } };
        const pinned = edit(pvc, (p) => { delete p.spec.dataSource; p.spec.volumeName = "pvc-3f1c-released"; });
        const declared = [edit(pvc, (p) => { delete p.spec.dataSource; p.spec.volumeName = "node-root"; }), pv("node-root", "ebs.csi.aws.com")];
        const found = await messages("allowed-storage-drivers", [pvc, sts, withVolume(ephemeralClone), pinned, ...declared],
            { all: "mandatory", "allowed-storage-drivers": { allowedStorageDrivers: ["ebs.csi.aws.com"] } });
        const tail = ": a copy of another volume's files (a datastore's data, its credentials) in whatever pod mounts the claim; restore a datastore from its backups, and give other workloads empty claims.";
        expect(found).toEqual([
            `PersistentVolumeClaim "copy" is populated from PersistentVolumeClaim "data-postgres-0" (dataSource)${tail}`,
            `StatefulSet "clickhouse-statefulset" volumeClaimTemplates[0] (data) is populated from VolumeSnapshot "postgres-nightly" (dataSourceRef)${tail}`,
            `Deployment "api-gateway-deployment" ephemeral volume "scratch" is populated from PersistentVolumeClaim "data-postgres-0" (dataSource)${tail}`,
            "PersistentVolumeClaim \"copy\" binds PersistentVolume \"pvc-3f1c-released\" (volumeName), which the stack does not declare: its type and driver (a node's directory, " +
            "a share, another workload's released data) are out of the pack's sight; let a StorageClass provision the claim, or declare the PersistentVolume.",
        ]);
    });
});
