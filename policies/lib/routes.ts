/**
 * How traffic from outside the cluster reaches a Kubernetes Service (pure): as the backend of an
 * Ingress, or by the Service's own type or addresses. Shared by the policies that judge what the
 * edge may reach.
 */
import { arr, str } from "./values";

/** Names of the Services an Ingress routes to (default backend and every rule's paths), each once. */
export function ingressBackendServices(props: Record<string, any>): string[] {
    const names = [str(props.spec?.defaultBackend?.service?.name)];
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
