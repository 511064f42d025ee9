/**
 * Session 54: the judgements session 53 left, each violating case failing before its fix. (Case, what happened, the fix:
 * policies/README.md "Red team, session 51", part 54.)
 */
import { describe, expect, it } from "vitest";
import { deployment, dockerContainer, edit, ingress as ingressOf, NS, statefulSet } from "./fixtures";
import { runPack, TestResource } from "./run-pack";
import { traefikByFlags, traefikFile, TRAEFIK_IMAGE } from "./traefik-fixtures";

const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);
const violations = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => [v.resourceName, v.message]);

/** A `*List` resource (as `new k8s.apps.v1.DeploymentList` declares one) holding `items`. */
const list = (type: string, name: string, items: Array<Record<string, any>>): TestResource => ({ type, name, props: { apiVersion: "v1", kind: type.split(":").pop(), items } });

describe("ingress-no-snippets and no-insecure-runtime-flags judge the ConfigMap the declared ingress-nginx controller reads (--configmap)", () => {
    const CONTROLLER_IMAGE = `registry.k8s.io/ingress-nginx/controller:v1.12.1@sha256:${"5".repeat(64)}`;
    /** The chart's controller Deployment (namespace ingress-nginx) started with `args` after /nginx-ingress-controller. */
    const controller = (args: string[]): TestResource => edit(deployment("ingress-nginx-controller", 8080), (p) => {
        p.metadata.namespace = "ingress-nginx";
        Object.assign(p.spec.template.spec.containers[0], { name: "controller", image: CONTROLLER_IMAGE, args: ["/nginx-ingress-controller", `--watch-namespace=${NS}`, ...args],
            env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }] });
    });
    const configMap = (name: string, data: Record<string, string>, namespace = "ingress-nginx"): TestResource => ({
        type: "kubernetes:core/v1:ConfigMap", name, props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data },
    });
    const SNIPPETS = { "allow-snippet-annotations": "true", "server-snippet": "location /x { return 200; }" };
    const LOGGING = { "log-format-upstream": "$remote_addr $http_authorization" };
    const snippets = (name: string) => [
        `ConfigMap "${name}" sets allow-snippet-annotations: "true" (every Ingress may carry snippets again): ingress-nginx reads it as its configuration, and runs ` +
        "that configuration with a token that can read every Secret (CVE-2021-25742); leave snippets off.",
        `ConfigMap "${name}" sets server-snippet (raw nginx configuration for every host): ingress-nginx reads it as its configuration, and runs ` +
        "that configuration with a token that can read every Secret (CVE-2021-25742); leave snippets off.",
    ];
    const logging = (name: string) => `ConfigMap "${name}" sets log-format-upstream with $http_authorization, which writes every client's credentials into the ingress ` +
        "controller's access log; log who and what without the secrets (ingress-nginx's default format, $remote_user, $request_id), and never a request's Authorization " +
        "header, cookies or body.";

    it("ingress-no-snippets: refuses the controller's own ConfigMap whatever it is called, not an application's holding the same keys", async () => {
        const stack = [ingressOf(), controller(["--configmap=$(POD_NAMESPACE)/edge-settings"]), configMap("edge-settings", SNIPPETS),
            configMap("app-flags", SNIPPETS, NS), configMap("ingress-nginx-controller", SNIPPETS)];
        expect(await violations("ingress-no-snippets", stack)).toEqual(snippets("edge-settings").map((m) => ["edge-settings", m]));
        // No --configmap: the chart's default name in the controller's namespace.
        expect(await messages("ingress-no-snippets", [controller([]), configMap("ingress-nginx-controller", SNIPPETS), configMap("app-flags", SNIPPETS, NS)]))
            .toEqual(snippets("ingress-nginx-controller"));
        // The controller's ConfigMap as an item of a ConfigMapList: judged as the object alone.
        expect(await violations("ingress-no-snippets", [controller(["--configmap=ingress-nginx/edge-settings"]),
            list("kubernetes:core/v1:ConfigMapList", "edge-maps", [{ ...configMap("edge-settings", SNIPPETS).props, apiVersion: "v1", kind: "ConfigMap" }])]))
            .toEqual(snippets("edge-settings").map((m) => ["edge-maps", m]));
    });

    it("ingress-no-snippets: without a declared controller (installed elsewhere) any ConfigMap is judged by its keys, as before", async () => {
        expect(await messages("ingress-no-snippets", [configMap("edge-settings", SNIPPETS), configMap("app-flags", { LOG_LEVEL: "info" }, NS)]))
            .toEqual(snippets("edge-settings"));
    });

    it("no-insecure-runtime-flags: the credential-logging format of the controller's ConfigMap only; an environment source is still judged wherever it is", async () => {
        const stack = [controller(["--configmap=$(POD_NAMESPACE)/edge-settings"]), configMap("edge-settings", LOGGING), configMap("app-flags", { ...LOGGING, NODE_OPTIONS: "--inspect" }, NS)];
        const found = await violations("no-insecure-runtime-flags", stack);
        expect(found.map(([name, m]) => [name, m!.split(";")[0]])).toEqual([
            ["edge-settings", logging("edge-settings").split(";")[0]],
            ["app-flags", "ConfigMap \"app-flags\" data.NODE_OPTIONS passes --inspect in NODE_OPTIONS in every pod taking it as its environment"],
        ]);
        expect(found[0][1]).toBe(logging("edge-settings"));
        // No declared controller: judged by its keys.
        expect(await messages("no-insecure-runtime-flags", [configMap("app-flags", LOGGING, NS)])).toEqual([logging("app-flags")]);
    });
});

