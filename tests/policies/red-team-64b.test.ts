/**
 * Session 64b: what session 64 found and left open in admission-policy-bindings-enforce. An `excludeResourceRules` (a
 * binding's matchResources, its policy's matchConstraints) taking the platform's pods, Deployments, Secrets or `*` out
 * of the policy, and a binding of a policy the stack does not declare. Each refusal case passed the pack before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 64b".)
 */
import { describe, expect, it } from "vitest";
import { NS, prodStack } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (rs: TestResource[]) =>
    (await runPack(rs, "prod", { only: ["admission-policy-bindings-enforce"] })).map((v) => v.message);

const ADMISSION = "kubernetes:admissionregistration.k8s.io/v1";
const rule = (resources: unknown, extra: Record<string, unknown> = {}) => ({
    operations: ["CREATE", "UPDATE"], apiGroups: ["*"], apiVersions: ["*"], resources, ...extra,
});
const policy = (spec: Record<string, unknown> = {}, name = "no-host-path"): TestResource => ({
    type: `${ADMISSION}:ValidatingAdmissionPolicy`, name,
    props: { metadata: { name }, spec: { failurePolicy: "Fail", matchConstraints: { resourceRules: [rule(["*"])] },
        validations: [{ expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))" }], ...spec } },
});
const binding = (name: string, spec: Record<string, unknown>): TestResource => ({
    type: `${ADMISSION}:ValidatingAdmissionPolicyBinding`, name, props: { metadata: { name }, spec: { policyName: "no-host-path", validationActions: ["Deny"], ...spec } },
});
const TAIL = ": it does not enforce where it reads as a guard; bind with validationActions [Deny], select every namespace and object (no namespaceSelector " +
    "or objectSelector leaving any out, rules of scope \"*\" or \"Namespaced\"), and let the policy fail closed (failurePolicy: Fail, parameterNotFoundAction: Deny).";
const excluded = (name: string, what: string, field: string, index: number, r: unknown, at = "") =>
    `ValidatingAdmissionPolicyBinding "${name}" ${at}takes ${what} out of the policy (${field}.excludeResourceRules[${index}] ${JSON.stringify(r)}), ` +
    `which the platform runs in the namespace "${NS}" the stack declares: those pass unjudged${TAIL}`;

describe("admission-policy-bindings-enforce: an exclude takes nothing the platform runs out of the policy", () => {
    it("rejects a binding excluding pods, Deployments or Secrets, every resource (* or */*), under any group", async () => {
        const pods = rule(["pods"], { apiGroups: [""] });
        const deployments = rule(["deployments"], { apiGroups: ["extensions"], apiVersions: ["v1beta1"] }); // Equivalent: apps/v1 too
        const secrets = rule(["secrets", "pods/exec"]);
        const all = rule(["*"]);
        const allSub = rule(["*/*"], { operations: ["*"] });
        const names = await messages([...prodStack(), policy(),
            binding("pods", { matchResources: { excludeResourceRules: [pods] } }),
            binding("deployments", { matchResources: { excludeResourceRules: [rule(["namespaces"], { scope: "Cluster" }), deployments] } }),
            binding("secrets", { matchResources: { excludeResourceRules: [secrets] } }),
            binding("all", { matchResources: { excludeResourceRules: [all] } }),
            binding("all-sub", { matchResources: { excludeResourceRules: [allSub] } })]);
        expect(names.slice(0, 3)).toEqual([
            excluded("pods", "pods", "matchResources", 0, pods),
            excluded("deployments", "deployments", "matchResources", 1, deployments),
            excluded("secrets", "secrets", "matchResources", 0, secrets),
        ]);
        // * and */* take every resource the platform runs out: the list names them all, pods and Secrets among them.
        expect(names).toHaveLength(5);
        for (const [i, name, r] of [[3, "all", all], [4, "all-sub", allSub]] as const) {
            expect(names[i]).toMatch(new RegExp(`^ValidatingAdmissionPolicyBinding "${name}" takes .*\\bdeployments\\b.*\\bpods\\b.*\\bsecrets\\b.* out of the policy`));
            expect(names[i]).toContain(`(matchResources.excludeResourceRules[0] ${JSON.stringify(r)})`);
        }
    });

    it("rejects a declared policy whose matchConstraints exclude the platform's pods, and an exclude naming a Secret the stack declares", async () => {
        const pods = rule(["pods"]);
        const secret = { metadata: { name: "api-gateway-credentials", namespace: NS }, type: "Opaque", stringData: {} };
        const named = rule(["secrets"], { resourceNames: ["api-gateway-credentials"] });
        expect(await messages([...prodStack(), { type: "kubernetes:core/v1:Secret", name: "gw-creds", props: secret },
            policy({ matchConstraints: { resourceRules: [rule(["*"])], excludeResourceRules: [pods] } }),
            binding("named", { matchResources: { excludeResourceRules: [named] } })])).toEqual([
            excluded("named", "secrets", "matchResources", 0, named),
            excluded("named", "pods", "matchConstraints", 0, pods, `binds ValidatingAdmissionPolicy "no-host-path", which `),
        ]);
    });

    it("passes an exclude of what the platform does not run, a cluster-scoped or delete-only exclude, a subresource, other names, and unknown rules", async () => {
        expect(await messages([...prodStack(), policy({ matchConstraints: { resourceRules: [rule(["*"])], excludeResourceRules: [rule(["leases"])] } }),
            binding("not-platform", { matchResources: { excludeResourceRules: [rule(["leases", "events"]), rule(["certificatesigningrequests"])] } }),
            binding("cluster", { matchResources: { excludeResourceRules: [rule(["*"], { scope: "Cluster" })] } }),
            binding("deletes", { matchResources: { excludeResourceRules: [rule(["pods", "secrets"], { operations: ["DELETE", "CONNECT"] })] } }),
            binding("subresource", { matchResources: { excludeResourceRules: [rule(["pods/exec", "deployments/scale"])] } }),
            binding("other-names", { matchResources: { excludeResourceRules: [rule(["secrets", "pods"], { resourceNames: ["someone-elses"] })] } }),
            binding("later", { matchResources: { excludeResourceRules: UNKNOWN } }),
            binding("later-rule", { matchResources: { excludeResourceRules: [rule(UNKNOWN)] } })])).toEqual([]);
    });
});

describe("admission-policy-bindings-enforce: a binding's policy is declared by the stack (decided 64b: refused, not judged on the binding alone)", () => {
    const UNDECLARED = "where and whether it judges (its matchConstraints, excludes, failurePolicy) is out of the stack's sight, and a binding naming a " +
        "policy that does not exist is admitted and judges nothing; declare the policy in the stack beside its binding";

    it("rejects a binding of a policy the stack does not declare, and one naming no policy", async () => {
        expect(await messages([...prodStack(), policy(),
            binding("typo", { policyName: "no-host-paths" }),
            binding("nameless", { policyName: undefined })])).toEqual([
            `ValidatingAdmissionPolicyBinding "typo" binds the policy "no-host-paths", which the stack does not declare: ${UNDECLARED}${TAIL}`,
            `ValidatingAdmissionPolicyBinding "nameless" binds no policy (no policyName): ${UNDECLARED}${TAIL}`,
        ]);
    });

    it("passes a binding of a declared policy, and judges at up a policyName or a policy's name unknown during preview", async () => {
        expect(await messages([...prodStack(), policy(), binding("declared", {}), binding("later", { policyName: UNKNOWN })])).toEqual([]);
        const pending: TestResource = { ...policy({}, "pending"), props: { ...policy({}, "pending").props, metadata: { name: UNKNOWN } } };
        expect(await messages([...prodStack(), pending, binding("pending-binding", { policyName: "no-host-path" })])).toEqual([]);
    });
});
