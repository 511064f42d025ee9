/**
 * Session 65b: the two policy gaps session 65's red team found in the admission judgements. A ValidatingAdmissionPolicy
 * whose matchConditions read who makes the request (`request.userInfo.username != 'ci-deployer'`, `!('system:masters' in
 * request.userInfo.groups)`, `authorizer`) skips one principal's writes, an exemption by identity, and passed: refused now
 * unless admission-policy-bindings-enforce's `exemptPrincipals` lists each principal it may skip (a condition whose skipped
 * principals the pack cannot bound is refused whatever the list). A listed validating webhook's matchConditions were refused
 * already (no-api-server-callouts, 63b); one reading the requester is now named an exemption by identity. And a `*`
 * resource rule under `matchPolicy: Exact` naming a group or version the platform's kinds are not served under passed
 * (only resources named one by one were judged): refused now. (Case, what happened, the fix: policies/README.md
 * "Red team, session 65b".)
 */
import { describe, expect, it } from "vitest";
import { NS, prodStack } from "./fixtures";
import { loadConfig, runPack, TestResource, UNKNOWN } from "./run-pack";

const ADMISSION = "kubernetes:admissionregistration.k8s.io/v1";
const POLICY_NAME = "admission-policy-bindings-enforce";
const rule = (resources: unknown, extra: Record<string, unknown> = {}) => ({
    operations: ["CREATE", "UPDATE"], apiGroups: ["*"], apiVersions: ["*"], resources, ...extra,
});
const policy = (spec: Record<string, unknown> = {}): TestResource => ({
    type: `${ADMISSION}:ValidatingAdmissionPolicy`, name: "no-host-path",
    props: { metadata: { name: "no-host-path" }, spec: { failurePolicy: "Fail", matchConstraints: { resourceRules: [rule(["*"])] },
        validations: [{ expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))" }], ...spec } },
});
const binding = (spec: Record<string, unknown> = {}): TestResource => ({
    type: `${ADMISSION}:ValidatingAdmissionPolicyBinding`, name: "b", props: { metadata: { name: "b" }, spec: { policyName: "no-host-path", validationActions: ["Deny"], ...spec } },
});
const withExempt = (users: string[] = [], groups: string[] = []) => ({ all: "mandatory" as const, [POLICY_NAME]: { exemptPrincipals: { users, groups } } });
const admission = async (rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack([...prodStack(), ...rs], config, { only: [POLICY_NAME] })).map((v) => v.message);
const conditioned = (expression: string) => [policy({ matchConditions: [{ name: "c", expression }] }), binding()];

const TAIL = ": it does not enforce where it reads as a guard; bind with validationActions [Deny], select every namespace and object (no " +
    "namespaceSelector or objectSelector leaving any out, rules of scope \"*\" or \"Namespaced\"), and let the policy fail closed (failurePolicy: " +
    "Fail, parameterNotFoundAction: Deny).";
const AT = `ValidatingAdmissionPolicyBinding "b" binds ValidatingAdmissionPolicy "no-host-path", which has matchConditions[0] `;
const identity = (expression: string, who: string) => `${AT}${JSON.stringify(expression)}, which reads who makes the request (request.userInfo, ` +
    `authorizer): the API server skips the policy for the writes of ${who}, an exemption by identity admission-policy-bindings-enforce's ` +
    "exemptPrincipals does not list (drop the condition, or list each principal there once the exemption is reviewed)" + TAIL;
const unbounded = (expression: string) => `${AT}${JSON.stringify(expression)}, which reads who makes the request (request.userInfo, authorizer): ` +
    "the API server skips the policy for the writes of principals the pack cannot bound (not only users by username != or groups by !(... in " +
    "groups)), an exemption by identity admission-policy-bindings-enforce's exemptPrincipals cannot list (drop the condition, or write it as " +
    "username != or !(... in groups))" + TAIL;

// ------------------------------------------------------------------------------------------------ 1. exemption by identity

describe("admission-policy-bindings-enforce: a matchCondition on the requester is an exemption by identity", () => {
    it.each([
        ["request.userInfo.username != 'ci-deployer'", `the user "ci-deployer"`],
        ["request.userInfo.username != \"ci-deployer\"", `the user "ci-deployer"`],
        ["'ci-deployer' != request.userInfo.username", `the user "ci-deployer"`],
        ["request['userInfo']['username'] != 'ci-deployer'", `the user "ci-deployer"`],
        ["!(request.userInfo.username == 'ci-deployer')", `the user "ci-deployer"`],
        ["!(request.userInfo.username in ['ci-deployer', 'system:serviceaccount:argocd:argocd'])",
            `the user "ci-deployer", the user "system:serviceaccount:argocd:argocd"`],
        ["!('system:masters' in request.userInfo.groups)", `the group "system:masters"`],
        ["request.userInfo.username != 'ci-deployer' && !('system:masters' in request.userInfo.groups)", `the user "ci-deployer", the group "system:masters"`],
        [`request.namespace != '${NS}' || request.userInfo.username != 'ci-deployer'`, `the user "ci-deployer"`],
        ["has(object.spec) ? request.userInfo.username != 'ci-deployer' : true", `the user "ci-deployer"`],
    ])("rejects the exemption %s, naming whom it skips", async (expression, who) => {
        expect(await admission(conditioned(expression))).toEqual([identity(expression, who)]);
    });

    it.each([
        ["!request.userInfo.username.startsWith('system:')"],
        ["request.userInfo.username == 'ci-deployer'"],
        ["request.userInfo.username in ['ci-deployer']"],
        ["request.userInfo.groups.all(g, g != 'ops')"],
        ["size(request.userInfo.groups) > 0"],
        ["!authorizer.group('').resource('pods').check('escalate').allowed()"],
        ["request[request.kind.kind == 'Pod' ? 'userInfo' : 'namespace'] != 'x'"],
        ["request.exists(k, k == 'x')"],
        ["request.userInfo.username != ('ci-' + 'deployer')"],
        ["request.userInfo.username != 'ci\\x2ddeployer'"],
        ["request.userInfo.username == 'x' ? false : true"],
    ])("rejects %s: whom it skips is not bounded, whatever exemptPrincipals lists", async (expression) => {
        expect(await admission(conditioned(expression), withExempt(["ci-deployer", "x", "system:serviceaccount:argocd:argocd"], ["ops", "system:masters"])))
            .toEqual([unbounded(expression)]);
    });

    it("passes an exemption every principal of which exemptPrincipals lists", async () => {
        const config = withExempt(["ci-deployer", "system:serviceaccount:argocd:argocd"], ["system:masters"]);
        for (const expression of [
            "request.userInfo.username != 'ci-deployer'",
            "!(request.userInfo.username in ['ci-deployer', 'system:serviceaccount:argocd:argocd'])",
            "request.userInfo.username != 'ci-deployer' && !('system:masters' in request.userInfo.groups)",
        ]) expect(await admission(conditioned(expression), config), expression).toEqual([]);
    });

    it("names only the principals exemptPrincipals does not list, and a user listed as a group is not listed", async () => {
        const expression = "request.userInfo.username != 'ci-deployer' && !('system:masters' in request.userInfo.groups)";
        expect(await admission(conditioned(expression), withExempt(["ci-deployer"]))).toEqual([identity(expression, `the group "system:masters"`)]);
        expect(await admission(conditioned(expression), withExempt([], ["ci-deployer", "system:masters"]))).toEqual([identity(expression, `the user "ci-deployer"`)]);
    });

    it("reports a condition both false for the platform's namespace and exempting a principal twice, once per hole", async () => {
        const expression = `request.namespace != '${NS}' && request.userInfo.username != 'ci-deployer'`;
        const out = await admission(conditioned(expression));
        expect(out).toHaveLength(2);
        expect(out[0]).toContain(`false for every write in the namespace "${NS}" the stack declares`);
        expect(out[1]).toBe(identity(expression, `the user "ci-deployer"`));
    });

    it.each([
        [`request.namespace == '${NS}'`],
        ["request.operation != 'DELETE' && request['namespace'] != 'kube-system'"],
        ["object.metadata.name != 'userInfo-cache'"],
        ["has(object.spec.template)"],
        ["request.kind.kind == 'Pod' && request.dryRun != true"],
    ])("passes %s, which does not read the requester", async (expression) => {
        expect(await admission(conditioned(expression))).toEqual([]);
    });

    it("judges at up matchConditions unknown during preview", async () => {
        expect(await admission([policy({ matchConditions: UNKNOWN }), binding()])).toEqual([]);
    });

    it("every config file sets exemptPrincipals empty (no reviewed exemption by identity yet)", () => {
        for (const stack of ["dev", "prod", "local-k8s"]) {
            const cfg = loadConfig(stack) as Record<string, any>;
            expect(cfg[POLICY_NAME]?.exemptPrincipals, stack).toEqual({ users: [], groups: [] });
        }
    });
});

describe("admission-policy-bindings-enforce: a matchCondition reads the policy's variables through", () => {
    const withVariables = (expression: string, variables: unknown) => [policy({ variables, matchConditions: [{ name: "c", expression }] }), binding()];
    const v = (name: string, expression: string) => ({ name, expression });

    it.each([
        ["variables.user != 'ci-deployer'", [v("user", "request.userInfo.username")], `the user "ci-deployer"`],
        ["!variables.isCi", [v("isCi", "request.userInfo.username == 'ci-deployer'")], `the user "ci-deployer"`],
        ["variables['who'].username != 'ci-deployer'", [v("who", "request.userInfo")], `the user "ci-deployer"`],
        ["variables.name != 'ci-deployer'", [v("who", "request.userInfo"), v("name", "variables.who.username")], `the user "ci-deployer"`],
    ])("rejects %s, whose variable reads the requester", async (expression, variables, who) => {
        expect(await admission(withVariables(expression, variables))).toEqual([identity(expression, who)]);
    });

    it.each([
        ["variables.user != 'x'", [v("user", "request.userInfo.username + ''")]],
        ["variables.all != 'x'", [v("all", "request")]],
        ["variables[variables.key] != 'x'", [v("key", "'user'"), v("user", "request.userInfo.username")]],
    ])("rejects %s, whose variable reads the requester in a way the pack cannot bound", async (expression, variables) => {
        expect(await admission(withVariables(expression, variables), withExempt(["x"]))).toEqual([unbounded(expression)]);
    });

    it("rejects a condition false for the platform's namespace through a variable", async () => {
        const expression = `variables.ns != '${NS}'`;
        const out = await admission(withVariables(expression, [v("ns", "request.namespace")]));
        expect(out).toEqual([`${AT}${JSON.stringify(expression)}, false for every write in the namespace "${NS}" the stack declares: the API server skips the policy there${TAIL}`]);
    });

    it("passes a variable on the object, and judges at up variables unknown during preview", async () => {
        expect(await admission(withVariables("variables.n != 'x'", [v("n", "object.metadata.name")]))).toEqual([]);
        expect(await admission(withVariables("variables.user != 'ci-deployer'", UNKNOWN))).toEqual([]);
    });
});

describe("no-api-server-callouts: a listed validating webhook's matchCondition on the requester is named an exemption by identity", () => {
    const reviewed = { all: "mandatory" as const, "no-api-server-callouts": { allowedNames: ["engine"] }, "no-mutating-admission": { allowedNames: ["engine"] } };
    const hook = (kind: "Validating" | "Mutating", expressions: string[]): TestResource => ({
        type: `${ADMISSION}:${kind}WebhookConfiguration`, name: "engine",
        props: { metadata: { name: "engine" }, webhooks: [{ name: "validate.engine.io", failurePolicy: "Fail", sideEffects: "None", admissionReviewVersions: ["v1"],
            clientConfig: { service: { name: "engine", namespace: "engine", path: "/validate" }, caBundle: "Y2E=" }, rules: [rule(["pods"])],
            matchConditions: expressions.map((expression, i) => ({ name: `c${i}`, expression })) }] },
    });
    const callouts = async (r: TestResource, policyName: string) => (await runPack([r], reviewed, { only: [policyName] })).map((v) => v.message);

    it("rejects one, naming the condition that reads the requester", async () => {
        const out = await callouts(hook("Validating", ["object.kind == 'Pod'", "request.userInfo.username != 'ci-deployer'"]), "no-api-server-callouts");
        expect(out).toHaveLength(1);
        expect(out[0]).toContain(`the pack does not evaluate CEL; "request.userInfo.username != 'ci-deployer'" reads who makes the request ` +
            "(request.userInfo, authorizer): an exemption by identity, whose writes the webhook never sees");
    });

    it("rejects a condition not on the requester as 63b did, without the identity sentence", async () => {
        const out = await callouts(hook("Validating", ["object.kind == 'Pod'"]), "no-api-server-callouts");
        expect(out).toHaveLength(1);
        expect(out[0]).not.toContain("exemption by identity");
    });

    it("passes a listed mutating webhook skipping a requester: its mutation skipped leaves the objects as the pack checked them", async () => {
        expect(await callouts(hook("Mutating", ["request.userInfo.username != 'ci-deployer'"]), "no-mutating-admission")).toEqual([]);
    });
});

// ------------------------------------------------------------------------------------------------ 2. Exact with `*`

describe("admission-policy-bindings-enforce: matchPolicy Exact over every resource (`*`) of a group or version the platform is not served under", () => {
    const exact = (rules: unknown[], matchPolicy = "Exact") => policy({ matchConstraints: { matchPolicy, resourceRules: rules } });
    const missed = async (rules: unknown[]) => (await admission([exact(rules), binding()]))
        .map((m) => /which matches every resource \(.*\) under matchPolicy: Exact, but not under (\S+), which the platform's (\S+) are served under/.exec(m))
        .map((m) => (m ? `${m[2]} ${m[1]}` : "other"));

    it("rejects `*` under extensions/v1beta1: the platform's Deployments (apps/v1) and what else it runs there", async () => {
        const out = await missed([rule(["*"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] })]);
        expect(out).toContain("deployments apps/v1");
        expect(out).toContain("replicasets apps/v1");
        expect(out).not.toContain("other");
        expect(out.some((m) => m.startsWith("pods"))).toBe(false);
    });

    it("rejects `*/*` under apps/v1beta2", async () => {
        const out = await missed([rule(["*/*"], { apiGroups: ["apps"], apiVersions: ["v1beta2"] })]);
        expect(out).toContain("deployments apps/v1");
        expect(out.every((m) => /^(deployments|statefulsets|daemonsets|replicasets|controllerrevisions) apps\/v1$/.test(m))).toBe(true);
    });

    it("rejects `*` in every group under v1beta1 only: the pods (v1) too", async () => {
        const out = await missed([rule(["*"], { apiGroups: ["*"], apiVersions: ["v1beta1"] })]);
        expect(out).toContain("pods v1");
        expect(out).toContain("deployments apps/v1");
    });

    it("names the rule in the message", async () => {
        const r = rule(["*"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] });
        const out = await admission([exact([r]), binding()]);
        expect(out[0]).toContain(`which matches every resource (matchConstraints.resourceRules[0] ${JSON.stringify(r)}) under matchPolicy: Exact`);
    });

    it("judges a binding's matchResources the same way", async () => {
        const out = await admission([policy(), binding({ matchResources: { matchPolicy: "Exact", resourceRules: [rule(["*"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] })] } })]);
        expect(out.some((m) => m.startsWith(`ValidatingAdmissionPolicyBinding "b" matches every resource (matchResources.resourceRules[0]`))).toBe(true);
    });

    it.each([
        ["`*` of every group and version", [rule(["*"])]],
        ["`*` of the core group v1 only (a policy about core kinds: apps' are not its business)", [rule(["*"], { apiGroups: [""], apiVersions: ["v1"] })]],
        ["`*` under extensions/v1beta1 beside apps/v1 and networking.k8s.io/v1", [rule(["*"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] }),
            rule(["*"], { apiGroups: ["apps", "networking.k8s.io"], apiVersions: ["v1"] })]],
        ["`*` under every group's v1 and v2", [rule(["*"], { apiGroups: ["*"], apiVersions: ["v1", "v2"] })]],
    ])("passes %s under Exact", async (_, rules) => {
        expect(await admission([exact(rules), binding()])).toEqual([]);
    });

    it("passes `*` under extensions/v1beta1 with matchPolicy Equivalent (the API server converts)", async () => {
        expect(await admission([exact([rule(["*"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] })], "Equivalent"), binding()])).toEqual([]);
    });

    it("judges at up a `*` rule whose groups are unknown during preview", async () => {
        expect(await admission([exact([rule(["*"], { apiGroups: UNKNOWN, apiVersions: ["v1beta1"] })]), binding()])).toEqual([]);
    });
});
