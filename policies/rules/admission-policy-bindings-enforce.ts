import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { declaredNamespaces, DeclaredNamespace, exactMisses, namespacesLeftOut, narrows, platformExcluded, platformResources, PlatformResource, scopeFinding, scopeProblems } from "../lib/admission";
import { identityReading, PolicyVariables, Principals, writesSkipped } from "../lib/cel-conditions";
import { readConfig } from "../lib/config";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { describe, objectName } from "../lib/workloads";

const BINDING = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:ValidatingAdmissionPolicyBinding$/;
const POLICY = /^kubernetes:admissionregistration\.k8s\.io\/v[0-9a-z]+:ValidatingAdmissionPolicy$/;

/** What a match block (a binding's `matchResources`, its policy's `matchConstraints`) leaves unjudged, each naming its field. */
function matchProblems(match: unknown, field: string, namespaces: DeclaredNamespace[], platform: Map<string, PlatformResource>): string[] {
    if (!isRecord(match)) return [];
    const out: string[] = [];
    const scope = scopeFinding(match.resourceRules);
    if (scope) out.push(...scopeProblems(scope, `${field}.resourceRules`, namespaces.map((n) => n.name)));
    for (const m of exactMisses(match, platform)) {
        const how = m.wildcardRules
            ? `matches every resource (${m.wildcardRules.map((i) => `${field}.resourceRules[${i}] ${JSON.stringify(arr(match.resourceRules)[i])}`).join(", ")})`
            : `names ${m.resource} in ${field}.resourceRules`;
        out.push(`${how} under matchPolicy: Exact, but not under ${m.served.join(", ")}, which the platform's ` +
            `${m.resource} are served under: it judges none of them`);
    }
    for (const x of platformExcluded(match.excludeResourceRules, platform)) {
        const where = `the namespace${x.namespaces.length > 1 ? "s" : ""} ${x.namespaces.map((n) => `"${n}"`).join(", ")} the stack declares`;
        out.push(`takes ${x.resources.join(", ")} out of the policy (${field}.excludeResourceRules[${x.index}] ` +
            `${JSON.stringify(arr(match.excludeResourceRules)[x.index])}), which the platform runs in ${where}: those pass unjudged`);
    }
    if (scope?.clusterOnly) return out;
    const left = namespacesLeftOut(match.namespaceSelector, namespaces);
    if (left.length > 0) {
        out.push(`leaves out the namespace${left.length > 1 ? "s" : ""} ${left.map((n) => `"${n}"`).join(", ")} the stack declares ` +
            `(${field}.namespaceSelector ${JSON.stringify(match.namespaceSelector)})`);
    }
    if (!isUnknown(match.objectSelector) && narrows(match.objectSelector)) {
        out.push(`has an objectSelector (${field}.objectSelector ${JSON.stringify(match.objectSelector)}): whoever writes an object chooses its labels, ` +
            "and so whether it is judged");
    }
    return out;
}

/**
 * Session 65: the policy's `matchConditions` (CEL) the platform's writes surely fail (lib/cel-conditions.ts reads what can be
 * judged: constants, the namespace, its labels, the operation): `false`, `request.namespace != "ai-trading"`,
 * `!(request.namespace in [...])`. The API server skips the policy for every such object. A condition on the object's
 * other fields is not judged, nor one unknown during preview.
 * Session 65b: a condition reading who makes the request (`request.userInfo`, `authorizer`) skips the policy for some
 * principal's writes: an exemption by identity, refused unless every principal it may skip is listed in `exemptPrincipals`
 * (users by username, groups by name; empty by default) and the pack can bound them (`identityReading`): the forms
 * `request.userInfo.username != 'x'`, `!(request.userInfo.username in [...])`, `!('g' in request.userInfo.groups)`, joined by
 * `&&`, `||` and conditions not reading the requester. The policy's `variables` are read through (`variables.user` is
 * what `user`'s expression says), for both judgements.
 */
