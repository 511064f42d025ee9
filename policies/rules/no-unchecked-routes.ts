import { ResourceValidationPolicy } from "@pulumi/policy";
import { TRAEFIK_MIDDLEWARE } from "../lib/routes";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

/**
 * Routers the edge policies do not read. edge-tls-only, ingress-hosts, ingress-no-snippets,
 * no-public-exposure and ingress-internal-backends judge `networking.k8s.io/v1` Ingress objects; a
 * Gateway API route, an Istio VirtualService or Gateway, a Traefik IngressRoute or a Contour
 * HTTPProxy publishes traffic (plain HTTP, a TCP port of the database) past all of them.
 */
const ROUTERS: ReadonlyArray<[RegExp, string]> = [
    // Session 51: and the Gateway API's first group (networking.x-k8s.io, v1alpha1), TraefikService (weighted and
    // mirroring services, named by IngressRoutes and middlewares), NGINX Inc.'s and Kong's routers.
    [/^kubernetes:(gateway\.networking\.k8s\.io|networking\.x-k8s\.io)\/[^:]+:(Gateway|HTTPRoute|GRPCRoute|TCPRoute|TLSRoute|UDPRoute)$/, "Gateway API"],
    [/^kubernetes:networking\.istio\.io\/[^:]+:(VirtualService|Gateway)$/, "Istio"],
    [/^kubernetes:traefik\.(io|containo\.us)\/[^:]+:(IngressRoute|IngressRouteTCP|IngressRouteUDP|TraefikService)$/, "Traefik"],
    [/^kubernetes:projectcontour\.io\/[^:]+:HTTPProxy$/, "Contour"],
    [/^kubernetes:k8s\.nginx\.org\/[^:]+:(VirtualServer|VirtualServerRoute|TransportServer)$/, "NGINX Inc."],
    [/^kubernetes:configuration\.konghq\.com\/[^:]+:(TCPIngress|UDPIngress)$/, "Kong"],
];

/**
 * Session 51: an Ingress backend naming an object rather than a Service (`resource`, which the API accepts in place
 * of `service`), and a Traefik errors middleware fetching its pages from a TraefikService: each route goes where no
 * edge policy reads (lib/routes.ts judges Services).
 */
export function objectBackends(type: string, props: Record<string, any>): string[] {
    const out: string[] = [];
    if (type === "kubernetes:networking.k8s.io/v1:Ingress") {
        const backends: Array<[string, unknown]> = [["spec.defaultBackend", props.spec?.defaultBackend]];
        arr(props.spec?.rules).forEach((rule, i) => arr(rule?.http?.paths).forEach((p, j) => backends.push([`rules[${i}].http.paths[${j}]`, p?.backend])));
        for (const [where, backend] of backends) {
            if (isRecord(backend) && isRecord(backend.resource)) out.push(`routes ${where} to a ${str(backend.resource.kind) ?? "resource"} (resource backend)`);
        }
    }
    if (TRAEFIK_MIDDLEWARE.test(type) && str(props.spec?.errors?.service?.kind) === "TraefikService") out.push("routes errors.service to a TraefikService");
    return out;
}

export const noUncheckedRoutes: ResourceValidationPolicy = {
    name: "no-unchecked-routes",
    description:
        "Traffic is published only through networking.k8s.io/v1 Ingress objects, which the edge policies check (TLS, hosts, " +
        "snippets, internal backends): no Gateway API Gateway or route, Istio VirtualService or Gateway, Traefik IngressRoute " +
        "or TraefikService, Contour HTTPProxy, NGINX Inc. VirtualServer or TransportServer, Kong TCPIngress; no Ingress backend naming a resource " +
        "(not a Service), no Traefik errors middleware fetching from a TraefikService.",
    severity: "high",
    validateResource: readingListItems((args, reportViolation) => {
        const router = ROUTERS.find(([type]) => type.test(args.type));
        const backends = router === undefined && (args.type === "kubernetes:networking.k8s.io/v1:Ingress" || TRAEFIK_MIDDLEWARE.test(args.type)) ? objectBackends(args.type, plain(args.props)) : [];
        for (const b of backends) {
            reportViolation(`${describe(args.type, args.name)} ${b} where no edge policy of this pack checks it (routes to datastores and monitoring); route to a Service.`);
        }
        if (router === undefined && backends.length === 0) return args.notApplicable("only routers other than Ingress");
        if (router === undefined) return;
        reportViolation(`${describe(args.type, args.name)} (${router[1]}) routes traffic where no edge policy of this pack checks it ` +
            "(TLS, hosts, snippets, routes to datastores and monitoring); publish through a networking.k8s.io/v1 Ingress instead.");
    }),
};
