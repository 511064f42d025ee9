/**
 * Session 51, red team round four: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 51".)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress, NS, prodStack, service } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

/** An ingress-nginx controller ConfigMap (recognised by its keys, whatever it is called). */
export const controller = (data: Record<string, string>, name = "ingress-nginx-controller"): TestResource => ({
    type: "kubernetes:core/v1:ConfigMap", name,
    props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ingress-nginx" }, data },
});

describe("the ingress-nginx controller ConfigMap read as the controller reads it: keys in any case, booleans as Go's strconv.ParseBool", () => {
    it("rejects Allow-Snippet-Annotations: \"1\", ENABLE-ANNOTATION-VALIDATION: \"F\", Annotations-Risk-Level, Server-Snippet", async () => {
        const found = await messages("ingress-no-snippets", [controller({
            "Allow-Snippet-Annotations": "1", "ENABLE-ANNOTATION-VALIDATION": "F", "Annotations-Risk-Level": "critical", "Server-Snippet": "location /x { proxy_pass http://postgres:5432; }",
        })]);
        expect(found.map((m) => m.split(":")[0] + (m.includes("(every") || m.includes("(annotation") || m.includes("(raw") ? "" : "?"))).toEqual([
            "ConfigMap \"ingress-nginx-controller\" sets allow-snippet-annotations",
            "ConfigMap \"ingress-nginx-controller\" sets enable-annotation-validation",
            "ConfigMap \"ingress-nginx-controller\" sets annotations-risk-level",
            "ConfigMap \"ingress-nginx-controller\" sets server-snippet (raw nginx configuration for every host)",
        ]);
        // "t" and "TRUE" are true to the controller too; "false", "0" and another map's unrelated keys pass.
        expect(await messages("ingress-no-snippets", [controller({ "allow-snippet-annotations": "t" }), controller({ "Allow-Snippet-Annotations": "TRUE" }, "b")])).toHaveLength(2);
        expect(await messages("ingress-no-snippets", [controller({ "allow-snippet-annotations": "0", "enable-annotation-validation": "1" })])).toEqual([]);
    });

    it("rejects Log-Format-Upstream with credentials and OTLP-Collector-Host outside", async () => {
        expect((await messages("no-insecure-runtime-flags", [controller({ "Log-Format-Upstream": "$remote_addr $http_authorization" })]))[0])
            .toMatch(/^ConfigMap "ingress-nginx-controller" sets log-format-upstream with \$http_authorization,/);
        expect((await messages("ingress-no-external-forwarding", [controller({ "OTLP-Collector-Host": "otel.example.net" })]))[0])
            .toMatch(/^ConfigMap "ingress-nginx-controller" sets otlp-collector-host to a URL on otel.example.net, outside the cluster/);
    });
});

