import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { serviceTarget } from "./no-public-exposure";
import { isRouter, outsideReach, routerTargets, targetLabel } from "../lib/routes";
import { mapSelectorMatches } from "../lib/selectors";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { hasUnknown, isRecord, str } from "../lib/values";
import { DATASTORES, identity, isDatastore, isK8sWorkload, isMonitoring, K8S, MONITORING, namespaceOf, objectName, podTemplate } from "../lib/workloads";

export interface IngressBackendsConfig {
    /** Workloads that must never be reachable from outside the cluster (as in no-public-exposure). */
    internalWorkloads: string[];
}

const defaults: IngressBackendsConfig = { internalWorkloads: [...DATASTORES, ...MONITORING] };

/**
 * Ingress routes to a Service that selects the pods of a datastore or of monitoring, whatever the
 * Service is called: no-public-exposure sees an Ingress alone and judges its backends by name, so a
 * Service "reports" selecting PostgreSQL's pods passes it. Backends named after an internal workload
 * are left to no-public-exposure (one report each); selectors unknown during preview are skipped.
 */
export function internalBackends(resources: StackResource[], cfg: IngressBackendsConfig = defaults): Finding[] {
    const pods = resources
        .filter((r) => isK8sWorkload(r.type))
        .map((r) => ({ ns: namespaceOf(r.props), labels: podTemplate(r.type, r.props)?.labels ?? {}, id: identity(r.type, r.name, r.props) }));
    const internal = (id: ReturnType<typeof identity>) => isDatastore(id) || isMonitoring(id) || cfg.internalWorkloads.includes(id.workload);
    /** The workloads (internal ones by default) whose pods in `ns` a Service selector picks. */
    const selected = (ns: string, selector: Record<string, unknown>, which: (id: ReturnType<typeof identity>) => boolean = internal) =>
        [...new Set(pods.filter((p) => p.ns === ns && which(p.id) && mapSelectorMatches(selector, p.labels)).map((p) => p.id.workload))];
    const out: Finding[] = [];
    for (const { router: ing, targets: routed, static: file } of routerTargets(resources)) {
        const router = `${ing.type.split(":").pop()} "${objectName(ing.props, ing.name)}"`;
        for (const target of routed) {
            const backend = targetLabel(target, `"${target.name}"`);
            // Session 52: a Traefik static configuration is a router no resource policy sees (lib/traefik-mounts.ts): its targets' names are judged here.
            if (file && cfg.internalWorkloads.includes(target.name)) {
                out.push({ urn: ing.urn, message: `${router} routes public traffic to Service ${backend}, an internal workload's; ` +
                    "datastores and monitoring stay internal (name a collector of the platform's own)." });
                continue;
            }
            if (cfg.internalWorkloads.includes(target.name)) continue;
            const ns = target.namespace ?? namespaceOf(ing.props);
            const svc = resources.find((s) => s.type === K8S.service && namespaceOf(s.props) === ns && objectName(s.props, s.name) === target.name);
            // An ExternalName Service is a DNS alias the controller proxies to: any name, inside the cluster
            // (prometheus.<ns>.svc) or not (a cloud's metadata host), with no selector to judge (CVE-2021-25740).
            if (str(svc?.props.spec?.type) === "ExternalName") {
                out.push({
                    urn: ing.urn,
                    message: `${router} routes public traffic to Service ${backend} of type ExternalName ` +
                        `(${str(svc?.props.spec?.externalName) ?? "a name computed during preview"}): the controller proxies to whatever that name resolves to; ` +
                        "route to a ClusterIP Service selecting the platform's own pods.",
                });
                continue;
            }
            const selector = svc?.props.spec?.selector;
            if (!isRecord(selector) || Object.keys(selector).length === 0 || hasUnknown(selector)) continue;
            const targets = selected(ns, selector);
            if (targets.length === 0) continue;
            out.push({
                urn: ing.urn,
                message: `${router} routes public traffic to Service ${backend}, which selects the pods of ${targets.join(", ")}; ` +
                    "datastores and monitoring stay internal (use a VPN or port-forward for admin access).",
            });
        }
    }
    // A Service reachable from outside the cluster selecting internal pods, whatever its labels and
    // name say (no-public-exposure lets role=edge Services be LoadBalancers, judged by labels and name).
    for (const svc of resources.filter((r) => r.type === K8S.service)) {
        const spec = svc.props.spec;
        const how = outsideReach(svc.props);
        const selector = spec?.selector;
        if (how === undefined || !isRecord(selector) || Object.keys(selector).length === 0 || hasUnknown(selector)) continue;
        // Named, labelled or selecting by the platform's labels as an internal workload: no-public-exposure reports it (one report each).
        if (serviceTarget(svc.props, svc.name, { environment: "prod", internalWorkloads: cfg.internalWorkloads }) !== undefined) continue;
        const targets = selected(namespaceOf(svc.props), selector);
        // A LoadBalancer labelled role=edge passes no-public-exposure on its own labels; the pods it selects
        // decide what it exposes. Declared pods that are not the edge's (the gateway, any service) would take
        // outside traffic past the Ingress: its TLS, its hosts and its CORS. (NodePort and externalIPs are
        // refused on every Service by no-public-exposure.)
        const nonEdge = targets.length === 0 && str(spec?.type) === "LoadBalancer"
            ? selected(namespaceOf(svc.props), selector, (id) => !internal(id) && id.role !== "edge") : [];
        if (nonEdge.length > 0) {
            out.push({
                urn: svc.urn,
                message: `Service "${objectName(svc.props, svc.name)}" is reachable from outside the cluster (${how}) and selects the pods of ${nonEdge.join(", ")}, ` +
                    "which are not the edge's (trading.io/role edge): outside traffic would reach them past the Ingress's TLS, hosts and CORS; " +
                    "give them a ClusterIP Service behind the Ingress.",
            });
        }
        if (targets.length === 0) continue;
        out.push({
            urn: svc.urn,
            message: `Service "${objectName(svc.props, svc.name)}" is reachable from outside the cluster (${how}) and selects the pods of ${targets.join(", ")}; ` +
                "datastores and monitoring stay internal (type ClusterIP; a VPN or port-forward for admin access).",
        });
    }
    return out;
}

export const ingressInternalBackends: StackValidationPolicy = {
    name: "ingress-internal-backends",
    description:
        "No Ingress routes to a Service that selects the pods of a datastore, Prometheus or Grafana, whatever the Service " +
        "is called (no-public-exposure judges Ingress backends by name only), nor to an ExternalName Service (a DNS alias to " +
        "anything); no LoadBalancer, NodePort or externalIPs Service selects those pods, whatever its labels say, and no " +
        "LoadBalancer selects the pods of any declared workload but the edge's (trading.io/role edge).",
    severity: "critical",
    configSchema: {
        properties: {
            internalWorkloads: { type: "array", items: { type: "string" }, default: defaults.internalWorkloads },
        },
    },
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        // Session 52: a Kubernetes workload may be Traefik, reading a static configuration whose tracing endpoints are routes.
        if (!resources.some((r) => isRouter(r.type) || r.type === K8S.service || isK8sWorkload(r.type))) args.notApplicable("no Ingress, Service or Kubernetes workload in this stack");
        for (const f of internalBackends(resources, readConfig(args, defaults))) reportViolation(f.message, f.urn);
    },
};
