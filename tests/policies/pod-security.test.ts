/** The Pod Security Standards controls the older policies did not cover, on both targets, with exact messages. */
import { describe, expect, it } from "vitest";
import { backupCronJob, container, deployment, dockerService, replicationController, statefulSet } from "./fixtures";
import { loadConfig, PackConfig, runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], cfg: PackConfig | string = "prod") => (await runPack(rs, cfg, { only: [policy] })).map((v) => v.message);
/** prod.json with profiles on the nodes listed as reviewed (session 44). */
const reviewed = (seccomp: string[], appArmor: string[]): PackConfig => ({
    ...loadConfig("prod"),
    "no-privilege-escalation": { reviewedSeccompProfiles: seccomp },
    "pod-security-apparmor": { reviewedAppArmorProfiles: appArmor },
});
const compliant = () => [dockerService(), deployment("api-gateway", 3001), statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999)];

describe("pod-security-apparmor", () => {
    it("passes the defaults, RuntimeDefault and Localhost profiles (a reviewed one, session 44)", async () => {
        const ok = deployment("api-gateway", 3001, {
            container: { securityContext: { ...deployment("x", 1).props.spec.template.spec.containers[0].securityContext, appArmorProfile: { type: "Localhost", localhostProfile: "trading" } } },
            spec: { securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" }, appArmorProfile: { type: "RuntimeDefault" } } },
        });
        expect(await messages("pod-security-apparmor", [...compliant(), ok], reviewed([], ["trading"]))).toEqual([]);
    });

    it("rejects Unconfined at pod and container level, the legacy annotation, and Docker apparmor=unconfined", async () => {
        const d = deployment("api-gateway", 3001, {
            container: { securityContext: { allowPrivilegeEscalation: false, appArmorProfile: { type: "Unconfined" } } },
            spec: { securityContext: { appArmorProfile: { type: "Unconfined" } } },
        });
        d.props.spec.template.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/api-gateway": "unconfined" };
        const docker = dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "apparmor=unconfined"] });
        const fix = "(PSS baseline \"forbidden AppArmor profile\"); use appArmorProfile: { type: RuntimeDefault } or a Localhost profile.";
        expect(await messages("pod-security-apparmor", [d, docker])).toEqual([
            `Deployment "api-gateway-deployment" pod sets appArmorProfile.type Unconfined ${fix}`,
            `Deployment "api-gateway-deployment" container "api-gateway" sets appArmorProfile.type Unconfined ${fix}`,
            `Deployment "api-gateway-deployment" annotation container.apparmor.security.beta.kubernetes.io/api-gateway is "unconfined" ${fix}`,
            "Container \"api-gateway-container\" sets securityOpts \"apparmor=unconfined\", running without an AppArmor profile; remove it so Docker applies its docker-default profile.",
        ]);
    });
});

describe("pod-security-selinux", () => {
    it("passes container_t and unset options", async () => {
        const ok = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: true, seLinuxOptions: { type: "container_t", level: "s0:c1,c2" } } } });
        expect(await messages("pod-security-selinux", [...compliant(), ok, dockerService("x", { securityOpts: ["label=level:s0:c100"] })])).toEqual([]);
    });

    it("rejects other types, custom users and roles, and Docker label=disable", async () => {
        const d = deployment("api-gateway", 3001, {
            container: { securityContext: { allowPrivilegeEscalation: false, seLinuxOptions: { type: "spc_t" } } },
            spec: { securityContext: { seLinuxOptions: { user: "system_u", role: "sysadm_r" } } },
        });
        const docker = dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "label=disable", "label=type:spc_t", "disable"] });
        const fix = "(PSS baseline \"seLinuxOptions\"); leave seLinuxOptions unset or use type container_t.";
        expect(await messages("pod-security-selinux", [d, docker])).toEqual([
            `Deployment "api-gateway-deployment" pod sets seLinuxOptions.user system_u ${fix}`,
            `Deployment "api-gateway-deployment" pod sets seLinuxOptions.role sysadm_r ${fix}`,
            `Deployment "api-gateway-deployment" container "api-gateway" sets seLinuxOptions.type spc_t ${fix}`,
            "Container \"api-gateway-container\" sets securityOpts \"label=disable\", turning SELinux separation off; remove the label option so the engine's default confinement applies.",
            "Container \"api-gateway-container\" sets securityOpts \"label=type:spc_t\" (SELinux type spc_t); remove the label option so the engine's default confinement applies.",
            "Container \"api-gateway-container\" sets securityOpts \"disable\" (label=disable to the engine), turning SELinux separation off; remove the label option so the engine's default confinement applies.",
        ]);
    });
});