describe("no-public-exposure, ingress-internal-backends: a tracing collector naming an internal workload's Service", () => {
    const TRACE = "a trace of every request to every Ingress of the controller (its URI, query tokens included, and headers)";
    const toInternal = (key: string, name: string, what: string) => `ConfigMap "ingress-nginx-controller" sets ${key} to ${name}, which sends it ${what}; ` +
        "datastores and monitoring stay internal (name the platform's own authentication service and a collector of its own).";

    it("rejects otlp-collector-host, zipkin-collector-host and jaeger-endpoint naming monitoring's or a datastore's Service, by name", async () => {
        const found = await messages("no-public-exposure", [controller({
            "otlp-collector-host": "prometheus.ai-trading.svc", "Zipkin-Collector-Host": "grafana.ai-trading.svc.cluster.local", "jaeger-endpoint": "http://postgres.ai-trading.svc:5432/api/traces",
            // A URL where a host is documented: the exporter takes it, and it is read as that URL.
            "datadog-collector-host": "http://clickhouse.ai-trading.svc:8126",
        })]);
        expect(found).toEqual([toInternal("otlp-collector-host", "prometheus", TRACE), toInternal("zipkin-collector-host", "grafana", TRACE),
            toInternal("datadog-collector-host", "clickhouse", TRACE), toInternal("jaeger-endpoint", "postgres", TRACE)]);
        // global-auth-url keeps its message; a collector of the platform's own passes.
        expect((await messages("no-public-exposure", [controller({ "global-auth-url": "http://grafana.ai-trading.svc/" })]))[0]).toMatch(/^ConfigMap "ingress-nginx-controller" sets global-auth-url to grafana, which sends it the headers/);
        expect(await messages("no-public-exposure", [controller({ "otlp-collector-host": "otel-collector.observability.svc" })])).toEqual([]);
    });

    it("rejects global-auth-url or a collector naming a Service that selects a datastore's pods, whatever it is called (judged by selector)", async () => {
        const reports = edit(service("reports", "service", 5432), (p) => { p.spec.selector = { "trading.io/workload": "postgres" }; });
        const found = await messages("ingress-internal-backends", [...prodStack(), reports,
            controller({ "global-auth-url": "http://reports.ai-trading.svc/", "datadog-collector-host": "reports.ai-trading.svc" })]);
        expect(found.map((m) => m.split(";")[0])).toEqual([
            "ConfigMap \"ingress-nginx-controller\" routes public traffic to Service \"reports\" (by its global-auth-url), which selects the pods of postgres",
            "ConfigMap \"ingress-nginx-controller\" routes public traffic to Service \"reports\" (by its datadog-collector-host), which selects the pods of postgres",
        ]);
    });
});

describe("ingress-no-external-forwarding: a single-label forwarding target resolves in the controller's namespace, not the Ingress's", () => {
    const MIRROR = "nginx.ingress.kubernetes.io/mirror-target";
    const AUTH = "nginx.ingress.kubernetes.io/auth-url";
    const FIX = ", past every NetworkPolicy (the controller makes the request): the clients' credentials and orders leave the platform. Name a Service of the cluster " +
        "(http://<service>.<namespace>.svc:<port>/...), or, for an identity provider the operator has chosen, list its host in this policy's allowedExternalTargets.";
    const single = (who: string, where: string, host: string, what: string) => `${who} sets ${where} to a URL on ${host}, a single label, which the controller resolves ` +
        `in its own pod's namespace (its resolv.conf search list), whatever namespace this object is in: which Service it names depends on where the controller runs, so the controller sends ${what} to a Service no policy can judge${FIX}`;

    it("rejects mirror-target, auth-url, global-auth-url, a collector and forwardAuth.address naming a single label (any case, trailing dot)", async () => {
        const ing = ingress({ annotations: { ...ingress().props.metadata.annotations, [MIRROR]: "http://Audit-Sink.:8080$request_uri", [AUTH]: "http://auth-service:3002/verify" } });
        const mw: TestResource = { type: "kubernetes:traefik.io/v1alpha1:Middleware", name: "auth",
            props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name: "auth", namespace: NS }, spec: { forwardAuth: { address: "http://auth-service:3002/verify" } } } };
        expect(await messages("ingress-no-external-forwarding", [ing, mw, controller({ "global-auth-url": "http://auth-service/", "otlp-collector-host": "otel-collector:4317" })])).toEqual([
            single("Ingress \"nginx-ingress\"", `the annotation ${MIRROR}`, "audit-sink.", "a copy of every request, its body, Authorization header and cookies included"),
            single("Ingress \"nginx-ingress\"", `the annotation ${AUTH}`, "auth-service", "the headers of every request (its Authorization header and cookies)"),
            single("Middleware \"auth\"", "forwardAuth.address", "auth-service", "the headers of every request routed through it (their Authorization header and cookies)"),
            single("ConfigMap \"ingress-nginx-controller\"", "global-auth-url", "auth-service", "the headers of every request to every Ingress of the controller (their Authorization header and cookies)"),
            single("ConfigMap \"ingress-nginx-controller\"", "otlp-collector-host", "otel-collector", "a trace of every request to every Ingress of the controller (its URI, query tokens included, and headers)"),
        ]);
        // Named with its namespace, and the edge itself ($host), pass.
        const named = ingress({ annotations: { ...ingress().props.metadata.annotations, [MIRROR]: "http://audit-sink.tools.svc:8080$request_uri", [AUTH]: "https://$host/oauth2/auth" } });
        expect(await messages("ingress-no-external-forwarding", [named])).toEqual([]);
    });
});

