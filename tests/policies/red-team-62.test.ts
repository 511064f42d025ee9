/**
 * Session 62: insecure configurations earlier rounds did not try, each violating case failing before its fix. (Case, what
 * happened, the fix: policies/README.md "Red team, session 62".)
 */
import { describe, expect, it } from "vitest";
import { asEveryPodKind, deployment, devStack, dockerContainer, dockerService, edit, NS, prodStack } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: "prod" | "dev" = "prod") => (await runPack(rs, config, { only: [policy] })).map((v) => v.message);
const violations = async (policy: string, rs: TestResource[], config: "prod" | "dev" = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => [v.resourceName, v.message]);

describe("pod-security-host-probes: no probe or lifecycle hook names a host (PSS baseline, Kubernetes 1.34)", () => {
    const FIX = "(PSS baseline \"probe or lifecycle host\"): the kubelet sends that request from the node's network, past every NetworkPolicy, to " +
        "whatever the host names (the cloud metadata service, the kubelet's own ports, the API server); remove host so the kubelet calls the " +
        "pod's own address, and probe other services from inside the container (an exec probe).";
    const probing = edit(deployment("market-data", 3000), (p) => {
        const c = p.spec.template.spec.containers[0];
        c.livenessProbe = { httpGet: { host: "169.254.169.254", path: "/latest/meta-data/iam/security-credentials/", port: 80 }, periodSeconds: 10 };
        c.readinessProbe = { tcpSocket: { host: "10.0.0.1", port: 10250 }, periodSeconds: 10 };
        c.lifecycle = { preStop: { httpGet: { host: "localhost", path: "/quitquitquit", port: 10248 } }, postStart: { tcpSocket: { host: "kubernetes.default.svc", port: 443 } } };
        // A sidecar (an init container that keeps running) may carry probes too.
        p.spec.template.spec.initContainers = [{ ...structuredClone(c), name: "sidecar", restartPolicy: "Always", livenessProbe: undefined, readinessProbe: undefined, lifecycle: undefined,
            startupProbe: { httpGet: { host: "127.0.0.1", path: "/healthz", port: 10256 } } }];
    });

    it("rejects httpGet and tcpSocket hosts in probes and lifecycle hooks, app and init containers", async () => {
        expect(await messages("pod-security-host-probes", [probing])).toEqual([
            `Deployment "market-data-deployment" init container "sidecar" startupProbe.httpGet.host is "127.0.0.1" ${FIX}`,
            `Deployment "market-data-deployment" container "market-data" livenessProbe.httpGet.host is "169.254.169.254" ${FIX}`,
            `Deployment "market-data-deployment" container "market-data" readinessProbe.tcpSocket.host is "10.0.0.1" ${FIX}`,
            `Deployment "market-data-deployment" container "market-data" lifecycle.postStart.tcpSocket.host is "kubernetes.default.svc" ${FIX}`,
            `Deployment "market-data-deployment" container "market-data" lifecycle.preStop.httpGet.host is "localhost" ${FIX}`,
        ]);
    });

    it("reads every pod-bearing kind", async () => {
        const found = await violations("pod-security-host-probes", asEveryPodKind(probing));
        expect(new Set(found.map(([name]) => name)).size).toBe(8);
        expect(found).toHaveLength(8 * 5);
    });

    it("passes probes without a host, an empty host (the pod's address), a host unknown during preview, and the stacks", async () => {
        const fine = edit(deployment("market-data", 3000), (p) => {
            const c = p.spec.template.spec.containers[0];
            c.livenessProbe = { httpGet: { host: "", path: "/health", port: 3000 } };
            c.readinessProbe = { tcpSocket: { host: UNKNOWN, port: 3000 } };
            c.lifecycle = { preStop: { exec: { command: ["sleep", "5"] } } };
        });
        expect(await messages("pod-security-host-probes", [fine, ...prodStack()])).toEqual([]);
        expect(await messages("pod-security-host-probes", devStack(), "dev")).toEqual([]);
    });
});