describe("the per-workload policies judge each workload item of a DeploymentList, StatefulSetList or DaemonSetList, named", () => {
    const privileged = edit(deployment("market-data", 3000), (p) => {
        Object.assign(p.spec.template.spec.containers[0].securityContext, { privileged: true, runAsNonRoot: false, runAsUser: 0, allowPrivilegeEscalation: true });
        delete p.spec.template.spec.containers[0].resources;
        delete p.spec.template.spec.containers[0].readinessProbe;
        p.spec.template.spec.containers[0].env = [{ name: "NODE_OPTIONS", value: "--inspect=0.0.0.0:9229" }];
        p.spec.template.spec.containers[0].image = "registry.example.com/ai-trading/ai-trading-services:latest";
    });
    const compliant = deployment("order-service", 3000);
    /** The item alone, as a resource named by its metadata.name (the name an item's messages give). */
    const alone = (r: TestResource): TestResource => ({ ...r, name: r.props.metadata.name });
    const POLICIES = ["no-privileged-containers", "run-as-non-root", "no-privilege-escalation", "resource-limits", "health-checks", "no-insecure-runtime-flags", "pinned-image-tags"];

    it.each(POLICIES)("%s reports each item as the Deployment alone, on the list", async (policy) => {
        const expected = await messages(policy, [alone(privileged), alone(compliant)]);
        expect(expected.length, `${policy} refuses the Deployment alone`).toBeGreaterThan(0);
        expect(expected.every((m) => m.includes("Deployment \"market-data\"")), expected.join("\n")).toBe(true);
        const found = await violations(policy, [list("kubernetes:apps/v1:DeploymentList", "workloads", [privileged.props, compliant.props])]);
        expect(found).toEqual(expected.map((m) => ["workloads", m]));
    });

    it("reads a StatefulSetList's and a DaemonSetList's items, and a v1 List's workloads, too", async () => {
        const set = edit(statefulSet("postgres", "datastore", `docker.io/library/postgres:16.4@sha256:${"3".repeat(64)}`, 5432, 999), (p) => {
            p.spec.template.spec.containers[0].securityContext.privileged = true;
        });
        const daemon: Record<string, any> = { ...privileged.props, kind: "DaemonSet", metadata: { ...privileged.props.metadata, name: "node-agent" } };
        delete daemon.spec.replicas;
        const found = (await violations("no-privileged-containers", [
            list("kubernetes:apps/v1:StatefulSetList", "sets", [set.props]),
            list("kubernetes:apps/v1:DaemonSetList", "daemons", [daemon]),
            list("kubernetes:core/v1:List", "mixed", [privileged.props]),
        ])).map(([name, m]) => [name, m!.split(" ").slice(0, 2).join(" ")]);
        expect(found).toEqual([["sets", "StatefulSet \"postgres\""], ["daemons", "DaemonSet \"node-agent\""], ["mixed", "Deployment \"market-data\""]]);
    });

    it("still refuses the DeploymentList whole (no-unchecked-workloads), and passes a list of compliant workloads", async () => {
        expect((await messages("no-unchecked-workloads", [list("kubernetes:apps/v1:DeploymentList", "workloads", [compliant.props])])).length).toBe(1);
        for (const policy of POLICIES) expect(await messages(policy, [list("kubernetes:apps/v1:DeploymentList", "workloads", [compliant.props])]), policy).toEqual([]);
    });
});

