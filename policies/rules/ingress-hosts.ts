import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { arr, isRecord, plain, str } from "../lib/values";
import { readingListItems } from "../lib/lists";

const SERVER_ALIAS = "nginx.ingress.kubernetes.io/server-alias";

/** Kyverno's disallow-empty-ingress-host and restrict-ingress-wildcard: every rule names one concrete host. */
export function ingressHostProblems(props: Record<string, any>): string[] {
    const out: string[] = [];
    arr(props.spec?.rules).forEach((r, i) => {
        if (!isRecord(r)) return;
        const host = str(r.host);
        if (r.host === undefined || host === "") out.push(`rules[${i}] has no host, so it answers for any Host header`);
        else if (host?.includes("*")) out.push(`rules[${i}] uses the wildcard host "${host}"`);
    });
    if (isRecord(props.spec?.defaultBackend)) out.push("has a defaultBackend, which answers for any Host header");
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
    description: "Every Ingress rule names a concrete host (no empty or wildcard host, no default backend, no wildcard or regular-expression ingress-nginx server alias), so the edge serves only the platform's own names.",
    severity: "medium",
    validateResource: readingListItems(validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
        for (const p of ingressHostProblems(plain(props))) {
            reportViolation(`Ingress "${args.name}" ${p}; set rules[].host to the platform's DNS name (config trading:ingressHost).`);
        }
    })),
};