describe("pod-security-proc-mount", () => {
    it("passes Default and unset", async () => {
        const ok = deployment("api-gateway", 3001, { container: { securityContext: { ...deployment("x", 1).props.spec.template.spec.containers[0].securityContext, procMount: "Default" } } });
        expect(await messages("pod-security-proc-mount", [...compliant(), ok])).toEqual([]);
    });

    it("rejects Unmasked and Docker systempaths=unconfined", async () => {
        const d = deployment("api-gateway", 3001, { container: { securityContext: { allowPrivilegeEscalation: false, procMount: "Unmasked" } } });
        const docker = dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "systempaths=unconfined"] });
        expect(await messages("pod-security-proc-mount", [d, docker])).toEqual([
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" sets procMount Unmasked (PSS baseline \"procMount\"); leave procMount unset or Default.",
            "Container \"api-gateway-container\" sets securityOpts \"systempaths=unconfined\", unmasking /proc and /sys paths; remove it.",
        ]);
    });
});

describe("pod-security-sysctls", () => {
    it("passes the safe set, and extra names listed in allowedSysctls", async () => {
        const ok = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: true, sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] } } });
        expect(await messages("pod-security-sysctls", [...compliant(), ok, dockerService("x", { sysctls: { "net.ipv4.tcp_syncookies": "1" } })])).toEqual([]);
        const custom = dockerService("x", { sysctls: { "net.core.somaxconn": "1024" } });
        expect(await runPack([custom], { all: "mandatory", "pod-security-sysctls": { allowedSysctls: ["net.core.somaxconn"] } }, { only: ["pod-security-sysctls"] })).toEqual([]);
    });

    it("rejects any other sysctl on both targets", async () => {
        const d = deployment("api-gateway", 3001, { spec: { securityContext: { sysctls: [{ name: "kernel.msgmax", value: "65536" }, { name: "net.ipv4.tcp_syncookies", value: "1" }] } } });
        const docker = dockerService("api-gateway", { sysctls: { "net.core.somaxconn": "1024", "vm.overcommit_memory": "1" } });
        const tail = "(PSS baseline \"forbidden sysctls\"): they reach beyond the container's namespace; remove them or use only kernel.shm_rmid_forced, " +
            "net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, ... (list: policy config allowedSysctls).";
        expect(await messages("pod-security-sysctls", [d, docker])).toEqual([
            `Deployment "api-gateway-deployment" sets securityContext.sysctls kernel.msgmax ${tail}`,
            `Container "api-gateway-container" sets sysctls net.core.somaxconn, vm.overcommit_memory ${tail}`,
        ]);
    });
});

describe("pod-security-volume-types", () => {
    it("passes configMap, secret, emptyDir, projected, downwardAPI, PVC, CSI and ephemeral volumes", async () => {
        const volumes = [
            { name: "a", configMap: { name: "c" } }, { name: "b", secret: { secretName: "s" } }, { name: "tmp", emptyDir: {} },
            { name: "d", projected: { sources: [] } }, { name: "e", downwardAPI: { items: [] } }, { name: "f", persistentVolumeClaim: { claimName: "p" } },
            { name: "g", csi: { driver: "x" } }, { name: "h", ephemeral: { volumeClaimTemplate: { spec: {} } } },
        ];
        expect(await messages("pod-security-volume-types", [...compliant(), deployment("api-gateway", 3001, { spec: { volumes } })])).toEqual([]);
    });

    it("rejects hostPath, NFS, iSCSI and other sources", async () => {
        const volumes = [{ name: "tmp", emptyDir: {} }, { name: "logs", hostPath: { path: "/var/log" } }, { name: "share", nfs: { server: "nas", path: "/x" } }, { name: "lun", iscsi: { targetPortal: "10.0.0.1:3260", iqn: "iqn.x", lun: 0 } }];
        const tail = "use a PersistentVolumeClaim (storage through a StorageClass), emptyDir, configMap, secret or projected volume instead.";
        expect(await messages("pod-security-volume-types", [deployment("api-gateway", 3001, { spec: { volumes } })])).toEqual([
            `Deployment "api-gateway-deployment" volume "logs" is of type hostPath (PSS restricted "restricted volume types"); ${tail}`,
            `Deployment "api-gateway-deployment" volume "share" is of type nfs (PSS restricted "restricted volume types"); ${tail}`,
            `Deployment "api-gateway-deployment" volume "lun" is of type iscsi (PSS restricted "restricted volume types"); ${tail}`,
        ]);
    });
});

