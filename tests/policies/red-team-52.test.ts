/**
 * Session 52, the follow-ups of session 51b's found-not-fixed list: resources the pack passed (or refused unread) that it
 * should judge, each failing before its fix. (Case, what happened, the fix: policies/README.md "Red team, session 51", part 52.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress as ingressOf } from "./fixtures";
import { runPack, TestResource } from "./run-pack";
import { traefikByFlags, traefikConfigMap, traefikDeployment, traefikFile } from "./traefik-fixtures";

const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);

const TRACING = "a trace of every request Traefik routes (its URI, query tokens included, and headers)";
const FORWARDED = "so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from any client";

describe("Traefik's static configuration in TOML (traefik.toml), read as traefik.yaml is", () => {
    const TOML = [
        "[EntryPoints.web]", "address = ':8000'", "[entryPoints.web.forwardedHeaders]", "insecure = true",
        "[entryPoints.websecure.proxyProtocol]", "trustedIPs = ['10.244.0.0/16', '0.0.0.0/0']",
        "[tracing.otlp.http]", "endpoint = 'https://otel.example.net/v1/traces'", "[tracing.otlp.grpc]", "Endpoint = 'prometheus.ai-trading.svc:4317'",
        "[log]", "level = 'INFO'", "[accessLog]", "since = 2026-12-06T00:00:00Z",
    ].join("\n");

    it("rejects its tracing endpoints (outside the cluster, naming monitoring) and entry points trusting any client's address (keys in any case)", async () => {
        expect((await messages("ingress-no-external-forwarding", traefikFile("traefik.toml", TOML))).map((m) => m.split(", past every")[0])).toEqual([
            `ConfigMap "traefik-config" sets tracing.otlp.http.endpoint (traefik.toml) to a URL on otel.example.net, outside the cluster, so the controller sends it ${TRACING}`,
        ]);
        // Named by --configFile (its extension in any case); judged by ingress-internal-backends by name (session 52: no resource policy sees which ConfigMap Traefik reads).
        expect(await messages("ingress-internal-backends", [traefikConfigMap({ "Traefik.TOML": TOML }), traefikDeployment(["--configFile=/etc/traefik/Traefik.TOML"])])).toEqual([
            "ConfigMap \"traefik-config\" routes public traffic to Service \"prometheus\" (by its tracing.otlp.grpc.Endpoint (Traefik.TOML)), an internal workload's; " +
            "datastores and monitoring stay internal (name a collector of the platform's own).",
        ]);
        expect((await messages("edge-gateway-contract", traefikFile("traefik.toml", TOML))).map((m) => m.split("; the api-gateway")[0])).toEqual([
            `ConfigMap "traefik-config" sets entryPoints.web.forwardedHeaders.insecure (traefik.toml), ${FORWARDED}`,
            "ConfigMap \"traefik-config\" sets entryPoints.websecure.proxyProtocol.trustedIPs (traefik.toml) to 0.0.0.0/0 (wider than /16), " +
            "so Traefik takes the client address in a PROXY protocol header from clients there",
        ]);
        const fine = traefikFile("traefik.toml", "[entryPoints.web.forwardedHeaders]\ntrustedIPs = ['10.244.0.0/16']\n[tracing.otlp.grpc]\nendpoint = 'otel-collector.observability.svc:4317'\n");
        for (const policy of ["ingress-no-external-forwarding", "ingress-internal-backends", "edge-gateway-contract"]) expect(await messages(policy, fine), policy).toEqual([]);
    });

    it("rejects a Traefik file that does not parse (TOML or YAML), whose settings no policy can read", async () => {
        expect(await messages("ingress-no-external-forwarding", [traefikConfigMap({ "traefik.toml": "[tracing.otlp.http]\nendpoint = https://otel.example.net\n",
            "traefik.yaml": "tracing: {otlp: [\n" }), traefikDeployment()])).toEqual([
            expect.stringMatching(/^ConfigMap "traefik-config" holds traefik\.toml, Traefik's static configuration, which does not parse \(.+\), so no policy of this pack reads its tracing endpoints or entry points: fix the file/),
            expect.stringMatching(/^ConfigMap "traefik-config" holds traefik\.yaml, Traefik's static configuration, which does not parse \(.+\), so no policy/),
        ]);
    });
});

describe("edge-gateway-contract: Traefik's providers, which decide what the edge serves", () => {
    const traefik = traefikByFlags;
    const PROVIDERS = "; the edge serves only routes this pack judges (the stack's Ingresses, Traefik Middlewares and ServersTransports, read by the route policies): " +
        "enable only the kubernetesIngress and kubernetesCRD providers, each with namespaces naming the stack's, on the cluster's own API server, " +
        "and neither allowCrossNamespace nor allowExternalNameServices.";
    const AT = "Deployment \"traefik-deployment\" container \"traefik\"";

    it("rejects providers widening what the edge serves (flags in any case, environment), and a provider no policy reads", async () => {
        expect(await messages("edge-gateway-contract", [traefik(["--providers.kubernetesCRD", "--providers.kubernetescrd.namespaces=ai-trading",
            "--providers.kubernetesCRD.allowCrossNamespace=true", "--providers.kubernetesingress=true", "--providers.file.directory=/etc/traefik/dynamic",
            "--providers.kubernetesingress.namespaces=ai-trading", "--providers.kubernetesGateway", "--providers.providersThrottleDuration=2s"],
        [{ name: "TRAEFIK_PROVIDERS_KUBERNETESINGRESS_ALLOWEXTERNALNAMESERVICES", value: "T" }])])).toEqual([
            `${AT} sets --providers.kubernetescrd.allowcrossnamespace, so an IngressRoute, Middleware or TraefikService of one namespace may name a Service or Middleware of another (a datastore's, monitoring's), which no route policy follows${PROVIDERS}`,
            `${AT} sets TRAEFIK_PROVIDERS_KUBERNETESINGRESS_ALLOWEXTERNALNAMESERVICES, so Traefik routes to ExternalName Services, DNS aliases to any host inside or outside the cluster (CVE-2021-25740's hole), which ingress-internal-backends refuses as routes${PROVIDERS}`,
            `${AT} enables Traefik's file provider (--providers.file.directory), whose routers, services and middlewares come from a source no policy of this pack reads${PROVIDERS}`,
            `${AT} enables Traefik's kubernetesgateway provider (--providers.kubernetesgateway), whose routers, services and middlewares come from a source no policy of this pack reads${PROVIDERS}`,
        ]);
        // Every namespace watched, another API server, in a file (YAML or TOML) as in flags.
        expect((await messages("edge-gateway-contract", [traefik(["--providers.kubernetesingress"]),
            ...traefikFile("traefik.toml", "[providers.kubernetesCRD]\nendpoint = 'https://10.0.0.1:6443'\nnamespaces = ['ai-trading']\n[providers.http]\nendpoint = 'https://config.example.net/'\n"),
        ])).map((m) => m.split(PROVIDERS)[0])).toEqual([
            `${AT} enables Traefik's kubernetesingress provider (--providers.kubernetesingress) without namespaces, so Traefik serves the routes of every namespace, made by anyone who may write an Ingress or a Middleware there, past the policies that judge this stack's own`,
            "ConfigMap \"traefik-config\" sets providers.kubernetesCRD.endpoint (traefik.toml) to https://10.0.0.1:6443, so Traefik serves the routes of that API server, whose objects no policy of this pack sees",
            "ConfigMap \"traefik-config\" enables Traefik's http provider (providers.http.endpoint (traefik.toml)), whose routers, services and middlewares come from a source no policy of this pack reads",
        ]);
    });

    it("passes the Kubernetes providers on named namespaces, allowEmptyServices, a provider switched off", async () => {
        expect(await messages("edge-gateway-contract", [traefik(["--providers.kubernetesingress", "--providers.kubernetesingress.namespaces=ai-trading,traefik",
            "--providers.kubernetesingress.allowEmptyServices=true", "--providers.kubernetescrd.allowCrossNamespace=false", "--providers.kubernetescrd.namespaces=ai-trading",
            "--providers.docker=false"]), ...traefikFile("traefik.yaml", "providers:\n  kubernetesIngress:\n    namespaces: [ai-trading]\n  providersThrottleDuration: 2s\n")])).toEqual([]);
    });
});

describe("a Traefik file is Traefik's static configuration only where a Traefik container reads it", () => {
    const BAD = "entryPoints:\n  web:\n    forwardedHeaders:\n      insecure: true\ntracing:\n  otlp:\n    http:\n      endpoint: https://otel.example.net/v1/traces\n" +
        "    grpc:\n      endpoint: prometheus.ai-trading.svc:4317\nproviders:\n  file:\n    directory: /dynamic\n";
    const POLICIES = ["ingress-no-external-forwarding", "edge-gateway-contract", "ingress-internal-backends", "no-public-exposure", "hand-made-endpoints"];
    const found = async (rs: TestResource[]) => (await runPack(rs, "prod", { only: POLICIES })).map((v) => `${v.policyName}: ${v.message.split(/, past every|; the (api-gateway|edge)|; datastores/)[0]}`);

    it("passes a ConfigMap holding traefik.yaml (or one that does not parse) that no Traefik container reads: mounted nowhere, or by another program at /etc/traefik", async () => {
        const other = edit(traefikDeployment([], { mountPath: "/etc/traefik" }, { configMap: { name: "traefik-config" } }, "registry.example.com/ai-trading/docs-site:1.0.0"), () => undefined);
        expect(await found([traefikConfigMap({ "traefik.yaml": BAD, "traefik.toml": "not = [toml" })])).toEqual([]);
        expect(await found([traefikConfigMap({ "traefik.yaml": BAD }), other])).toEqual([]);
    });

    it("judges the one Traefik reads: searched in /etc/traefik, named by --configFile (subPath, items), given by a Secret", async () => {
        const expected = (who: string, file: string) => [
            `ingress-no-external-forwarding: ${who} sets tracing.otlp.http.endpoint (${file}) to a URL on otel.example.net, outside the cluster, so the controller sends it ${TRACING}`,
            `edge-gateway-contract: ${who} sets entryPoints.web.forwardedHeaders.insecure (${file}), ${FORWARDED}`,
            `edge-gateway-contract: ${who} enables Traefik's file provider (providers.file.directory (${file})), whose routers, services and middlewares come from a source no policy of this pack reads`,
            `ingress-internal-backends: ${who} routes public traffic to Service "prometheus" (by its tracing.otlp.grpc.endpoint (${file})), an internal workload's`,
        ];
        expect(await found(traefikFile("traefik.yaml", BAD))).toEqual(expected("ConfigMap \"traefik-config\"", "traefik.yaml"));
        // --configFile names any file (Traefik reads it by its extension), mounted by subPath; `items` mapping a key onto the name Traefik looks for.
        expect(await found([traefikConfigMap({ static: BAD }), traefikDeployment(["--configfile", "config/static.yml"], { mountPath: "/app/config/static.yml", subPath: "static" })]
            .map((r) => edit(r, (p) => { if (p.spec) p.spec.template.spec.containers[0].workingDir = "/app"; })))).toEqual(expected("ConfigMap \"traefik-config\"", "static.yml"));
        expect(await found([traefikConfigMap({ conf: BAD }), traefikDeployment([], { mountPath: "/etc/traefik" }, { configMap: { name: "traefik-config", items: [{ key: "conf", path: "traefik.yaml" }] } })]))
            .toEqual(expected("ConfigMap \"traefik-config\"", "traefik.yaml"));
        const secret: TestResource = { type: "kubernetes:core/v1:Secret", name: "traefik-static", props: { apiVersion: "v1", kind: "Secret",
            metadata: { name: "traefik-static", namespace: "traefik" }, stringData: { "traefik.yaml": BAD } } };
        expect(await found([secret, traefikDeployment([], { mountPath: "/etc/traefik" }, { secret: { secretName: "traefik-static" } })])).toEqual(expected("Secret \"traefik-static\"", "traefik.yaml"));
    });

    it("rejects a Traefik container whose static configuration the pack cannot read: a ConfigMap the stack does not declare, a file of the image named by --configFile, a volume it cannot read", async () => {
        const UNREAD = ": no policy of this pack judges its tracing endpoints, entry points or providers. Give it from a ConfigMap this stack declares, mounted where Traefik reads it (or named by --configFile).";
        const who = "ingress-no-external-forwarding: Deployment \"traefik-proxy-deployment\" container \"traefik-proxy\" reads its static configuration from";
        expect(await found([traefikDeployment()])).toEqual([`${who} /etc/traefik/traefik.toml from ConfigMap "traefik-config", which the stack does not declare${UNREAD}`]);
        expect(await found([traefikDeployment(["--configFile=/opt/static.toml"], { mountPath: "/etc/traefik" }, { emptyDir: {} })]))
            .toEqual([`${who} /opt/static.toml of the image, which the pack cannot read${UNREAD}`]);
        expect(await found([traefikDeployment([], { mountPath: "/etc/traefik" }, { emptyDir: {} })]))
            .toEqual([`${who} /etc/traefik/traefik.toml from volume "config", which the pack cannot read${UNREAD}`]);
        // Traefik configured by flags only, with nothing mounted where it looks: nothing to read.
        expect(await found([traefikDeployment(["--entryPoints.web.address=:8000"], { mountPath: "/data" }, { emptyDir: {} })])).toEqual([]);
    });
});

describe("edge-gateway-contract: ingress-nginx's response header maps, forwarded-for-header, and its keys' case", () => {
    const controller = (data: Record<string, string>, name = "ingress-nginx-controller", namespace = "ingress-nginx"): TestResource => ({
        type: "kubernetes:core/v1:ConfigMap", name, props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data } });
    const contract = async (rs: TestResource[]) => (await messages("edge-gateway-contract", rs)).map((m) => m.split(/; the api-gateway|\. Declare the header map/)[0]);

    it("follows add-headers and the custom-headers annotation: a map the stack does not declare, a security header set to another value than the gateway's", async () => {
        const ing = edit(ingressOf(), (p) => { p.metadata.annotations["nginx.ingress.kubernetes.io/custom-headers"] = "answer-headers"; });
        expect(await contract([controller({ "Add-Headers": "ingress-nginx/extra-headers" }), ing])).toEqual([
            "ConfigMap \"ingress-nginx-controller\" sets add-headers to ingress-nginx/extra-headers, a ConfigMap this stack does not declare: the controller adds each of its keys as a header " +
            "to every answer, and no policy can see which (security headers, CORS)",
            "Ingress \"nginx-ingress\" sets the annotation nginx.ingress.kubernetes.io/custom-headers to answer-headers, a ConfigMap this stack does not declare: the controller adds each of its keys " +
            "as a header to every answer, and no policy can see which (security headers, CORS)",
        ]);
        const declared = [controller({ "Referrer-Policy": "unsafe-url", "X-Frame-Options": "DENY", "X-Served-By": "edge" }, "extra-headers"),
            controller({ "x-frame-options": "SAMEORIGIN" }, "answer-headers", "ai-trading")];
        expect(await contract([controller({ "add-headers": "ingress-nginx/extra-headers" }), ing, ...declared])).toEqual([
            "ConfigMap \"extra-headers\" (the header map ConfigMap \"ingress-nginx-controller\" names by add-headers) adds Referrer-Policy: unsafe-url to every answer beside the gateway's own " +
            "(a second X-Frame-Options voids it, the last Referrer-Policy wins, HSTS and nosniff are the gateway's to set): add no security header at the edge.",
            "ConfigMap \"answer-headers\" (the header map Ingress \"nginx-ingress\" names by the annotation nginx.ingress.kubernetes.io/custom-headers) adds x-frame-options: SAMEORIGIN to every answer beside the gateway's own " +
            "(a second X-Frame-Options voids it, the last Referrer-Policy wins, HSTS and nosniff are the gateway's to set): add no security header at the edge.",
        ]);
        // The gateway's own values, or headers of no security meaning, pass.
        expect(await contract([controller({ "add-headers": "ingress-nginx/extra-headers" }), controller({ "X-Frame-Options": "deny", "X-Served-By": "edge" }, "extra-headers")])).toEqual([]);
    });

    it("rejects a forwarded-for-header other than X-Forwarded-For where the controller trusts it, whatever proxy-real-ip-cidr says", async () => {
        expect(await contract([controller({ "use-forwarded-headers": "true", "Forwarded-For-Header": "X-Client-IP", "proxy-real-ip-cidr": "10.244.0.0/16" }),
            controller({ "enable-real-ip": "1", "forwarded-for-header": "True-Client-IP" }, "b")])).toEqual([
            "ConfigMap \"ingress-nginx-controller\" sets forwarded-for-header X-Client-IP with use-forwarded-headers, so the controller takes the client address from X-Client-IP, a header the proxy in front passes on from the client as it came (it writes X-Forwarded-For): any client chooses its own",
            "ConfigMap \"b\" sets enable-real-ip with proxy-real-ip-cidr 0.0.0.0/0 (its default; wider than /16), so the controller takes the client address from a header any client there writes",
            "ConfigMap \"b\" sets forwarded-for-header True-Client-IP with enable-real-ip, so the controller takes the client address from True-Client-IP, a header the proxy in front passes on from the client as it came (it writes X-Forwarded-For): any client chooses its own",
        ]);
        // X-Forwarded-For (any case), the PROXY protocol (the header is not read), or no trust at all: passed.
        expect(await contract([controller({ "use-forwarded-headers": "true", "forwarded-for-header": "x-forwarded-for", "proxy-real-ip-cidr": "10.244.0.0/16" }),
            controller({ "use-proxy-protocol": "true", "forwarded-for-header": "X-Client-IP", "proxy-real-ip-cidr": "10.244.0.0/16" }, "b"),
            controller({ "forwarded-for-header": "X-Client-IP" }, "c")])).toEqual([]);
    });

    it("reads hide-headers and proxy-real-ip-cidr in any case, as mapstructure decodes them past ReadConfig's exact-key reading (one value, not split)", async () => {
        expect(await contract([controller({ "Hide-Headers": "Strict-Transport-Security" }), controller({ "enable-real-ip": "true", "Proxy-Real-IP-CIDR": "0.0.0.0/0" }, "b")])).toEqual([
            "ConfigMap \"ingress-nginx-controller\" removes the security header Strict-Transport-Security from every answer (hide-headers)",
            "ConfigMap \"b\" sets enable-real-ip with proxy-real-ip-cidr 0.0.0.0/0 (wider than /16), so the controller takes the client address from a header any client there writes",
        ]);
        expect(await contract([controller({ "enable-real-ip": "true", "Proxy-Real-IP-CIDR": "10.244.0.0/16" })])).toEqual([]);
    });
});
