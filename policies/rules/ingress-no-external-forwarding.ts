import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { clusterService, controllerForwarding, FORWARD_AUTH_SENDS, traefikTracingSettings, TRAEFIK_TRACING_SENDS, forwardAuthAddress, FORWARDING_ANNOTATIONS, hostHasVariable, isClusterTarget, isLoopbackName, isPodAddressName, targetHost, TRAEFIK_MIDDLEWARE } from "../lib/routes";
import { workloadRule } from "../lib/rule";
import { unreadTraefikFiles } from "../lib/traefik-static";
import { isRecord, plain } from "../lib/values";
import { describe } from "../lib/workloads";
import { metadataAnnotations } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

/**
 * Session 43's policy hunt. ingress-nginx annotations that send what the clients send to a URL of the
 * Ingress author's choosing, past every NetworkPolicy (the controller makes the request, not a pod of
 * the platform): `mirror-target` and `auth-url` (lib/routes.ts `FORWARDING_ANNOTATIONS`), and the
 * controller ConfigMap's `global-auth-url` (recognised by the key, whatever the map is called): `auth-url`
 * for every Ingress of the controller, and (session 50b) its tracing collectors.
 * Each passed the pack whatever host it named: ingress-no-snippets judges the value's characters only.
 * A target inside the cluster passes (a Service named `*.svc`, `*.svc.cluster.local`; session 51: not by a single label,
 * which the controller resolves in its own namespace),
 * and so does `$host` (the edge itself); any other host, an IP address or (session 50) a pod's address name
 * included (the pack cannot tell a ClusterIP from the Internet), only when listed in
 * `allowedExternalTargets` (an external identity provider the operator has chosen).
 */
export interface ExternalForwardingConfig {
    /** Host names (lower case, no port) an Ingress may forward requests to outside the cluster; none by default. */
    allowedExternalTargets: string[];
}

const defaults: ExternalForwardingConfig = { allowedExternalTargets: [] };

/** What is wrong with one forwarding setting (`where`: "the annotation <key>", "global-auth-url"), if anything. */
function forwardingProblem(where: string, value: string | undefined, what: string, cfg: ExternalForwardingConfig): string | undefined {
    if (value === undefined || value.trim() === "") return undefined;
    const host = targetHost(value);
    if (host === undefined) return `sets ${where} to a value that is not an absolute URL, so where it sends ${what} cannot be judged`;
    if (cfg.allowedExternalTargets.includes(host)) return undefined;
    // Session 51: a Service by a single label is looked up in the controller's own namespace, not the object's.
    if (clusterService(host)?.namespace === undefined && clusterService(host) !== undefined) {
        return `sets ${where} to a URL on ${host}, a single label, which the controller resolves in its own pod's namespace (its resolv.conf search list), ` +
            `whatever namespace this object is in: which Service it names depends on where the controller runs, so the controller sends ${what} to a Service no policy can judge`;
    }
    if (isClusterTarget(host)) return undefined;
    if (hostHasVariable(host)) {
        return `sets ${where} to a URL on ${host}, a host built from nginx variables, which the request fills in (any Service, any host), so the controller sends wherever it decides ${what}`;
    }
    if (isLoopbackName(host)) {
        return `sets ${where} to a URL on ${host}, the controller's own pod (its status and configuration endpoints listen on its loopback), so the controller sends them ${what}`;
    }
    if (isPodAddressName(host)) {
        return `sets ${where} to a URL on ${host}, a pod's address name, which the cluster DNS answers with the address written in it (any pod's, ` +
            `or with CoreDNS's pods insecure any address at all): no Service stands behind it to judge, so the controller sends whatever it names ${what}`;
    }
    return `sets ${where} to a URL on ${host}, outside the cluster, so the controller sends it ${what}`;
}

/** Each forwarding annotation of an Ingress naming a host outside the cluster that is not allowed. */
export function externalForwardingProblems(props: Record<string, any>, cfg: ExternalForwardingConfig = defaults): string[] {
    const annotations = metadataAnnotations(props);
    return [...FORWARDING_ANNOTATIONS].map(([key, what]) => forwardingProblem(`the annotation ${key}`, annotations[key], what, cfg)).filter((p): p is string => p !== undefined);
}

