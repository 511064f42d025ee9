/**
 * Session 51b, the follow-ups of red team round four: resources the pack passed that it should refuse, each
 * failing before its fix. (Case, what happened, the fix: policies/README.md "Red team, session 51", part 51b.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress as ingressOf, NS, prodStack } from "./fixtures";
import { runPack, TestResource } from "./run-pack";
import { traefikByFlags, traefikFile } from "./traefik-fixtures";

/** An ingress-nginx controller ConfigMap (recognised by its keys, whatever it is called), as in red-team-51. */
const controller = (data: Record<string, string>, name = "ingress-nginx-controller"): TestResource => ({
    type: "kubernetes:core/v1:ConfigMap", name,
    props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ingress-nginx" }, data },
});
const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);
const middleware = (spec: Record<string, any>, name = "mw"): TestResource => ({
    type: "kubernetes:traefik.io/v1alpha1:Middleware", name,
    props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name, namespace: NS }, spec },
});
const traefik = traefikByFlags;
const CLIENT = "; the api-gateway's rate limits, failed-key counts and login lockout count the client address the edge forwards: an address the edge " +
    "writes puts every client behind it in one bucket, one a client writes lets it choose its own. Let the edge forward the address it sees, and trust " +
    "forwarded addresses from the edge proxy's own range only.";

describe("edge-gateway-contract: the client address the edge forwards (X-Forwarded-For, X-Real-IP, Forwarded)", () => {
    it("rejects a Traefik headers middleware or an ingress-nginx header map setting them, and a controller trusting any sender", async () => {
        const found = await messages("edge-gateway-contract", [
            middleware({ headers: { customRequestHeaders: { "X-Forwarded-For": "10.0.0.1", "x-real-ip": "10.0.0.1", "X-Request-Source": "edge" } } }),
            controller({ Forwarded: "for=10.0.0.1", "X-Request-Source": "edge" }, "custom-headers"),
            controller({ "Use-Forwarded-Headers": "T" }),
            controller({ "enable-real-ip": "true", "proxy-real-ip-cidr": "10.244.0.0/16, 0.0.0.0/0" }, "b"),
        ]);
        expect(found).toEqual([
            `Middleware "mw" sets the client-address headers X-Forwarded-For, x-real-ip on every request routed through it (headers.customRequestHeaders)${CLIENT}`,
            `ConfigMap "custom-headers" holds the client-address header Forwarded as a key: as ingress-nginx's proxy-set-headers (or auth-proxy-set-headers) map, the controller sets it on every request${CLIENT}`,
            `ConfigMap "ingress-nginx-controller" sets use-forwarded-headers with proxy-real-ip-cidr 0.0.0.0/0 (its default; wider than /16), so the controller takes the client address from a header any client there writes${CLIENT}`,
            `ConfigMap "b" sets enable-real-ip with proxy-real-ip-cidr 0.0.0.0/0 (wider than /16), so the controller takes the client address from a header any client there writes${CLIENT}`,
        ]);
        // Removing the header (Traefik then forwards the address it sees), a proxy range, and the platform's stack pass.
        expect(await messages("edge-gateway-contract", [...prodStack(), middleware({ headers: { customRequestHeaders: { "X-Forwarded-For": "" } } }),
            controller({ "use-forwarded-headers": "true", "proxy-real-ip-cidr": "10.244.0.0/16,fd00:10:244::/56" })])).toEqual([]);
    });

    it("rejects Traefik entry points trusting forwarded headers or the PROXY protocol from any client (flags any case, environment)", async () => {
        const found = await messages("edge-gateway-contract", [traefik(["--entryPoints.web.address=:8000", "--entryPoints.web.forwardedHeaders.insecure",
            "--entrypoints.websecure.proxyProtocol.trustedIPs=10.0.0.0/8,203.0.113.0/24"], [{ name: "TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_TRUSTEDIPS", value: "0.0.0.0/0" }])]);
        expect(found).toEqual([
            `Deployment "traefik-deployment" container "traefik" sets --entrypoints.web.forwardedheaders.insecure, so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from any client${CLIENT}`,
            `Deployment "traefik-deployment" container "traefik" sets --entrypoints.websecure.proxyprotocol.trustedips to 10.0.0.0/8, 203.0.113.0/24 (wider than /16; public), so Traefik takes the client address in a PROXY protocol header from clients there${CLIENT}`,
            `Deployment "traefik-deployment" container "traefik" sets TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_TRUSTEDIPS to 0.0.0.0/0 (wider than /16), so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from clients there${CLIENT}`,
        ]);
        expect(await messages("edge-gateway-contract", [traefik(["--entryPoints.web.forwardedHeaders.insecure=false", "--entryPoints.web.forwardedHeaders.trustedIPs=10.244.0.0/16"])])).toEqual([]);
    });
});

