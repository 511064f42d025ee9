import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";
import { reviewedCalloutProblems, REVIEWED_FIX } from "../lib/reviewed-callouts";

export interface ApiServerCalloutsConfig {
    /** metadata.name of validating webhooks, aggregated APIs and converting CRDs reviewed and accepted. */
    allowedNames: string[];
}

const defaults: ApiServerCalloutsConfig = { allowedNames: [] };

const VALIDATING_WEBHOOK = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:ValidatingWebhookConfiguration$/;
const API_SERVICE = /^kubernetes:apiregistration\.k8s\.io\/v[0-9a-z]+:APIService$/;
const CRD = /^kubernetes:apiextensions\.k8s\.io\/v[0-9a-z]+:CustomResourceDefinition$/;

/**
 * What the API server would send to a server the object names, or undefined when it sends nothing:
 * a validating webhook gets every object its rules match, whole (a Secret's data, a pod's environment),
 * in each AdmissionReview; an aggregated API (an APIService with a `service`) gets every request of its
 * API group with the caller's identity; a CRD converting by webhook gets every object of its kind.
 */
export function calloutOf(type: string, props: Record<string, any>): string | undefined {
    if (VALIDATING_WEBHOOK.test(type)) {
        const targets = arr(props.webhooks).filter(isRecord).map((w) => str(w.clientConfig?.url) ?? (isRecord(w.clientConfig?.service) ? "a Service" : "a server"));
        return `sends every object its rules match, whole (Secrets' data included), to ${[...new Set(targets)].join(", ") || "its webhooks' servers"}`;
    }
    if (API_SERVICE.test(type) && isRecord(props.spec?.service)) {
        return `hands every request of the API group ${str(props.spec?.group) ?? "<unknown>"}, with the caller's identity, to the Service ` +
            `${str(props.spec.service.namespace) ?? "<unknown>"}/${str(props.spec.service.name) ?? "<unknown>"}`;
    }
    if (CRD.test(type) && str(props.spec?.conversion?.strategy) === "Webhook") {
        return "sends every object of its kind to its conversion webhook";
    }
    return undefined;
}

/**
 * Objects through which the API server calls a server of the object's choosing: the pack cannot see
 * that server, and what it receives (every Secret written, every request of an API group) is beyond
 * any rule here. Mutating admission is no-mutating-admission's (it rewrites as well).
 */
export const noApiServerCallouts: ResourceValidationPolicy = {
    name: "no-api-server-callouts",
    description:
        "The program declares no ValidatingWebhookConfiguration, no aggregated APIService (one with a service) and no " +
        "CustomResourceDefinition converting by webhook unless listed in allowedNames after review: through each, the API " +
        "server sends objects (Secrets included) or a whole API group's requests to a server the pack cannot check; a listed one " +
        "fails closed (no failurePolicy: Ignore), matches every version (no matchPolicy: Exact) and every object (no objectSelector), " +
        "and an APIService verifies its server (no insecureSkipTLSVerify).",
    severity: "high",
    configSchema: {
        properties: { allowedNames: { type: "array", items: { type: "string" }, default: [] } },
    },
    // Session 53: a *List's items are the objects the API server applies, each judged as declared alone (lib/lists.ts).
    validateResource: readingListItems((args, reportViolation) => {
        if (!VALIDATING_WEBHOOK.test(args.type) && !API_SERVICE.test(args.type) && !CRD.test(args.type)) {
            return args.notApplicable("only validating webhooks, APIServices and CustomResourceDefinitions");
        }
        const props = plain(args.props);
        const callout = calloutOf(args.type, props);
        if (callout === undefined) return;
        const name = str(props.metadata?.name);
        if (name !== undefined && readConfig(args, defaults).allowedNames.includes(name)) {
            // Session 63: the review accepted the name; what the object says since is still read (lib/reviewed-callouts.ts).
            for (const p of reviewedCalloutProblems(args.type, props)) {
                reportViolation(`${describe(args.type, args.name)} is listed in allowedNames, but ${p}; ${REVIEWED_FIX}`);
            }
            return;
        }
        reportViolation(`${describe(args.type, args.name)} ${callout}, a server outside the pack's sight; drop it, or review it ` +
            `and list its metadata.name${name === undefined ? "" : ` "${name}"`} in policy config allowedNames.`);
    }),
};
