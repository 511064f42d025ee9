/**
 * Session 64: holes session 63 found and left open; each violating case failed before its fix. A webhook's rules of
 * scope "Cluster", a ValidatingAdmissionPolicyBinding that does not enforce, a ServiceAccount token no role needs, and a
 * Job without a time limit. (Case, what happened, the fix: policies/README.md "Red team, session 64".)
 */
import { describe, expect, it } from "vitest";
import { backupCronJob, deployment, edit, NS, prodStack } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

const ADMISSION = "kubernetes:admissionregistration.k8s.io/v1";
const rule = (resources: string[], scope?: unknown) => ({
    operations: ["CREATE", "UPDATE"], apiGroups: ["*"], apiVersions: ["*"], resources, ...(scope === undefined ? {} : { scope }),
});
const hook = (kind: "Validating" | "Mutating", name: string, rules: unknown[]): TestResource => ({
    type: `${ADMISSION}:${kind}WebhookConfiguration`, name,
    props: { metadata: { name: "policy-engine" }, webhooks: [{ name: "validate.engine.io", clientConfig: { service: { name: "engine", namespace: "policy" } },
        rules, sideEffects: "None", admissionReviewVersions: ["v1"] }] },
});

describe("validating-webhooks-cover-namespaces: a webhook's rules of scope Cluster judge nothing in the platform's namespace", () => {
    const TAIL = "what is made there at run time passes unjudged, while its review accepted a judge of the cluster; give its rules scope \"*\" " +
        "(the default) or \"Namespaced\" for what is made in namespaces, or take it out of no-api-server-callouts' allowedNames.";

    it("rejects a webhook whose every rule is of scope Cluster, and a Cluster rule naming pods or Secrets (it matches none)", async () => {
        expect(await messages("validating-webhooks-cover-namespaces", [...prodStack(),
            hook("Validating", "cluster-only", [rule(["*"], "Cluster")]),
            hook("Validating", "dead-rule", [rule(["pods", "pods/exec"], "Cluster"), rule(["namespaces"], "*")])])).toEqual([
            `ValidatingWebhookConfiguration "cluster-only" webhooks[0] "validate.engine.io" matches only cluster-scoped objects (scope: "Cluster" on every ` +
                `rule of rules), so it judges nothing made in the namespace "${NS}" the stack declares: ${TAIL}`,
            `ValidatingWebhookConfiguration "dead-rule" webhooks[0] "validate.engine.io" rules[0] names the namespaced pods, pods/exec under scope: ` +
                `"Cluster", matching none of them: ${TAIL}`,
        ]);
    });

    it("passes scope *, Namespaced or unset, Cluster on cluster-scoped resources beside a namespaced rule, a mutating webhook, and an unknown scope", async () => {
        expect(await messages("validating-webhooks-cover-namespaces", [...prodStack(),
            hook("Validating", "a", [rule(["pods"], "*")]), hook("Validating", "b", [rule(["pods"], "Namespaced")]), hook("Validating", "c", [rule(["*"])]),
            hook("Validating", "d", [rule(["namespaces", "clusterroles"], "Cluster"), rule(["pods"], "Namespaced")]),
            hook("Validating", "e", [rule(["*"], UNKNOWN)]), hook("Mutating", "f", [rule(["*"], "Cluster")])])).toEqual([]);
    });
});