describe("edge-gateway-contract: Traefik middlewares and ingress-nginx settings undoing what the api-gateway keeps for itself", () => {
    const middleware = (spec: Record<string, any>, name = "mw"): TestResource => ({
        type: "kubernetes:traefik.io/v1alpha1:Middleware", name,
        props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name, namespace: NS }, spec },
    });
    const IDENTITY = "; the api-gateway writes the identity headers from a verified credential and strips any that arrive: a service reached past it, " +
        "or a gateway bypassed by another route, takes them for the verified caller. Set no identity header at the edge.";
    const SECURITY = "; the api-gateway answers with them (HSTS, nosniff, frame and referrer policies) and the edge keeps them. Remove nothing.";
    const PATHS = "; the api-gateway's own /internal, /metrics, /ready and /health (its metrics, probes and service-to-service routes) are never routed " +
        "to clients: rewrite onto none of them, and let no client choose the rewritten path.";

    it("rejects identity headers set or copied by a middleware (any case), security headers removed, and path rewrites onto the never-proxied paths", async () => {
        const found = await messages("edge-gateway-contract", [
            middleware({ headers: { customRequestHeaders: { "X-User-Id": "00000000-0000-4000-8000-000000000001", "X-USER-ROLE": "admin", "X-Request-Source": "edge" },
                customResponseHeaders: { "Strict-Transport-Security": "", "X-Frame-Options": "", "X-Powered-By": "" } } }, "headers"),
            middleware({ forwardAuth: { address: "http://auth.tools.svc/verify", authResponseHeaders: ["X-Auth-Method", "X-Forwarded-User"], authResponseHeadersRegex: "^X-Api-Key-" } }, "auth"),
            middleware({ replacePath: { path: "/metrics" } }, "replace"),
            middleware({ replacePathRegex: { regex: "^/api/(.*)", replacement: "/$1" } }, "regex"),
            middleware({ stripPrefix: { prefixes: ["/api"] } }, "strip"),
            middleware({ addPrefix: { prefix: "/Internal" } }, "add"),
        ]);
        expect(found).toEqual([
            `Middleware "headers" sets the identity headers X-User-Id, X-USER-ROLE on every request routed through it (headers.customRequestHeaders)${IDENTITY}`,
            `Middleware "headers" removes the security headers Strict-Transport-Security, X-Frame-Options from every answer (headers.customResponseHeaders set to "")${SECURITY}`,
            `Middleware "auth" copies the identity headers X-Auth-Method (forwardAuth.authResponseHeaders), x-api-key-id, x-api-key-scopes (forwardAuth.authResponseHeadersRegex) ` +
            `from its authentication server's answer into every request routed through it${IDENTITY}`,
            `Middleware "replace" rewrites the path to /metrics (replacePath.path)${PATHS}`,
            `Middleware "regex" rewrites the path to one the client chooses (replacePathRegex.replacement /$1)${PATHS}`,
            `Middleware "strip" rewrites the path to one the client chooses (stripPrefix: what follows the prefix)${PATHS}`,
            `Middleware "add" rewrites the path to /Internal (addPrefix.prefix)${PATHS}`,
        ]);
    });

    it("rejects ingress-nginx's auth-response-headers, rewrite-target, global-auth-response-headers and hide-headers doing the same; the platform's objects pass", async () => {
        const ing = ingress({ annotations: { ...ingress().props.metadata.annotations,
            "nginx.ingress.kubernetes.io/auth-response-headers": "X-Forwarded-User, x-user-id", "nginx.ingress.kubernetes.io/rewrite-target": "/ready" } });
        const found = await messages("edge-gateway-contract", [ing, controller({ "global-auth-response-headers": "X-Api-Key-Scopes", "hide-headers": "Referrer-Policy,X-Content-Type-Options" })]);
        expect(found).toEqual([
            `Ingress "nginx-ingress" copies the identity header x-user-id (the annotation nginx.ingress.kubernetes.io/auth-response-headers) from its authentication server's answer into every request routed through it${IDENTITY}`,
            `Ingress "nginx-ingress" rewrites the path to /ready (the annotation nginx.ingress.kubernetes.io/rewrite-target)${PATHS}`,
            `ConfigMap "ingress-nginx-controller" copies the identity header X-Api-Key-Scopes (global-auth-response-headers) from its authentication server's answer into every request routed through it${IDENTITY}`,
            `ConfigMap "ingress-nginx-controller" removes the security headers Referrer-Policy, X-Content-Type-Options from every answer (hide-headers)${SECURITY}`,
        ]);
        // Percent-encoded or dotted, as the gateway's router decodes it: the same path.
        const encoded = ingress({ annotations: { ...ingress().props.metadata.annotations, "nginx.ingress.kubernetes.io/rewrite-target": "/./%6Detrics" } });
        expect(await messages("edge-gateway-contract", [encoded])).toEqual([`Ingress "nginx-ingress" rewrites the path to /./%6Detrics (the annotation nginx.ingress.kubernetes.io/rewrite-target)${PATHS}`]);
        const capture = ingress({ annotations: { ...ingress().props.metadata.annotations, "nginx.ingress.kubernetes.io/rewrite-target": "/$2" } });
        expect(await messages("edge-gateway-contract", [capture])).toEqual([`Ingress "nginx-ingress" rewrites the path to one the client chooses (the annotation nginx.ingress.kubernetes.io/rewrite-target /$2)${PATHS}`]);
        // A rewrite onto a route of the API, harmless headers, and the platform's stack pass.
        const fine = [middleware({ replacePath: { path: "/api/health" }, headers: { customRequestHeaders: { "X-Request-Source": "edge" }, customResponseHeaders: { "X-Powered-By": "" } } })];
        expect(await messages("edge-gateway-contract", [...prodStack(), ...fine])).toEqual([]);
    });
});