describe("workload-volume-scope: no workload mounts another workload's storage", () => {
    /** `workload`'s Deployment mounting the claim `claim` read-only at /data. */
    const mounting = (workload: string, claim: string) => edit(deployment(workload, 3000), (p) => {
        p.spec.template.spec.volumes.push({ name: "data", persistentVolumeClaim: { claimName: claim, readOnly: true } });
        p.spec.template.spec.containers[0].volumeMounts.push({ name: "data", mountPath: "/data", readOnly: true });
    });
    const pvc = (name: string, workload?: string): TestResource => ({
        type: "kubernetes:core/v1:PersistentVolumeClaim", name: `${name}-pvc`,
        props: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: NS, ...(workload ? { labels: { "trading.io/workload": workload } } : {}) },
            spec: { accessModes: ["ReadWriteOnce"], storageClassName: "standard", resources: { requests: { storage: "1Gi" } } } },
    });
    const fix = (owner: string) => `so its containers read and write ${owner}'s files directly, past ${owner}'s own authentication and the network policies, and whoever takes ` +
        `them over does too. Reach ${owner} through its Service with credentials of its own, and give the workload storage of its own ` +
        "(a claim template or PersistentVolumeClaim, a Docker volume, labelled with its workload).";

    it("rejects a pod mounting a StatefulSet's claim (data-postgres-1) or a PersistentVolumeClaim labelled for another workload", async () => {
        const stack = [...prodStack(), mounting("market-data", "data-postgres-1"), pvc("postgres-backup-backups", "postgres-backup"), mounting("reports", "postgres-backup-backups")];
        expect(await violations("workload-volume-scope", stack)).toEqual([
            ["market-data-deployment", "Deployment \"market-data-deployment\" (trading.io/workload market-data) mounts claim \"data-postgres-1\" (StatefulSet \"postgres\" " +
                `volumeClaimTemplates data, replica 1) of workload postgres (volume "data" (persistentVolumeClaim)), ${fix("postgres")}`],
            ["reports-deployment", "Deployment \"reports-deployment\" (trading.io/workload reports) mounts PersistentVolumeClaim \"postgres-backup-backups\" of workload " +
                `postgres-backup (volume "data" (persistentVolumeClaim)), ${fix("postgres-backup")}`],
        ]);
    });

    it("passes a workload's own claims, an unlabelled or undeclared claim, another namespace's, and the stacks", async () => {
        const own = edit(mounting("postgres-backup", "postgres-backup-backups"), (p) => { p.metadata.labels["trading.io/role"] = "job"; });
        const elsewhere = edit(mounting("market-data", "data-postgres-0"), (p) => { p.metadata.namespace = "analytics"; });
        const stack = [...prodStack(), pvc("postgres-backup-backups", "postgres-backup"), own, pvc("scratch"), mounting("market-data", "scratch"),
            mounting("reports", "data-clickhouse-x"), elsewhere, mounting("ledger", UNKNOWN as unknown as string)];
        expect(await messages("workload-volume-scope", stack)).toEqual([]);
        expect(await messages("workload-volume-scope", devStack(), "dev")).toEqual([]);
    });

    it("rejects a Docker container mounting another workload's volume (volumes[].volumeName, mounts[].source)", async () => {
        const volume: TestResource = { type: "docker:index/volume:Volume", name: "postgres-data", props: { name: "ai-trading-dev-postgres-data", labels: [{ label: "trading.io/workload", value: "postgres" }] } };
        const byName = dockerService("market-data", { volumes: [{ volumeName: "ai-trading-dev-postgres-data", containerPath: "/pg", readOnly: true }] });
        const byMount = dockerService("reports", { mounts: [{ type: "volume", source: "ai-trading-dev-postgres-data", target: "/pg" }] });
        const owner = dockerContainer("postgres", "datastore", { volumes: [{ volumeName: "ai-trading-dev-postgres-data", containerPath: "/var/lib/postgresql/data" }] });
        expect(await violations("workload-volume-scope", [...devStack(), volume, owner, byName, byMount], "dev")).toEqual([
            ["market-data-container", "Container \"market-data-container\" (trading.io/workload market-data) mounts volume \"ai-trading-dev-postgres-data\" of workload " +
                `postgres (volumes[0].volumeName), ${fix("postgres")}`],
            ["reports-container", "Container \"reports-container\" (trading.io/workload reports) mounts volume \"ai-trading-dev-postgres-data\" of workload " +
                `postgres (mounts[0].source), ${fix("postgres")}`],
        ]);
    });
});

describe("resource-limits: cpuShares is no CPU limit on Docker", () => {
    it("rejects a container whose only CPU setting is cpuShares, the largest weight included", async () => {
        expect((await messages("resource-limits", [dockerService("market-data", { cpus: undefined, cpuShares: 262144 })], "dev")).map((m) => m.split("; ")[0])).toEqual([
            "Container \"market-data-container\" has no CPU limit: cpuShares 262144 is only a weight under contention, not a cap (cpus, or cpuQuota with cpuPeriod)",
        ]);
    });

    it("passes cpus, or a quota per period, with or without cpuShares", async () => {
        expect(await messages("resource-limits", [dockerService("market-data", { cpus: "0.5", cpuShares: 512 }),
            dockerService("reports", { cpus: undefined, cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000 })], "dev")).toEqual([]);
    });
});
