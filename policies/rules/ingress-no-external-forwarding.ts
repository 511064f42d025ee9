import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { clusterService, controllerForwarding, FORWARD_AUTH_SENDS, traefikStaticTracing, traefikTracingSettings, TRAEFIK_TRACING_SENDS, forwardAuthAddress, FORWARDING_ANNOTATIONS, hostHasVariable, isClusterTarget, isLoopbackName, isPodAddressName, targetHost, TRAEFIK_MIDDLEWARE } from "../lib/routes";
import { workloadOf } from "../lib/rule";
import { plainResources } from "../lib/stack";
import { traefikStaticFiles } from "../lib/traefik-mounts";
import { unreadTraefikFiles } from "../lib/traefik-static";
import { isRecord } from "../lib/values";
import { describe, isK8sWorkload, K8S, metadataAnnotations } from "../lib/workloads";

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

/** Each problem of one resource (a Kubernetes workload's Traefik flags and environment, an Ingress, the controller ConfigMap, a Traefik Middleware), as reported. */
function resourceProblems(type: string, name: string, props: Record<string, any>, cfg: ExternalForwardingConfig): string[] {
    if (isK8sWorkload(type)) {
        // Session 51: Traefik's own tracing, in its static configuration (flags, environment).
        const w = workloadOf("kubernetes", type, name, props);
        return traefikTracingSettings(w).flatMap(([setting, url, where]) => {
            const p = forwardingProblem(setting, url, TRAEFIK_TRACING_SENDS, cfg);
            return p === undefined ? [] : [`${w.label} ${where} ${p}${FIX}`];
        });
    }
    if (type === K8S.ingress) return externalForwardingProblems(props, cfg).map((p) => `Ingress "${name}" ${p}${FIX}`);
    if (type === K8S.configMap) return globalAuthProblems(props, cfg).map((p) => `ConfigMap "${name}" ${p}${FIX}`);
    if (!TRAEFIK_MIDDLEWARE.test(type)) return [];
    // Session 50: Traefik's forwardAuth (the local-k8s stack's ingress class), its auth-url.
    const p = forwardingProblem("forwardAuth.address", forwardAuthAddress(props), FORWARD_AUTH_SENDS, cfg);
    // Session 51: a plugin is code from Traefik's plugin catalog (or a local module), configured by settings no policy reads.
    return [...(p === undefined ? [] : [`${describe(type, name)} ${p}${FIX}`]), ...(isRecord(props.spec?.plugin) ? Object.keys(props.spec.plugin) : []).map((plugin) =>
        `${describe(type, name)} runs the Traefik plugin ${plugin}, code Traefik loads from outside the cluster whose settings no policy reads: ` +
        "it may send the requests routed through it, their Authorization header and cookies included, anywhere. Use Traefik's own middlewares, which this pack reads.")];
}

export const ingressNoExternalForwarding: StackValidationPolicy = {
    name: "ingress-no-external-forwarding",
    description:
        "No Ingress sends its clients' requests outside the cluster: ingress-nginx's mirror-target (a copy of every request, body and " +
        "Authorization header included) and auth-url (every request's headers), the controller ConfigMap's global-auth-url and tracing " +
        "collectors (otlp-, zipkin-, jaeger-, datadog-collector-host, jaeger-endpoint), Traefik's tracing endpoints (--tracing.*.endpoint, TRAEFIK_TRACING_*, " +
        "the traefik.yaml or traefik.toml a Traefik container reads) and a Traefik Middleware's forwardAuth.address name a " +
        "Service of the cluster by its namespace, $host, or a host listed in allowedExternalTargets; no Traefik plugin middleware runs.",
    severity: "high",
    configSchema: {
        properties: { allowedExternalTargets: { type: "array", items: { type: "string" }, default: [] } },
    },
    // Session 52: a stack policy, to read a Traefik file only where a Traefik container reads it (lib/traefik-mounts.ts); every object is judged alone as before.
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const resources = plainResources(args.resources);
        for (const r of resources) for (const m of resourceProblems(r.type, r.name, r.props, cfg)) reportViolation(m, r.urn);
        const { files, unseen } = traefikStaticFiles(resources);
        for (const { source, view } of files) {
            const who = describe(source.type, source.name);
            for (const [key, url, what] of traefikStaticTracing(view)) {
                const p = forwardingProblem(key, url, what, cfg);
                if (p !== undefined) reportViolation(`${who} ${p}${FIX}`, source.urn);
            }
            for (const [file, reason] of unreadTraefikFiles(view)) {
                reportViolation(`${who} holds ${file}, Traefik's static configuration, which does not parse (${reason}), so no policy of this pack ` +
                    "reads its tracing endpoints or entry points: fix the file (Traefik refuses to start on a file its own parser refuses).", source.urn);
            }
        }
        for (const u of unseen) {
            reportViolation(`${u.who} reads its static configuration from ${u.unseen}: no policy of this pack judges its tracing endpoints, entry points ` +
                "or providers. Give it from a ConfigMap this stack declares, mounted where Traefik reads it (or named by --configFile).", u.urn);
        }
    },
};