describe("ingress-no-snippets: NGINX Inc.'s controller (also class nginx) reads nginx.org/*-snippets and plural *-snippets keys", () => {
    it("rejects nginx.org/server-snippets, nginx.org/location-snippets and a ConfigMap's location-snippets, http-snippets", async () => {
        const ing = ingress({ annotations: { ...ingress().props.metadata.annotations,
            "nginx.org/location-snippets": "proxy_pass http://postgres.ai-trading.svc:5432;", "nginx.org/server-snippets": "location /db { proxy_pass http://clickhouse.ai-trading.svc:8123; }" } });
        const found = await messages("ingress-no-snippets", [ing, controller({ "location-snippets": "allow all;", "HTTP-Snippets": "server { listen 81; }" }, "nginx-config")]);
        expect(found.map((m) => m.split(",")[0].split(":")[0])).toEqual([
            "Ingress \"nginx-ingress\" sets the annotation nginx.org/location-snippets",
            "Ingress \"nginx-ingress\" sets the annotation nginx.org/server-snippets",
            "ConfigMap \"nginx-config\" sets http-snippets (raw nginx configuration for every host)",
            "ConfigMap \"nginx-config\" sets location-snippets (raw nginx configuration for every host)",
        ]);
    });
});

describe("no-unchecked-routes: routers by other groups, versions and fields", () => {
    const router = (type: string, name: string, spec: Record<string, any> = {}): TestResource => ({ type, name, props: { metadata: { name, namespace: NS }, spec } });
    const tail = "routes traffic where no edge policy of this pack checks it (TLS, hosts, snippets, routes to datastores and monitoring); " +
        "publish through a networking.k8s.io/v1 Ingress instead.";

    it("rejects a TraefikService, NGINX Inc.'s VirtualServer and TransportServer, Gateway API's old networking.x-k8s.io group, Kong's TCPIngress", async () => {
        expect(await messages("no-unchecked-routes", [
            router("kubernetes:traefik.io/v1alpha1:TraefikService", "mirror", { mirroring: { name: "api-gateway", port: 3001, mirrors: [{ name: "postgres", port: 5432, percent: 100 }] } }),
            router("kubernetes:k8s.nginx.org/v1:VirtualServer", "vs"),
            router("kubernetes:k8s.nginx.org/v1:TransportServer", "ts"),
            router("kubernetes:networking.x-k8s.io/v1alpha1:HTTPRoute", "old"),
            router("kubernetes:configuration.konghq.com/v1beta1:TCPIngress", "tcp"),
        ])).toEqual([
            `TraefikService "mirror" (Traefik) ${tail}`, `VirtualServer "vs" (NGINX Inc.) ${tail}`, `TransportServer "ts" (NGINX Inc.) ${tail}`,
            `HTTPRoute "old" (Gateway API) ${tail}`, `TCPIngress "tcp" (Kong) ${tail}`,
        ]);
    });

    it("rejects an Ingress backend naming a resource, and a Traefik errors middleware whose service is a TraefikService", async () => {
        const resourceBackend = edit(ingress(), (p) => {
            p.spec.rules[0].http.paths.push({ path: "/x", pathType: "Prefix", backend: { resource: { apiGroup: "traefik.io", kind: "TraefikService", name: "mirror" } } });
        });
        const errors: TestResource = { type: "kubernetes:traefik.io/v1alpha1:Middleware", name: "errors",
            props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name: "errors", namespace: NS }, spec: { errors: { status: ["500-599"], query: "/", service: { name: "mirror", kind: "TraefikService" } } } } };
        expect(await messages("no-unchecked-routes", [resourceBackend, errors])).toEqual([
            "Ingress \"nginx-ingress\" routes rules[0].http.paths[1] to a TraefikService (resource backend) where no edge policy of this pack checks it " +
            "(routes to datastores and monitoring); route to a Service.",
            "Middleware \"errors\" routes errors.service to a TraefikService where no edge policy of this pack checks it (routes to datastores and monitoring); route to a Service.",
        ]);
        expect(await messages("no-unchecked-routes", prodStack())).toEqual([]);
    });
});

