/**
 * How traffic from outside the cluster reaches a Kubernetes Service (pure): as the backend of an
 * Ingress, or by the Service's own type or addresses. Shared by the policies that judge what the
 * edge may reach.
 */
import { controllerSettings } from "./controller-config";
import type { Workload } from "./rule";
import type { StackResource } from "./stack";
import { traefikStaticFiles } from "./traefik-mounts";
import { tracingEndpoints, traefikFileSettings, traefikWorkloadSettings } from "./traefik-static";
import { arr, isRecord, str } from "./values";

/**
 * ingress-nginx's `default-backend` annotation: a Service of the Ingress's namespace, by name, that
 * takes the Ingress's requests when its backends have no ready endpoint (and its error pages, with
 * `custom-http-errors`): a backend as much as the paths' own.
 */
export const DEFAULT_BACKEND_ANNOTATION = "nginx.ingress.kubernetes.io/default-backend";

/**
 * Names of the Services an Ingress routes to (default backend, every rule's paths and, session 48, the
 * ingress-nginx `default-backend` annotation's), each once.
 */
export function ingressBackendServices(props: Record<string, any>): string[] {
    const annotated = isRecord(props.metadata?.annotations) ? str(props.metadata.annotations[DEFAULT_BACKEND_ANNOTATION])?.trim() : undefined;
    const names = [str(props.spec?.defaultBackend?.service?.name), annotated || undefined];
    for (const rule of arr(props.spec?.rules)) for (const p of arr(rule?.http?.paths)) names.push(str(p?.backend?.service?.name));
    return [...new Set(names.filter((n): n is string => n !== undefined))];
}

/**
 * ingress-nginx annotations whose URL the controller sends its clients' requests to, and what each
 * sends (session 43; ingress-no-external-forwarding judges their hosts, `targets` below their Services):
 * - `mirror-target`: a copy of every request, its body (logins, orders) and its Authorization header
 *   and cookies included (nginx's `mirror` subrequest keeps the headers; `mirror-request-body` is on
 *   by default);
 * - `auth-url`: the headers of every request (the JWT, the cookies) in the authentication subrequest.
 * (`auth-signin` is not one: the controller answers the client with a redirect to it, and requests nothing.)
 */
export const FORWARDING_ANNOTATIONS: ReadonlyMap<string, string> = new Map([
    ["nginx.ingress.kubernetes.io/mirror-target", "a copy of every request, its body, Authorization header and cookies included"],
    ["nginx.ingress.kubernetes.io/auth-url", "the headers of every request (its Authorization header and cookies)"],
]);

/** Session 50: a Traefik Middleware (traefik.io, or the older traefik.containo.us), any version. */
export const TRAEFIK_MIDDLEWARE = /^kubernetes:traefik\.(io|containo\.us)\/[^:]+:Middleware$/;

/**
 * What a Traefik Middleware's `forwardAuth.address` is sent: Traefik's `auth-url`, the headers of every
 * request of the routers using the middleware (an Ingress's `router.middlewares` annotation, an IngressRoute).
 */
export const FORWARD_AUTH_SENDS = "the headers of every request routed through it (their Authorization header and cookies)";

/** A Traefik Middleware's `spec.forwardAuth.address`, if it has one. */
export function forwardAuthAddress(props: Record<string, any>): string | undefined {
    return isRecord(props.spec?.forwardAuth) ? str(props.spec.forwardAuth.address) : undefined;
}

/**
 * The Services a Traefik Middleware sends its routers' requests to: `forwardAuth.address`'s (every
 * request's headers) and `errors.service` (Traefik fetches the error page with the client's request,
 * its headers and cookies: ingress-nginx's `custom-http-errors` to a default backend), each with the field.
 */
export function middlewareTargets(props: Record<string, any>): ServiceTarget[] {
    const out: ServiceTarget[] = [];
    const address = forwardAuthAddress(props);
    const host = address === undefined ? undefined : targetHost(address);
    const svc = host === undefined ? undefined : clusterService(host);
    if (svc) out.push({ ...svc, via: "forwardAuth.address" });
    const errors = isRecord(props.spec?.errors?.service) ? props.spec.errors.service : undefined;
    const name = str(errors?.name);
    if (name) out.push({ name, namespace: str(errors?.namespace), via: "errors.service" });
    return out;
}

