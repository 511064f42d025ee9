import { ResourceValidationPolicy } from "@pulumi/policy";
import { describe } from "../lib/workloads";

/**
 * Routers the edge policies do not read. edge-tls-only, ingress-hosts, ingress-no-snippets,
 * no-public-exposure and ingress-internal-backends judge `networking.k8s.io/v1` Ingress objects; a
 * Gateway API route, an Istio VirtualService or Gateway, a Traefik IngressRoute or a Contour
 * HTTPProxy publishes traffic (plain HTTP, a TCP port of the database) past all of them.
 */
const ROUTERS: ReadonlyArray<[RegExp, string]> = [
    [/^kubernetes:gateway\.networking\.k8s\.io\/[^:]+:(Gateway|HTTPRoute|GRPCRoute|TCPRoute|TLSRoute|UDPRoute)$/, "Gateway API"],
    [/^kubernetes:networking\.istio\.io\/[^:]+:(VirtualService|Gateway)$/, "Istio"],
    [/^kubernetes:traefik\.(io|containo\.us)\/[^:]+:(IngressRoute|IngressRouteTCP|IngressRouteUDP)$/, "Traefik"],
    [/^kubernetes:projectcontour\.io\/[^:]+:HTTPProxy$/, "Contour"],
];

export const noUncheckedRoutes: ResourceValidationPolicy = {
    name: "no-unchecked-routes",
    description:
        "Traffic is published only through networking.k8s.io/v1 Ingress objects, which the edge policies check (TLS, hosts, " +
        "snippets, internal backends): no Gateway API Gateway or route, Istio VirtualService or Gateway, Traefik IngressRoute " +
        "or Contour HTTPProxy.",
    severity: "high",
    validateResource: (args, reportViolation) => {
        const router = ROUTERS.find(([type]) => type.test(args.type));
        if (router === undefined) return args.notApplicable("only routers other than Ingress");
        reportViolation(`${describe(args.type, args.name)} (${router[1]}) routes traffic where no edge policy of this pack checks it ` +
            "(TLS, hosts, snippets, routes to datastores and monitoring); publish through a networking.k8s.io/v1 Ingress instead.");
    },
};
