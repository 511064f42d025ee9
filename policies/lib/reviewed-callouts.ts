/**
 * Session 63: what an admission webhook, admission policy or aggregated API listed in `allowedNames`
 * (no-api-server-callouts, no-mutating-admission) may still not do. The review accepted a name; before this
 * the object behind it was read no further, so a later `failurePolicy: Ignore` (a policy engine failing open
 * while its server is down, which an attacker can arrange by loading it), a `matchPolicy: Exact` (a request
 * through another version of the resource is not sent), a validating webhook's `objectSelector` (whoever writes
 * the object chooses its labels, and so whether it is judged) or an APIService's `insecureSkipTLSVerify` passed
 * with the reviewed name.
 */
import { narrows } from "./admission";
import { identityReading } from "./cel-conditions";
import { arr, isRecord, str } from "./values";

const WEBHOOKS = /^kubernetes:admissionregistration\.k8s\.io\/(v[0-9a-z]+):(Validating|Mutating)WebhookConfiguration$/;
const MUTATING_POLICY = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:MutatingAdmissionPolicy$/;
const API_SERVICE = /^kubernetes:apiregistration\.k8s\.io\/v[0-9a-z]+:APIService$/;

/** The settings of a reviewed object that undo what the review relied on, each naming its field. */
export function reviewedCalloutProblems(type: string, props: Record<string, any>): string[] {
    const out: string[] = [];
    const webhooks = WEBHOOKS.exec(type);
    if (webhooks) {
        // admissionregistration v1beta1 (served until Kubernetes 1.22) defaulted both to the open side.
        const beta = webhooks[1] === "v1beta1";
        const validating = webhooks[2] === "Validating";
        arr(props.webhooks).forEach((w, i) => {
            if (!isRecord(w)) return;
            const at = `webhooks[${i}]${str(w.name) ? ` "${str(w.name)}"` : ""}`;
            if ((str(w.failurePolicy) ?? (beta ? "Ignore" : "Fail")) === "Ignore") {
                out.push(`${at} fails open (failurePolicy: Ignore${w.failurePolicy === undefined ? ", v1beta1's default" : ""}): while its server is down or slow ` +
                    `the API server admits ${validating ? "every request it would have judged" : "every object without its change"}`);
            }
            if ((str(w.matchPolicy) ?? (beta ? "Exact" : "Equivalent")) === "Exact") {
                out.push(`${at} matches exactly (matchPolicy: Exact${w.matchPolicy === undefined ? ", v1beta1's default" : ""}): a request through another ` +
                    "version or group of the same resource is not sent to it");
            }
            if (validating && narrows(w.objectSelector)) {
                out.push(`${at} has an objectSelector: whoever writes an object chooses its labels, and so whether the webhook judges it`);
            }
            // Session 63b: a CEL matchCondition skips whatever request it is false for (a namespace, a requester, the object's
            // own labels or annotations), in an expression the pack does not evaluate: the objectSelector's hole, unbounded.
            if (validating && arr(w.matchConditions).length > 0) {
                const expressions = arr(w.matchConditions).map((c) => (isRecord(c) ? str(c.expression) ?? "?" : "?"));
                // Session 65b: one reading who makes the request is named as what it is, an exemption by identity.
                const byIdentity = expressions.filter((e) => identityReading(e) !== undefined);
                out.push(`${at} has matchConditions (${expressions.map((e) => JSON.stringify(e)).join(", ")}): ` +
                    "a request they are false for (by its namespace, its requester, or labels whoever writes the object chooses) is not sent to it, " +
                    "and the pack does not evaluate CEL" + (byIdentity.length === 0 ? "" : `; ${byIdentity.map((e) => JSON.stringify(e)).join(", ")} ` +
                    "reads who makes the request (request.userInfo, authorizer): an exemption by identity, whose writes the webhook never sees"));
            }
        });
    }
    if (MUTATING_POLICY.test(type) && str(props.spec?.failurePolicy) === "Ignore") {
        out.push("fails open (spec.failurePolicy: Ignore): an object its expressions fail on is admitted unchanged");
    }
    if (API_SERVICE.test(type) && isRecord(props.spec?.service) && props.spec.insecureSkipTLSVerify === true) {
        out.push("reaches its Service without verifying its certificate (spec.insecureSkipTLSVerify): whoever answers on the way gets every request " +
            "of the group with the caller's identity");
    }
    return out;
}

export const REVIEWED_FIX = "the review accepted its name, not these settings: set failurePolicy: Fail and matchPolicy: Equivalent, judge every " +
    "object (no objectSelector or matchConditions on a validating webhook), verify the server (caBundle, no insecureSkipTLSVerify), or take it out of allowedNames.";