describe("admission-policy-bindings-enforce: a ValidatingAdmissionPolicyBinding denies, everywhere the platform lives", () => {
    const policy = (spec: Record<string, unknown> = {}): TestResource => ({
        type: `${ADMISSION}:ValidatingAdmissionPolicy`, name: "no-host-path",
        props: { metadata: { name: "no-host-path" }, spec: { failurePolicy: "Fail", matchConstraints: { resourceRules: [rule(["pods"])] },
            validations: [{ expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))" }], ...spec } },
    });
    const binding = (name: string, spec: Record<string, unknown>): TestResource => ({
        type: `${ADMISSION}:ValidatingAdmissionPolicyBinding`, name, props: { metadata: { name }, spec: { policyName: "no-host-path", validationActions: ["Deny"], ...spec } },
    });
    const TAIL = ": it does not enforce where it reads as a guard; bind with validationActions [Deny], select every namespace and object (no namespaceSelector " +
        "or objectSelector leaving any out, rules of scope \"*\" or \"Namespaced\"), and let the policy fail closed (failurePolicy: Fail, parameterNotFoundAction: Deny).";
    const notPlatform = { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [NS] }] };

    it("rejects a binding that only warns or audits, leaves the platform's namespace out, selects objects by label, or binds only cluster-scoped rules", async () => {
        expect(await messages("admission-policy-bindings-enforce", [...prodStack(), policy(),
            binding("warn", { validationActions: ["Warn", "Audit"] }),
            binding("not-platform", { matchResources: { namespaceSelector: notPlatform } }),
            binding("opt-out", { matchResources: { objectSelector: { matchExpressions: [{ key: "skip-policy", operator: "DoesNotExist" }] } } }),
            binding("cluster", { matchResources: { resourceRules: [rule(["*"], "Cluster")] } }),
            binding("param", { paramRef: { name: "limits", parameterNotFoundAction: "Allow" } })])).toEqual([
            `ValidatingAdmissionPolicyBinding "warn" has no Deny among its validationActions (["Warn","Audit"]): the API server admits every object the policy fails${TAIL}`,
            `ValidatingAdmissionPolicyBinding "not-platform" leaves out the namespace "${NS}" the stack declares (matchResources.namespaceSelector ${JSON.stringify(notPlatform)})${TAIL}`,
            `ValidatingAdmissionPolicyBinding "opt-out" has an objectSelector (matchResources.objectSelector {"matchExpressions":[{"key":"skip-policy","operator":"DoesNotExist"}]}): ` +
                `whoever writes an object chooses its labels, and so whether it is judged${TAIL}`,
            `ValidatingAdmissionPolicyBinding "cluster" matches only cluster-scoped objects (scope: "Cluster" on every rule of matchResources.resourceRules), so it ` +
                `judges nothing made in the namespace "${NS}" the stack declares${TAIL}`,
            `ValidatingAdmissionPolicyBinding "param" admits everything while its parameter is missing (paramRef.parameterNotFoundAction: Allow)${TAIL}`,
        ]);
    });

    it("rejects a binding of a policy the stack declares failing open or constrained out of the platform's namespace", async () => {
        expect(await messages("admission-policy-bindings-enforce", [...prodStack(),
            policy({ failurePolicy: "Ignore", matchConstraints: { resourceRules: [rule(["pods"])], namespaceSelector: { matchLabels: { enforced: "true" } } } }),
            binding("ok", {})])).toEqual([
            `ValidatingAdmissionPolicyBinding "ok" binds ValidatingAdmissionPolicy "no-host-path", which leaves out the namespace "${NS}" the stack declares ` +
                `(matchConstraints.namespaceSelector {"matchLabels":{"enforced":"true"}})${TAIL}`,
            `ValidatingAdmissionPolicyBinding "ok" binds ValidatingAdmissionPolicy "no-host-path", which fails open (failurePolicy: Ignore): an expression that ` +
                `errs, or a parameter kind not served, admits the object${TAIL}`,
        ]);
    });

    it("passes Deny (with Audit or Warn beside it) over every namespace, a selector the platform's namespace matches, and values unknown during preview", async () => {
        expect(await messages("admission-policy-bindings-enforce", [...prodStack(), policy(),
            binding("deny", {}), binding("deny-audit", { validationActions: ["Deny", "Audit"] }),
            binding("restricted", { matchResources: { namespaceSelector: { matchLabels: { "pod-security.kubernetes.io/enforce": "restricted" } }, objectSelector: {} } }),
            binding("later", { validationActions: UNKNOWN, matchResources: { namespaceSelector: UNKNOWN, objectSelector: UNKNOWN } }),
            binding("param", { paramRef: { name: "limits", parameterNotFoundAction: "Deny" } })])).toEqual([]);
    });
});

