import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { isEmptySelector, selectorMatches } from "../lib/selectors";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { describe } from "../lib/workloads";

const VALIDATING_WEBHOOK = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:ValidatingWebhookConfiguration$/;
const NAMESPACE = "kubernetes:core/v1:Namespace";
/** The label the API server sets on every namespace (1.21 on), whatever the object declares: its name. */
const NAME_LABEL = "kubernetes.io/metadata.name";

/** A declared Namespace's labels as the API server holds them, or undefined while its name or a label is unknown. */
function namespaceLabels(ns: StackResource): { name: string; labels: Record<string, string> } | undefined {
    const name = ns.props.metadata?.name;
    const labels = ns.props.metadata?.labels;
    // A Namespace without metadata.name is auto-named by Pulumi (a random suffix): no selector can be judged against it.
    if (isUnknown(name) || str(name) === undefined || isUnknown(labels)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(isRecord(labels) ? labels : {})) {
        if (isUnknown(v)) return undefined;
        const s = str(v);
        if (s !== undefined) out[k] = s;
    }
    return { name: str(name)!, labels: { ...out, [NAME_LABEL]: str(name)! } };
}

/**
 * Session 63b. A validating webhook reviewed and listed in no-api-server-callouts' allowedNames is there to judge what is
 * made in the cluster at run time (a policy engine, an image verifier); its `namespaceSelector` chooses the namespaces it
 * judges, and one leaving out a namespace the stack declares (`kubernetes.io/metadata.name NotIn [ai-trading]`, or
 * `matchLabels` the namespace lacks) lets everything made there pass unjudged, the platform's own namespace included,
 * while the review saw a judge of the cluster. Every webhook of every ValidatingWebhookConfiguration must select every
 * declared Namespace, read by its labels and the name label the API server adds; an unlisted one is refused by
 * no-api-server-callouts anyway. A selector or namespace unknown during preview is judged at `up`. Mutating webhooks are
 * not held to it: a mutation left out of the platform's namespaces leaves its objects as the pack checked them.
 */
export function uncoveredNamespaces(resources: StackResource[]): Finding[] {
    const namespaces = resources.filter((r) => r.type === NAMESPACE).map(namespaceLabels);
    const known = namespaces.filter((n): n is NonNullable<typeof n> => n !== undefined);
    const out: Finding[] = [];
    for (const config of resources.filter((r) => VALIDATING_WEBHOOK.test(r.type))) {
        if (isUnknown(config.props.webhooks)) continue;
        arr(config.props.webhooks).forEach((w, i) => {
            if (!isRecord(w) || isUnknown(w.namespaceSelector) || isEmptySelector(w.namespaceSelector)) return;
            const left = known.filter((n) => !selectorMatches(w.namespaceSelector, n.labels)).map((n) => `"${n.name}"`);
            if (left.length === 0) return;
            out.push({
                urn: config.urn,
                message: `${describe(config.type, config.name)} webhooks[${i}]${str(w.name) ? ` "${str(w.name)}"` : ""} leaves out the namespace` +
                    `${left.length > 1 ? "s" : ""} ${left.join(", ")} the stack declares (namespaceSelector ${JSON.stringify(w.namespaceSelector)}): ` +
                    "what is made there at run time passes unjudged, while its review accepted a judge of the cluster; select every namespace " +
                    "(no namespaceSelector, or one matching the platform's), or take it out of no-api-server-callouts' allowedNames.",
            });
        });
    }
    return out;
}

export const validatingWebhooksCoverNamespaces: StackValidationPolicy = {
    name: "validating-webhooks-cover-namespaces",
    description:
        "Every webhook of a ValidatingWebhookConfiguration (reviewed: no-api-server-callouts' allowedNames) selects every Namespace the stack " +
        "declares: a namespaceSelector leaving the platform's namespace out lets what is made there pass unjudged (session 63b).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => VALIDATING_WEBHOOK.test(r.type))) args.notApplicable("no validating webhooks");
        for (const f of uncoveredNamespaces(resources)) reportViolation(f.message, f.urn);
    },
};