describe("Traefik's static configuration given as a file (a ConfigMap holding traefik.yaml, mounted, named by --configFile)", () => {
    // Session 52: the ConfigMap, and the Traefik container reading it (mounted at /etc/traefik): a ConfigMap no Traefik reads is not judged.
    const file = (name: string, text: string): TestResource[] => traefikFile(name, text);
    const YAML = [
        "entryPoints:", "  web:", "    address: ':8000'", "    forwardedHeaders:", "      insecure: true", "  websecure:", "    proxyProtocol:", "      trustedIPs: ['0.0.0.0/0']",
        "tracing:", "  otlp:", "    http:", "      endpoint: https://otel.example.net/v1/traces", "    grpc:", "      Endpoint: prometheus.ai-trading.svc:4317",
    ].join("\n");

    it("rejects its tracing endpoints (outside the cluster, naming monitoring) and entry points trusting any client's address", async () => {
        expect((await messages("ingress-no-external-forwarding", file("traefik.yaml", YAML))).map((m) => m.split(", past every")[0])).toEqual([
            "ConfigMap \"traefik-config\" sets tracing.otlp.http.endpoint (traefik.yaml) to a URL on otel.example.net, outside the cluster, so the controller sends it " +
            "a trace of every request Traefik routes (its URI, query tokens included, and headers)",
        ]);
        // Session 52: judged by name by ingress-internal-backends (no resource policy sees which ConfigMap Traefik reads).
        expect(await messages("ingress-internal-backends", file("traefik.yml", YAML))).toEqual([
            "ConfigMap \"traefik-config\" routes public traffic to Service \"prometheus\" (by its tracing.otlp.grpc.Endpoint (traefik.yml)), an internal workload's; " +
            "datastores and monitoring stay internal (name a collector of the platform's own).",
        ]);
        expect((await messages("edge-gateway-contract", file("traefik.yaml", YAML))).map((m) => m.split("; the api-gateway")[0])).toEqual([
            "ConfigMap \"traefik-config\" sets entryPoints.web.forwardedHeaders.insecure (traefik.yaml), so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from any client",
            "ConfigMap \"traefik-config\" sets entryPoints.websecure.proxyProtocol.trustedIPs (traefik.yaml) to 0.0.0.0/0 (wider than /16), so Traefik takes the client address in a PROXY protocol header from clients there",
        ]);
        const fine = file("traefik.yaml", "entryPoints:\n  web:\n    forwardedHeaders:\n      trustedIPs: [10.244.0.0/16]\ntracing:\n  otlp:\n    grpc:\n      endpoint: otel-collector.observability.svc:4317\n");
        for (const policy of ["ingress-no-external-forwarding", "ingress-internal-backends", "edge-gateway-contract"]) expect(await messages(policy, fine)).toEqual([]);
    });

    it("reads a traefik.toml as it reads traefik.yaml (session 52: refused unread before; red-team-52 has the cases)", async () => {
        expect((await messages("ingress-no-external-forwarding", file("traefik.toml", "[tracing.otlp.http]\nendpoint = \"https://otel.example.net\"\n"))).map((m) => m.split(", past every")[0])).toEqual([
            "ConfigMap \"traefik-config\" sets tracing.otlp.http.endpoint (traefik.toml) to a URL on otel.example.net, outside the cluster, so the controller sends it " +
            "a trace of every request Traefik routes (its URI, query tokens included, and headers)",
        ]);
    });
});

