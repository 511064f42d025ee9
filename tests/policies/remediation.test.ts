/**
 * Remediations (enforcement level "remediate"): each mechanical fix leaves a resource the whole pack
 * then accepts under prod.json; what is not mechanical stays a violation.
 */
import { describe, expect, it } from "vitest";
import { deployment, dockerNginx, dockerPostgres, dockerPrometheus, dockerService, edit, prodStack, statefulSet } from "./fixtures";
import { loadConfig, PackConfig, policyNames, remediate, runPack, TestResource, UNKNOWN } from "./run-pack";

const REMEDIABLE = ["drop-all-capabilities", "no-privilege-escalation", "automount-service-account-token", "read-only-root-filesystem"];
const remediating = (...names: string[]): PackConfig => ({ all: "mandatory", ...Object.fromEntries(names.map((n) => [n, "remediate" as const])) });

/** Remediates `broken` (one resource) inside the compliant prod stack and returns it with the pack's verdict on the result. */
async function fix(broken: TestResource, ...policies: string[]) {
    const rest = prodStack().filter((r) => r.name !== broken.name);
    const { resources, remediations } = await remediate([broken], remediating(...policies));
    const verdict = await runPack([...rest, ...resources], "prod");
    return { fixed: resources[0], remediations: remediations.map((r) => `${r.policyName} ${r.resourceName}`), verdict: verdict.map((v) => `${v.policyName}: ${v.message}`) };
}

const k8sContainer = (r: TestResource) => r.props.spec.template.spec.containers[0];

describe("Kubernetes remediations", () => {
    it("drop-all-capabilities: drops ALL, keeps what is added", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => { p.spec.template.spec.containers[0].securityContext.capabilities = { drop: ["NET_RAW"], add: ["NET_BIND_SERVICE"] }; });
        const r = await fix(broken, "drop-all-capabilities");
        expect(r.remediations).toEqual(["drop-all-capabilities api-gateway-deployment"]);
        expect(k8sContainer(r.fixed).securityContext.capabilities).toEqual({ add: ["NET_BIND_SERVICE"], drop: ["ALL"] });
        expect(r.verdict).toEqual([]);
    });

    it("no-privilege-escalation: allowPrivilegeEscalation false and RuntimeDefault seccomp (pod level, and over an Unconfined container)", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => {
            const sc = p.spec.template.spec.containers[0].securityContext;
            delete sc.allowPrivilegeEscalation;
            sc.seccompProfile = { type: "Unconfined" };
            delete p.spec.template.spec.securityContext.seccompProfile;
        });
        const r = await fix(broken, "no-privilege-escalation");
        expect(r.remediations).toEqual(["no-privilege-escalation api-gateway-deployment"]);
        expect(k8sContainer(r.fixed).securityContext).toMatchObject({ allowPrivilegeEscalation: false, seccompProfile: { type: "RuntimeDefault" } });
        expect(r.fixed.props.spec.template.spec.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" });
        expect(r.verdict).toEqual([]);
    });

    it("automount-service-account-token: sets false", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => { p.spec.template.spec.automountServiceAccountToken = true; });
        const r = await fix(broken, "automount-service-account-token");
        expect(r.fixed.props.spec.template.spec.automountServiceAccountToken).toBe(false);
        expect(r.verdict).toEqual([]);
    });

    it("read-only-root-filesystem: services only (a datastore writes to its root filesystem and is left alone)", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => { p.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false; });
        const r = await fix(broken, "read-only-root-filesystem");
        expect(k8sContainer(r.fixed).securityContext.readOnlyRootFilesystem).toBe(true);
        expect(r.verdict).toEqual([]);
        const pg = statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999);
        expect((await remediate([pg], remediating("read-only-root-filesystem"))).remediations).toEqual([]);
    });

    it("all four at once on a container with no securityContext; a CronJob's pod spec too", async () => {
        const bare = edit(deployment("api-gateway", 3001), (p) => {
            delete p.spec.template.spec.containers[0].securityContext;
            delete p.spec.template.spec.automountServiceAccountToken;
            p.spec.template.spec.securityContext = { runAsNonRoot: true };
            p.spec.template.spec.containers[0].securityContext = { runAsUser: 10001 };
        });
        const r = await fix(bare, ...REMEDIABLE);
        expect(r.remediations.sort()).toEqual(REMEDIABLE.map((n) => `${n} api-gateway-deployment`).sort());
        expect(r.verdict).toEqual([]);
        const cron = prodStack().find((x) => x.name === "postgres-backup-cronjob")!;
        const brokenCron = edit(cron, (p) => { delete p.spec.jobTemplate.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation; });
        const c = await fix(brokenCron, "no-privilege-escalation");
        expect(c.fixed.props.spec.jobTemplate.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation).toBe(false);
        expect(c.verdict).toEqual([]);
    });

    it("no-privilege-escalation walks the containers forEveryContainer walks: an entry that is not an object (a null left by a conditional) is passed over, not a throw", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => {
            delete p.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation;
            p.spec.template.spec.initContainers = [null];
        });
        const { resources, remediations } = await remediate([broken], remediating("no-privilege-escalation"));
        expect(remediations.map((r) => `${r.policyName} ${r.resourceName}`)).toEqual(["no-privilege-escalation api-gateway-deployment"]);
        expect(k8sContainer(resources[0]).securityContext.allowPrivilegeEscalation).toBe(false);
        expect(resources[0].props.spec.template.spec.initContainers).toEqual([null]);
    });

    it("what is not mechanical stays a violation: an extra capability, a privileged container", async () => {
        const broken = edit(deployment("api-gateway", 3001), (p) => {
            const sc = p.spec.template.spec.containers[0].securityContext;
            sc.capabilities = { add: ["NET_ADMIN"] };
            sc.privileged = true;
            delete sc.allowPrivilegeEscalation;
        });
        const r = await fix(broken, ...REMEDIABLE);
        expect(k8sContainer(r.fixed).securityContext.allowPrivilegeEscalation).toBeUndefined();
        expect(r.verdict.map((v) => v.split(":")[0]).sort()).toEqual(["drop-all-capabilities", "no-privilege-escalation", "no-privileged-containers"]);
    });

    it("a value not known during preview: the remediation does not run (the engine reports it), nothing is half-changed", async () => {
        const preview = edit(deployment("api-gateway", 3001), (p) => { p.spec.template.spec.containers = UNKNOWN; });
        const { resources, remediations } = await remediate([preview], remediating(...REMEDIABLE));
        expect(remediations).toEqual([]);
        expect(resources[0].props.spec.template.spec.containers).toBe(UNKNOWN);
    });
});

