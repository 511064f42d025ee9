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
 * How a Service is reachable from outside the cluster by itself ("type LoadBalancer", "type NodePort",
 * "externalIPs"), or undefined for one reached only inside it.
 */
export function outsideReach(props: Record<string, any>): string | undefined {
    const type = str(props.spec?.type);
    if (type === "LoadBalancer" || type === "NodePort") return `type ${type}`;
    return arr(props.spec?.externalIPs).length > 0 ? "externalIPs" : undefined;
}