describe("ingress-no-external-forwarding: a Traefik plugin middleware", () => {
    it("rejects a plugin (code Traefik loads from outside, its settings read by no policy)", async () => {
        const plugin: TestResource = { type: "kubernetes:traefik.containo.us/v1alpha1:Middleware", name: "rewrite",
            props: { apiVersion: "traefik.containo.us/v1alpha1", kind: "Middleware", metadata: { name: "rewrite", namespace: NS }, spec: { plugin: { "traefik-plugin-mirror": { url: "https://evil.example.com" } } } } };
        expect(await messages("ingress-no-external-forwarding", [plugin])).toEqual([
            "Middleware \"rewrite\" runs the Traefik plugin traefik-plugin-mirror, code Traefik loads from outside the cluster whose settings no policy reads: " +
            "it may send the requests routed through it, their Authorization header and cookies included, anywhere. Use Traefik's own middlewares, which this pack reads.",
        ]);
    });
});

describe("edge-tls-only: a Traefik ServersTransport that verifies no backend certificate; edge-gateway-contract: a header map of identity headers", () => {
    it("rejects insecureSkipVerify on a ServersTransport (traefik.io, traefik.containo.us) and a ServersTransportTCP's tls", async () => {
        const transport = (type: string, spec: Record<string, any>): TestResource => ({ type, name: "backend", props: { metadata: { name: "backend", namespace: NS }, spec } });
        const found = await messages("edge-tls-only", [
            transport("kubernetes:traefik.io/v1alpha1:ServersTransport", { insecureSkipVerify: true, serverName: "api-gateway" }),
            transport("kubernetes:traefik.containo.us/v1alpha1:ServersTransportTCP", { tls: { insecureSkipVerify: true } }),
            transport("kubernetes:traefik.io/v1alpha1:ServersTransport", { rootCAs: [{ secret: "backend-ca" }] }),
        ]);
        const fix = "so Traefik accepts any certificate from the backends using it: whoever answers at a backend's address gets the traffic. " +
            "Give the backend's CA (rootCAs), or speak plain HTTP to a ClusterIP Service inside the cluster.";
        expect(found).toEqual([`ServersTransport "backend" sets insecureSkipVerify, ${fix}`, `ServersTransportTCP "backend" sets tls.insecureSkipVerify, ${fix}`]);
    });

    it("rejects a ConfigMap holding identity headers as keys (ingress-nginx's proxy-set-headers and auth-proxy-set-headers maps)", async () => {
        const headers = controller({ "X-User-Id": "00000000-0000-4000-8000-000000000001", "X-Request-Source": "edge" }, "custom-headers");
        expect(await messages("edge-gateway-contract", [headers])).toEqual([
            "ConfigMap \"custom-headers\" holds the identity header X-User-Id as a key: as ingress-nginx's proxy-set-headers (or auth-proxy-set-headers) map, the controller " +
            "sets it on every request; the api-gateway writes the identity headers from a verified credential and strips any that arrive: a service reached past it, " +
            "or a gateway bypassed by another route, takes them for the verified caller. Set no identity header at the edge.",
        ]);
    });
});

