import * as docker from "@pulumi/docker";
import { isIP } from "net";
import { isLoopbackIp } from "../lib/loopback";
import * as k8s from "@pulumi/kubernetes";
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { LABEL_ROLE, LABEL_WORKLOAD } from "../../catalog/labels";
import { clusterService, controllerForwarding, controllerTargets, GLOBAL_AUTH_SENDS, ingressTargets, middlewareTargets, targetHost, targetLabel, TRAEFIK_MIDDLEWARE, traefikTracingSettings, TRAEFIK_TRACING_SENDS } from "../lib/routes";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, num, plain, str } from "../lib/values";
import { DATASTORES, describe, isDatastore, metadataLabels, MONITORING, objectName } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface ExposureConfig {
    environment: Environment;
    /** Workloads that must never be reachable from outside the cluster/host. */
    internalWorkloads: string[];
}

const defaults: ExposureConfig = { environment: "prod", internalWorkloads: [...DATASTORES, ...MONITORING] };

/** Docker: every published port bound to loopback; on prod, datastores publish nothing. */
export function dockerExposure(w: Workload, cfg: ExposureConfig = defaults): string[] {
    const out: string[] = [];
    const { props, id } = w;
    if (props.publishAllPorts === true) {
        out.push("sets publishAllPorts, which publishes every exposed port on all host interfaces");
    }
    const ports = arr(props.ports).filter(isRecord);
    if (cfg.environment === "prod" && isDatastore(id) && ports.length > 0) {
        out.push(`is a datastore and publishes ${ports.map((p) => `${p.internal}`).join(", ")} on the host; on prod ` +
            "datastores publish no ports (reach them on the Docker network; for admin use `docker exec` or a VPN)");
    }
    for (const p of ports) {
        const ip = str(p.ip);
        // A loopback IP literal as the engine parses it (lib/loopback.ts); anything else it cannot parse ("localhost",
        // "127.0.0.256", "127.000.0.1") it takes as no address at all and publishes on every interface of the host.
        if (ip === undefined || !isLoopbackIp(ip)) {
            const ext = num(p.external);
            const unparsed = ip !== undefined && ip !== "" && !isIP(ip)
                ? ` ("${ip}" is no IP address: the engine reads it as none and publishes on every interface)` : "";
            out.push(`publishes container port ${p.internal} on ${ip ?? "0.0.0.0"}:${ext ?? "<random>"}${unparsed}; set ports[].ip to "127.0.0.1"`);
        }
    }
    return out;
}

/** Does a Service (by its labels, selector or name) front an internal workload? */
export function serviceTarget(props: Record<string, any>, resourceName: string, cfg: ExposureConfig = defaults): string | undefined {
    const labels = metadataLabels(props);
    const selector = isRecord(props.spec?.selector) ? (props.spec.selector as Record<string, unknown>) : {};
    const candidates = [labels[LABEL_WORKLOAD], str(selector[LABEL_WORKLOAD]), objectName(props, resourceName)];
    const hit = candidates.find((c) => c !== undefined && cfg.internalWorkloads.includes(c));
    if (hit) return hit;
    const role = labels[LABEL_ROLE] ?? str(selector[LABEL_ROLE]);
    if (role === "datastore" || role === "monitoring") return labels[LABEL_WORKLOAD] ?? objectName(props, resourceName);
    return undefined;
}

