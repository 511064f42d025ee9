/**
 * Session 52, the follow-ups of session 51b's found-not-fixed list: resources the pack passed (or refused unread) that it
 * should judge, each failing before its fix. (Case, what happened, the fix: policies/README.md "Red team, session 51", part 52.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);

/** Traefik's static configuration as a file: a ConfigMap holding it. */
const traefikFile = (file: string, text: string): TestResource[] => [{ type: "kubernetes:core/v1:ConfigMap", name: "traefik-config",
    props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "traefik-config", namespace: "traefik" }, data: { [file]: text } } }];

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
        expect(await messages("no-public-exposure", traefikFile("Traefik.TOML", TOML))).toEqual([
            `ConfigMap "traefik-config" sets tracing.otlp.grpc.Endpoint (Traefik.TOML) to prometheus, which sends it ${TRACING}; ` +
            "datastores and monitoring stay internal (name the platform's own authentication service and a collector of its own).",
        ]);
        expect((await messages("edge-gateway-contract", traefikFile("traefik.toml", TOML))).map((m) => m.split("; the api-gateway")[0])).toEqual([
            `ConfigMap "traefik-config" sets entryPoints.web.forwardedHeaders.insecure (traefik.toml), ${FORWARDED}`,
            "ConfigMap \"traefik-config\" sets entryPoints.websecure.proxyProtocol.trustedIPs (traefik.toml) to 0.0.0.0/0 (wider than /16), " +
            "so Traefik takes the client address in a PROXY protocol header from clients there",
        ]);
        const fine = traefikFile("traefik.toml", "[entryPoints.web.forwardedHeaders]\ntrustedIPs = ['10.244.0.0/16']\n[tracing.otlp.grpc]\nendpoint = 'otel-collector.observability.svc:4317'\n");
        for (const policy of ["ingress-no-external-forwarding", "no-public-exposure", "edge-gateway-contract"]) expect(await messages(policy, fine), policy).toEqual([]);
    });

    it("rejects a Traefik file that does not parse (TOML or YAML), whose settings no policy can read", async () => {
        expect(await messages("ingress-no-external-forwarding", [...traefikFile("traefik.toml", "[tracing.otlp.http]\nendpoint = https://otel.example.net\n"),
            ...traefikFile("traefik.yaml", "tracing: {otlp: [\n")].map((r, i) => ({ ...r, name: `traefik-config-${i}` })))).toEqual([
            expect.stringMatching(/^ConfigMap "traefik-config-0" holds traefik\.toml, Traefik's static configuration, which does not parse \(.+\), so no policy of this pack reads its tracing endpoints or entry points: fix the file/),
            expect.stringMatching(/^ConfigMap "traefik-config-1" holds traefik\.yaml, Traefik's static configuration, which does not parse \(.+\), so no policy/),
        ]);
    });
});

describe("edge-gateway-contract: Traefik's providers, which decide what the edge serves", () => {
    const traefik = (args: string[], env: Array<{ name: string; value: string }> = []) => edit(deployment("traefik", 8000), (p) => {
        p.spec.template.spec.containers[0].args = args;
        p.spec.template.spec.containers[0].env = [...(p.spec.template.spec.containers[0].env ?? []), ...env];
    });
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