describe("ingress-cors: a Traefik headers middleware's CORS", () => {
    const cors = (headers: Record<string, any>): TestResource => ({ type: "kubernetes:traefik.io/v1alpha1:Middleware", name: "cors",
        props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name: "cors", namespace: NS }, spec: { headers } } });
    const READS = "any web page a signed-in user visits sends requests with that user's cookies or HTTP authentication and reads the answers; list the platform's own origins " +
        "in accessControlAllowOriginList (https://<trading:ingressHost>), or leave accessControlAllowCredentials off.";

    it("rejects accessControlAllowCredentials with an origin regex admitting any site, or \"null\" in the list; listed origins pass", async () => {
        expect(await messages("ingress-cors", [cors({ accessControlAllowCredentials: true, accessControlAllowOriginListRegex: ["https://.*"] }),
            cors({ accessControlAllowCredentials: true, accessControlAllowOriginList: ["https://trading.example.com", "null"] })])).toEqual([
            `Middleware "cors" enables CORS for any origin (accessControlAllowOriginListRegex "https://.*" admits https://evil.example) with credentials (accessControlAllowCredentials): ${READS}`,
            `Middleware "cors" enables CORS for any origin (accessControlAllowOriginList "null") with credentials (accessControlAllowCredentials): ${READS}`,
        ]);
        expect(await messages("ingress-cors", [cors({ accessControlAllowCredentials: true, accessControlAllowOriginList: ["https://trading.example.com"], accessControlAllowOriginListRegex: ["^https://([a-z]+\\.)?trading\\.example\\.com$"] }),
            cors({ accessControlAllowOriginListRegex: [".*"] })])).toEqual([]);
    });
});