describe("Docker remediations", () => {
    // prod.json, but for the Docker fixtures' local services image (localhost/ai-trading/services, which prod's
    // allowed-image-registries rightly rejects): what is judged here is the remediation.
    const prodJson = loadConfig("prod");
    const prod: PackConfig = {
        ...prodJson,
        "allowed-image-registries": { allowedRegistries: [...(prodJson["allowed-image-registries"] as { allowedRegistries: string[] }).allowedRegistries, "localhost/ai-trading"] },
    };

    it("drops ALL, adds no-new-privileges, makes a service read-only; the pack accepts the result", async () => {
        const broken = dockerService("api-gateway", { capabilities: undefined, securityOpts: [], readOnly: false });
        const { resources, remediations } = await remediate([broken], remediating("drop-all-capabilities", "no-privilege-escalation", "read-only-root-filesystem"));
        expect(remediations.map((r) => r.policyName)).toEqual(["drop-all-capabilities", "no-privilege-escalation", "read-only-root-filesystem"]);
        expect(resources[0].props).toMatchObject({ capabilities: { drops: ["ALL"] }, securityOpts: ["no-new-privileges:true"], readOnly: true });
        expect(await runPack([...resources, dockerPrometheus()], prod)).toEqual([]);
    });

    it("pids-limit: a missing or unlimited PID limit becomes the configured one; a set limit is kept, a too-high one stays a violation", async () => {
        const missing = dockerService("api-gateway", { pidsLimit: undefined });
        const unlimited = dockerNginx(undefined, { pidsLimit: -1 });
        const { resources, remediations } = await remediate([missing, unlimited], remediating("pids-limit"));
        expect(remediations.map((r) => `${r.policyName} ${r.resourceName}`)).toEqual(["pids-limit api-gateway-container", "pids-limit nginx-container"]);
        expect(resources.map((r) => r.props.pidsLimit)).toEqual([4096, 4096]);
        expect(await runPack([...resources, dockerPrometheus()], prod)).toEqual([]);
        const custom = await remediate([missing], { ...remediating("pids-limit"), "pids-limit": { enforcementLevel: "remediate", remediationPidsLimit: 300 } });
        expect(custom.resources[0].props.pidsLimit).toBe(300);
        const high = dockerService("api-gateway", { pidsLimit: 100_000 });
        const kept = await remediate([high], remediating("pids-limit"));
        expect(kept.resources[0].props.pidsLimit).toBe(100_000);
        expect(policyNames(await runPack([...kept.resources, dockerPrometheus()], prod))).toEqual(["pids-limit"]);
    });

    it("keeps a datastore writable and its other security options", async () => {
        const pg = dockerPostgres({ ports: [], securityOpts: ["label=level:s0:c100"] });
        const { resources } = await remediate([pg], remediating(...REMEDIABLE));
        expect(resources[0].props.readOnly).toBe(false);
        expect(resources[0].props.securityOpts).toEqual(["label=level:s0:c100", "no-new-privileges:true"]);
    });
});
