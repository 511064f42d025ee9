import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { plain } from "../lib/values";
import { metadataAnnotations } from "../lib/workloads";

/**
 * Session 43's policy hunt. ingress-nginx annotations that send what the clients send to a URL of the
 * Ingress author's choosing, past every NetworkPolicy (the controller makes the request, not a pod of
 * the platform):
 * - `mirror-target`: a copy of every request, its body (logins, orders) and its Authorization header
 *   and cookies included (nginx's `mirror` subrequest keeps the headers; `mirror-request-body` is on
 *   by default);
 * - `auth-url`: the headers of every request (the JWT, the cookies) in the authentication subrequest.
 * Each passed the pack whatever host it named: ingress-no-snippets judges the value's characters only.
 * A target inside the cluster passes (a Service by a single label, `*.svc`, `*.svc.cluster.local`),
 * and so does `$host` (the edge itself); any other host, an IP address
 * included (the pack cannot tell a ClusterIP from the Internet), only when listed in
 * `allowedExternalTargets` (an external identity provider the operator has chosen).
 */
export interface ExternalForwardingConfig {
    /** Host names (lower case, no port) an Ingress may forward requests to outside the cluster; none by default. */
    allowedExternalTargets: string[];
}

const defaults: ExternalForwardingConfig = { allowedExternalTargets: [] };

const FORWARDING: ReadonlyMap<string, string> = new Map([
    ["nginx.ingress.kubernetes.io/mirror-target", "a copy of every request, its body, Authorization header and cookies included"],
    ["nginx.ingress.kubernetes.io/auth-url", "the headers of every request (its Authorization header and cookies)"],
]);

/** The host a forwarding annotation's URL names (lower case, no port, up to an nginx variable such as `$request_uri`); undefined when the value is no URL. */
function targetHost(value: string): string | undefined {
    const m = /^\s*[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|\$\{?host\}?|[^:/?#$]*)/i.exec(value);
    return m ? m[1].toLowerCase() : undefined;
}

/**
 * A Service of the cluster (or the request's own host, `$host`): a single label, or a name under the
 * cluster's suffixes (`.svc`, `.svc.cluster.local`, `.cluster.local`). A two-label `<svc>.<ns>` is not
 * taken for one: `evil.com` is written the same way. An IP address is not either.
 */
export function isClusterTarget(host: string): boolean {
    const h = host.replace(/\.$/, "");
    if (h === "$host" || h === "${host}") return true;
    // An address in any spelling the resolver reads as one: dotted, bracketed IPv6, a single decimal or hex number (134744072, 0x8080808).
    if (h.startsWith("[") || /^[0-9.]+$/.test(h) || /^0x[0-9a-f.x]+$/.test(h)) return false;
    return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(h) || /\.svc(\.cluster\.local)?$/.test(h) || h.endsWith(".cluster.local");
}

/** Each forwarding annotation of an Ingress naming a host outside the cluster that is not allowed. */
export function externalForwardingProblems(props: Record<string, any>, cfg: ExternalForwardingConfig = defaults): string[] {
    const out: string[] = [];
    const annotations = metadataAnnotations(props);
    for (const [key, what] of FORWARDING) {
        const value = annotations[key];
        if (value === undefined || value.trim() === "") continue;
        const host = targetHost(value);
        if (host === undefined) {
            out.push(`sets the annotation ${key} to a value that is not an absolute URL, so where it sends ${what} cannot be judged`);
            continue;
        }
        if (isClusterTarget(host) || cfg.allowedExternalTargets.includes(host)) continue;
        out.push(`sets the annotation ${key} to a URL on ${host}, outside the cluster, so the controller sends it ${what}`);
    }
    return out;
}

export const ingressNoExternalForwarding: ResourceValidationPolicy = {
    name: "ingress-no-external-forwarding",
    description:
        "No Ingress sends its clients' requests outside the cluster: ingress-nginx's mirror-target (a copy of every request, body and " +
        "Authorization header included) and auth-url (every request's headers) name a Service of the cluster, $host, or a host listed in " +
        "allowedExternalTargets.",
    severity: "high",
    configSchema: {
        properties: { allowedExternalTargets: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of externalForwardingProblems(plain(props), cfg)) {
            reportViolation(`Ingress "${args.name}" ${p}, past every NetworkPolicy (the controller makes the request): the clients' credentials ` +
                "and orders leave the platform. Name a Service of the cluster (http://<service>.<namespace>.svc:<port>/...), or, for an identity " +
                "provider the operator has chosen, list its host in this policy's allowedExternalTargets.");
        }
    }),
};