describe("service-account-tokens-bound: a pod mounts a token only for a ServiceAccount bound to a role", () => {
    const ns = NS;
    const account = (name: string, automount?: unknown): TestResource => ({
        type: "kubernetes:core/v1:ServiceAccount", name: `${name}-sa`,
        props: { metadata: { name, namespace: ns }, ...(automount === undefined ? {} : { automountServiceAccountToken: automount }) },
    });
    const roleBinding = (subjects: unknown): TestResource => ({
        type: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", name: "reader-binding",
        props: { metadata: { name: "reader", namespace: ns }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" }, subjects },
    });
    const role: TestResource = {
        type: "kubernetes:rbac.authorization.k8s.io/v1:Role", name: "reader-role",
        props: { metadata: { name: "reader", namespace: ns }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }] },
    };
    const pod = (workload: string, spec: Record<string, unknown>) => edit(deployment(workload, 3001), (p) => {
        delete p.spec.template.spec.automountServiceAccountToken;
        Object.assign(p.spec.template.spec, spec);
    });
    const FIX = "which no RoleBinding or ClusterRoleBinding of the stack binds to a role: a Kubernetes API credential it is granted nothing with, taken " +
        "with the container by whoever takes it; bind the ServiceAccount to the role it needs, or take the workload out of exemptWorkloads and set " +
        "automountServiceAccountToken: false on its pod template.";
    // Session 65: a pod mounting a token is automount-service-account-token's finding unless that policy exempts its workload;
    // these pods are exempt (the same list in both policies' config), so this policy judges their binding.
    const EXEMPT = "is exempt from automount-service-account-token (a workload calling the Kubernetes API) and mounts the token of the ServiceAccount";
    const exemptAll = (workloads: string[]) => ({
        "automount-service-account-token": { exemptWorkloads: workloads }, "service-account-tokens-bound": { exemptWorkloads: workloads },
    });

    it("rejects a pod mounting an unbound token: true, unset with an undeclared or mounting ServiceAccount, a projected token; and an unbound mounting ServiceAccount", async () => {
        const projected = { volumes: [{ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 600 } }] } }], automountServiceAccountToken: false };
        expect(await messages("service-account-tokens-bound", [...prodStack(), account("worker"),
            pod("explicit", { automountServiceAccountToken: true }), pod("defaulted", {}), pod("worker", { serviceAccountName: "worker" }),
            pod("projected", projected)], exemptAll(["explicit", "defaulted", "worker", "projected"]))).toEqual([
            `Deployment "explicit-deployment" ${EXEMPT} "default" (automountServiceAccountToken: true), ${FIX}`,
            `Deployment "defaulted-deployment" ${EXEMPT} "default" (automountServiceAccountToken unset, and its ServiceAccount, ` +
                `which the stack does not declare, mounts by default), ${FIX}`,
            `Deployment "worker-deployment" ${EXEMPT} "worker" (automountServiceAccountToken unset, and its ServiceAccount ` +
                `leaves it unset or true), ${FIX}`,
            `Deployment "projected-deployment" ${EXEMPT} "default" (the projected volume "token"), ${FIX}`,
            `ServiceAccount "worker-sa" is bound to no role by the stack and does not set automountServiceAccountToken: false, so every pod running as it ` +
                "that does not refuse the token mounts a Kubernetes API credential it has no use for; set automountServiceAccountToken: false on it, or " +
                "bind it to the role it needs.",
        ]);
    });

    it("passes the program's pods (false), unset under a ServiceAccount set false, and a token of a ServiceAccount a binding of the stack names", async () => {
        expect(await messages("service-account-tokens-bound", [...prodStack(), account("quiet", false), pod("quiet", { serviceAccountName: "quiet" }),
            role, account("operator"), roleBinding([{ kind: "ServiceAccount", name: "operator" }]), pod("operator", { serviceAccountName: "operator", automountServiceAccountToken: true })], exemptAll(["quiet", "operator"]))).toEqual([]);
        // Every ServiceAccount of the namespace, by its group, and subjects unknown during preview (judged at up).
        expect(await messages("service-account-tokens-bound", [...prodStack(), role, roleBinding([{ kind: "Group", name: `system:serviceaccounts:${ns}` }]), pod("grouped", {})], exemptAll(["grouped"]))).toEqual([]);
        expect(await messages("service-account-tokens-bound", [...prodStack(), role, roleBinding(UNKNOWN), pod("later", {})], exemptAll(["later"]))).toEqual([]);
    });

    it("rejects a token of a ServiceAccount bound in another namespace only", async () => {
        const elsewhere = roleBinding([{ kind: "ServiceAccount", name: "operator", namespace: "tools" }]);
        expect(await messages("service-account-tokens-bound", [...prodStack(), role, elsewhere, pod("operator", { serviceAccountName: "operator", automountServiceAccountToken: true })], exemptAll(["operator"])))
            .toEqual([`Deployment "operator-deployment" ${EXEMPT} "operator" (automountServiceAccountToken: true), ${FIX}`]);
    });
});