/** nginx variables whose value starts with a `/`: the URL's path begins where one is written. */
const PATH_VARIABLES = /\$\{?(request_uri|escaped_request_uri|uri|document_uri)\b\}?/i;

/**
 * The host a forwarding annotation's URL names (lower case, no port, up to a path variable such as
 * `$request_uri`); undefined when the value is no URL. Session 50: other nginx variables stay in the
 * host (`$host.evil.example`, `$remote_user.ai-trading.svc`): nginx fills them in from the request.
 */
export function targetHost(value: string): string | undefined {
    const m = /^\s*[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(value);
    return m ? m[1].split(PATH_VARIABLES)[0].toLowerCase() : undefined;
}

/** Whether the host is built from an nginx variable, other than the request's own `$host` alone: the request decides it. */
export function hostHasVariable(host: string): boolean {
    return host.includes("$") && !/^\$(host|\{host\})$/.test(host);
}

/**
 * Session 50: names every pod's /etc/hosts (the kubelet's) gives a loopback or multicast address: from the
 * controller, `localhost` is its own pod, where its status and Lua configuration endpoints listen
 * (`127.0.0.1:10246/configuration/backends`, which a mirrored POST would rewrite).
 */
export function isLoopbackName(host: string): boolean {
    const h = host.replace(/\.$/, "");
    return /^(localhost|ip6-localhost|ip6-loopback|ip6-localnet|ip6-mcastprefix|ip6-allnodes|ip6-allrouters)$/.test(h) || h.endsWith(".localhost");
}

/**
 * A Service of the cluster (or the request's own host, `$host`): a single label, or a name under the
 * Services' suffixes (`.svc`, `.svc.cluster.local`). A two-label `<svc>.<ns>` is not taken for one:
 * `evil.com` is written the same way. An IP address is not either, nor (session 50) any other name of
 * the cluster's zone (a pod's address name, below, is an address too), a loopback name, or a host built
 * from an nginx variable.
 */
export function isClusterTarget(host: string): boolean {
    const h = host.replace(/\.$/, "");
    if (h === "$host" || h === "${host}") return true;
    if (hostHasVariable(h) || isLoopbackName(h)) return false;
    // An address in any spelling the resolver reads as one: dotted, bracketed IPv6, a single decimal or hex number (134744072, 0x8080808).
    if (h.startsWith("[") || /^[0-9.]+$/.test(h) || /^0x[0-9a-f.x]+$/.test(h)) return false;
    return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(h) || /\.svc(\.cluster\.local)?$/.test(h);
}

/**
 * Session 50: a pod's address name, `<a-b-c-d>.<namespace>.pod[.cluster.local]` (or any other name of
 * the `pod` zone): the cluster DNS answers it with the address written in its first label (CoreDNS
 * `pods insecure`, kubeadm's default, for any address; `pods verified` for any pod's, in any namespace),
 * so it names no Service whose selector could be judged, only an address chosen by its writer.
 */
export function isPodAddressName(host: string): boolean {
    return /\.pod(\.cluster\.local)?$/.test(host.replace(/\.$/, ""));
}

/** A Service an Ingress sends requests to: its name, its namespace when the route names one (else the Ingress's), and the annotation naming it, if one does. */
export interface ServiceTarget {
    name: string;
    namespace?: string;
    via?: string;
}

/**
 * The Service a cluster host names: `<service>` (resolved by the controller, in its own namespace),
 * `<service>.<namespace>.svc[.cluster.local]`, or a StatefulSet pod's `<pod>.<service>.<namespace>.svc…`
 * (the headless Service's selector decides whose pod). Undefined for `$host` (the edge itself), a
 * pod's address name (`<ip>.<namespace>.pod.cluster.local`) and anything else.
 */
export function clusterService(host: string): { name: string; namespace?: string } | undefined {
    const h = host.replace(/\.$/, "");
    if (!isClusterTarget(h) || h.startsWith("$")) return undefined;
    if (/^[a-z0-9-]+$/.test(h)) return { name: h };
    const labels = h.replace(/\.svc(\.cluster\.local)?$/, "").split(".");
    if (!/\.svc(\.cluster\.local)?$/.test(h) || labels.length < 2) return undefined;
    return { name: labels[labels.length - 2], namespace: labels[labels.length - 1] };
}

/**
 * Session 49: the Services an Ingress sends its clients' requests to: its routes (above) and, as
 * routes too, the Services of the cluster its forwarding annotations name (`mirror-target`, `auth-url`):
 * a datastore or Prometheus given every request's credentials by the controller, past every NetworkPolicy.
 */
export function ingressTargets(props: Record<string, any>): ServiceTarget[] {
    const out: ServiceTarget[] = ingressBackendServices(props).map((name) => ({ name }));
    const annotations = isRecord(props.metadata?.annotations) ? props.metadata.annotations : {};
    for (const key of FORWARDING_ANNOTATIONS.keys()) {
        const host = str(annotations[key]) === undefined ? undefined : targetHost(str(annotations[key])!);
        const svc = host === undefined ? undefined : clusterService(host);
        if (svc) out.push({ ...svc, via: key });
    }
    return out;
}

/**
 * The ingress-nginx controller ConfigMap's settings that send its clients' requests to a host, and what each
 * sends: `global-auth-url` (every Ingress's `auth-url`; read by its exact key) and (session 50b) the tracing
 * collectors, a span of every request (its URI, with the query's tokens, and headers): a host (`<key>-host`,
 * the port apart) or, for `jaeger-endpoint`, a URL (read in any case, as mapstructure does). No annotation
 * names a collector (they switch tracing on or off per Ingress).
 */
export const GLOBAL_AUTH_SENDS = "the headers of every request to every Ingress of the controller (their Authorization header and cookies)";
export const COLLECTOR_SENDS = "a trace of every request to every Ingress of the controller (its URI, query tokens included, and headers)";
const COLLECTOR_KEYS = ["otlp-collector-host", "zipkin-collector-host", "jaeger-collector-host", "datadog-collector-host", "jaeger-endpoint"];

/**
 * A collector host as a URL, an IPv6 address bracketed, so that forwarding targets' rules judge it; session 51:
 * a host written as a URL (`http://otel.example.net:4317`, which the exporter takes) is read as that URL.
 */
function collectorUrl(key: string, value: string | undefined): string | undefined {
    if (value === undefined || key === "jaeger-endpoint" || value.includes("://")) return value;
    const host = value.trim();
    return host.split(":").length > 2 && !host.startsWith("[") ? `http://[${host}]/` : `http://${host}/`;
}

export const TRAEFIK_TRACING_SENDS = "a trace of every request Traefik routes (its URI, query tokens included, and headers)";

/**
 * Session 51: Traefik's tracing endpoints, set in its static configuration (lib/traefik-static.ts): a flag
 * `--tracing.<…>.endpoint` (`…hostport`, `…address` too) or its environment twin `TRAEFIK_TRACING_…_ENDPOINT`, in any
 * container of a workload; session 51b: or a Traefik file (`traefik.yaml`; session 52: one a Traefik container reads). Each [setting, URL, where].
 */
export function traefikTracingSettings(w: Workload): Array<[string, string, string]> {
    return tracingEndpoints(traefikWorkloadSettings(w)).map(([setting, value, where]) => [setting, collectorUrl(setting, value)!, where]);
}

/**
 * The controller ConfigMap's forwarding settings as URLs: [key, URL, what it sends], each set one. (Session 52: a Traefik
 * file's tracing is no longer read from any ConfigMap, only from one a Traefik container reads: `traefikStaticTracing`.)
 */
export function controllerForwarding(props: Record<string, any>): Array<[string, string, string]> {
    const data = isRecord(props.data) ? props.data : {};
    const settings = controllerSettings(props);
    const out: Array<[string, string | undefined, string]> = [["global-auth-url", str(data["global-auth-url"]), GLOBAL_AUTH_SENDS],
        ...COLLECTOR_KEYS.map((k): [string, string | undefined, string] => [k, collectorUrl(k, settings.get(k)), COLLECTOR_SENDS])];
    return out.filter((e): e is [string, string, string] => e[1] !== undefined && e[1].trim() !== "");
}

/** Session 52: a Traefik static configuration view's (lib/traefik-mounts.ts) tracing endpoints as forwarding settings ([setting, URL, what it sends]), as the controller ConfigMap's. */
export function traefikStaticTracing(view: Record<string, any>): Array<[string, string, string]> {
    return tracingEndpoints(traefikFileSettings(view)).map(([setting, value]): [string, string, string] => [setting, collectorUrl(setting, value)!, TRAEFIK_TRACING_SENDS]);
}

/** The Services of the cluster forwarding settings name, each with its key. */
function forwardingTargets(settings: Array<[string, string, string]>): ServiceTarget[] {
    return settings.flatMap(([key, url]) => {
        const host = targetHost(url);
        const svc = host === undefined ? undefined : clusterService(host);
        return svc ? [{ ...svc, via: key }] : [];
    });
}

/**
 * Session 51: the Services of the cluster the controller ConfigMap sends requests to (`global-auth-url`, the
 * collectors), each with its key: routes as much as an Ingress's, judged by name and by selector. A single
 * label resolves in the controller's namespace, the ConfigMap's.
 */
export function controllerTargets(props: Record<string, any>): ServiceTarget[] {
    return forwardingTargets(controllerForwarding(props));
}

/**
 * Session 52: every router of the stack with the Services it sends requests to: the router objects (`isRouter`, `routeTargets`)
 * and the ConfigMaps (or Secrets) a Traefik container reads its static configuration from (lib/traefik-mounts.ts), whose tracing
 * endpoints are routes too. `static` marks the latter: no resource policy sees them, so the stack policies judge their targets' names too.
 */
export function routerTargets(resources: StackResource[]): Array<{ router: StackResource; targets: ServiceTarget[]; static?: true }> {
    return [...resources.filter((r) => isRouter(r.type)).map((router) => ({ router, targets: routeTargets(router.type, router.props) })),
        ...traefikStaticFiles(resources).files.map((f) => ({ router: f.source, targets: forwardingTargets(traefikStaticTracing(f.view)), static: true as const }))];
}

/** A target in a message: `postgres`, `postgres (by the annotation <key>)`, or a Middleware's `postgres (by its errors.service)`. */
export function targetLabel(t: ServiceTarget, name = t.name): string {
    if (t.via === undefined) return name;
    return t.via.includes("/") ? `${name} (by the annotation ${t.via})` : `${name} (by its ${t.via})`;
}

/** Whether an object sends the edge's requests to Services: an Ingress, (session 50) a Traefik Middleware, (session 51) a ConfigMap (the controller's, by its keys). */
export function isRouter(type: string): boolean {
    return type === "kubernetes:networking.k8s.io/v1:Ingress" || TRAEFIK_MIDDLEWARE.test(type) || type === "kubernetes:core/v1:ConfigMap";
}

/** What a router object sends requests to: an Ingress's routes and forwarding annotations, a Traefik Middleware's services, the controller ConfigMap's settings. */
export function routeTargets(type: string, props: Record<string, any>): ServiceTarget[] {
    if (type === "kubernetes:core/v1:ConfigMap") return controllerTargets(props);
    return TRAEFIK_MIDDLEWARE.test(type) ? middlewareTargets(props) : ingressTargets(props);
}

/**
 * How a Service is reachable from outside the cluster by itself ("type LoadBalancer", "type NodePort",
 * "externalIPs"), or undefined for one reached only inside it.
 */
export function outsideReach(props: Record<string, any>): string | undefined {
    const type = str(props.spec?.type);
    if (type === "LoadBalancer" || type === "NodePort") return `type ${type}`;
    return arr(props.spec?.externalIPs).length > 0 ? "externalIPs" : undefined;
}
