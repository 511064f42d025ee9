/**
 * How traffic from outside the cluster reaches a Kubernetes Service (pure): as the backend of an
 * Ingress, or by the Service's own type or addresses. Shared by the policies that judge what the
 * edge may reach.
 */
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

/** The host a forwarding annotation's URL names (lower case, no port, up to an nginx variable such as `$request_uri`); undefined when the value is no URL. */
export function targetHost(value: string): string | undefined {
    const m = /^\s*[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|\$\{?host\}?|[^:/?#$]*)/i.exec(value);
    return m ? m[1].toLowerCase() : undefined;
}

/**
 * A Service of the cluster (or the request's own host, `$host`): a single label, or a name under the
 * Services' suffixes (`.svc`, `.svc.cluster.local`). A two-label `<svc>.<ns>` is not taken for one:
 * `evil.com` is written the same way. An IP address is not either, nor (session 50) any other name of
 * the cluster's zone: a pod's address name (below) is an address too.
 */
export function isClusterTarget(host: string): boolean {
    const h = host.replace(/\.$/, "");
    if (h === "$host" || h === "${host}") return true;
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

/** A target in a message: `postgres`, or `postgres (by the annotation <key>)`. */
export function targetLabel(t: ServiceTarget, name = t.name): string {
    return t.via === undefined ? name : `${name} (by the annotation ${t.via})`;
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