/**
 * The ingress-nginx controller ConfigMap's `global-auth-url` and (session 50b) tracing collectors
 * (lib/routes.ts `controllerForwarding`), each that names a host outside the cluster that is not allowed.
 */
export function globalAuthProblems(props: Record<string, any>, cfg: ExternalForwardingConfig = defaults): string[] {
    return controllerForwarding(props).map(([key, url, what]) => forwardingProblem(key, url, what, cfg)).filter((p): p is string => p !== undefined);
}

const FIX = ", past every NetworkPolicy (the controller makes the request): the clients' credentials and orders leave the platform. " +
    "Name a Service of the cluster (http://<service>.<namespace>.svc:<port>/...), or, for an identity provider the operator has chosen, " +
    "list its host in this policy's allowedExternalTargets.";

export const ingressNoExternalForwarding: ResourceValidationPolicy = {
    name: "ingress-no-external-forwarding",
    description:
        "No Ingress sends its clients' requests outside the cluster: ingress-nginx's mirror-target (a copy of every request, body and " +
        "Authorization header included) and auth-url (every request's headers), the controller ConfigMap's global-auth-url and tracing " +
        "collectors (otlp-, zipkin-, jaeger-, datadog-collector-host, jaeger-endpoint), Traefik's tracing endpoints (--tracing.*.endpoint, TRAEFIK_TRACING_*, a traefik.yaml or traefik.toml) and a Traefik " +
        "Middleware's forwardAuth.address name a " +
        "Service of the cluster by its namespace, $host, or a host listed in allowedExternalTargets; no Traefik plugin middleware runs.",
    severity: "high",
    configSchema: {
        properties: { allowedExternalTargets: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: readingListItems([
        // Session 51: Traefik's own tracing, in its static configuration (flags, environment).
        workloadRule(defaults, (w, cfg) => traefikTracingSettings(w).flatMap(([setting, url, where]) => {
            const p = forwardingProblem(setting, url, TRAEFIK_TRACING_SENDS, cfg);
            return p === undefined ? [] : [`${where} ${p}`];
        }), (w, p) => `${w.label} ${p}${FIX}`, ["kubernetes"]),
        validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
            for (const p of externalForwardingProblems(plain(props), readConfig(args, defaults))) reportViolation(`Ingress "${args.name}" ${p}${FIX}`);
        }),
        validateResourceOfType(k8s.core.v1.ConfigMap, (props, args, reportViolation) => {
            for (const p of globalAuthProblems(plain(props), readConfig(args, defaults))) reportViolation(`ConfigMap "${args.name}" ${p}${FIX}`);
            // Session 52: Traefik's static configuration (YAML or TOML) that does not parse: nothing in it is judged.
            for (const [file, reason] of unreadTraefikFiles(plain(props))) {
                reportViolation(`ConfigMap "${args.name}" holds ${file}, Traefik's static configuration, which does not parse (${reason}), so no policy of this pack ` +
                    "reads its tracing endpoints or entry points: fix the file (Traefik refuses to start on a file its own parser refuses).");
            }
        }),
        // Session 50: Traefik's forwardAuth (the local-k8s stack's ingress class), its auth-url.
        (args, reportViolation) => {
            if (!TRAEFIK_MIDDLEWARE.test(args.type)) return;
            const props = plain(args.props);
            const p = forwardingProblem("forwardAuth.address", forwardAuthAddress(props), FORWARD_AUTH_SENDS, readConfig(args, defaults));
            if (p !== undefined) reportViolation(`${describe(args.type, args.name)} ${p}${FIX}`);
            // Session 51: a plugin is code from Traefik's plugin catalog (or a local module), configured by settings no policy reads.
            for (const name of isRecord(props.spec?.plugin) ? Object.keys(props.spec.plugin) : []) {
                reportViolation(`${describe(args.type, args.name)} runs the Traefik plugin ${name}, code Traefik loads from outside the cluster whose settings no policy reads: ` +
                    "it may send the requests routed through it, their Authorization header and cookies included, anywhere. Use Traefik's own middlewares, which this pack reads.");
            }
        },
    ]),
};
