/**
 * Session 63: the holes session 62's red team found and left open, each violating case failing before its fix. (Case, what
 * happened, the fix: policies/README.md "Red team, session 63".)
 */
import { describe, expect, it } from "vitest";
import { asEveryPodKind, deployment, devStack, dockerContainer, dockerService, edit, prodStack, statefulSet } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: "prod" | "dev" = "prod") => (await runPack(rs, config, { only: [policy] })).map((v) => v.message);
const firstClause = (ms: string[]) => ms.map((m) => m.split("; ")[0]);

const rbac = (kind: "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding", name: string, body: Record<string, any>): TestResource => ({
    type: `kubernetes:rbac.authorization.k8s.io/v1:${kind}`, name,
    props: { apiVersion: "rbac.authorization.k8s.io/v1", kind, metadata: { name, ...(kind.startsWith("Cluster") ? {} : { namespace: "ai-trading" }) }, ...body },
});

describe("rbac-least-privilege: evicting pods", () => {
    const EVICTS = "evicts pods through pods/eviction (deletes any pod in its reach, every replica in turn as far as PodDisruptionBudgets allow, " +
        "at once where none covers it: a denial of service on demand)";
    const DELETES = (what: string) => `deletes ${what} (every replica at once, past the PodDisruptionBudgets only evictions honour: a denial of service on demand)`;

    it("rejects create on pods/eviction in a Role and a ClusterRole, by name, by */eviction and with the verb \"*\"", async () => {
        const found = await messages("rbac-least-privilege", [
            rbac("Role", "drainer", { rules: [{ apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"] }] }),
            rbac("ClusterRole", "node-drainer", { rules: [
                { apiGroups: [""], resources: ["*/eviction"], verbs: ["create"] },
                { apiGroups: [""], resources: ["pods", "pods/eviction"], verbs: ["*"] },
            ] }),
        ]);
        expect(firstClause(found)).toEqual([
            `Role "drainer" rules[0] ${EVICTS}`,
            `ClusterRole "node-drainer" rules[0] ${EVICTS}`,
            "ClusterRole \"node-drainer\" rules[1] grants \"*\" in verbs",
            `ClusterRole "node-drainer" rules[1] creates or changes pods (a pod runs as any ServiceAccount of its namespace and mounts any of its Secrets)`,
            `ClusterRole "node-drainer" rules[1] ${EVICTS}`,
            `ClusterRole "node-drainer" rules[1] ${DELETES("pods")}`,
        ]);
    });

    // Beyond session 62's list: deleting is what an eviction does without asking the PodDisruptionBudgets.
    it("rejects deleting pods or workloads (every replica at once) and claims or volumes (a datastore's data)", async () => {
        const found = await messages("rbac-least-privilege", [rbac("Role", "cleaner", { rules: [
            { apiGroups: [""], resources: ["pods"], verbs: ["deletecollection"] },
            { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["delete"] },
            { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["delete"] },
            { apiGroups: [""], resources: ["pods", "persistentvolumeclaims", "events"], verbs: ["get", "list", "watch"] },
        ] })]);
        expect(firstClause(found)).toEqual([
            `Role "cleaner" rules[0] ${DELETES("pods")}`,
            `Role "cleaner" rules[1] ${DELETES("statefulsets")}`,
            "Role \"cleaner\" rules[2] deletes PersistentVolumeClaims or PersistentVolumes (a datastore's data, gone with its disk under reclaimPolicy Delete)",
        ]);
    });

    it("reports resources \"*\" as the wildcard it is; pods/* (a literal name to the API server, granting nothing) and reading evictions pass", async () => {
        expect(firstClause(await messages("rbac-least-privilege", [rbac("ClusterRole", "everything", { rules: [{ apiGroups: [""], resources: ["*"], verbs: ["create"] }] })])))
            .toContain("ClusterRole \"everything\" rules[0] grants \"*\" in resources");
        expect(await messages("rbac-least-privilege", [
            rbac("ClusterRole", "literal", { rules: [{ apiGroups: [""], resources: ["pods/*"], verbs: ["create"] }] }),
            rbac("Role", "reader", { rules: [{ apiGroups: [""], resources: ["pods", "pods/log"], verbs: ["get", "list", "watch"] }] }),
        ])).toEqual([]);
    });
});

describe("rbac-least-privilege: no ClusterRole or ClusterRoleBinding under a built-in's name", () => {
    const FIX = "; give it a name of the platform's own (ai-trading-<purpose>), never a built-in's or one under system:.";
    const reading = { rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] };
    const role = (name: string) => rbac("ClusterRole", name, reading);
    const binding = (name: string) => rbac("ClusterRoleBinding", name, {
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "ai-trading-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reports", namespace: "ai-trading" }],
    });

    it("rejects a ClusterRole named view, edit, admin, cluster-admin or system:*, and such a ClusterRoleBinding, even with harmless rules", async () => {
        const roleWhy = (name: string) => `ClusterRole "${name}" is named "${name}", a ClusterRole the cluster bootstraps: applied, it replaces the built-in, and its rules ` +
            `go to every subject the cluster binds to it (system:public-info-viewer: every unauthenticated caller); the API server's restart only adds back what the built-in lacks, keeping the program's${FIX}`;
        const bindingWhy = (name: string) => `ClusterRoleBinding "${name}" is named "${name}", a ClusterRoleBinding the cluster bootstraps: applied, it replaces the ` +
            `built-in, and its subjects replace the cluster's own; the API server's restart only adds back what the built-in lacks, keeping the program's${FIX}`;
        const names = ["view", "edit", "admin", "cluster-admin", "system:public-info-viewer"];
        expect(await messages("rbac-least-privilege", [...names.map(role), binding("system:node"), binding("cluster-admin")]))
            .toEqual([...names.map(roleWhy), bindingWhy("system:node"), bindingWhy("cluster-admin")]);
    });

    it("passes the platform's own names (viewer, ai-trading-edit, a name unknown during preview)", async () => {
        expect(await messages("rbac-least-privilege", [role("viewer"), role("ai-trading-edit"), binding("ai-trading-reports"),
            { ...role("later"), props: { ...role("later").props, metadata: { name: UNKNOWN } } }])).toEqual([]);
    });
});

describe("protected-namespaces: a declared Namespace enforces restricted at the latest version", () => {
    const ns = (name: string, labels: Record<string, unknown>): TestResource => ({ type: "kubernetes:core/v1:Namespace", name, props: { metadata: { name, labels } } });

    it("rejects enforce-version pinned to a release, and enforce baseline", async () => {
        expect(await messages("protected-namespaces", [
            ns("pinned", { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.24" }),
            ns("tools", { "pod-security.kubernetes.io/enforce": "baseline" }),
        ])).toEqual([
            "Namespace \"pinned\" sets pod-security.kubernetes.io/enforce-version: \"v1.24\", so Pod Security admission judges its pods by that release's profile " +
            "and skips every control added since (1.34's probe and lifecycle hosts among them); set it to latest, or leave it out (latest).",
            "Namespace \"tools\" sets pod-security.kubernetes.io/enforce: baseline, so the API server admits pods there that the restricted profile refuses " +
            "(running as root, the runtime's default capabilities, privilege escalation, no seccomp profile) whatever creates them; enforce restricted, the level " +
            "the pack holds the platform's own pods to.",
        ]);
    });

    it("passes restricted at latest or with no version (latest), a version unknown during preview, and the program's Namespace", async () => {
        expect(await messages("protected-namespaces", [
            ns("a", { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" }),
            ns("b", { "pod-security.kubernetes.io/enforce": "restricted" }),
            ns("c", { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": UNKNOWN }),
            ...prodStack(),
        ])).toEqual([]);
    });
});

describe("one loopback test for Docker's addresses (docker-logs-on-host, no-public-exposure)", () => {
    it("a log address 127.000.0.1 is no IP to the engine (resolved as a name): refused, as ports[].ip of that spelling is", async () => {
        const logging = dockerService("market-data", { logDriver: "gelf", logOpts: { "gelf-address": "udp://127.000.0.1:12201" } });
        expect(await messages("docker-logs-on-host", [logging], "dev")).toEqual([
            "Container \"market-data-container\" sends its logs with gelf to udp://127.000.0.1:12201 (gelf-address), off the host: every line the services print " +
            "(request paths with their query tokens, errors quoting their input) goes where the driver sends it. Keep logDriver json-file with logOpts max-size " +
            "and max-file (the program's 10m × 3), or list a collector the operator runs in allowedLogDrivers.",
        ]);
        const published = dockerService("api-gateway", { ports: [{ internal: 3001, external: 3001, ip: "127.000.0.1" }] });
        expect(firstClause(await messages("no-public-exposure", [published], "dev"))).toEqual([
            "Container \"api-gateway-container\" publishes container port 3001 on 127.000.0.1:3001 (\"127.000.0.1\" is no IP address: the engine reads it as none and publishes on every interface)",
        ]);
    });

    it("both pass 127.1.2.3, ::1 and 0:0:0:0:0:0:0:1", async () => {
        const logs = ["udp://127.1.2.3:12201", "udp://[::1]:12201", "udp://[0:0:0:0:0:0:0:1]:12201"]
            .map((a, i) => dockerService(`w${i}`, { logDriver: "gelf", logOpts: { "gelf-address": a } }));
        expect(await messages("docker-logs-on-host", [...logs, ...devStack()], "dev")).toEqual([]);
        const ports = dockerService("api-gateway", { ports: ["127.1.2.3", "::1", "0:0:0:0:0:0:0:1"].map((ip, i) => ({ internal: 3001 + i, external: 3001 + i, ip })) });
        expect(await messages("no-public-exposure", [ports], "dev")).toEqual([]);
    });
});

describe("allowedNames: a reviewed webhook, admission policy or APIService is still read (no-api-server-callouts, no-mutating-admission)", () => {
    const FIX = "; the review accepted its name, not these settings: set failurePolicy: Fail and matchPolicy: Equivalent, judge every object (no " +
        "objectSelector or matchConditions on a validating webhook), verify the server (caBundle, no insecureSkipTLSVerify), or take it out of allowedNames.";
    const hook = (version: string, kind: "Validating" | "Mutating", webhook: Record<string, unknown>): TestResource => ({
        type: `kubernetes:admissionregistration.k8s.io/${version}:${kind}WebhookConfiguration`, name: "engine",
        props: { metadata: { name: "policy-engine" }, webhooks: [{ name: "validate.engine.io", clientConfig: { service: { name: "engine", namespace: "policy" } },
            rules: [{ operations: ["CREATE", "UPDATE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"] }], sideEffects: "None", admissionReviewVersions: ["v1"], ...webhook }] },
    });
    const apiService = (extra: Record<string, unknown>): TestResource => ({
        type: "kubernetes:apiregistration.k8s.io/v1:APIService", name: "metrics",
        props: { metadata: { name: "v1beta1.metrics.k8s.io" }, spec: { group: "metrics.k8s.io", version: "v1beta1", service: { name: "metrics-server", namespace: "kube-system" }, ...extra } },
    });
    const reviewed = { all: "mandatory" as const, "no-api-server-callouts": { allowedNames: ["policy-engine", "v1beta1.metrics.k8s.io"] }, "no-mutating-admission": { allowedNames: ["policy-engine"] } };
    const found = async (policy: string, rs: TestResource[]) => (await runPack(rs, reviewed, { only: [policy] })).map((v) => v.message);

    it("rejects a listed validating webhook failing open, matching exactly or selecting objects by their labels; v1beta1's open defaults too", async () => {
        expect(await found("no-api-server-callouts", [
            hook("v1", "Validating", { failurePolicy: "Ignore", matchPolicy: "Exact", objectSelector: { matchExpressions: [{ key: "skip-policy", operator: "DoesNotExist" }] } }),
            hook("v1beta1", "Validating", {}),
            apiService({ insecureSkipTLSVerify: true }),
        ])).toEqual([
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" fails open (failurePolicy: Ignore): while its server is down or slow the API server admits every request it would have judged${FIX}`,
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" matches exactly (matchPolicy: Exact): a request through another version or group of the same resource is not sent to it${FIX}`,
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" has an objectSelector: whoever writes an object chooses its labels, and so whether the webhook judges it${FIX}`,
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" fails open (failurePolicy: Ignore, v1beta1's default): while its server is down or slow the API server admits every request it would have judged${FIX}`,
            `ValidatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" matches exactly (matchPolicy: Exact, v1beta1's default): a request through another version or group of the same resource is not sent to it${FIX}`,
            `APIService "metrics" is listed in allowedNames, but reaches its Service without verifying its certificate (spec.insecureSkipTLSVerify): whoever answers on the way gets every request of the group with the caller's identity${FIX}`,
        ]);
    });

    it("rejects a listed mutating webhook or admission policy failing open", async () => {
        const policy: TestResource = { type: "kubernetes:admissionregistration.k8s.io/v1beta1:MutatingAdmissionPolicy", name: "defaults",
            props: { metadata: { name: "policy-engine" }, spec: { failurePolicy: "Ignore" } } };
        expect(await found("no-mutating-admission", [hook("v1", "Mutating", { failurePolicy: "Ignore" }), policy])).toEqual([
            `MutatingWebhookConfiguration "engine" is listed in allowedNames, but webhooks[0] "validate.engine.io" fails open (failurePolicy: Ignore): while its server is down or slow the API server admits every object without its change${FIX}`,
            `MutatingAdmissionPolicy "defaults" is listed in allowedNames, but fails open (spec.failurePolicy: Ignore): an object its expressions fail on is admitted unchanged${FIX}`,
        ]);
    });

    it("passes listed ones failing closed on every version and object (v1's defaults), an empty objectSelector, a verified APIService", async () => {
        expect(await found("no-api-server-callouts", [hook("v1", "Validating", { objectSelector: {} }), hook("v1", "Validating", { failurePolicy: "Fail", matchPolicy: "Equivalent" }),
            apiService({ caBundle: "LS0tLS1CRUdJTg==" })])).toEqual([]);
        expect(await found("no-mutating-admission", [hook("v1", "Mutating", { objectSelector: { matchLabels: { "sidecar.example.io/inject": "true" } } })])).toEqual([]);
    });
});

describe("secret-file-modes: a Secret's files in a pod are readable by their owner alone", () => {
    const FIX = ", so a process of the pod running as another user (a helper, a sidecar mounting the volume) reads the credentials; set defaultMode " +
        "(and items' mode) to 0o400, or 0o440 with the pod's securityContext.fsGroup (the kubelet gives that group the volume).";
    const mounting = (volumes: any[], fsGroup?: number) => edit(deployment("market-data", 3000), (p) => {
        const spec = p.spec.template.spec;
        spec.volumes.push(...volumes);
        if (fsGroup !== undefined) spec.securityContext.fsGroup = fsGroup;
    });
    const open = mounting([
        { name: "plain", secret: { secretName: "market-data-credentials" } },
        { name: "world", secret: { secretName: "market-data-credentials", defaultMode: 0o777 } },
        { name: "picked", secret: { secretName: "market-data-credentials", defaultMode: 0o400, items: [{ key: "password", path: "pw", mode: 420 }, { key: "user", path: "user" }] } },
        { name: "grouped", secret: { secretName: "market-data-credentials", defaultMode: 0o440 } },
        { name: "bundle", projected: { defaultMode: 0o604, sources: [{ configMap: { name: "settings" } },
            { secret: { name: "market-data-credentials", items: [{ key: "token", path: "token", mode: 0o660 }] } }] } },
    ]);

    it("rejects the API server's default 0644, defaultMode or an item's mode with other users' bits or group write, and group read without fsGroup", async () => {
        const at = "Deployment \"market-data-deployment\" ";
        expect(await messages("secret-file-modes", [open])).toEqual([
            `${at}secret volume "plain" (Secret market-data-credentials) has no defaultMode (the API server's 0644 (420 in decimal)): every other user of the pod reads it${FIX}`,
            `${at}secret volume "world" (Secret market-data-credentials) has defaultMode 0777 (511 in decimal): every other user of the pod reads it${FIX}`,
            `${at}secret volume "picked" (Secret market-data-credentials) items[0] (key password) has mode 0644 (420 in decimal): every other user of the pod reads it${FIX}`,
            `${at}secret volume "grouped" (Secret market-data-credentials) has defaultMode 0440 (288 in decimal): group 0 (the primary group of every process an ` +
                `image starts without a group of its own) reads it, the pod setting no fsGroup${FIX}`,
            `${at}projected volume "bundle" sources[1].secret (Secret market-data-credentials) items[0] (key token) has mode 0660 (432 in decimal): its group may write or execute it${FIX}`,
        ]);
    });

    it("reads every pod-bearing kind", async () => {
        const found = await runPack(asEveryPodKind(open), "prod", { only: ["secret-file-modes"] });
        expect(new Set(found.map((v) => v.resourceName)).size).toBe(8);
        expect(found).toHaveLength(8 * 5);
    });

    it("passes 0400, 0600, 0440 under fsGroup, a projected ConfigMap, a mode unknown during preview, and the stacks", async () => {
        const fine = mounting([
            { name: "a", secret: { secretName: "s", defaultMode: 0o400 } }, { name: "b", secret: { secretName: "s", defaultMode: 0o600 } },
            { name: "c", secret: { secretName: "s", defaultMode: 0o440, items: [{ key: "k", path: "k", mode: 0o400 }] } },
            { name: "d", secret: { secretName: "s", defaultMode: UNKNOWN } },
            { name: "e", projected: { defaultMode: 0o440, sources: [{ configMap: { name: "settings" } }, { secret: { name: "s" } }] } },
            { name: "f", projected: { sources: [{ configMap: { name: "settings" } }, { downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } }] } },
        ], 10001);
        expect(await messages("secret-file-modes", [fine, ...prodStack()])).toEqual([]);
    });

    it("rejects a Docker upload holding a credential readable beyond its owner: unset (0644), 0644, 0440 without a group", async () => {
        const DOCKER_FIX = ", so a process of the container running as another user reads the credential; set the upload's permissions to 0400 with owner " +
            "(and group) the container's user, as the program writes its secret files.";
        const uploading = dockerService("market-data", { uploads: [
            { file: "/run/secrets/postgres_password", content: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" },
            { file: "/etc/redis/redis.conf", content: "port 6379\nrequirepass Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt\n", permissions: "0644" },
            { file: "/app/.env", content: "LOG_LEVEL=info\nDB_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt\n", permissions: "0440", owner: "10001" },
        ] });
        expect(await messages("secret-file-modes", [uploading], "dev")).toEqual([
            "Container \"market-data-container\" uploads[0] (/run/secrets/postgres_password) holds a credential (a file named for a credential) with no permissions " +
                `(the provider's 0644 (420 in decimal)): every other user of the container reads it${DOCKER_FIX}`,
            "Container \"market-data-container\" uploads[1] (/etc/redis/redis.conf) holds a credential (the setting requirepass on line 2) with permissions 0644: " +
                `every other user of the container reads it${DOCKER_FIX}`,
            "Container \"market-data-container\" uploads[2] (/app/.env) holds a credential (the setting DB_PASSWORD on line 2) with permissions 0440: group 0 (the primary " +
                `group of every process an image starts without a group of its own) reads it, the upload naming no group of its own${DOCKER_FIX}`,
        ]);
    });

    it("passes Docker uploads of credentials at 0400 or 0440 with a group, files without credentials at 0444, content unknown during preview, and the dev stack", async () => {
        const fine = dockerService("market-data", { uploads: [
            { file: "/run/secrets/postgres_password", content: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt", permissions: "0400", owner: "10001", group: "10001" },
            { file: "/app/.env", content: "DB_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt\n", permissions: "0440", owner: "10001", group: "10001" },
            { file: "/etc/app/settings.conf", content: "port 3000\nlog_level info\n", permissions: "0444" },
            { file: "/run/secrets/api_token", content: UNKNOWN },
        ] });
        expect(await messages("secret-file-modes", [fine, ...devStack()], "dev")).toEqual([]);
    });
});

describe("workload-volume-scope: storage the stack does not declare", () => {
    const FIX = ". Declare the workload's storage in the program, labelled with the workload (a docker.Volume), and mount that by its name.";
    const UNDECLARED = ", which the stack does not declare: the engine hands it whatever a container left in a volume of that name on the host (another stack's or " +
        "workload's files), or makes one empty and unlabelled";
    const volume = (name: string, workload: string): TestResource => ({ type: "docker:index/volume:Volume", name, props: { name, labels: [{ label: "trading.io/workload", value: workload }] } });
    const owner = dockerContainer("postgres", "datastore", { volumes: [{ volumeName: "trading-pg-data", containerPath: "/var/lib/postgresql/data" }] });

    it("rejects a Docker container mounting an undeclared volume (pg-data beside trading-pg-data) or another workload's or an undeclared container's volumes", async () => {
        const byName = dockerService("market-data", { volumes: [{ volumeName: "pg-data", containerPath: "/pg" }, { fromContainer: "ai-trading-dev-postgres:ro" }] });
        const byMount = dockerService("reports", { mounts: [{ type: "volume", source: "pg-data", target: "/pg" }], volumes: [{ fromContainer: "legacy-db" }] });
        expect(await messages("workload-volume-scope", [volume("trading-pg-data", "postgres"), owner, byName, byMount], "dev")).toEqual([
            `Container "market-data-container" (trading.io/workload market-data) mounts volume "pg-data" (volumes[0].volumeName)${UNDECLARED}${FIX}`,
            "Container \"market-data-container\" (trading.io/workload market-data) mounts every volume of container \"ai-trading-dev-postgres:ro\" (volumes[1].fromContainer), " +
                `of workload postgres: postgres's files, read and written past its own authentication${FIX}`,
            "Container \"reports-container\" (trading.io/workload reports) mounts every volume of container \"legacy-db\" (volumes[0].fromContainer), which the stack " +
                `does not declare: whatever volumes that container has, whoever runs it${FIX}`,
            `Container "reports-container" (trading.io/workload reports) mounts volume "pg-data" (mounts[0].source)${UNDECLARED}${FIX}`,
        ]);
    });

    it("rejects a pod mounting a claim no PersistentVolumeClaim or claim template of its namespace makes", async () => {
        const mounting = edit(deployment("market-data", 3000), (p) => {
            p.spec.template.spec.volumes.push({ name: "data", persistentVolumeClaim: { claimName: "old-postgres-data" } });
        });
        expect(await messages("workload-volume-scope", [...prodStack(), mounting])).toEqual([
            "Deployment \"market-data-deployment\" (trading.io/workload market-data) mounts the PersistentVolumeClaim \"old-postgres-data\" (volume \"data\"), which the stack " +
            "does not declare in its namespace: the pod starts only on a claim someone else made, holding whatever they put there. Declare the workload's storage in the " +
            "program, labelled with the workload (a PersistentVolumeClaim or claim template), and mount that by its name.",
        ]);
    });

    it("passes declared volumes and claims, anonymous volumes, bind and tmpfs mounts, the workload's own container's volumes, names unknown during preview, and the stacks", async () => {
        const own = dockerContainer("postgres", "datastore", { name: "ai-trading-dev-postgres-2", volumes: [{ fromContainer: "ai-trading-dev-postgres" }, { containerPath: "/scratch" }],
            mounts: [{ type: "tmpfs", target: "/run" }, { type: "bind", source: "/srv/conf", target: "/conf", readOnly: true }] });
        const later = dockerService("market-data", { volumes: [{ volumeName: UNKNOWN, containerPath: "/x" }] });
        expect(await messages("workload-volume-scope", [...devStack(), volume("trading-pg-data", "postgres"), owner, own, later], "dev")).toEqual([]);
        // A declared volume whose name is unknown during preview may be the one mounted: judged at up.
        const computed: TestResource = { type: "docker:index/volume:Volume", name: "computed", props: { name: UNKNOWN } };
        expect(await messages("workload-volume-scope", [computed, dockerService("market-data", { volumes: [{ volumeName: "pg-data", containerPath: "/pg" }] })], "dev")).toEqual([]);
        const unnamed = dockerContainer("postgres", "datastore", { name: UNKNOWN });
        expect(await messages("workload-volume-scope", [unnamed, dockerService("market-data", { volumes: [{ fromContainer: "ai-trading-dev-postgres" }] })], "dev")).toEqual([]);
        expect(await messages("workload-volume-scope", prodStack())).toEqual([]);
        expect(await messages("workload-volume-scope", devStack(), "dev")).toEqual([]);
    });
});

describe("rbac-bound-roles-declared: a binding names a role the program declares (beyond 62's list)", () => {
    const TAIL = ": its rules (whoever made it, granting whatever they chose, every Secret of the cluster included) are read by no policy; declare the role " +
        "in the program (rbac-least-privilege then judges its rules), or bind one it declares.";
    const subjects = [{ kind: "ServiceAccount", name: "reports", namespace: "ai-trading" }];
    const binding = (kind: "RoleBinding" | "ClusterRoleBinding", name: string, roleKind: string, role: unknown) =>
        rbac(kind, name, { roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name: role }, subjects });
    const inNamespace = (r: TestResource, namespace: string) => edit(r, (p) => { p.metadata.namespace = namespace; });

    it("rejects a binding of a ClusterRole or Role the stack does not declare (an installed chart's, one in another namespace)", async () => {
        const found = await runPack([
            rbac("Role", "reader", { rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] }),
            binding("ClusterRoleBinding", "reports-ingress", "ClusterRole", "ingress-nginx"),
            binding("RoleBinding", "reports-manager", "ClusterRole", "manager-role"),
            inNamespace(binding("RoleBinding", "reports-reader", "Role", "reader"), "analytics"),
        ], "prod", { only: ["rbac-bound-roles-declared"] });
        expect(found.map((v) => [v.resourceName, v.message])).toEqual([
            ["reports-ingress", `ClusterRoleBinding "reports-ingress" binds the ClusterRole "ingress-nginx", which the stack does not declare${TAIL}`],
            ["reports-manager", `RoleBinding "reports-manager" binds the ClusterRole "manager-role", which the stack does not declare${TAIL}`],
            ["reports-reader", `RoleBinding "reports-reader" binds the Role "reader", which the stack does not declare in its namespace${TAIL}`],
        ]);
    });

    it("passes bindings of declared roles, of view, of built-ins rbac-least-privilege refuses itself, names unknown during preview, and the stacks", async () => {
        const declared = [
            rbac("Role", "reader", { rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] }),
            rbac("ClusterRole", "ai-trading-nodes", { rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }] }),
            binding("RoleBinding", "a", "Role", "reader"), binding("ClusterRoleBinding", "b", "ClusterRole", "ai-trading-nodes"),
            binding("RoleBinding", "c", "ClusterRole", "ai-trading-nodes"), binding("RoleBinding", "d", "ClusterRole", "view"),
            binding("ClusterRoleBinding", "e", "ClusterRole", "cluster-admin"), binding("RoleBinding", "f", "ClusterRole", UNKNOWN),
        ];
        expect(await messages("rbac-bound-roles-declared", [...declared, ...prodStack()])).toEqual([]);
        const computed = { ...rbac("Role", "later", { rules: [] }), props: { ...rbac("Role", "later", { rules: [] }).props, metadata: { name: UNKNOWN, namespace: "ai-trading" } } };
        expect(await messages("rbac-bound-roles-declared", [computed, binding("RoleBinding", "g", "Role", "anything")])).toEqual([]);
        expect(await messages("rbac-bound-roles-declared", devStack(), "dev")).toEqual([]);
    });
});

describe("resource-limits: no Docker oomScoreAdj below 0 (beyond 62's list)", () => {
    it("rejects a container the host's OOM killer spares (oomScoreAdj -1000, -500)", async () => {
        expect(await messages("resource-limits", [dockerService("market-data", { oomScoreAdj: -1000 }), dockerService("reports", { oomScoreAdj: -500 })], "dev")).toEqual([
            "Container \"market-data-container\" sets oomScoreAdj -1000, so when the host runs out of memory its kernel kills the engine, the other containers or the " +
            "host's own services before this one (-1000: never this one); leave oomScoreAdj unset (0) and bound the container by its memory limit.",
            "Container \"reports-container\" sets oomScoreAdj -500, so when the host runs out of memory its kernel kills the engine, the other containers or the " +
            "host's own services before this one (-1000: never this one); leave oomScoreAdj unset (0) and bound the container by its memory limit.",
        ]);
    });

    it("passes 0, a positive adjustment (killed first), unset, and the dev stack", async () => {
        expect(await messages("resource-limits", [dockerService("a", { oomScoreAdj: 0 }), dockerService("b", { oomScoreAdj: 500 }), ...devStack()], "dev")).toEqual([]);
    });
});

describe("datastore-persistent-storage: a datastore's claims outlive its StatefulSet (beyond 62's list)", () => {
    const retaining = (policy: unknown) => edit(statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999), (p) => {
        p.spec.persistentVolumeClaimRetentionPolicy = policy;
    });

    it("rejects whenDeleted: Delete (a Pulumi replace deletes the data) and whenScaled: Delete", async () => {
        expect(await messages("datastore-persistent-storage", [retaining({ whenDeleted: "Delete", whenScaled: "Delete" })])).toEqual([
            "StatefulSet \"postgres-statefulset\" is a datastore whose claims are deleted with the StatefulSet (persistentVolumeClaimRetentionPolicy.whenDeleted: Delete), " +
            "which Pulumi deletes and makes anew whenever an immutable field changes (volumeClaimTemplates, selector, serviceName): its data gone on an update; set whenDeleted: Retain.",
            "StatefulSet \"postgres-statefulset\" is a datastore whose claims are deleted when it is scaled down (persistentVolumeClaimRetentionPolicy.whenScaled: Delete): " +
            "the removed replicas' data gone; set whenScaled: Retain.",
        ]);
    });

    it("passes Retain, no policy (Retain), and the stacks", async () => {
        expect(await messages("datastore-persistent-storage", [retaining({ whenDeleted: "Retain", whenScaled: "Retain" }), ...prodStack()])).toEqual([]);
        expect(await messages("datastore-persistent-storage", [retaining(undefined)])).toEqual([]);
    });
});