/** Services: LoadBalancer, NodePort or externalIPs only for the edge, never for an internal workload. */
export function serviceExposure(props: Record<string, any>, name: string, cfg: ExposureConfig = defaults): string[] {
    const svcType = str(props.spec?.type) ?? "ClusterIP";
    const target = serviceTarget(props, name, cfg);
    if (svcType === "NodePort") {
        // Kyverno's restrict-nodeport: a node port opens on every node's address, edge or not.
        return [`is of type NodePort, which opens the port on every node's address${target ? ` (it fronts ${target})` : ""}; use ClusterIP behind the Ingress (the edge may use a LoadBalancer)`];
    }
    if (arr(props.spec?.externalIPs).length > 0) {
        // CVE-2020-8554: whoever sets externalIPs takes over the traffic every pod of the cluster sends to
        // those addresses (kube-proxy routes it to this Service), the edge's own Service included.
        return [`sets externalIPs, which captures the traffic every pod of the cluster sends to those addresses (CVE-2020-8554)` +
            `${target ? ` and exposes ${target}` : ""}; publish the edge through a LoadBalancer Service instead`];
    }
    if (svcType !== "LoadBalancer") return [];
    if (target) return [`exposes ${target} outside the cluster (type LoadBalancer); internal workloads use type ClusterIP`];
    if (metadataLabels(props)[LABEL_ROLE] !== "edge") {
        return ["exposes a non-edge workload outside the cluster (type LoadBalancer); only the Ingress controller (role=edge) may"];
    }
    return [];
}

/** Ingresses: no route to datastores or monitoring (session 49: nor a forwarding annotation naming their Service). */
export function ingressExposure(props: Record<string, any>, cfg: ExposureConfig = defaults): string[] {
    const internal = ingressTargets(props).filter((t) => cfg.internalWorkloads.includes(t.name));
    return internal.length
        ? [`routes public traffic to ${[...new Set(internal.map((t) => targetLabel(t)))].join(", ")}; datastores and monitoring stay internal (use a VPN or port-forward for admin access)`]
        : [];
}

/**
 * Session 49: the ingress-nginx controller ConfigMap's `global-auth-url` (every Ingress's `auth-url`) naming an internal
 * workload's Service; session 51: its tracing collectors too (lib/routes.ts `controllerTargets`).
 */
export function globalAuthExposure(props: Record<string, any>, _name: string, cfg: ExposureConfig = defaults): string[] {
    const sends = new Map(controllerForwarding(props).map(([key, , what]) => [key, what]));
    return controllerTargets(props).filter((t) => cfg.internalWorkloads.includes(t.name)).map((t) => t.via === "global-auth-url"
        ? `sets global-auth-url to ${t.name}, which sends it ${GLOBAL_AUTH_SENDS}; datastores and monitoring stay internal (name the platform's own authentication service)`
        : `sets ${t.via} to ${t.name}, which sends it ${sends.get(t.via!)}; datastores and monitoring stay internal (name the platform's own authentication service and a collector of its own)`);
}

/** Session 50: a Traefik Middleware sending its routers' requests to an internal workload's Service (`forwardAuth.address`, `errors.service`). */
export function middlewareExposure(props: Record<string, any>, cfg: ExposureConfig = defaults): string[] {
    const internal = middlewareTargets(props).filter((t) => cfg.internalWorkloads.includes(t.name));
    return internal.length
        ? [`sends the requests of the routers using it, their Authorization header and cookies included, to ${[...new Set(internal.map((t) => targetLabel(t)))].join(", ")}; ` +
            "datastores and monitoring stay internal (name the platform's own authentication service and error pages)"]
        : [];
}

/** Workloads: Docker published ports; Kubernetes hostPort. */
export function workloadExposure(w: Workload, cfg: ExposureConfig = defaults): string[] {
    if (w.target === "docker") return dockerExposure(w, cfg);
    // Session 51: Traefik's tracing endpoint naming an internal workload's Service (its static configuration).
    const out: string[] = traefikTracingSettings(w).flatMap(([setting, url, where]) => {
        const host = targetHost(url);
        const svc = host === undefined ? undefined : clusterService(host);
        return svc !== undefined && cfg.internalWorkloads.includes(svc.name)
            ? [`${where} sets ${setting} to ${svc.name}, which sends it ${TRAEFIK_TRACING_SENDS}; datastores and monitoring stay internal (name a collector of the platform's own)`] : [];
    });
    for (const c of w.containers) {
        for (const p of arr(c.container.ports)) {
            if (isRecord(p) && p.hostPort !== undefined && p.hostPort !== null && num(p.hostPort) !== 0) {
                out.push(`container "${c.name}" binds hostPort ${p.hostPort}, bypassing Services and NetworkPolicies`);
            }
        }
    }
    return out;
}

