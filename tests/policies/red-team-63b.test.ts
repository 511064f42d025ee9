/**
 * Session 63b: what red-team-63 found and left open (a reviewed webhook's namespaceSelector, Pod Security's warn and audit
 * labels), then new holes; each violating case failed before its fix. (Case, what happened, the fix: policies/README.md
 * "Red team, session 63", 63b.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, NS, prodStack } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

const hook = (kind: "Validating" | "Mutating", name: string, namespaceSelector: unknown, extra: Record<string, unknown> = {}): TestResource => ({
    type: `kubernetes:admissionregistration.k8s.io/v1:${kind}WebhookConfiguration`, name,
    props: { metadata: { name: "policy-engine" }, webhooks: [{ name: "validate.engine.io", clientConfig: { service: { name: "engine", namespace: "policy" } },
        rules: [{ operations: ["CREATE", "UPDATE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"] }], sideEffects: "None",
        admissionReviewVersions: ["v1"], ...(namespaceSelector === undefined ? {} : { namespaceSelector }), ...extra }] },
});
const namespace = (name: string, labels: unknown): TestResource => ({ type: "kubernetes:core/v1:Namespace", name, props: { metadata: { name, labels } } });

describe("validating-webhooks-cover-namespaces: a reviewed webhook judges every namespace the stack declares", () => {
    const TAIL = "what is made there at run time passes unjudged, while its review accepted a judge of the cluster; select every namespace " +
        "(no namespaceSelector, or one matching the platform's), or take it out of no-api-server-callouts' allowedNames.";
    const notPlatform = { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [NS, "kube-system"] }] };
    const optIn = { matchLabels: { "policy.example.io/enforced": "true" } };

    it("rejects a namespaceSelector leaving out the platform's namespace by its name label, or by a label it lacks", async () => {
        expect(await messages("validating-webhooks-cover-namespaces", [...prodStack(), namespace("reports", { team: "reports" }),
            hook("Validating", "by-name", notPlatform), hook("Validating", "opt-in", optIn)])).toEqual([
            `ValidatingWebhookConfiguration "by-name" webhooks[0] "validate.engine.io" leaves out the namespace "${NS}" the stack declares ` +
                `(namespaceSelector ${JSON.stringify(notPlatform)}): ${TAIL}`,
            `ValidatingWebhookConfiguration "opt-in" webhooks[0] "validate.engine.io" leaves out the namespaces "${NS}", "reports" the stack declares ` +
                `(namespaceSelector ${JSON.stringify(optIn)}): ${TAIL}`,
        ]);
    });

    it("passes no selector, {}, a selector every declared namespace matches, a mutating webhook, and values unknown during preview", async () => {
        const kubeOnly = { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"] }] };
        const restricted = { matchLabels: { "pod-security.kubernetes.io/enforce": "restricted" } };
        expect(await messages("validating-webhooks-cover-namespaces", [...prodStack(),
            hook("Validating", "a", undefined), hook("Validating", "b", {}), hook("Validating", "c", kubeOnly), hook("Validating", "d", restricted),
            hook("Validating", "e", UNKNOWN), hook("Mutating", "f", notPlatform)])).toEqual([]);
        // A namespace whose labels are unknown during preview is judged at up.
        expect(await messages("validating-webhooks-cover-namespaces", [namespace("later", UNKNOWN), hook("Validating", "g", optIn)])).toEqual([]);
    });
});

describe("no-api-server-callouts: a reviewed validating webhook has no matchConditions", () => {
    const reviewed = { all: "mandatory" as const, "no-api-server-callouts": { allowedNames: ["policy-engine"] }, "no-mutating-admission": { allowedNames: ["policy-engine"] } };

    it("rejects a listed validating webhook whose CEL matchConditions skip requests (a namespace, the object's own labels)", async () => {
        const conditions = [{ name: "not-platform", expression: `request.namespace != "${NS}"` }];
        expect(await messages("no-api-server-callouts", [hook("Validating", "engine", undefined, { matchConditions: conditions })], reviewed)).toEqual([
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" has matchConditions ` +
            `(${JSON.stringify(conditions[0].expression)}): a request they are false for (by its namespace, its requester, or labels whoever writes the ` +
            "object chooses) is not sent to it, and the pack does not evaluate CEL; the review accepted its name, not these settings: set failurePolicy: " +
            "Fail and matchPolicy: Equivalent, judge every object (no objectSelector or matchConditions on a validating webhook), verify the server " +
            "(caBundle, no insecureSkipTLSVerify), or take it out of allowedNames.",
        ]);
    });

    it("passes a listed validating webhook without them, and a listed mutating webhook with them (its mutation skipped, nothing unjudged)", async () => {
        const conditions = [{ name: "pods-only", expression: "object.kind == 'Pod'" }];
        expect(await messages("no-api-server-callouts", [hook("Validating", "engine", undefined, { matchConditions: [] })], reviewed)).toEqual([]);
        expect(await messages("no-mutating-admission", [hook("Mutating", "engine", undefined, { matchConditions: conditions })], reviewed)).toEqual([]);
    });
});

describe("protected-namespaces: Pod Security's warn and audit say what enforce refuses", () => {
    const PSA = "pod-security.kubernetes.io";
    const labels = (extra: Record<string, unknown>) => ({ [`${PSA}/enforce`]: "restricted", ...extra });

    it("rejects warn or audit weaker than restricted, and their -version pinned to a release", async () => {
        expect(await messages("protected-namespaces", [
            namespace("quiet", labels({ [`${PSA}/warn`]: "privileged", [`${PSA}/audit`]: "baseline" })),
            namespace("old", labels({ [`${PSA}/warn`]: "restricted", [`${PSA}/warn-version`]: "v1.24", [`${PSA}/audit`]: "restricted", [`${PSA}/audit-version`]: "v1.25" })),
        ])).toEqual([
            `Namespace "quiet" sets ${PSA}/warn: privileged, weaker than restricted, the level enforce must hold: the warnings its clients get say nothing ` +
                "of the pods enforce refuses there, so whoever reads them does not learn why; set it to restricted, or leave it out.",
            `Namespace "quiet" sets ${PSA}/audit: baseline, weaker than restricted, the level enforce must hold: the audit log's annotations say nothing ` +
                "of the pods enforce refuses there, so whoever reads them does not learn why; set it to restricted, or leave it out.",
            `Namespace "old" sets ${PSA}/warn-version: "v1.24", so its warnings judge pods by that release's profile and stay silent on every control ` +
                "added since; set it to latest, or leave it out (latest).",
            `Namespace "old" sets ${PSA}/audit-version: "v1.25", so its audit annotations judge pods by that release's profile and stay silent on every ` +
                "control added since; set it to latest, or leave it out (latest).",
        ]);
    });

    it("passes warn and audit restricted at latest, left out, unknown during preview, and the program's Namespace", async () => {
        expect(await messages("protected-namespaces", [
            namespace("a", labels({ [`${PSA}/warn`]: "restricted", [`${PSA}/warn-version`]: "latest", [`${PSA}/audit`]: "restricted" })),
            namespace("b", labels({})),
            namespace("c", labels({ [`${PSA}/warn`]: UNKNOWN, [`${PSA}/audit-version`]: UNKNOWN })),
            ...prodStack(),
        ])).toEqual([]);
    });
});

describe("automount-service-account-token: an exempt workload's projected token is the API server's, short-lived", () => {
    const exempt = { all: "mandatory" as const, "automount-service-account-token": { exemptWorkloads: ["market-data"] } };
    const withToken = (token: Record<string, unknown>) => edit(deployment("market-data", 3000), (p) => {
        p.spec.template.spec.volumes.push({ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", ...token } }] } });
    });

    it("rejects a foreign audience and an expirationSeconds beyond an hour", async () => {
        const at = "Deployment \"market-data-deployment\" is exempt (exemptWorkloads), but the projected volume \"token\"'s service account token";
        const FIX = "; leave audience unset (the API server's) and expirationSeconds at most 3600.";
        expect(await messages("automount-service-account-token", [withToken({ audience: "vault", expirationSeconds: 4294967296 })], exempt)).toEqual([
            `${at} is for the audience "vault", a credential to another system than the Kubernetes API its exemption is for${FIX}`,
            `${at} lives 4294967296 seconds (expirationSeconds), valid long after a pod that leaked it is gone; at most 3600${FIX}`,
        ]);
    });

    it("passes an exempt workload's token of the API server for an hour or less, or unknown during preview", async () => {
        expect(await messages("automount-service-account-token", [withToken({ expirationSeconds: 3600 }), edit(withToken({ audience: UNKNOWN }), (p) => {
            p.metadata.name = "other";
        })], exempt)).toEqual([]);
    });
});

describe("datastore-backups: a backup CronJob that can run, one run at a time (beyond 63's list)", () => {
    const FIX = ". Set concurrencyPolicy: Forbid, a schedule that fires, startingDeadlineSeconds unset or at least 10, and neither suspend nor parallelism: 0 in its jobTemplate.";
    const backup = (change: (spec: any) => void) => prodStack().map((r) => r.name === "postgres-backup-cronjob" ? edit(r, (p) => change(p.spec)) : r);

    it("rejects jobs suspended or given no pod, a start deadline under 10 s, a schedule that never fires, overlapping or replacing runs", async () => {
        const at = "Datastore \"postgres\" has no backup that runs sound: CronJob \"postgres-backup-cronjob\" ";
        expect(await messages("datastore-backups", backup((s) => { s.jobTemplate.spec.suspend = true; s.jobTemplate.spec.parallelism = 0; s.startingDeadlineSeconds = 5; }))).toEqual([
            `${at}its jobTemplate sets suspend: true (every Job it makes waits, running no pod); CronJob "postgres-backup-cronjob" its jobTemplate sets parallelism: 0 ` +
            "(every Job it makes runs no pod); CronJob \"postgres-backup-cronjob\" its startingDeadlineSeconds 5 is under the controller's 10-second check (a run may never start)" + FIX,
        ]);
        expect(await messages("datastore-backups", backup((s) => { s.schedule = "15 2 30 2 *"; }))).toEqual([
            `${at}its schedule "15 2 30 2 *" names a day none of its months has (it never fires)${FIX}`,
        ]);
        expect(await messages("datastore-backups", backup((s) => { delete s.concurrencyPolicy; }))).toEqual([
            `${at}its runs overlap (concurrencyPolicy: unset, Allow): a dump slower than its schedule starts another on the same datastore and target${FIX}`,
        ]);
        expect(await messages("datastore-backups", backup((s) => { s.concurrencyPolicy = "Replace"; }))).toEqual([
            `${at}a run slower than its schedule is killed by the next (concurrencyPolicy: Replace): a backup that never completes${FIX}`,
        ]);
    });

    it("passes the program's Forbid, schedules that fire (Feb 29, the 31st of some month, a weekday given), a deadline of 10 s, values unknown during preview", async () => {
        for (const schedule of ["0 3 29 2 *", "0 3 31 1-12 *", "0 3 31 4,5 *", "0 3 31 4 1", "@daily"]) {
            expect(await messages("datastore-backups", backup((s) => { s.schedule = schedule; s.startingDeadlineSeconds = 10; }))).toEqual([]);
        }
        expect(await messages("datastore-backups", backup((s) => { s.concurrencyPolicy = UNKNOWN; s.jobTemplate.spec.suspend = UNKNOWN; }))).toEqual([]);
    });
});

describe("rbac-least-privilege: the denials of service session 63 left open, and the record of them (beyond 63's list)", () => {
    const clusterRole = (name: string, rules: any[]): TestResource => ({ type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", name, props: { metadata: { name }, rules } });
    const role = (name: string, rules: any[]): TestResource => ({ type: "kubernetes:rbac.authorization.k8s.io/v1:Role", name, props: { metadata: { name, namespace: NS }, rules } });
    const firstClause = (ms: string[]) => ms.map((m) => m.split("; ")[0]);

    it("rejects scaling workloads, writing PodDisruptionBudgets, quotas and limit ranges, a ClusterRole writing Leases, rewriting or deleting Events", async () => {
        expect(firstClause(await messages("rbac-least-privilege", [clusterRole("operator", [
            { apiGroups: ["apps"], resources: ["deployments/scale", "statefulsets/scale"], verbs: ["patch"] },
            { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: ["delete"] },
            { apiGroups: [""], resources: ["resourcequotas", "limitranges"], verbs: ["update"] },
            { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["update"] },
            { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["deletecollection"] },
        ])]))).toEqual([
            "ClusterRole \"operator\" rules[0] scales deployments (to 0: every replica stopped at once, no PodDisruptionBudget asked: a denial of service on demand)",
            "ClusterRole \"operator\" rules[0] scales statefulsets (to 0: every replica stopped at once, no PodDisruptionBudget asked: a denial of service on demand)",
            "ClusterRole \"operator\" rules[1] creates, changes or deletes PodDisruptionBudgets (one gone or allowing 100% lets a drain or an eviction take every replica at once)",
            "ClusterRole \"operator\" rules[2] changes or deletes ResourceQuotas or LimitRanges (the namespace's bounds on what its pods take from the nodes)",
            "ClusterRole \"operator\" rules[3] writes Leases of every namespace once a ClusterRoleBinding binds it (kube-system's leader elections: the scheduler and " +
                "controllers stop, and kube-node-lease's: a dead node looks alive)",
            "ClusterRole \"operator\" rules[4] rewrites or deletes Events (the record of what admission refused, what was evicted or killed and why)",
        ]);
    });

    it("passes reading scales, budgets and Events, creating Events, and a Role's own namespace's Leases (its controllers' leader election)", async () => {
        expect(await messages("rbac-least-privilege", [
            role("elector", [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
                { apiGroups: [""], resources: ["events"], verbs: ["create"] }]),
            clusterRole("reader", [{ apiGroups: ["apps", "policy", ""], resources: ["deployments/scale", "poddisruptionbudgets", "events"], verbs: ["get", "list", "watch"] }]),
        ])).toEqual([]);
    });
});

describe("workloads-in-declared-namespaces: a workload runs where the pack read the Pod Security labels (beyond 63's list)", () => {
    const inNamespace = (ns: unknown) => edit(deployment("reports", 3000), (p) => { p.metadata.namespace = ns; });

    it("rejects a workload in a namespace the stack does not declare (made by hand, by another stack, or later)", async () => {
        expect(await messages("workloads-in-declared-namespaces", [...prodStack(), inNamespace("ai-trading-tools")])).toEqual([
            "Deployment \"reports-deployment\" runs in the namespace \"ai-trading-tools\", which the stack does not declare: its pods, and every pod made there at " +
            "run time, are admitted under Pod Security labels the pack never read (privileged unless the API server's configuration sets another level); declare " +
            "the Namespace in the program (protected-namespaces then holds it to restricted), or put the workload in one it declares.",
        ]);
    });

    it("passes the program's namespace, a namespace unknown during preview, a declared Namespace's name unknown during preview", async () => {
        expect(await messages("workloads-in-declared-namespaces", [...prodStack(), inNamespace(UNKNOWN)])).toEqual([]);
        expect(await messages("workloads-in-declared-namespaces", [namespace("later", undefined), { ...namespace("x", {}), props: { metadata: { name: UNKNOWN } } },
            inNamespace("ai-trading-tools")])).toEqual([]);
    });
});