function conditionProblems(conditions: unknown, namespaces: DeclaredNamespace[], exempt: Principals, variableList: unknown): string[] {
    if (isUnknown(conditions)) return [];
    // The policy's variables, which its conditions may read (`variables.user`); one unknown during preview is judged at up.
    const variables: PolicyVariables = {};
    for (const v of isUnknown(variableList) ? [] : arr(variableList)) {
        const name = isRecord(v) ? str(v.name) : undefined;
        const expression = isRecord(v) ? str(v.expression) : undefined;
        if (name !== undefined && expression !== undefined) variables[name] = expression;
    }
    return arr(conditions).flatMap((c, index) => {
        const expression = isRecord(c) ? str(c.expression) : undefined;
        if (expression === undefined) return [];
        const out: string[] = [];
        const skipped = writesSkipped(expression, namespaces, variables);
        if (skipped.length > 0) {
            const byNamespace = new Map<string, string[]>();
            for (const w of skipped) byNamespace.set(w.namespace.name, [...(byNamespace.get(w.namespace.name) ?? []), w.operation]);
            const where = [...byNamespace].map(([ns, ops]) => `${ops.length === 2 ? "every write" : `every ${ops[0]}`} in the namespace "${ns}"`).join(", ");
            out.push(`has matchConditions[${index}] ${JSON.stringify(expression)}, false for ${where} the stack declares: the API server skips the policy there`);
        }
        const identity = identityReading(expression, variables);
        if (identity) {
            const at = `has matchConditions[${index}] ${JSON.stringify(expression)}, which reads who makes the request (request.userInfo, authorizer): ` +
                "the API server skips the policy for the writes of ";
            if (!identity.skips) {
                out.push(`${at}principals the pack cannot bound (not only users by username != or groups by !(... in groups)), an exemption by identity ` +
                    "admission-policy-bindings-enforce's exemptPrincipals cannot list (drop the condition, or write it as username != or !(... in groups))");
            } else {
                const users = identity.skips.users.filter((u) => !exempt.users.includes(u));
                const groups = identity.skips.groups.filter((g) => !exempt.groups.includes(g));
                const who = [...users.map((u) => `the user ${JSON.stringify(u)}`), ...groups.map((g) => `the group ${JSON.stringify(g)}`)];
                if (who.length > 0) {
                    out.push(`${at}${who.join(", ")}, an exemption by identity admission-policy-bindings-enforce's exemptPrincipals does not list ` +
                        "(drop the condition, or list each principal there once the exemption is reviewed)");
                }
            }
        }
        return out;
    });
}

/**
 * Session 64. A ValidatingAdmissionPolicy judges nothing by itself: its binding says where and how. A binding whose
 * `validationActions` lacks Deny (Warn, Audit: the API server admits the object and says so), whose
 * `matchResources.namespaceSelector` leaves out a namespace the stack declares, whose `objectSelector` lets whoever writes
 * an object choose by its labels, whose `resourceRules` are all of scope "Cluster", or whose missing parameter admits
 * everything (`paramRef.parameterNotFoundAction: Allow`) does not enforce where it reads as a guard: judged as
 * validating-webhooks-cover-namespaces and lib/reviewed-callouts.ts judge a webhook. The policy it binds, when the stack
 * declares it, is read too: its `matchConstraints` (the same holes, before the binding's) and `failurePolicy: Ignore` (an
 * expression erring, or its parameter's kind missing, admits). An `excludeResourceRules` (the binding's or the policy's)
 * that takes out a resource the platform runs in a declared namespace (its pods, Deployments, Secrets, ..., or `*`) is
 * refused: the API server judges nothing an exclude matches (lib/admission.ts `platformExcluded` says how it is read).
 * A value unknown during preview is judged at `up`.
 *
 * Session 64b decided: a binding of a policy the stack does not declare is refused, not judged on its own fields. Where
 * and whether such a binding judges is the policy's to say (its matchConstraints, excludes and failurePolicy), out of
 * the pack's sight and changed without a preview of this stack showing it; and the API server accepts a binding naming
 * no policy at all (a typo, a policy deleted), which then judges nothing while reading as a guard. A policy the platform
 * binds is declared beside its binding, where both are judged together.
 */
