import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { arr, isRecord, plain, str } from "../lib/values";
import { readingListItems } from "../lib/lists";

const SERVER_ALIAS = "nginx.ingress.kubernetes.io/server-alias";

export interface IngressHostsConfig {
    /**
     * The Service a host-less rule or a defaultBackend may send to, when every backend of it is that Service (the
     * stack's edge-errors, answering any Host the platform's JSON 404). Empty (the default): none may, which is right on
     * a shared controller, where such a rule takes every other tenant's unrouted hosts. Set only on a stack whose
     * controller is the platform's own (policies/config/local-k8s.json).
     */
    catchAllService: string;
}

const defaults: IngressHostsConfig = { catchAllService: "" };

/** The Service names of an IngressBackend, or undefined for a backend that is no Service (a `resource` backend). */
function backendService(backend: unknown): string | undefined {
    return isRecord(backend) && isRecord(backend.service) && !isRecord(backend.resource) ? str(backend.service.name) : undefined;
}

/** Whether every backend of a host-less rule's paths is the configured catch-all Service (and there is at least one). */
function onlyTo(service: string, rule: Record<string, any>): boolean {
    const paths = arr(rule.http?.paths);
    return service !== "" && paths.length > 0 && paths.every((p) => isRecord(p) && backendService(p.backend) === service);
}

/**
 * Kyverno's disallow-empty-ingress-host and restrict-ingress-wildcard: every rule names one concrete host. The one exception,
 * by config: a host-less rule or defaultBackend whose every backend is `catchAllService`.
 */
export function ingressHostProblems(props: Record<string, any>, cfg: IngressHostsConfig = defaults): string[] {
    const out: string[] = [];
    const service = typeof cfg.catchAllService === "string" ? cfg.catchAllService.trim() : "";
    arr(props.spec?.rules).forEach((r, i) => {
        if (!isRecord(r)) return;
        const host = str(r.host);
        if (r.host === undefined || host === "") {
            if (!onlyTo(service, r)) out.push(`rules[${i}] has no host, so it answers for any Host header`);
        } else if (host?.includes("*")) out.push(`rules[${i}] uses the wildcard host "${host}"`);
    });
    const defaultBackend = props.spec?.defaultBackend;
    if (isRecord(defaultBackend) && !(service !== "" && backendService(defaultBackend) === service)) out.push("has a defaultBackend, which answers for any Host header");
    // ingress-nginx adds each alias to the server's server_name, where a wildcard, a regular expression
    // (~...) or nginx's catch-all "_" answers for Host headers no rule names.
    const aliases = str(props.metadata?.annotations?.[SERVER_ALIAS]);
    for (const alias of (aliases ?? "").split(",").map((a) => a.trim()).filter((a) => a !== "")) {
        if (alias.includes("*") || alias.startsWith("~") || alias === "_") out.push(`has the server alias "${alias}" (annotation ${SERVER_ALIAS}), which answers for any Host header it matches`);
    }
    return out;
}

export const ingressHosts: ResourceValidationPolicy = {
    name: "ingress-hosts",
    description: "Every Ingress rule names a concrete host (no empty or wildcard host, no default backend, no wildcard or regular-expression ingress-nginx server alias), " +
        "so the edge serves only the platform's own names; a host-less rule or default backend only to catchAllService (set where the controller is the platform's own).",
    severity: "medium",
    configSchema: {
        properties: {
            catchAllService: { type: "string", default: defaults.catchAllService },
        },
    },
    validateResource: readingListItems(validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of ingressHostProblems(plain(props), cfg)) {
            reportViolation(`Ingress "${args.name}" ${p}; set rules[].host to the platform's DNS name (config trading:ingressHost).`);
        }
    })),
};
