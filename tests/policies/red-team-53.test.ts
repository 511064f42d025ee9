/**
 * Session 53: the policy pack's own mis-reads and unjudged edges, each failing before its fix. (Case, what happened,
 * the fix: policies/README.md "Red team, session 51", part 53.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, NS, secret } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);
const violations = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => [v.resourceName, v.message.split(";")[0]]);

/** A `*List` resource (as `new k8s.core.v1.ConfigMapList` declares one) holding `items`. */
const list = (type: string, name: string, items: Array<Record<string, any>>): TestResource => ({ type, name, props: { apiVersion: "v1", kind: type.split(":").pop(), items } });
const configMapItem = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: NS }, data: { LOG_LEVEL: "info" } });

describe("stack policies read each workload's own properties, wherever a *List stands in the stack", () => {
    const grafana = deployment("grafana", 3000, { role: "monitoring", container: { image: "docker.io/grafana/grafana:11.2.0", env: [], args: [] } });
    const quiet = deployment("market-data", 3000);
    const lists = [
        list("kubernetes:core/v1:ConfigMapList", "settings", [configMapItem("a"), configMapItem("b")]),
        list("kubernetes:networking.k8s.io/v1:IngressList", "routes", [{ apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "r", namespace: NS }, spec: {} }]),
    ];

    it("servers-require-authentication judges Grafana (no admin password) as Grafana, not the resource after it", async () => {
        const alone = await violations("servers-require-authentication", [grafana, quiet]);
        expect(alone).toEqual([["grafana-deployment", "Deployment \"grafana-deployment\" container \"grafana\" runs grafana without GF_SECURITY_ADMIN_PASSWORD (from a generated secret), so its authentication is off"]]);
        // Before session 53 the lists shifted the pairing: Grafana got a ConfigMap's props (a miss), market-data got Grafana's (a false violation on it).
        expect(await violations("servers-require-authentication", [...lists, grafana, quiet])).toEqual(alone);
        expect(await violations("servers-require-authentication", [lists[0], quiet, grafana])).toEqual(alone);
    });

    it("workload-secret-scope judges each workload's own Secret uses", async () => {
        const reader = edit(deployment("market-data", 3000), (p) => {
            p.spec.template.spec.containers[0].envFrom = [{ secretRef: { name: "order-service-credentials" } }];
        });
        const owned = secret("order-service", { DB_PASSWORD: "x" });
        const expected = [["market-data-deployment", "Deployment \"market-data-deployment\" (trading.io/workload market-data) reads Secret \"order-service-credentials\" of workload order-service (container \"market-data\" envFrom[0].secretRef (every key)), so its pods hold order-service's credentials, and whoever takes them over does too. Give the workload a Secret of its own with only what it needs (the platform writes <workload>-credentials for each), and leave order-service's to order-service."]];
        expect(await violations("workload-secret-scope", [owned, reader, deployment("order-service", 3000)])).toEqual(expected);
        expect(await violations("workload-secret-scope", [owned, ...lists, deployment("order-service", 3000), reader])).toEqual(expected);
        expect(await violations("workload-secret-scope", [owned, ...lists, reader, deployment("order-service", 3000)])).toEqual(expected);
    });
});

describe("ingress-unique-routes tells two Ingresses of one IngressList apart (they share the list's URN)", () => {
    const route = (name: string) => ({ apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name, namespace: NS },
        spec: { ingressClassName: "nginx", rules: [{ host: "trading.example.com", http: { paths: [{ path: "/api", pathType: "Prefix", backend: { service: { name: name, port: { number: 80 } } } }] } }] } });

    it("names the other Ingress, not the same one's own path", async () => {
        expect(await messages("ingress-unique-routes", [list("kubernetes:networking.k8s.io/v1:IngressList", "routes", [route("api"), route("reports")])])).toEqual([
            "Ingress \"reports\" routes host trading.example.com, location \"/api\" (rules[0].http.paths[0]), which Ingress \"api\" (rules[0].http.paths[0]) routes too: " +
            "the controller serves one backend for a host and location (ingress-nginx the oldest Ingress's), so which service answers depends on creation order; " +
            "route each host and path from one Ingress.",
        ]);
    });
});

describe("resource policies read the items of a *List as the objects the API server applies (session 53's audit)", () => {
    const obj = (type: string, name: string, props: Record<string, any>): TestResource => {
        const [, group, kind] = /^kubernetes:([^:]+):(.+)$/.exec(type)!;
        return { type, name, props: { apiVersion: group.startsWith("core/") ? group.slice(5) : group, kind, metadata: { name, namespace: NS }, ...props } };
    };
    // no-default-credentials reads every string of any resource, a List's included: not among them.
    /** The object alone, and a `<Kind>List` of it with another object's item. */
    const CASES: Array<[string, TestResource]> = [
        ["rbac-least-privilege", obj("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "everything", { rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] })],
        ["rbac-least-privilege", obj("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "anonymous-admin", { roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "Group", name: "system:anonymous" }] })],
        ["credentials-from-secret-refs", obj("kubernetes:core/v1:ConfigMap", "db-settings", { data: { DB_PASSWORD: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" } })],
        ["no-insecure-runtime-flags", obj("kubernetes:core/v1:ConfigMap", "node-settings", { data: { NODE_OPTIONS: "--inspect=0.0.0.0:9229" } })],
        ["protected-namespaces", edit(obj("kubernetes:core/v1:ConfigMap", "coredns-custom", { data: { x: "y" } }), (p) => { p.metadata.namespace = "kube-system"; })],
        ["no-system-priority", obj("kubernetes:scheduling.k8s.io/v1:PriorityClass", "everyone", { value: 1000, globalDefault: true })],
        ["no-api-server-callouts", obj("kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration", "hook",
            { webhooks: [{ name: "x.example.net", clientConfig: { url: "https://hooks.example.net/validate" }, admissionReviewVersions: ["v1"], sideEffects: "None" }] })],
        ["pod-security-volume-types", obj("kubernetes:core/v1:PersistentVolume", "nfs-share", { spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteMany"], nfs: { server: "10.0.0.5", path: "/exports" } } })],
        ["no-privileged-containers", obj("kubernetes:core/v1:PersistentVolume", "host-etc", { spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], hostPath: { path: "/etc" } } })],
    ];

    it.each(CASES)("%s judges an item of a list as the object alone", async (policy, item) => {
        const alone = await messages(policy, [item]);
        expect(alone.length, `${policy} refuses ${item.name} alone`).toBeGreaterThan(0);
        const listType = `${item.type}List`;
        const other = { ...item.props, metadata: { ...item.props.metadata, name: "other" } };
        expect(await messages(policy, [list(listType, "holder", [item.props])]), policy).toEqual(alone);
        expect((await messages(policy, [list(listType, "holder", [item.props, other])])).length, policy).toBe(alone.length * 2);
    });
});

