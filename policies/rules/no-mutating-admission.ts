import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { reviewedCalloutProblems, REVIEWED_FIX } from "../lib/reviewed-callouts";

export interface MutatingAdmissionConfig {
    /** metadata.name of mutating webhooks or admission policies reviewed and accepted (a service mesh's injector). */
    allowedNames: string[];
}

const defaults: MutatingAdmissionConfig = { allowedNames: [] };

/** Mutating admission of any served version, and a binding that switches a mutating admission policy on. */
const MUTATING = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:(MutatingWebhookConfiguration|MutatingAdmissionPolicy|MutatingAdmissionPolicyBinding)(List)?$/;

/**
 * The pack checks objects as the program declares them; a mutating admission webhook or policy
 * rewrites them inside the API server afterwards, for every object it matches (this program's and
 * anyone's): one can add a privileged sidecar or swap an image after every policy passed, and the
 * webhook's own server decides. (Validating admission only refuses; what a validating webhook
 * receives, every object it matches, is no-api-server-callouts'.)
 */
export const noMutatingAdmission: ResourceValidationPolicy = {
    name: "no-mutating-admission",
    description:
        "The program declares no MutatingWebhookConfiguration, MutatingAdmissionPolicy or its binding unless listed in " +
        "allowedNames after review: a mutating admission rewrites objects in the API server after every policy of this pack " +
        "checked them (a privileged sidecar added, an image swapped); a listed one fails closed (no failurePolicy: Ignore: a pod " +
        "admitted without the change it relies on, a mesh's sidecar) and matches every version (no matchPolicy: Exact).",
    severity: "high",
    configSchema: {
        properties: { allowedNames: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: (args, reportViolation) => {
        if (!MUTATING.test(args.type)) return args.notApplicable("only mutating admission (webhooks and admission policies)");
        const props = plain(args.props);
        const name = str(props.metadata?.name);
        if (name !== undefined && readConfig(args, defaults).allowedNames.includes(name)) {
            // Session 63: the review accepted the name; what the object says since is still read (lib/reviewed-callouts.ts).
            for (const p of reviewedCalloutProblems(args.type, props)) {
                reportViolation(`${describe(args.type, args.name)} is listed in allowedNames, but ${p}; ${REVIEWED_FIX}`);
            }
            return;
        }
        reportViolation(`${describe(args.type, args.name)} rewrites objects in the API server after this pack checked them ` +
            "(a sidecar or an image can be added to any pod it matches, by a server outside the program); drop it, or review " +
            `it and list its metadata.name${name === undefined ? "" : ` "${name}"`} in policy config allowedNames.`);
    },
};