describe("the older container policies read the pod spec as Pod Security admission does", () => {
    it("capabilities are compared exactly on Kubernetes (\"all\" is not ALL, CAP_NET_BIND_SERVICE is not NET_BIND_SERVICE)", async () => {
        const d = deployment("api-gateway", 3001, { container: { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["all"], add: ["CAP_NET_BIND_SERVICE"] } } } });
        expect((await messages("drop-all-capabilities", [d])).map((m) => m.split(";")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" does not drop ALL capabilities",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" adds capabilities CAP_NET_BIND_SERVICE",
        ]);
    });

    it("an explicit runAsNonRoot: false, runAsUser: 0 or Unconfined seccomp at pod level is wrong even when containers override it", async () => {
        const d = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: false, runAsUser: 0, seccompProfile: { type: "Unconfined" } } } });
        d.props.spec.template.spec.containers[0].securityContext.runAsNonRoot = true;
        expect((await messages("run-as-non-root", [d])).map((m) => m.split(";")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" pod sets runAsNonRoot: false",
            "Deployment \"api-gateway-deployment\" pod sets runAsUser: 0",
        ]);
        expect((await messages("no-privilege-escalation", [d])).map((m) => m.split(";")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" pod has seccompProfile Unconfined (needs RuntimeDefault or Localhost)",
        ]);
    });

    it("a Windows HostProcess pod is privileged", async () => {
        const d = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: true, windowsOptions: { hostProcess: true } } } });
        expect((await messages("no-privileged-containers", [d])).map((m) => m.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" sets windowsOptions.hostProcess: true (a Windows HostProcess pod)",
        ]);
    });
});

describe("a ReplicationController (legacy core/v1, still served: it runs pods as a ReplicaSet does)", () => {
    const policiesOf = async (r: TestResource) => [...new Set((await runPack([r], "prod")).map((v) => v.policyName))].sort();

    it("is checked by every policy as the Deployment of the same pod template", async () => {
        expect(await policiesOf(replicationController("api-gateway", 3001))).toEqual(await policiesOf(deployment("api-gateway", 3001)));
        const hostile = {
            container: { image: "node:latest", securityContext: { privileged: true, runAsUser: 0, allowPrivilegeEscalation: true, capabilities: { add: ["SYS_ADMIN"] } } },
            spec: { hostNetwork: true, volumes: [{ name: "root", hostPath: { path: "/" } }] },
        };
        const asDeployment = await policiesOf(deployment("api-gateway", 3001, hostile));
        expect(asDeployment).toEqual(expect.arrayContaining(["no-privileged-containers", "run-as-non-root", "no-privilege-escalation", "drop-all-capabilities", "pinned-image-tags", "pod-security-volume-types"]));
        expect(await policiesOf(replicationController("api-gateway", 3001, hostile))).toEqual(asDeployment);
    });
});