describe("edge-gateway-contract: Traefik's metrics and ping on an entry point serving clients", () => {
    const AT = "Deployment \"traefik-deployment\" container \"traefik\"";
    const NAMESPACES = ["--providers.kubernetesingress.namespaces=ai-trading"];
    const ENTRY_POINTS = ["--entryPoints.web.address=:8000", "--entryPoints.websecure.address=:8443", "--entryPoints.websecure.http.tls=true", "--entryPoints.traefik.address=:9000"];
    const METRICS = "its Prometheus metrics (every router's, service's and entry point's request counts and latencies, naming the routes and backends)";
    const FIX = "; keep metrics and ping on the internal entry point traefik (their default, on a port no Service publishes) or on an entry point of their " +
        "own that no Service publishes, and let Prometheus scrape it inside the cluster (or route them with manualRouting through a router the route policies read).";
    const contract = (rs: TestResource[]) => messages("edge-gateway-contract", rs);

    it("rejects metrics.prometheus.entryPoint and ping.entryPoint naming a public entry point (flags, variables, a file)", async () => {
        expect(await contract([traefikByFlags([...NAMESPACES, ...ENTRY_POINTS, "--metrics.prometheus=true", "--metrics.prometheus.entryPoint=websecure", "--ping.entryPoint=web"])])).toEqual([
            `${AT} sets --metrics.prometheus.entrypoint to websecure, so Traefik answers ${METRICS} on a public entry point (websecure: the name Traefik's chart gives the ` +
            `entry point it publishes), to every client that reaches the edge${FIX}`,
            `${AT} sets --ping.entrypoint to web, so Traefik answers its ping health check on a public entry point (web: the name Traefik's chart gives the entry point ` +
            `it publishes), to every client that reaches the edge${FIX}`,
        ]);
        // Another name, public by what it does: TLS for routers, or port 443; given as a variable.
        expect(await contract([traefikByFlags([...NAMESPACES, "--entryPoints.edge.address=:8443", "--entryPoints.edge.http.tls.certResolver=le", "--entryPoints.plain.address=:80"],
            [{ name: "TRAEFIK_METRICS_PROMETHEUS_ENTRYPOINT", value: "edge" }, { name: "TRAEFIK_PING_ENTRYPOINT", value: "plain" }])])).toEqual([
            `${AT} sets TRAEFIK_METRICS_PROMETHEUS_ENTRYPOINT to edge, so Traefik answers ${METRICS} on a public entry point (edge: it terminates TLS for routers ` +
            `(http.tls)), to every client that reaches the edge${FIX}`,
            `${AT} sets TRAEFIK_PING_ENTRYPOINT to plain, so Traefik answers its ping health check on a public entry point (plain: it listens on port 80), to every client ` +
            `that reaches the edge${FIX}`,
        ]);
        // The internal entry point moved onto port 443, with metrics and ping left on it.
        expect(await contract([traefikByFlags([...NAMESPACES, "--entryPoints.traefik.address=:443", "--metrics.prometheus=true", "--ping"])])).toEqual([
            `${AT} sets --entrypoints.traefik.address to :443, so Traefik answers ${METRICS} and its ping health check on a public entry point (traefik: it listens on ` +
            `port 443), to every client that reaches the edge${FIX}`,
        ]);
        const FILE = "providers:\n  kubernetesIngress:\n    namespaces: [ai-trading]\nentryPoints:\n  websecure:\n    address: ':8443'\n    asDefault: true\n" +
            "metrics:\n  prometheus:\n    entryPoint: websecure\n";
        expect(await contract(traefikFile("traefik.yaml", FILE))).toEqual([
            `ConfigMap "traefik-config" sets metrics.prometheus.entryPoint (traefik.yaml) to websecure, so Traefik answers ${METRICS} on a public entry point (websecure: ` +
            `the name Traefik's chart gives the entry point it publishes), to every client that reaches the edge${FIX}`,
        ]);
    });

    it("passes metrics and ping on traefik (the default) or an entry point of their own, and with manualRouting", async () => {
        expect(await contract([traefikByFlags([...NAMESPACES, ...ENTRY_POINTS, "--metrics.prometheus=true", "--ping=true"])])).toEqual([]);
        expect(await contract([traefikByFlags([...NAMESPACES, ...ENTRY_POINTS, "--entryPoints.metrics.address=:9100", "--metrics.prometheus.entryPoint=metrics",
            "--ping.entryPoint=traefik"])])).toEqual([]);
        expect(await contract([traefikByFlags([...NAMESPACES, ...ENTRY_POINTS, "--metrics.prometheus.entryPoint=websecure", "--metrics.prometheus.manualRouting=true",
            "--ping.entryPoint=web", "--ping.manualRouting"])])).toEqual([]);
        // The local cluster's Traefik (scripts/cluster/manifests/traefik.yaml): ping on traefik at :9000.
        expect(await contract([traefikByFlags(["--entryPoints.web.address=:8000", "--entryPoints.web.http.redirections.entryPoint.to=:443",
            "--entryPoints.web.http.redirections.entryPoint.scheme=https", "--entryPoints.websecure.address=:8443", "--entryPoints.websecure.http.tls=true",
            "--entryPoints.traefik.address=:9000", "--ping=true", "--providers.kubernetesingress=true", "--providers.kubernetesingress.namespaces=ai-trading"])])).toEqual([]);
    });
});