/**
 * Docker networks whose containers get addresses on the host's own LAN (macvlan, ipvlan): every port
 * they listen on is reachable from that network without being published, past every `ports` check.
 */
export function dockerNetworkExposure(props: Record<string, any>): string[] {
    const driver = str(props.driver)?.toLowerCase();
    if (driver === "macvlan" || driver === "ipvlan") {
        return [`uses the ${driver} driver, which puts its containers on the host's network segment with addresses of their own: every port ` +
            "they listen on is reachable there unpublished; use a bridge network (the default) and publish ports on 127.0.0.1"];
    }
    return bridgeDirectRouting(props.options);
}

/**
 * Session 48: a bridge network's options that open its containers' addresses to hosts routing to them
 * (Docker's "direct routing"), past the loopback publishing the ports check relies on: gateway mode
 * `nat-unprotected` (every port, published or not) or `routed` (a published port on the container's
 * own address, whatever host address `ports[].ip` names), and `trusted_host_interfaces` (published ports
 * on the container's address from those interfaces). The engine's default, `nat`, keeps a port
 * published on 127.0.0.1 to the host.
 */
function bridgeDirectRouting(options: unknown): string[] {
    if (!isRecord(options)) return [];
    const out: string[] = [];
    for (const family of ["ipv4", "ipv6"]) {
        const key = `com.docker.network.bridge.gateway_mode_${family}`;
        const mode = str(options[key])?.trim().toLowerCase();
        if (mode === "nat-unprotected" || mode === "routed") {
            out.push(`sets ${key} "${mode}": hosts routing to its subnet reach its containers' ${mode === "routed" ? "published ports on their own addresses, whatever ports[].ip says" : "ports directly, published or not"}; ` +
                "leave the gateway mode at nat (the default) and publish ports on 127.0.0.1");
        }
    }
    const trusted = "com.docker.network.bridge.trusted_host_interfaces";
    if ((str(options[trusted]) ?? "").trim() !== "") {
        out.push(`sets ${trusted}, whose interfaces reach its containers' published ports on their own addresses, whatever ports[].ip says; remove it`);
    }
    return out;
}

function objectRule(problems: (props: Record<string, any>, name: string, cfg: ExposureConfig) => string[]) {
    return (props: object, args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of problems(plain(props as Record<string, any>), args.name, cfg)) reportViolation(`${describe(args.type, args.name)} ${p}.`);
    };
}

export const noPublicExposure: ResourceValidationPolicy = {
    name: "no-public-exposure",
    description:
        "Nothing is published beyond the host or cluster except the edge: Docker ports bind to 127.0.0.1 (datastores " +
        "publish none on prod); no Kubernetes Service is a NodePort; datastores, Prometheus and Grafana have no LoadBalancer Service, " +
        "no Ingress route (a mirror-target or auth-url annotation, the controller's global-auth-url or tracing collector or a Traefik Middleware's forwardAuth.address or errors.service, naming their Service included) and no hostPort; no Docker network of the macvlan or ipvlan driver (containers on the host's LAN) or a bridge " +
        "routing to its containers directly (gateway mode nat-unprotected or routed, trusted_host_interfaces).",
    severity: "critical",
    configSchema: {
        properties: {
            environment: environmentSchema,
            internalWorkloads: { type: "array", items: { type: "string" }, default: defaults.internalWorkloads },
        },
    },
    validateResource: readingListItems([
        workloadRule(defaults, workloadExposure, (w, p) => `${w.label} ${p}.`),
        validateResourceOfType(k8s.core.v1.Service, objectRule(serviceExposure)),
        validateResourceOfType(k8s.networking.v1.Ingress, objectRule((props, _name, cfg) => ingressExposure(props, cfg))),
        validateResourceOfType(docker.Network, objectRule((props) => dockerNetworkExposure(props))),
        validateResourceOfType(k8s.core.v1.ConfigMap, objectRule(globalAuthExposure)),
        (args, reportViolation) => {
            if (TRAEFIK_MIDDLEWARE.test(args.type)) objectRule((props, _name, cfg) => middlewareExposure(props, cfg))(args.props, args, reportViolation);
        },
    ]),
};
