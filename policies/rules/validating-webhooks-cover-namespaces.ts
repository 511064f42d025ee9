import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { declaredNamespaces, namespacesLeftOut, scopeFinding, scopeProblems } from "../lib/admission";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { describe } from "../lib/workloads";

const VALIDATING_WEBHOOK = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:ValidatingWebhookConfiguration$/;

const FIX = "select every namespace (no namespaceSelector, or one matching the platform's), or take it out of no-api-server-callouts' allowedNames.";
const SCOPE_FIX = "give its rules scope \"*\" (the default) or \"Namespaced\" for what is made in namespaces, or take it out of no-api-server-callouts' allowedNames.";

/**
 * Session 63b. A validating webhook reviewed and listed in no-api-server-callouts' allowedNames is there to judge what is
 * made in the cluster at run time (a policy engine, an image verifier); its `namespaceSelector` chooses the namespaces it
 * judges, and one leaving out a namespace the stack declares (`kubernetes.io/metadata.name NotIn [ai-trading]`, or
 * `matchLabels` the namespace lacks) lets everything made there pass unjudged, the platform's own namespace included,
 * while the review saw a judge of the cluster. Every webhook of every ValidatingWebhookConfiguration must select every
 * declared Namespace, read by its labels and the name label the API server adds; an unlisted one is refused by
 * no-api-server-callouts anyway. A selector or namespace unknown during preview is judged at `up`. Mutating webhooks are
 * not held to it: a mutation left out of the platform's namespaces leaves its objects as the pack checked them.
 * Session 64: its rules' `scope` too. `scope: "Cluster"` on every rule matches no namespaced object, so the webhook judges
 * nothing in any namespace whatever its selector (lib/admission.ts); a rule naming pods or Secrets under it matches none.
 */
export function uncoveredNamespaces(resources: StackResource[]): Finding[] {
    const known = declaredNamespaces(resources);
    const out: Finding[] = [];
    for (const config of resources.filter((r) => VALIDATING_WEBHOOK.test(r.type))) {
        if (isUnknown(config.props.webhooks)) continue;
        arr(config.props.webhooks).forEach((w, i) => {
            if (!isRecord(w)) return;
            const at = `${describe(config.type, config.name)} webhooks[${i}]${str(w.name) ? ` "${str(w.name)}"` : ""}`;
            const scope = scopeFinding(w.rules);
            if (scope) {
                for (const p of scopeProblems(scope, "rules", known.map((n) => n.name))) {
                    out.push({ urn: config.urn, message: `${at} ${p}: what is made there at run time passes unjudged, while its review accepted a judge of the cluster; ${SCOPE_FIX}` });
                }
                if (scope.clusterOnly) return;
            }
            const left = namespacesLeftOut(w.namespaceSelector, known).map((n) => `"${n}"`);
            if (left.length === 0) return;
            out.push({
                urn: config.urn,
                message: `${at} leaves out the namespace${left.length > 1 ? "s" : ""} ${left.join(", ")} the stack declares (namespaceSelector ` +
                    `${JSON.stringify(w.namespaceSelector)}): what is made there at run time passes unjudged, while its review accepted a judge of the cluster; ${FIX}`,
            });
        });
    }
    return out;
}

export const validatingWebhooksCoverNamespaces: StackValidationPolicy = {
    name: "validating-webhooks-cover-namespaces",
    description:
        "Every webhook of a ValidatingWebhookConfiguration (reviewed: no-api-server-callouts' allowedNames) selects every Namespace the stack " +
        "declares: a namespaceSelector leaving the platform's namespace out lets what is made there pass unjudged (session 63b), as do rules " +
        "all of scope \"Cluster\", which match no namespaced object (session 64).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => VALIDATING_WEBHOOK.test(r.type))) args.notApplicable("no validating webhooks");
        for (const f of uncoveredNamespaces(resources)) reportViolation(f.message, f.urn);
    },
};
