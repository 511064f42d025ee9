import { StackValidationPolicy } from "@pulumi/policy";
import { controllerSettings, goBool } from "../lib/controller-config";
import { controllerConfigMaps } from "../lib/ingress-nginx";
import { plainResources } from "../lib/stack";
import { K8S, metadataAnnotations } from "../lib/workloads";

/**
 * ingress-nginx's snippet annotations paste raw nginx configuration into the controller, which
 * runs with a token that reads every Secret of the cluster (CVE-2021-25742, and CVE-2025-1974 by the
 * same door). Since ingress-nginx 1.9 the controller refuses them by default (its admission webhook
 * denies the Ingress: "Snippet directives are disabled by the Ingress administrator"), so an Ingress
 * carrying one also fails to deploy on a default install.
 */
// Session 51: and NGINX Inc.'s controller (class nginx too): nginx.org/server-snippets, location-snippets.
const SNIPPET = /^(nginx\.ingress\.kubernetes\.io\/[a-z-]*snippet|nginx\.org\/[a-z-]*snippets)$/;

export function ingressSnippetProblems(props: Record<string, any>): string[] {
    return Object.keys(metadataAnnotations(props))
        .filter((k) => SNIPPET.test(k))
        .sort()
        .map((k) => `sets the annotation ${k}`);
}

const NGINX_ANNOTATION = /^nginx\.ingress\.kubernetes\.io\//;

/**
 * The nginx variables ingress-nginx's documentation gives in annotation values: `$host`, `$request_uri`
 * and `$escaped_request_uri` (auth-url, auth-signin, mirror-target), `$remote_addr`, `$binary_remote_addr`,
 * `$remote_user` and `$http_authorization` (auth-cache-key, global-rate-limit-key, upstream-hash-by), a
 * regex path's capture groups `$1`..`$9` (rewrite-target); and `$scheme`, which only says http or https
 * (redirects keep it). Any other variable
 * lets the request steer the value: `$http_x_target` in auth-url sends the auth subrequest, with the
 * client's credentials, wherever a header says.
 */
export const DOCUMENTED_NGINX_VARIABLES: readonly string[] = [
    "host", "request_uri", "escaped_request_uri", "scheme", "remote_addr", "binary_remote_addr", "remote_user", "http_authorization",
];
const isDocumentedVariable = (name: string) => DOCUMENTED_NGINX_VARIABLES.includes(name) || /^[1-9]$/.test(name);

/**
 * What in an ingress-nginx annotation value would be nginx configuration rather than a value. The
 * controller writes values such as auth-url, auth-signin, permanent-redirect or rewrite-target into
 * its nginx.conf inside quotes or as a directive's argument, so a line break, a `;` (ends the
 * directive), a brace (opens or closes a block) or a quote or backslash (ends the quoted string)
 * adds configuration of the Ingress author's own: the snippet door by another name (CVE-2021-25742,
 * CVE-2023-5043 through annotations, CVE-2023-5044 through permanent-redirect). The controller
 * validates values since 1.9, but only where `enable-annotation-validation` is left on, and older
 * controllers not at all; the pack holds every value to it, and stricter: braces only as a variable's
 * `${name}`, and only the documented variables. Snippet annotations are reported whole above.
 */