describe("job-active-deadlines: every Job and CronJob run has a time limit", () => {
    const job = (name: string, activeDeadlineSeconds?: unknown): TestResource => {
        const cron = backupCronJob("postgres", "postgres:16.4-bookworm", 999);
        const spec = { ...cron.props.spec.jobTemplate.spec };
        if (activeDeadlineSeconds === undefined) delete spec.activeDeadlineSeconds; else spec.activeDeadlineSeconds = activeDeadlineSeconds;
        return { type: "kubernetes:batch/v1:Job", name, props: { apiVersion: "batch/v1", kind: "Job", metadata: { ...cron.props.metadata, name }, spec } };
    };
    const cron = (deadline?: unknown) => edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => {
        if (deadline === undefined) delete p.spec.jobTemplate.spec.activeDeadlineSeconds; else p.spec.jobTemplate.spec.activeDeadlineSeconds = deadline;
    });
    const FIX = "set it to the longest a run may take (the platform's backups: 3 h), at most 43200 seconds.";

    it("rejects a Job or CronJob without one, one above 12 h, one not a positive whole number, and a JobList's item without one", async () => {
        const list: TestResource = { type: "kubernetes:batch/v1:JobList", name: "jobs", props: { apiVersion: "batch/v1", kind: "JobList", items: [job("listed").props] } };
        expect(await messages("job-active-deadlines", [job("migrate"), cron(), job("forever", 604_800), cron("3600"), list])).toEqual([
            `Job "migrate" has no spec.activeDeadlineSeconds: a run stuck (a lock never released, a peer that never answers, a hung write) holds its pod, ` +
                `its connections and its credentials forever, and a CronJob under Forbid skips every later tick; ${FIX}`,
            `CronJob "postgres-backup-cronjob" has no spec.jobTemplate.spec.activeDeadlineSeconds: a run stuck (a lock never released, a peer that never ` +
                `answers, a hung write) holds its pod, its connections and its credentials forever, and a CronJob under Forbid skips every later tick; ${FIX}`,
            `Job "forever" has spec.activeDeadlineSeconds 604800, above 43200 seconds: a run going on that long is stuck, and a limit past it is none; ${FIX}`,
            `CronJob "postgres-backup-cronjob" has spec.jobTemplate.spec.activeDeadlineSeconds "3600", not a positive whole number of seconds; ${FIX}`,
            `Job "listed" has no spec.activeDeadlineSeconds: a run stuck (a lock never released, a peer that never answers, a hung write) holds its pod, ` +
                `its connections and its credentials forever, and a CronJob under Forbid skips every later tick; ${FIX}`,
        ]);
        // The bound is configurable: a stack may hold its jobs to less.
        expect(await messages("job-active-deadlines", [job("hour", 3_600)], { all: "mandatory", "job-active-deadlines": { maxActiveDeadlineSeconds: 1_800 } }))
            .toEqual(["Job \"hour\" has spec.activeDeadlineSeconds 3600, above 1800 seconds: a run going on that long is stuck, and a limit past it is none; " +
                "set it to the longest a run may take (the platform's backups: 3 h), at most 1800 seconds."]);
    });

    it("passes the program's limits (the migration's hour, the backups' 3 h), 12 h exactly, and a limit unknown during preview", async () => {
        expect(await messages("job-active-deadlines", [...prodStack(), job("migrate", 3_600), job("half-day", 43_200), job("later", UNKNOWN), cron(UNKNOWN),
            edit(cron(), (p) => { p.spec.jobTemplate = UNKNOWN; })])).toEqual([]);
    });
});