// Session 44's policy hunt: a Localhost seccomp or AppArmor profile is a file on each node, out of the
// pack's sight (it may allow every system call), and passed as RuntimeDefault does.
describe("Localhost seccomp and AppArmor profiles must be reviewed (session 44)", () => {
    const sc = (profile: Record<string, unknown>) => ({ ...container("x", 1).securityContext, ...profile });
    const seccompFix = "; use seccompProfile: { type: RuntimeDefault }, or review the profile on every node (it must refuse what the runtime's default refuses) " +
        "and list its localhostProfile in this policy's reviewedSeccompProfiles.";
    const appArmorFix = "; use the runtime's default profile (RuntimeDefault; on Docker, no apparmor option), or review the profile on every node " +
        "and list its name in this policy's reviewedAppArmorProfiles.";
    const localSeccomp = { type: "Localhost", localhostProfile: "profiles/allow-all.json" };
    const d = deployment("api-gateway", 3001, {
        spec: {
            securityContext: { runAsNonRoot: true, seccompProfile: localSeccomp, appArmorProfile: { type: "Localhost", localhostProfile: "loose" } },
            initContainers: [container("migrate", 0, { ports: [], securityContext: sc({ seccompProfile: { type: "Localhost", localhostProfile: "profiles/migrate.json" } }) })],
        },
    });
    d.props.spec.template.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/api-gateway": "localhost/legacy" };
    const cron = backupCronJob("postgres", "postgres:16.4-bookworm", 999);
    cron.props.spec.jobTemplate.spec.template.spec.containers[0].securityContext.seccompProfile = { type: "Localhost" };
    cron.props.spec.jobTemplate.spec.template.spec.containers[0].securityContext.appArmorProfile = { type: "Localhost", localhostProfile: "backup" };
    const docker = dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "apparmor=loose-profile"] });

    it("rejects a Localhost profile not listed as reviewed, at pod and container level, in init containers and CronJob templates, and Docker's apparmor=<name>", async () => {
        expect(await messages("no-privilege-escalation", [d, cron, docker])).toEqual([
            `Deployment "api-gateway-deployment" pod has seccompProfile Localhost "profiles/allow-all.json", a profile on the node the pack cannot read, not listed in reviewedSeccompProfiles${seccompFix}`,
            `Deployment "api-gateway-deployment" container "migrate" has seccompProfile Localhost "profiles/migrate.json", a profile on the node the pack cannot read, not listed in reviewedSeccompProfiles${seccompFix}`,
            `CronJob "postgres-backup-cronjob" container "postgres-backup" has seccompProfile Localhost without a localhostProfile, a profile on the node the pack cannot read, not listed in reviewedSeccompProfiles${seccompFix}`,
        ]);
        expect(await messages("pod-security-apparmor", [d, cron, docker])).toEqual([
            `Deployment "api-gateway-deployment" pod sets appArmorProfile Localhost "loose", a profile on the node the pack cannot read, not listed in reviewedAppArmorProfiles${appArmorFix}`,
            `Deployment "api-gateway-deployment" annotation container.apparmor.security.beta.kubernetes.io/api-gateway is "localhost/legacy", a profile on the node the pack cannot read, not listed in reviewedAppArmorProfiles${appArmorFix}`,
            `CronJob "postgres-backup-cronjob" container "postgres-backup" sets appArmorProfile Localhost "backup", a profile on the node the pack cannot read, not listed in reviewedAppArmorProfiles${appArmorFix}`,
            `Container "api-gateway-container" sets securityOpts "apparmor=loose-profile", a profile on the node the pack cannot read, not listed in reviewedAppArmorProfiles${appArmorFix}`,
        ]);
    });

    it("passes listed profiles, Docker's docker-default, and a profile name unknown during preview; prod.json and local-k8s.json list the same (none)", async () => {
        const cfg = reviewed(["profiles/allow-all.json", "profiles/migrate.json"], ["loose", "legacy", "backup", "loose-profile"]);
        expect(await messages("no-privilege-escalation", [d, docker], cfg)).toEqual([]);
        expect(await messages("pod-security-apparmor", [d, cron, docker], cfg)).toEqual([]);
        expect(await messages("pod-security-apparmor", [dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "apparmor=docker-default"] })])).toEqual([]);
        const unknown = deployment("api-gateway", 3001, { spec: { securityContext: { runAsNonRoot: true, seccompProfile: { type: "Localhost", localhostProfile: UNKNOWN } } } });
        expect(await messages("no-privilege-escalation", [unknown])).toEqual([]);
        for (const policy of ["no-privilege-escalation", "pod-security-apparmor"]) {
            expect(loadConfig("local-k8s")[policy], policy).toEqual(loadConfig("prod")[policy]);
        }
        expect(loadConfig("prod")["no-privilege-escalation"]).toEqual({ reviewedSeccompProfiles: [] });
    });
});