export function unenforcingBindings(resources: StackResource[], exempt: Principals = { users: [], groups: [] }): Finding[] {
    const namespaces = declaredNamespaces(resources);
    const platform = platformResources(resources, namespaces);
    const policies = resources.filter((r) => POLICY.test(r.type));
    const out: Finding[] = [];
    for (const b of resources.filter((r) => BINDING.test(r.type))) {
        const spec = b.props.spec;
        if (!isRecord(spec)) continue;
        const problems: string[] = [];
        const actions = spec.validationActions;
        if (!isUnknown(actions) && !arr(actions).some((a) => str(a) === "Deny")) {
            problems.push(`has no Deny among its validationActions (${JSON.stringify(arr(actions))}): the API server admits every object the policy fails`);
        }
        if (str(spec.paramRef?.parameterNotFoundAction) === "Allow") {
            problems.push("admits everything while its parameter is missing (paramRef.parameterNotFoundAction: Allow)");
        }
        problems.push(...matchProblems(spec.matchResources, "matchResources", namespaces, platform));
        const policyName = str(spec.policyName);
        const policy = policyName === undefined ? undefined : policies.find((p) => objectName(p.props, p.name) === policyName);
        if (!policy && !isUnknown(spec.policyName) && !policies.some((p) => isUnknown(p.props.metadata?.name))) {
            problems.push(`binds ${policyName === undefined ? "no policy (no policyName)" : `the policy "${policyName}", which the stack does not declare`}: ` +
                "where and whether it judges (its matchConstraints, excludes, failurePolicy) is out of the stack's sight, and a binding naming a policy " +
                "that does not exist is admitted and judges nothing; declare the policy in the stack beside its binding");
        }
        if (policy && isRecord(policy.props.spec)) {
            const at = `binds ${describe(policy.type, policy.name)}, which`;
            problems.push(...matchProblems(policy.props.spec.matchConstraints, "matchConstraints", namespaces, platform).map((p) => `${at} ${p}`));
            problems.push(...conditionProblems(policy.props.spec.matchConditions, namespaces, exempt, policy.props.spec.variables).map((p) => `${at} ${p}`));
            if (str(policy.props.spec.failurePolicy) === "Ignore") {
                problems.push(`${at} fails open (failurePolicy: Ignore): an expression that errs, or a parameter kind not served, admits the object`);
            }
        }
        for (const p of problems) {
            out.push({
                urn: b.urn,
                message: `${describe(b.type, b.name)} ${p}: it does not enforce where it reads as a guard; bind with validationActions [Deny], ` +
                    "select every namespace and object (no namespaceSelector or objectSelector leaving any out, rules of scope \"*\" or \"Namespaced\"), " +
                    "and let the policy fail closed (failurePolicy: Fail, parameterNotFoundAction: Deny).",
            });
        }
    }
    return out;
}

export const admissionPolicyBindingsEnforce: StackValidationPolicy = {
    name: "admission-policy-bindings-enforce",
    description:
        "A ValidatingAdmissionPolicyBinding enforces: validationActions include Deny, its matchResources (and its policy's matchConstraints) " +
        "select every Namespace the stack declares and every object (no objectSelector, rules not all of scope \"Cluster\", no excludeResourceRules " +
        "taking out a resource the platform runs there), neither fails open (failurePolicy: Ignore, parameterNotFoundAction: Allow), the policy " +
        "it binds is declared by the stack (session 64, 64b), and no matchConditions of it is false for the platform's writes (constants, the " +
        "namespace, its labels, the operation: session 65), nor exempts a principal by identity (request.userInfo, authorizer) unless " +
        "exemptPrincipals lists it (session 65b).",
    severity: "high",
    configSchema: {
        properties: {
            exemptPrincipals: {
                type: "object",
                properties: {
                    users: { type: "array", items: { type: "string" }, default: [] },
                    groups: { type: "array", items: { type: "string" }, default: [] },
                },
                additionalProperties: false,
                default: { users: [], groups: [] },
                description: "The principals (users by username, groups by name) a bound policy's matchConditions may exempt by identity " +
                    "(request.userInfo.username != 'x', !('g' in request.userInfo.groups)): reviewed exemptions only; empty by default (session 65b)",
            },
        },
    },
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => BINDING.test(r.type))) args.notApplicable("no validating admission policy bindings");
        const { exemptPrincipals } = readConfig(args, { exemptPrincipals: { users: [] as string[], groups: [] as string[] } });
        const exempt = { users: exemptPrincipals.users ?? [], groups: exemptPrincipals.groups ?? [] };
        for (const f of unenforcingBindings(resources, exempt)) reportViolation(f.message, f.urn);
    },
};