export function annotationValueProblems(value: string): string[] {
    const out: string[] = [];
    if (/[\x00-\x1f\x7f]/.test(value)) out.push("a line break or control character");
    if (value.includes(";")) out.push("\";\" (ends an nginx directive)");
    if (/[{}]/.test(value.replace(/\$\{\w+\}/g, ""))) out.push("a brace (opens or closes an nginx block)");
    if (/["'`\\]/.test(value)) out.push("a quote or backslash (ends the quoted string the controller writes the value into)");
    const variables = [...value.matchAll(/\$(?:\{(\w+)\}|(\w+))/g)].map((m) => m[1] ?? m[2]);
    const undocumented = [...new Set(variables.filter((v) => !isDocumentedVariable(v)))];
    if (undocumented.length) out.push(`the nginx variable${undocumented.length > 1 ? "s" : ""} ${undocumented.map((v) => `$${v}`).join(", ")}, which the annotations do not document`);
    return out;
}

export function ingressAnnotationValueProblems(props: Record<string, any>): string[] {
    return Object.entries(metadataAnnotations(props))
        .filter(([k]) => NGINX_ANNOTATION.test(k) && !SNIPPET.test(k))
        .sort(([a], [b]) => a.localeCompare(b))
        .flatMap(([k, v]) => {
            const found = annotationValueProblems(v);
            return found.length ? [`sets the annotation ${k} to a value carrying ${found.join(", ")}`] : [];
        });
}

/**
 * The controller's own ConfigMap (ingress-nginx reads its settings from one, by the name given to
 * its --configmap flag): `allow-snippet-annotations: "true"` switches the annotations back on for
 * every Ingress of the cluster, and its `*-snippet` keys (http-snippet, server-snippet, main-snippet,
 * ...) are raw configuration for every host. Session 54: judged on the ConfigMap a declared controller reads (whatever it is
 * called), not on another that happens to hold such keys; by its keys alone only when the stack declares no controller.
 */
export function controllerConfigProblems(props: Record<string, any>): string[] {
    // Session 51: read as the controller reads it (lib/controller-config.ts): a key in any case, a boolean as Go's ParseBool.
    const data = controllerSettings(props);
    const out: string[] = [];
    if (goBool(data.get("allow-snippet-annotations")) === true) out.push("sets allow-snippet-annotations: \"true\" (every Ingress may carry snippets again)");
    // The controller's own check of annotation values (and its refusal of Critical-risk annotations, the snippets).
    if (goBool(data.get("enable-annotation-validation")) === false) out.push("sets enable-annotation-validation: \"false\" (annotation values reach nginx.conf unchecked)");
    if (data.get("annotations-risk-level")?.trim().toLowerCase() === "critical") out.push("sets annotations-risk-level: Critical (every Ingress may carry snippets again)");
    for (const k of [...data.keys()].filter((key) => /^[a-z-]*-snippets?$/.test(key)).sort()) out.push(`sets ${k} (raw nginx configuration for every host)`);
    return out;
}

export const ingressNoSnippets: StackValidationPolicy = {
    name: "ingress-no-snippets",
    description:
        "No Ingress carries an ingress-nginx *-snippet annotation (configuration-, server-, auth-, stream-, modsecurity-snippet): " +
        "raw nginx configuration run by a controller that can read every Secret (CVE-2021-25742), refused by default since ingress-nginx 1.9; " +
        "no ingress-nginx annotation value carries nginx configuration (a line break, ;, a brace, a quote or backslash, an undocumented $variable: " +
        "CVE-2023-5043/5044 through auth-url, permanent-redirect and the like); " +
        "no controller ConfigMap (the one a declared controller's --configmap names; any, by its keys, when the stack declares no controller) turns them " +
        "back on (allow-snippet-annotations, annotations-risk-level Critical), switches off the controller's annotation validation or carries a *-snippet key.",
    severity: "high",
    // Session 54: a stack policy, to judge as the controller's configuration only the ConfigMap a declared controller reads
    // (lib/ingress-nginx.ts controllerConfigMaps); every Ingress is judged alone as before, a *List's items too (plainResources).
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const isController = controllerConfigMaps(resources);
        for (const r of resources) {
            if (r.type === K8S.ingress) {
                for (const problem of ingressSnippetProblems(r.props)) {
                    reportViolation(
                        `Ingress "${r.name}" ${problem}, raw nginx configuration in a controller that can read every Secret (CVE-2021-25742); ` +
                            "use the dedicated annotations, or set the header in the application (the api-gateway sends the security headers itself).",
                        r.urn,
                    );
                }
                for (const problem of ingressAnnotationValueProblems(r.props)) {
                    reportViolation(
                        `Ingress "${r.name}" ${problem}: the controller writes the value into its nginx configuration, so it adds configuration ` +
                            "of its own, run with a token that can read every Secret (CVE-2021-25742, CVE-2023-5043, CVE-2023-5044); give the plain URL, " +
                            `path or name the annotation documents (nginx variables only ${DOCUMENTED_NGINX_VARIABLES.map((v) => `$${v}`).join(", ")} and $1..$9).`,
                        r.urn,
                    );
                }
            } else if (r.type === K8S.configMap && isController(r)) {
                for (const p of controllerConfigProblems(r.props)) {
                    reportViolation(`ConfigMap "${r.name}" ${p}: ingress-nginx reads it as its configuration, and runs that configuration with a token ` +
                        "that can read every Secret (CVE-2021-25742); leave snippets off.", r.urn);
                }
            }
        }
    },
};
