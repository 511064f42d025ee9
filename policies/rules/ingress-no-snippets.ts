import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { isRecord, plain, str } from "../lib/values";
import { metadataAnnotations } from "../lib/workloads";

/**
 * ingress-nginx's snippet annotations paste raw nginx configuration into the controller, which
 * runs with a token that reads every Secret of the cluster (CVE-2021-25742, and CVE-2025-1974 by the
 * same door). Since ingress-nginx 1.9 the controller refuses them by default (its admission webhook
 * denies the Ingress: "Snippet directives are disabled by the Ingress administrator"), so an Ingress
 * carrying one also fails to deploy on a default install.
 */
const SNIPPET = /^nginx\.ingress\.kubernetes\.io\/[a-z-]*snippet$/;

export function ingressSnippetProblems(props: Record<string, any>): string[] {
    return Object.keys(metadataAnnotations(props))
        .filter((k) => SNIPPET.test(k))
        .sort()
        .map((k) => `sets the annotation ${k}`);
}

/**
 * The controller's own ConfigMap (ingress-nginx reads its settings from one, by the name given to
 * its --configmap flag): `allow-snippet-annotations: "true"` switches the annotations back on for
 * every Ingress of the cluster, and its `*-snippet` keys (http-snippet, server-snippet, main-snippet,
 * ...) are raw configuration for every host. Recognised by those keys, whatever the map is called.
 */
export function controllerConfigProblems(props: Record<string, any>): string[] {
    const data = isRecord(props.data) ? props.data : {};
    const out: string[] = [];
    if (str(data["allow-snippet-annotations"])?.trim().toLowerCase() === "true") out.push("sets allow-snippet-annotations: \"true\" (every Ingress may carry snippets again)");
    for (const k of Object.keys(data).filter((key) => /^[a-z-]*-snippet$/.test(key)).sort()) out.push(`sets ${k} (raw nginx configuration for every host)`);
    return out;
}

export const ingressNoSnippets: ResourceValidationPolicy = {
    name: "ingress-no-snippets",
    description:
        "No Ingress carries an ingress-nginx *-snippet annotation (configuration-, server-, auth-, stream-, modsecurity-snippet): " +
        "raw nginx configuration run by a controller that can read every Secret (CVE-2021-25742), refused by default since ingress-nginx 1.9; " +
        "no controller ConfigMap turns them back on (allow-snippet-annotations) or carries a *-snippet key.",
    severity: "high",
    validateResource: [
        validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
            for (const p of ingressSnippetProblems(plain(props))) {
                reportViolation(
                    `Ingress "${args.name}" ${p}, raw nginx configuration in a controller that can read every Secret (CVE-2021-25742); ` +
                        "use the dedicated annotations, or set the header in the application (the api-gateway sends the security headers itself).",
                );
            }
        }),
        validateResourceOfType(k8s.core.v1.ConfigMap, (props, args, reportViolation) => {
            for (const p of controllerConfigProblems(plain(props))) {
                reportViolation(`ConfigMap "${args.name}" ${p}: ingress-nginx reads it as its configuration, and runs that configuration with a token ` +
                    "that can read every Secret (CVE-2021-25742); leave snippets off.");
            }
        }),
    ],
};
