import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { plain } from "../lib/values";
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

export const ingressNoSnippets: ResourceValidationPolicy = {
    name: "ingress-no-snippets",
    description:
        "No Ingress carries an ingress-nginx *-snippet annotation (configuration-, server-, auth-, stream-, modsecurity-snippet): " +
        "raw nginx configuration run by a controller that can read every Secret (CVE-2021-25742), refused by default since ingress-nginx 1.9.",
    severity: "high",
    validateResource: validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
        for (const p of ingressSnippetProblems(plain(props))) {
            reportViolation(
                `Ingress "${args.name}" ${p}, raw nginx configuration in a controller that can read every Secret (CVE-2021-25742); ` +
                    "use the dedicated annotations, or set the header in the application (the api-gateway sends the security headers itself).",
            );
        }
    }),
};