describe("ingress-no-external-forwarding, no-public-exposure: Traefik's own tracing (its static configuration: flags, environment)", () => {
    const traefik = (args: string[], env: Array<{ name: string; value: string }> = []) => edit(deployment("traefik", 8000), (p) => {
        p.spec.template.spec.containers[0].args = args;
        p.spec.template.spec.containers[0].env = [...(p.spec.template.spec.containers[0].env ?? []), ...env];
    });
    const TRACE = "a trace of every request Traefik routes (its URI, query tokens included, and headers)";

    it("rejects --tracing.otlp.http.endpoint outside the cluster (any case), TRAEFIK_TRACING_OTLP_GRPC_ENDPOINT on a loopback name, and one naming monitoring", async () => {
        const found = await messages("ingress-no-external-forwarding", [traefik(["--entryPoints.web.address=:8000", "--Tracing.OTLP.HTTP.Endpoint=https://otel.example.net/v1/traces"],
            [{ name: "TRAEFIK_TRACING_OTLP_GRPC_ENDPOINT", value: "localhost:4317" }])]);
        expect(found.map((m) => m.split(", past every")[0])).toEqual([
            `Deployment "traefik-deployment" container "traefik" sets --tracing.otlp.http.endpoint to a URL on otel.example.net, outside the cluster, so the controller sends it ${TRACE}`,
            `Deployment "traefik-deployment" container "traefik" sets TRAEFIK_TRACING_OTLP_GRPC_ENDPOINT to a URL on localhost, the controller's own pod (its status and configuration endpoints listen on its loopback), so the controller sends them ${TRACE}`,
        ]);
        expect((await messages("no-public-exposure", [traefik(["--tracing.otlp.grpc.endpoint", "prometheus.ai-trading.svc:4317"])])).filter((m) => m.includes("tracing"))).toEqual([
            `Deployment "traefik-deployment" container "traefik" sets --tracing.otlp.grpc.endpoint to prometheus, which sends it ${TRACE}; datastores and monitoring stay internal (name a collector of the platform's own).`,
        ]);
        expect(await messages("ingress-no-external-forwarding", [traefik(["--tracing.otlp.grpc.endpoint=otel-collector.observability.svc:4317"])])).toEqual([]);
    });
});

describe("no-unchecked-workloads: charts and manifests installed by a controller of the cluster (k3s's helm-controller, Flux, Argo CD)", () => {
    const object = (type: string, spec: Record<string, any>): TestResource => ({ type, name: "x", props: { metadata: { name: "x", namespace: "kube-system" }, spec } });
    it("rejects a HelmChart, HelmChartConfig, Flux HelmRelease or Kustomization and an Argo CD Application (any version): no image field, a chart of privileged pods", async () => {
        const found = await messages("no-unchecked-workloads", [
            object("kubernetes:helm.cattle.io/v1:HelmChart", { chart: "https://charts.example.com/priv-0.1.0.tgz", targetNamespace: "ai-trading" }),
            object("kubernetes:helm.cattle.io/v1:HelmChartConfig", { valuesContent: "deployment:\n  podSpec: {hostNetwork: true}" }),
            object("kubernetes:helm.toolkit.fluxcd.io/v2:HelmRelease", { chart: { spec: { chart: "priv" } } }),
            object("kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization", { path: "./deploy" }),
            object("kubernetes:argoproj.io/v1alpha1:Application", { source: { repoURL: "https://git.example.com/x", path: "." } }),
        ]);
        expect(found.map((m) => m.split(" installs")[0])).toEqual([
            "HelmChart \"x\"", "HelmChartConfig \"x\"", "HelmRelease \"x\"", "Kustomization \"x\"", "Application \"x\"",
        ]);
        expect(found[0]).toBe("HelmChart \"x\" installs the objects a controller of the cluster renders (a chart, a repository's manifests, or the values of a chart it installs), " +
            "where no policy of this pack checks what runs; deploy the chart with kubernetes:helm.sh/v4:Chart (or the manifests as resources), whose objects the pack checks like any other.");
    });
});