describe("*List kinds holding routers: a resource the program declares (k8s.networking.v1.IngressList, a CustomResource of kind MiddlewareList, v1 List)", () => {
    // @pulumi/kubernetes' yaml ConfigFile/ConfigGroup expand a built-in list item by item (yaml.js), but a *List resource
    // declared in code, or a list of a custom kind (MiddlewareList) from a file, reaches the pack whole.
    const list = (type: string, items: any[]): TestResource => ({ type, name: "routers", props: { metadata: { name: "routers", namespace: NS }, items } });
    const ing = { apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "admin", namespace: NS, annotations: { "nginx.ingress.kubernetes.io/auth-url": "https://auth.example.net/verify" } },
        spec: { rules: [{ host: "trading.example.com", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "prometheus", port: { number: 9090 } } } }] } }] } };
    const mw = { metadata: { name: "ids", namespace: NS }, spec: { headers: { customRequestHeaders: { "X-User-Id": "1" } } } };

    it("reads the items of an IngressList, a MiddlewareList (items without kind take the list's) and a v1 List, in resource and stack policies", async () => {
        expect((await messages("ingress-no-external-forwarding", [list("kubernetes:networking.k8s.io/v1:IngressList", [ing])])).map((m) => m.split(" to a URL")[0]))
            .toEqual(["Ingress \"admin\" sets the annotation nginx.ingress.kubernetes.io/auth-url"]);
        expect((await messages("no-public-exposure", [list("kubernetes:v1:List", [ing])])).map((m) => m.split(" routes")[0].split(" sends")[0])).toEqual(["Ingress \"admin\""]);
        expect((await messages("edge-gateway-contract", [list("kubernetes:traefik.io/v1alpha1:MiddlewareList", [mw])])).map((m) => m.split(" on every")[0]))
            .toEqual(["Middleware \"ids\" sets the identity header X-User-Id"]);
        const svc = edit((prodStack().find((r) => r.type === "kubernetes:core/v1:Service" && r.props.metadata.name === "postgres"))!, () => undefined);
        expect((await messages("ingress-internal-backends", [...prodStack(), list("kubernetes:networking.k8s.io/v1:IngressList", [{ ...ing, spec: { rules: [{ http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "reports", port: { number: 80 } } } }] } }] } }]),
            edit(svc, (p) => { p.metadata.name = "reports"; })])).map((m) => m.split(",")[0])).toEqual(["Ingress \"admin\" routes public traffic to Service \"reports\""]);
    });
});

describe("edge-gateway-contract: ingress-nginx's header maps followed by reference (proxy-set-headers, auth-proxy-set-headers)", () => {
    const MAP = ", a ConfigMap this stack does not declare: the controller sets each of its keys as a header on every request, and no policy can see which " +
        "(identity headers, X-Forwarded-For). Declare the header map in the stack, where its keys are judged.";

    it("rejects a reference to a map the stack does not declare (any case; a name alone is in the object's namespace); a declared map is judged by its keys", async () => {
        const ing = edit(ingressOf(), (p) => { p.metadata.annotations["nginx.ingress.kubernetes.io/auth-proxy-set-headers"] = "auth-headers"; });
        expect(await messages("edge-gateway-contract", [controller({ "Proxy-Set-Headers": "ingress-nginx/custom-headers" }), ing])).toEqual([
            `ConfigMap "ingress-nginx-controller" sets proxy-set-headers to ingress-nginx/custom-headers${MAP}`,
            `Ingress "nginx-ingress" sets the annotation nginx.ingress.kubernetes.io/auth-proxy-set-headers to auth-headers${MAP}`,
        ]);
        const declared = controller({ "X-Request-Source": "edge" }, "custom-headers");
        const authMap = edit(controller({ "X-Request-Source": "edge" }, "auth-headers"), (p) => { p.metadata.namespace = NS; });
        expect(await messages("edge-gateway-contract", [controller({ "proxy-set-headers": "ingress-nginx/custom-headers" }), declared, ing, authMap])).toEqual([]);
    });
});
