/**
 * Session 53: the policy pack's own mis-reads and unjudged edges, each failing before its fix. (Case, what happened,
 * the fix: policies/README.md "Red team, session 51", part 53.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress as ingressOf, NS, secret } from "./fixtures";
import { runPack, TestResource } from "./run-pack";
import { traefikByFlags, traefikConfigMap, traefikDeployment, traefikFile } from "./traefik-fixtures";

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

describe("Traefik run from an image given by ID or by a digest whose name says nothing, recognised by its command line", () => {
    const FILE = "entryPoints:\n  web:\n    address: ':8000'\n    forwardedHeaders:\n      insecure: true\n";
    const FORWARDED = "ConfigMap \"traefik-config\" sets entryPoints.web.forwardedHeaders.insecure (traefik.yaml), so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from any client";
    const contract = async (rs: TestResource[]) => (await messages("edge-gateway-contract", rs)).map((m) => m.split("; the api-gateway")[0]);
    const BY_ID = `sha256:${"3".repeat(64)}`;
    const MIRRORED = `registry.example.com/edge/proxy@sha256:${"4".repeat(64)}`;

    it("reads the static configuration file of such a Traefik: by its flags, its TRAEFIK_ variables, or `traefik` as its command", async () => {
        for (const [image, args, env] of [
            [BY_ID, ["--entryPoints.websecure.address=:8443"], []],
            [MIRRORED, ["--Providers.KubernetesCRD.namespaces=ai-trading"], []],
            [BY_ID, [], [{ name: "TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", value: ":8000" }]],
            [MIRRORED, ["traefik", "--log.level=INFO"], []],
        ] as Array<[string, string[], Array<{ name: string; value: string }>]>) {
            const proxy = edit(traefikDeployment(args, undefined, undefined, image), (p) => { p.spec.template.spec.containers[0].env = env; });
            expect(await contract([traefikConfigMap({ "traefik.yaml": FILE }), proxy]), `${image} ${args.join(" ")}`).toContain(FORWARDED);
        }
    });

    it("leaves a file alone that a container of another program mounts (flags Prometheus takes too, --log.level, --configFile)", async () => {
        const other = traefikDeployment(["--log.level=info", "--configFile=/etc/traefik/traefik.yaml", "--metrics.enabled"], undefined, undefined, BY_ID);
        expect(await contract([traefikConfigMap({ "traefik.yaml": FILE }), other])).toEqual([]);
    });
});

describe("edge-gateway-contract: Traefik's own API open, backends' certificates unverified, cross-namespace references (flags, environment, files)", () => {
    const AT = "Deployment \"traefik-deployment\" container \"traefik\"";
    const API = "so Traefik serves its API and dashboard without authentication on its entry point traefik (port 8080 unless entryPoints.traefik.address moves it), " +
        "on every address of the pod: whoever reaches that port (any pod of the cluster, or everyone if a Service publishes it) reads every router, service and middleware, " +
        "the backends' addresses and the rules in front of them";
    const API_FIX = "; leave api.insecure off (and api.debug): publish the dashboard, if at all, through an IngressRoute to api@internal on a host of its own " +
        "behind an authentication middleware, or reach it with kubectl port-forward.";
    const VERIFY = "so Traefik accepts any certificate from every backend it reaches over HTTPS: whoever is on the path between the edge and a backend answers in its " +
        "place, reading and rewriting every request, the credentials it carries included";
    const VERIFY_FIX = "; leave insecureSkipVerify off and give the backends' CA as serversTransport.rootCAs (or a ServersTransport with rootCAs for the Services that need one).";
    const CROSS = "so an IngressRoute, Middleware or TraefikService of one namespace may name a Service or Middleware of another (a datastore's, monitoring's), which no route policy follows";
    const NAMESPACES = ["--providers.kubernetescrd.namespaces=ai-trading"];

    it("rejects api.insecure (with api.debug) and serversTransport.insecureSkipVerify given as flags, in any case", async () => {
        expect(await messages("edge-gateway-contract", [traefikByFlags([...NAMESPACES, "--api.insecure", "--API.Debug=true", "--serversTransport.insecureSkipVerify=true"])])).toEqual([
            `${AT} sets --api.insecure, ${API}, and, with api.debug, Go's profiler and runtime variables${API_FIX}`,
            `${AT} sets --serverstransport.insecureskipverify, ${VERIFY}${VERIFY_FIX}`,
        ]);
    });

    it("rejects them, and allowCrossNamespace, given as TRAEFIK_ variables", async () => {
        expect(await messages("edge-gateway-contract", [traefikByFlags(NAMESPACES, [{ name: "TRAEFIK_API_INSECURE", value: "true" },
            { name: "TRAEFIK_SERVERSTRANSPORT_INSECURESKIPVERIFY", value: "1" }, { name: "TRAEFIK_PROVIDERS_KUBERNETESCRD_ALLOWCROSSNAMESPACE", value: "true" }])])).toEqual([
            expect.stringContaining(`${AT} sets TRAEFIK_PROVIDERS_KUBERNETESCRD_ALLOWCROSSNAMESPACE, ${CROSS}`),
            `${AT} sets TRAEFIK_API_INSECURE, ${API}${API_FIX}`,
            `${AT} sets TRAEFIK_SERVERSTRANSPORT_INSECURESKIPVERIFY, ${VERIFY}${VERIFY_FIX}`,
        ]);
    });

    it("rejects them, and allowCrossNamespace, in a traefik.yaml and a traefik.toml", async () => {
        const YAML = "providers:\n  kubernetesCRD:\n    namespaces: [ai-trading]\n    allowCrossNamespace: true\napi:\n  insecure: true\nserversTransport:\n  insecureSkipVerify: true\n";
        expect(await messages("edge-gateway-contract", traefikFile("traefik.yaml", YAML))).toEqual([
            expect.stringContaining(`ConfigMap "traefik-config" sets providers.kubernetesCRD.allowCrossNamespace (traefik.yaml), ${CROSS}`),
            `ConfigMap "traefik-config" sets api.insecure (traefik.yaml), ${API}${API_FIX}`,
            `ConfigMap "traefik-config" sets serversTransport.insecureSkipVerify (traefik.yaml), ${VERIFY}${VERIFY_FIX}`,
        ]);
        const TOML = "[providers.kubernetesCRD]\nnamespaces = ['ai-trading']\nallowCrossNamespace = true\n[api]\ninsecure = true\ndebug = true\n[serversTransport]\ninsecureSkipVerify = true\n";
        expect(await messages("edge-gateway-contract", traefikFile("traefik.toml", TOML))).toEqual([
            expect.stringContaining(`ConfigMap "traefik-config" sets providers.kubernetesCRD.allowCrossNamespace (traefik.toml), ${CROSS}`),
            `ConfigMap "traefik-config" sets api.insecure (traefik.toml), ${API}, and, with api.debug, Go's profiler and runtime variables${API_FIX}`,
            `ConfigMap "traefik-config" sets serversTransport.insecureSkipVerify (traefik.toml), ${VERIFY}${VERIFY_FIX}`,
        ]);
    });

    it("passes the dashboard without api.insecure, the options switched off, and backends verified with rootCAs", async () => {
        expect(await messages("edge-gateway-contract", [traefikByFlags([...NAMESPACES, "--api.dashboard=true", "--api.insecure=false", "--api.debug",
            "--serversTransport.insecureSkipVerify=false", "--serversTransport.rootCAs=/etc/ca/backends.pem"], [{ name: "TRAEFIK_API_INSECURE", value: "F" }])])).toEqual([]);
        expect(await messages("edge-gateway-contract", traefikFile("traefik.yaml", "api:\n  dashboard: true\nserversTransport:\n  rootCAs: [/etc/ca/backends.pem]\n"))).toEqual([]);
    });
});

describe("edge-gateway-contract: the ingress-nginx controller the stack declares, its --configmap and --watch-namespace", () => {
    const CONTROLLER_IMAGE = `registry.k8s.io/ingress-nginx/controller:v1.12.1@sha256:${"5".repeat(64)}`;
    /** The chart's controller Deployment (namespace ingress-nginx) started with `args` after /nginx-ingress-controller. */
    const controller = (args: string[], image = CONTROLLER_IMAGE): TestResource => edit(deployment("ingress-nginx-controller", 8080), (p) => {
        p.metadata.namespace = "ingress-nginx";
        Object.assign(p.spec.template.spec.containers[0], { name: "controller", image, args: ["/nginx-ingress-controller", ...args],
            env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }] });
    });
    const configMap = (name: string, data: Record<string, string>, namespace = "ingress-nginx"): TestResource => ({
        type: "kubernetes:core/v1:ConfigMap", name, props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data },
    });
    const route = (namespace = NS): TestResource => edit(ingressOf(), (p) => { p.metadata.namespace = namespace; });
    const TRUSTING = { "use-forwarded-headers": "true" };
    const trust = (name: string) => `ConfigMap "${name}" sets use-forwarded-headers with proxy-real-ip-cidr 0.0.0.0/0 (its default; wider than /16), so the controller takes the client address from a header any client there writes`;
    const contract = async (rs: TestResource[]) => (await messages("edge-gateway-contract", rs)).map((m) => m.split(/; (the api-gateway|the edge serves)/)[0]);
    const WATCHED = [`--watch-namespace=${NS}`];
    const WHO = "Deployment \"ingress-nginx-controller-deployment\" container \"controller\"";

    it("judges the ConfigMap --configmap names ($(POD_NAMESPACE) expanded) as the controller's, and another holding its keys not", async () => {
        expect(await contract([route(), controller([...WATCHED, "--configmap=$(POD_NAMESPACE)/edge-settings"]),
            configMap("edge-settings", TRUSTING), configMap("ingress-nginx-controller", TRUSTING), configMap("app-flags", TRUSTING, NS)])).toEqual([trust("edge-settings")]);
        // No --configmap: the chart's default name in the controller's namespace.
        expect(await contract([route(), controller(WATCHED), configMap("ingress-nginx-controller", TRUSTING), configMap("edge-settings", TRUSTING)]))
            .toEqual([trust("ingress-nginx-controller")]);
        // No controller in the stack (installed elsewhere): any ConfigMap may be its, judged by its keys as before.
        expect(await contract([configMap("edge-settings", TRUSTING), configMap("app-flags", TRUSTING, NS)])).toEqual([trust("edge-settings"), trust("app-flags")]);
    });

    it("rejects a --configmap naming a ConfigMap the stack does not declare", async () => {
        expect(await messages("edge-gateway-contract", [route(), controller([...WATCHED, "--configmap=ingress-nginx/edge-settings"])])).toEqual([
            `${WHO} reads its settings from ConfigMap ingress-nginx/edge-settings (--configmap), which this stack does not declare, so no policy sees whether it turns ` +
            "snippets back on, trusts forwarded client addresses or sets identity headers; declare the controller's ConfigMap in the stack.",
        ]);
    });

    it("rejects a controller serving every namespace or another namespace than the stack's Ingresses'", async () => {
        const FIX = "; the edge serves only Ingresses this pack judges: give each ingress-nginx controller --watch-namespace naming the namespaces of this " +
            "stack's Ingresses, and --configmap naming a ConfigMap this stack declares.";
        expect(await messages("edge-gateway-contract", [route(), controller([]), configMap("ingress-nginx-controller", {})])).toEqual([
            `${WHO} runs the ingress-nginx controller without --watch-namespace, so it serves the Ingresses of every namespace, made by anyone who may write an ` +
            `Ingress there, past the policies that judge this stack's own${FIX}`,
        ]);
        // The binary recognised without ingress-nginx's image (a mirror by ID).
        expect(await messages("edge-gateway-contract", [route(), controller(["--watch-namespace=$(POD_NAMESPACE)"], `sha256:${"6".repeat(64)}`), configMap("ingress-nginx-controller", {})])).toEqual([
            `${WHO} sets --watch-namespace=$(POD_NAMESPACE), so the controller serves the Ingresses of namespace ingress-nginx, where this stack declares none: ` +
            `whoever may write an Ingress there publishes routes no policy of this pack judges, while this stack's Ingresses in ${NS} go unserved${FIX}`,
        ]);
        expect((await messages("edge-gateway-contract", [route(), controller([`--watch-namespace=${NS},monitoring`]), configMap("ingress-nginx-controller", {})])).map((m) => m.split(FIX)[0])).toEqual([
            `${WHO} sets --watch-namespace=${NS},monitoring, so the controller serves the Ingresses of namespace monitoring, where this stack declares none: ` +
            "whoever may write an Ingress there publishes routes no policy of this pack judges",
        ]);
    });

    it("passes a controller watching the stack's Ingresses' namespace (or a selector), reading a declared ConfigMap", async () => {
        expect(await messages("edge-gateway-contract", [route(), controller([...WATCHED, "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller"]), configMap("ingress-nginx-controller", {})])).toEqual([]);
        expect(await messages("edge-gateway-contract", [route(), controller(["--watch-namespace-selector=trading.io/edge=true"]), configMap("ingress-nginx-controller", {})])).toEqual([]);
    });
});