describe("edge-tls-only: a Traefik TLSOption allowing TLS below 1.2 or a weak cipher suite", () => {
    const tlsOption = (name: string, spec: Record<string, any>, group = "traefik.io/v1alpha1"): TestResource => ({
        type: `kubernetes:${group}:TLSOption`, name, props: { apiVersion: group, kind: "TLSOption", metadata: { name, namespace: NS }, spec },
    });
    const TAIL = ": a client (or whoever is on its path, downgrading it) gets a connection without forward secrecy or open to the padding-oracle and downgrade " +
        "attacks TLS 1.2's AEAD suites closed. Leave minVersion at VersionTLS12 (or VersionTLS13) and list only ECDHE suites with AES-GCM or ChaCha20-Poly1305, " +
        "or leave cipherSuites unset.";

    it("rejects minVersion or maxVersion below TLS 1.2 and CBC, RSA-key-exchange or 3DES suites, on the default option and a named one", async () => {
        expect(await violations("edge-tls-only", [
            tlsOption("default", { minVersion: "VersionTLS10", cipherSuites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"] }),
            tlsOption("legacy-clients", { maxVersion: "VersionTLS11" }, "traefik.containo.us/v1alpha1"),
        ])).toEqual([
            ["default", `TLSOption "default" sets minVersion VersionTLS10, so clients may speak TLS 1.0, for every router that names no other TLSOption${TAIL}`],
            ["default", "TLSOption \"default\" allows the weak cipher suites TLS_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (cipherSuites: CBC, RSA key " +
                `exchange, 3DES or RC4), for every router that names no other TLSOption${TAIL}`],
            ["legacy-clients", `TLSOption "legacy-clients" sets maxVersion VersionTLS11, so no client speaks more than TLS 1.1, for the routers naming it${TAIL}`],
        ]);
        // An item of a TLSOptionList too.
        expect((await violations("edge-tls-only", [list("kubernetes:traefik.io/v1alpha1:TLSOptionList", "options", [tlsOption("default", { minVersion: "VersionTLS11" }).props])]))
            .map(([name, m]) => [name, m!.split(",")[0]])).toEqual([["options", "TLSOption \"default\" sets minVersion VersionTLS11"]]);
    });

    it("passes TLS 1.2 and 1.3 with ECDHE AEAD suites, or the defaults", async () => {
        expect(await messages("edge-tls-only", [
            tlsOption("default", { minVersion: "VersionTLS12", cipherSuites: ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_AES_128_GCM_SHA256"] }),
            tlsOption("modern", { minVersion: "VersionTLS13", sniStrict: true }),
            tlsOption("plain", {}),
        ])).toEqual([]);
    });
});

describe("edge-gateway-contract: Traefik on the Docker target (a container's command and envs)", () => {
    const traefik = (props: Record<string, any>) => dockerContainer("edge-proxy", "edge", { image: TRAEFIK_IMAGE, ...props });
    const WHO = "Container \"edge-proxy-container\"";
    const API = "so Traefik serves its API and dashboard without authentication on its entry point traefik (port 8080 unless entryPoints.traefik.address moves it), " +
        "on every address of the pod: whoever reaches that port (any pod of the cluster, or everyone if a Service publishes it) reads every router, service and middleware, " +
        "the backends' addresses and the rules in front of them";
    const VERIFY = "so Traefik accepts any certificate from every backend it reaches over HTTPS: whoever is on the path between the edge and a backend answers in its " +
        "place, reading and rewriting every request, the credentials it carries included";
    const DOCKER_FIX = "; no policy of this pack reads the Docker provider's routers (containers' labels, and with exposedByDefault, its default, every container " +
        "without one): keep that provider off, and on the Docker target serve the edge with the platform's nginx edge container (its nginx.conf judged by edge-tls-only).";
    const head = (ms: string[]) => ms.map((m) => m.split(/, so |; /)[0]);

    it("rejects api.insecure, serversTransport.insecureSkipVerify and the docker provider exposing every container, from command and envs", async () => {
        const found = await messages("edge-gateway-contract", [traefik({ command: ["--entryPoints.web.address=:80", "--api.insecure=true", "--serversTransport.insecureSkipVerify=true",
            "--providers.docker=true"] })]);
        expect(found).toEqual([
            `${WHO} command enables Traefik's docker provider (--providers.docker) with exposedByDefault left at its default, true, so Traefik makes a router for every container of the engine, the ` +
            `datastores' and monitoring's included, made in this stack or not, from labels and names no policy of this pack reads${DOCKER_FIX}`,
            `${WHO} command sets --api.insecure, ${API}; leave api.insecure off (and api.debug): publish the dashboard, if at all, through an IngressRoute to api@internal ` +
            "on a host of its own behind an authentication middleware, or reach it with kubectl port-forward.",
            `${WHO} command sets --serverstransport.insecureskipverify, ${VERIFY}; leave insecureSkipVerify off and give the backends' CA as serversTransport.rootCAs ` +
            "(or a ServersTransport with rootCAs for the Services that need one).",
        ]);
        // As variables, by an image ID whose entrypoint is traefik; exposedByDefault=false still a source no policy reads.
        expect(head(await messages("edge-gateway-contract", [traefik({ image: `sha256:${"4".repeat(64)}`, entrypoints: ["/usr/local/bin/traefik"],
            envs: ["TRAEFIK_API_INSECURE=true", "TRAEFIK_PROVIDERS_DOCKER=true", "TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT=false", "TRAEFIK_METRICS_PROMETHEUS_ENTRYPOINT=websecure",
                "TRAEFIK_ENTRYPOINTS_WEBSECURE_ADDRESS=:443"] })]))).toEqual([
            `${WHO} envs enables Traefik's docker provider (TRAEFIK_PROVIDERS_DOCKER), whose routers, services and middlewares come from a source no policy of this pack reads`,
            `${WHO} envs sets TRAEFIK_API_INSECURE`,
            `${WHO} envs sets TRAEFIK_METRICS_PROMETHEUS_ENTRYPOINT to websecure`,
        ]);
        // exposedByDefault given true on the command line.
        expect(head(await messages("edge-gateway-contract", [traefik({ command: ["traefik", "--providers.docker.exposedByDefault=true"] })]))).toEqual([
            `${WHO} command enables Traefik's docker provider (--providers.docker.exposedbydefault) with --providers.docker.exposedbydefault true`,
        ]);
    });

    it("reads the static configuration file a Docker Traefik is given by an upload (/etc/traefik, or the one --configFile names)", async () => {
        const YAML = "providers:\n  docker:\n    exposedByDefault: true\napi:\n  insecure: true\n";
        expect(head(await messages("edge-gateway-contract", [traefik({ command: ["traefik"], uploads: [{ file: "/etc/traefik/traefik.yml", content: YAML }] })]))).toEqual([
            `${WHO} enables Traefik's docker provider (providers.docker.exposedByDefault (traefik.yml)) with providers.docker.exposedByDefault (traefik.yml) true`,
            `${WHO} sets api.insecure (traefik.yml)`,
        ]);
        const TOML = "[serversTransport]\ninsecureSkipVerify = true\n";
        expect(head(await messages("edge-gateway-contract", [traefik({ command: ["--configFile=/config/static.toml"],
            uploads: [{ file: "/config/static.toml", contentBase64: Buffer.from(TOML).toString("base64") }, { file: "/etc/traefik/traefik.yml", content: YAML }] })]))).toEqual([
            `${WHO} sets serversTransport.insecureSkipVerify (static.toml)`,
        ]);
        // A file named by --configFile that no upload gives (a bind mount): unread, refused by ingress-no-external-forwarding.
        expect((await messages("ingress-no-external-forwarding", [traefik({ command: ["--configFile=/config/static.toml"] })])).map((m) => m.split(":")[0]))
            .toEqual([`${WHO} reads its static configuration from /config/static.toml of the image, which the pack cannot read`]);
    });

    it("passes a Traefik container with neither, and leaves other containers' flags alone", async () => {
        expect(await messages("edge-gateway-contract", [traefik({ command: ["--entryPoints.web.address=:80", "--ping=true", "--log.level=INFO"] })])).toEqual([]);
        expect(await messages("edge-gateway-contract", [dockerContainer("prometheus", "monitoring", { image: `docker.io/prom/prometheus:v2.54.1@sha256:${"7".repeat(64)}`,
            command: ["--config.file=/etc/prometheus/prometheus.yml", "--metrics.prometheus.entryPoint=websecure"] })])).toEqual([]);
    });
});
