import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { K8S, objectName } from "../lib/workloads";

const CLASS_ANNOTATION = "kubernetes.io/ingress.class";

/** One host and path an Ingress routes, as the controller keys its locations. */
interface Claim {
    /** The Ingress (a list's item is one of its own, with the list's URN: session 53). */
    of: StackResource;
    urn: string;
    ingress: string;
    /** Where in the Ingress: `rules[i].http.paths[j]`. */
    at: string;
    /** The ingress class, undefined when unset (the cluster's default class serves it). */
    ingressClass: string | undefined;
    host: string;
    /** The location: `= /p` for an Exact path, the path for the others (a Prefix without its trailing slash). */
    location: string;
}

/**
 * The location ingress-nginx makes of a path: an Exact path is its own location (`location = /p`),
 * a Prefix `/p/` is the same location as `/p`, an ImplementationSpecific path is taken as written.
 */
export function ingressLocation(path: string | undefined, pathType: string | undefined): string {
    const p = path === undefined || path === "" ? "/" : path;
    if (pathType === "Exact") return `= ${p}`;
    if (pathType === "Prefix" && p.length > 1) return p.replace(/\/+$/, "") || "/";
    return p;
}

function claimsOf(r: StackResource): Claim[] | undefined {
    const props = r.props;
    const cls = props.spec?.ingressClassName ?? props.metadata?.annotations?.[CLASS_ANNOTATION];
    if (isUnknown(cls)) return undefined;
    const claims: Claim[] = [];
    for (const [i, rule] of arr(props.spec?.rules).entries()) {
        // No host or an unknown one (during preview): ingress-hosts judges the first, the second is not known yet.
        const host = isRecord(rule) ? str(rule.host) : undefined;
        if (host === undefined || host === "") continue;
        for (const [j, p] of arr(rule.http?.paths).entries()) {
            if (!isRecord(p) || isUnknown(p.path) || isUnknown(p.pathType)) continue;
            claims.push({
                of: r,
                urn: r.urn,
                ingress: objectName(props, r.name),
                at: `rules[${i}].http.paths[${j}]`,
                ingressClass: str(cls),
                host: host.toLowerCase(),
                location: ingressLocation(str(p.path), str(p.pathType)),
            });
        }
    }
    return claims;
}

/** Whether two Ingresses can be served by one controller: the same class, or either unset (the default class may be it). */
function sameController(a: Claim, b: Claim): boolean {
    return a.ingressClass === undefined || b.ingressClass === undefined || a.ingressClass === b.ingressClass;
}

/**
 * Every host and path routed a second time, in declaration order, naming the first route. A
 * controller serves one backend per host and location: ingress-nginx merges Ingresses of one host
 * into one server and keeps the oldest Ingress's location, so the second backend never answers, or
 * answers instead of the first after the first is recreated: which service gets the platform's
 * traffic (and its credentials) depends on creation order, across namespaces too.
 */
export function duplicateRoutes(resources: StackResource[]): Finding[] {
    const seen: Claim[] = [];
    const out: Finding[] = [];
    for (const r of resources) {
        if (r.type !== K8S.ingress) continue;
        for (const c of claimsOf(r) ?? []) {
            const first = seen.find((s) => s.host === c.host && s.location === c.location && sameController(s, c));
            if (first === undefined) {
                seen.push(c);
                continue;
            }
            const where = first.of === c.of ? `its own ${first.at}` : `Ingress "${first.ingress}" (${first.at})`;
            out.push({
                urn: c.urn,
                message:
                    `Ingress "${c.ingress}" routes host ${c.host}, location "${c.location}" (${c.at}), which ${where} routes too: ` +
                    "the controller serves one backend for a host and location (ingress-nginx the oldest Ingress's), so which " +
                    "service answers depends on creation order; route each host and path from one Ingress.",
            });
        }
    }
    return out;
}

export const ingressUniqueRoutes: StackValidationPolicy = {
    name: "ingress-unique-routes",
    description:
        "No two Ingress paths (of one Ingress or of two, in any namespace, of one ingress class or an unset one) route the same host " +
        "and location: the controller serves one of them, chosen by creation order, so another service can take the platform's traffic.",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => r.type === K8S.ingress)) args.notApplicable("no Ingress in this stack");
        for (const f of duplicateRoutes(resources)) reportViolation(f.message, f.urn);
    },
};
