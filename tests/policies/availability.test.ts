import { describe, expect, it } from "vitest";
import { countAlertRules } from "../../policies/rules/prometheus-alert-rules";
import {
    ALERT_RULES, backupCronJob, deployment, dockerContainer, dockerService, dockerPostgres, dockerPrometheus, hpa, pdb, prodStack, replace,
    replicationController, rulesConfigMap, statefulSet,
} from "./fixtures";
import { runPack, summary, UNKNOWN } from "./run-pack";

const only = (name: string) => ({ only: [name] });

describe("service-min-replicas", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("service-min-replicas"));

    it("passes 2 replicas, or an HPA with minReplicas 2; ignores datastores", async () => {
        expect(await run(prodStack())).toEqual([]);
        const scaled = [deployment("database-service", 8008, { replicas: 1 }), hpa("database-service", 2)];
        expect(await run(scaled)).toEqual([]);
    });

    it("rejects a single replica on prod and is not applicable on dev", async () => {
        const rs = replace(prodStack(), "api-gateway-deployment", (p) => { p.spec.replicas = 1; });
        expect(await run(rs)).toEqual([{
            policyName: "service-min-replicas", resourceName: "api-gateway-deployment", enforcementLevel: "mandatory",
            message: "Deployment \"api-gateway\" (role=service) would be down during a rollout or node loss: spec.replicas is 1; " +
                "run at least 2 replicas (spec.replicas or the HPA's minReplicas).",
        }]);
        expect(await run(rs, "dev")).toEqual([]);
        const unset = [deployment("central-hub", 7000), hpa("central-hub", 1)];
        expect((await run(unset)).map((v) => v.message.split(": ")[1].split(";")[0])).toEqual(["its HorizontalPodAutoscaler's minReplicas is 1"]);
    });
});

// Session 44's policy hunt: a KEDA ScaledObject scales its target through an HPA KEDA writes at apply time,
// down to minReplicaCount (default 0: scale to zero when idle); the pack read spec.replicas and passed.
describe("service-min-replicas: KEDA ScaledObjects (session 44)", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("service-min-replicas"));
    const scaledObject = (workload: string, spec: Record<string, unknown> = {}) => ({
        type: "kubernetes:keda.sh/v1alpha1:ScaledObject", name: `${workload}-scaledobject`,
        props: { apiVersion: "keda.sh/v1alpha1", kind: "ScaledObject", metadata: { name: workload, namespace: "ai-trading" },
            spec: { scaleTargetRef: { name: workload }, maxReplicaCount: 6, triggers: [{ type: "kafka", metadata: { topic: "orders" } }], ...spec } },
    });

    it("rejects a service scaled to zero by KEDA's default or a minReplicaCount below two, and passes one of two or more", async () => {
        expect((await run([deployment("api-gateway", 3001, { replicas: 3 }), scaledObject("api-gateway"),
            deployment("central-hub", 7000, { replicas: 3 }), scaledObject("central-hub", { minReplicaCount: 1 })])).map((v) => v.message)).toEqual([
            "Deployment \"api-gateway\" (role=service) would be down during a rollout or node loss: its KEDA ScaledObject's minReplicaCount is 0 (KEDA's default); " +
                "run at least 2 replicas (the ScaledObject's minReplicaCount).",
            "Deployment \"central-hub\" (role=service) would be down during a rollout or node loss: its KEDA ScaledObject's minReplicaCount is 1; " +
                "run at least 2 replicas (the ScaledObject's minReplicaCount).",
        ]);
        expect(await run([deployment("api-gateway", 3001, { replicas: 1 }), scaledObject("api-gateway", { minReplicaCount: 2 })])).toEqual([]);
        // Another kind's target is not the Deployment.
        expect(await run([deployment("api-gateway", 3001), scaledObject("api-gateway", { scaleTargetRef: { name: "api-gateway", kind: "StatefulSet" } })])).toEqual([]);
    });
});

describe("an autoscaling/v1 HorizontalPodAutoscaler (still served) sets the floor as a v2 one does", () => {
    const v1 = (workload: string, minReplicas: number) => {
        const h = hpa(workload, minReplicas);
        return { ...h, type: "kubernetes:autoscaling/v1:HorizontalPodAutoscaler", props: { ...h.props, apiVersion: "autoscaling/v1", spec: { ...h.props.spec, targetCPUUtilizationPercentage: 80 } } };
    };

    it("scales a service below two replicas: refused; at two: passed; pointing at nothing: a dangling reference", async () => {
        const policies = { only: ["service-min-replicas", "pod-anti-affinity", "selectors-match-workloads"] };
        expect((await runPack([deployment("database-service", 8008, { replicas: 3 }), v1("database-service", 1)], "prod", policies)).map((v) => v.message.split(";")[0])).toEqual([
            "Deployment \"database-service\" (role=service) would be down during a rollout or node loss: its HorizontalPodAutoscaler's minReplicas is 1",
        ]);
        expect(await runPack([deployment("database-service", 8008, { replicas: 1 }), v1("database-service", 2)], "prod", policies)).toEqual([]);
        expect((await runPack([...prodStack(), v1("nowhere", 2)], "prod", policies)).map((v) => v.message.split(",")[0])).toEqual([
            "HorizontalPodAutoscaler \"nowhere\" scales Deployment \"nowhere\"",
        ]);
    });
});

describe("declared singletons", () => {
    const singleton = (label: boolean, strategy: string) =>
        [deployment("trading-engine", 9000, { replicas: 1, spec: undefined })].map((d) => {
            if (label) {
                d.props.metadata.labels["trading.io/singleton"] = "true";
                d.props.spec.template.metadata.labels["trading.io/singleton"] = "true";
            }
            d.props.spec.strategy = { type: strategy };
            return d;
        });

    it("are exempt from min-replicas and PDB only with the label, one replica and a Recreate rollout", async () => {
        const policies = { only: ["service-min-replicas", "service-pod-disruption-budget"] };
        expect(await runPack(singleton(true, "Recreate"), "prod", policies)).toEqual([]);
        // The label alone is not enough: a rolling update would run two instances at once.
        expect(summary(await runPack(singleton(true, "RollingUpdate"), "prod", policies))).toEqual(
            expect.arrayContaining([expect.stringContaining("service-min-replicas"), expect.stringContaining("service-pod-disruption-budget")]),
        );
        expect((await runPack(singleton(false, "Recreate"), "prod", policies)).map((v) => v.policyName).sort()).toEqual([
            "service-min-replicas",
            "service-pod-disruption-budget",
        ]);
    });
});

describe("service-pod-disruption-budget", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("service-pod-disruption-budget"));

    it("passes a matching PDB", async () => {
        expect(await run(prodStack())).toEqual([]);
        expect(await run([deployment("central-hub", 7000, { replicas: 3 }), pdb("central-hub", { minAvailable: 2 })])).toEqual([]);
    });

    it("rejects a missing or non-matching PDB on prod only", async () => {
        const rs = replace(prodStack(), "api-gateway-pdb", (p) => { p.spec.selector.matchLabels = { "trading.io/workload": "api-gw" }; });
        expect(await run(rs)).toEqual([{
            policyName: "service-pod-disruption-budget", resourceName: "api-gateway-deployment", enforcementLevel: "mandatory",
            message: "Deployment \"api-gateway\" (role=service) has no PodDisruptionBudget selecting its pods in namespace \"ai-trading\"; " +
                "add one (policy/v1, selector.matchLabels = its trading.io/workload label, maxUnavailable: 1).",
        }]);
        expect(await run(rs, "dev")).toEqual([]);
    });

    it("rejects a PDB that blocks every drain", async () => {
        const rs = [deployment("central-hub", 7000, { replicas: 2 }), pdb("central-hub", { minAvailable: 2 })];
        expect((await run(rs)).map((v) => `${v.resourceName}: ${v.message.split(",")[0]}`)).toEqual([
            "central-hub-pdb: PodDisruptionBudget \"central-hub\" allows no disruption of Deployment \"central-hub\"",
        ]);
        expect(summary(await run([deployment("central-hub", 7000), pdb("central-hub", { maxUnavailable: 0 })]))).toEqual(["service-pod-disruption-budget central-hub-pdb"]);
    });
});

// Session 44's policy hunt: a PDB that lets every pod go at once (maxUnavailable 100% or the replica count,
// minAvailable 0) counted as the budget the rule asks for, and protected nothing.
describe("service-pod-disruption-budget: budgets that protect nothing (session 44)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("service-pod-disruption-budget"));
    const fix = ", so a node drain or cluster upgrade takes it down while it seems covered; use maxUnavailable: 1 (or minAvailable below the replica count).";

    it("rejects maxUnavailable 100% or at least the replicas (the HPA's floor too), and minAvailable 0 or 0%, on prod only", async () => {
        const rs = [
            deployment("api-gateway", 3001, { replicas: 3 }), pdb("api-gateway", { maxUnavailable: "100%" }),
            deployment("central-hub", 7000, { replicas: 4 }), hpa("central-hub", 2), pdb("central-hub", { maxUnavailable: 2 }),
            deployment("risk-analyzer", 8020, { replicas: 2 }), pdb("risk-analyzer", { minAvailable: "0%" }),
            deployment("portfolio-manager", 3003, { replicas: 2 }), pdb("portfolio-manager", { minAvailable: 0 }),
        ];
        expect((await run(rs)).map((v) => `${v.resourceName}: ${v.message}`)).toEqual([
            `api-gateway-pdb: PodDisruptionBudget "api-gateway" lets every pod of Deployment "api-gateway" be evicted at once (maxUnavailable: 100%)${fix}`,
            `central-hub-pdb: PodDisruptionBudget "central-hub" lets every pod of Deployment "central-hub" be evicted at once (maxUnavailable: 2 of 2 replicas)${fix}`,
            `risk-analyzer-pdb: PodDisruptionBudget "risk-analyzer" lets every pod of Deployment "risk-analyzer" be evicted at once (minAvailable: 0%)${fix}`,
            `portfolio-manager-pdb: PodDisruptionBudget "portfolio-manager" lets every pod of Deployment "portfolio-manager" be evicted at once (minAvailable: 0)${fix}`,
        ]);
        expect(await run(rs, "dev")).toEqual([]);
    });

    it("passes budgets that keep a pod, and leaves a single replica to service-min-replicas", async () => {
        expect(await run([deployment("api-gateway", 3001, { replicas: 3 }), pdb("api-gateway", { maxUnavailable: "50%" })])).toEqual([]);
        expect(await run([deployment("api-gateway", 3001, { replicas: 3 }), pdb("api-gateway", { maxUnavailable: 2 })])).toEqual([]);
        expect(await run([deployment("api-gateway", 3001, { replicas: 2 }), pdb("api-gateway", { minAvailable: 1 })])).toEqual([]);
        expect(await run([deployment("api-gateway", 3001, { replicas: 1 }), pdb("api-gateway", { maxUnavailable: 1 })])).toEqual([]);
    });
});

// Session 45's policy hunt: two PodDisruptionBudgets selecting the same pods passed, while the eviction API refuses
// to evict such a pod at all (node drains hang).
describe("service-pod-disruption-budget: two budgets on one workload's pods (session 45)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("service-pod-disruption-budget"));
    const byRole = (): Parameters<typeof runPack>[0][number] => {
        const p = pdb("services", { maxUnavailable: 1 });
        p.props.spec.selector = { matchLabels: { "trading.io/role": "service" } };
        return p;
    };

    it("rejects a second budget selecting a workload's pods, by its own name or a wider selector, on prod only", async () => {
        const second = pdb("api-gateway", { minAvailable: 1 });
        second.name = "api-gateway-extra-pdb";
        second.props.metadata.name = "api-gateway-extra";
        const rs = [deployment("api-gateway", 3001, { replicas: 3 }), pdb("api-gateway"), second, deployment("risk-analyzer", 8020), pdb("risk-analyzer"), byRole()];
        const twice = (extra: string, first: string, workload: string) => `PodDisruptionBudget "${extra}" selects the pods of Deployment "${workload}", which PodDisruptionBudget ` +
            `"${first}" selects already: the eviction API refuses to evict a pod under more than one budget, so node drains hang on every one of them; ` +
            "keep one PodDisruptionBudget per workload (narrow the other's selector).";
        expect((await run(rs)).map((v) => `${v.resourceName}: ${v.message}`)).toEqual([
            `api-gateway-extra-pdb: ${twice("api-gateway-extra", "api-gateway", "api-gateway")}`,
            `services-pdb: ${twice("services", "api-gateway", "api-gateway")}`,
            `services-pdb: ${twice("services", "risk-analyzer", "risk-analyzer")}`,
        ]);
        expect(await run(rs, "dev")).toEqual([]);
    });

    it("passes one budget per workload, however selected", async () => {
        expect(await run([deployment("api-gateway", 3001), deployment("risk-analyzer", 8020), byRole()])).toEqual([]);
        expect(await run([deployment("api-gateway", 3001), pdb("api-gateway"), deployment("risk-analyzer", 8020), pdb("risk-analyzer")])).toEqual([]);
    });
});

describe("datastore-backups", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("datastore-backups"));

    it("passes when PostgreSQL and ClickHouse have backup CronJobs", async () => {
        expect(await run(prodStack())).toEqual([]);
    });

    it("rejects a missing or suspended backup on prod, not on dev", async () => {
        const rs = prodStack().filter((r) => r.name !== "postgres-backup-cronjob");
        expect(await run(rs)).toEqual([{
            policyName: "datastore-backups", resourceName: "postgres-statefulset", enforcementLevel: "mandatory",
            message: "Datastore \"postgres\" has no backup: add a batch/v1 CronJob labelled trading.io/backup-of=postgres with a schedule " +
                "(pg_dump / clickhouse-backup to a persistent volume or object store), not suspended.",
        }]);
        expect(await run(rs, "dev")).toEqual([]);
        const suspended = replace(prodStack(), "clickhouse-backup-cronjob", (p) => { p.spec.suspend = true; });
        expect(summary(await run(suspended))).toEqual(["datastore-backups clickhouse-statefulset"]);
    });

    it("covers only the configured datastores that are deployed", async () => {
        const rs = [statefulSet("dragonfly", "datastore", "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", 6379, 999)];
        expect(await run(rs)).toEqual([]);
        const cfg = { all: "mandatory" as const, "datastore-backups": { requireBackupFor: ["dragonfly"] } };
        expect(summary(await run(rs, cfg))).toEqual(["datastore-backups dragonfly-statefulset"]);
        expect(await run([...rs, backupCronJob("dragonfly", "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", 999)], cfg)).toEqual([]);
        // On a Docker host a one-shot backup container counts (Docker has no scheduler).
        const dockerBackup = dockerContainer("postgres-backup", "job", { labels: [
            { label: "trading.io/workload", value: "postgres-backup" }, { label: "trading.io/role", value: "job" }, { label: "trading.io/backup-of", value: "postgres" },
        ] });
        expect(await run([dockerPostgres(), dockerBackup])).toEqual([]);
    });
});

describe("datastore-persistent-storage", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("datastore-persistent-storage"));
    const fix = "mount a PersistentVolumeClaim (volumeClaimTemplates) at its data directory";

    it("passes datastores on a mounted claim or a named Docker volume, and leaves services, jobs and dev alone", async () => {
        expect(await run(prodStack())).toEqual([]);
        expect(await run([dockerPostgres()])).toEqual([]);
        const bare = dockerPostgres({ volumes: [] });
        expect(await run([bare], "dev")).toEqual([]);
    });

    it("rejects a datastore whose data lives in the container or an emptyDir, and a claim no container mounts", async () => {
        const noClaims = replace(prodStack(), "postgres-statefulset", (p) => { delete p.spec.volumeClaimTemplates; });
        const emptyDir = replace(prodStack(), "clickhouse-statefulset", (p) => {
            delete p.spec.volumeClaimTemplates;
            p.spec.template.spec.volumes.push({ name: "data", emptyDir: {} });
        });
        const unmounted = replace(prodStack(), "postgres-statefulset", (p) => {
            p.spec.template.spec.containers[0].volumeMounts = [{ name: "tmp", mountPath: "/tmp" }];
        });
        const k8sMessage = (kind: string, name: string) =>
            `${kind} "${name}" is a datastore whose containers mount no PersistentVolumeClaim: its data is lost whenever the pod is rescheduled or replaced; ${fix}.`;
        expect((await run(noClaims)).map((v) => v.message)).toEqual([k8sMessage("StatefulSet", "postgres-statefulset")]);
        expect((await run(emptyDir)).map((v) => v.message)).toEqual([k8sMessage("StatefulSet", "clickhouse-statefulset")]);
        expect((await run(unmounted)).map((v) => v.message)).toEqual([k8sMessage("StatefulSet", "postgres-statefulset")]);
        expect(await run([dockerPostgres({ volumes: [] })])).toEqual([{
            policyName: "datastore-persistent-storage", resourceName: "postgres-container", enforcementLevel: "mandatory",
            message: "Container \"postgres-container\" is a datastore with no named volume: its data is lost whenever the container is replaced; mount a Docker volume (volumes[].volumeName) at its data directory.",
        }]);
    });

    it("passes a claim mounted as a pod volume (persistentVolumeClaim), and skips mounts unknown during preview", async () => {
        const pvc = replace(prodStack(), "postgres-statefulset", (p) => {
            delete p.spec.volumeClaimTemplates;
            p.spec.template.spec.volumes.push({ name: "data", persistentVolumeClaim: { claimName: "postgres-data" } });
        });
        expect(await run(pvc)).toEqual([]);
        const unknown = replace(prodStack(), "postgres-statefulset", (p) => { p.spec.template.spec.containers[0].volumeMounts = UNKNOWN; });
        expect(await run(unknown)).toEqual([]);
    });
});

describe("prometheus-alert-rules", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("prometheus-alert-rules"));

    it("passes rules in a labelled ConfigMap (Kubernetes) or uploaded under /etc/prometheus/rules/ (Docker)", async () => {
        expect(await run(prodStack())).toEqual([]);
        expect(await run([dockerPrometheus()])).toEqual([]);
        expect(countAlertRules(ALERT_RULES)).toBe(2);
    });

    it("rejects Prometheus without alerting rules on prod, not on dev", async () => {
        const rs = prodStack().filter((r) => r.name !== "prometheus-rules");
        expect(await run(rs)).toEqual([{
            policyName: "prometheus-alert-rules", resourceName: "prometheus-statefulset", enforcementLevel: "mandatory",
            message: "Prometheus is deployed with 0 alerting rule(s) (need 1): ship rule files (YAML with groups[].rules[] having alert and expr) " +
                "in a ConfigMap labelled trading.io/prometheus-rules=true, or on Docker as an upload under /etc/prometheus/rules/ — e.g. service " +
                "down (up == 0), error rate, datastore unreachable.",
        }]);
        expect(await run(rs, "dev")).toEqual([]);
        expect(summary(await run([dockerPrometheus(null)]))).toEqual(["prometheus-alert-rules prometheus-container"]);
    });

    // Session 40's configuration hunt: prod with trading:prometheusEnabled false passed, the rule judged only a Prometheus that was there.
    it("rejects a prod stack with services and no Prometheus at all (Kubernetes or Docker), not on dev nor without services", async () => {
        const message = (n: number) => `The stack deploys ${n} service workload(s) and no Prometheus, so no alerting rule is evaluated (a service down, ` +
            "a datastore unreachable, a backup overdue go unnoticed): deploy Prometheus with its rules (trading:prometheusEnabled true).";
        const noMonitoring = prodStack().filter((r) => !r.name.startsWith("prometheus"));
        const services = noMonitoring.filter((r) => r.props.metadata?.labels?.["trading.io/role"] === "service" && r.type.startsWith("kubernetes:apps")).length;
        expect(services).toBeGreaterThan(0);
        expect(await run(noMonitoring)).toEqual([{ policyName: "prometheus-alert-rules", enforcementLevel: "mandatory", message: message(services) }]);
        expect(await run(noMonitoring, "dev")).toEqual([]);
        expect((await run([dockerService()])).map((v) => v.message)).toEqual([message(1)]);
        expect(await run(noMonitoring.filter((r) => r.props.metadata?.labels?.["trading.io/role"] !== "service"))).toEqual([]);
    });

    it("counts only real alerting rules and honours minAlertRules", async () => {
        const recordingOnly = "groups:\n  - name: rec\n    rules:\n      - record: job:up:sum\n        expr: sum(up)\n";
        expect(countAlertRules(recordingOnly)).toBe(0);
        expect(countAlertRules("not: [valid")).toBeUndefined();
        expect(summary(await run(replace(prodStack(), "prometheus-rules", (p) => { p.data = { "r.yml": recordingOnly }; })))).toEqual(["prometheus-alert-rules prometheus-statefulset"]);
        const cfg = { all: "mandatory" as const, "prometheus-alert-rules": { minAlertRules: 3 } };
        expect(summary(await run(prodStack(), cfg))).toEqual(["prometheus-alert-rules prometheus-statefulset"]);
        expect(await run([...prodStack().filter((r) => r.name !== "prometheus-rules"), rulesConfigMap(UNKNOWN)])).toEqual([]);
    });
});

describe("a ReplicationController (legacy core/v1, still served) is weighed like a Deployment", () => {
    const run = (rs: Parameters<typeof runPack>[0]) =>
        runPack(rs, "prod", { only: ["service-min-replicas", "service-pod-disruption-budget", "pod-anti-affinity"] });

    it("needs two replicas, a PodDisruptionBudget and a spread as a role=service workload", async () => {
        expect(await run([replicationController("api-gateway", 3001), pdb("api-gateway")])).toEqual([]);
        const single = replicationController("api-gateway", 3001, { replicas: 1 });
        const unspread = replicationController("risk-analyzer", 3004, { replicas: 3, spec: { topologySpreadConstraints: [] } });
        expect((await run([single, unspread])).map((v) => `${v.policyName}: ${v.message.split(/[;:] /)[0]}`)).toEqual([
            "service-min-replicas: ReplicationController \"api-gateway\" (role=service) would be down during a rollout or node loss",
            "service-pod-disruption-budget: ReplicationController \"api-gateway\" (role=service) has no PodDisruptionBudget selecting its pods in namespace \"ai-trading\"",
            "service-pod-disruption-budget: ReplicationController \"risk-analyzer\" (role=service) has no PodDisruptionBudget selecting its pods in namespace \"ai-trading\"",
            "pod-anti-affinity: ReplicationController \"risk-analyzer\" runs 3 replicas that may all land on one node",
        ]);
    });

    it("and so is a role=service StatefulSet or ReplicaSet: the kind does not exempt a service from its replica floor", async () => {
        const asKind = (type: string, kind: string) => {
            const d = deployment("order-management", 3005, { replicas: 1 });
            return { ...d, type, name: `order-management-${kind.toLowerCase()}`, props: { ...d.props, kind } };
        };
        expect((await runPack([asKind("kubernetes:apps/v1:StatefulSet", "StatefulSet"), asKind("kubernetes:apps/v1:ReplicaSet", "ReplicaSet")], "prod", { only: ["service-min-replicas"] }))
            .map((v) => v.message.split(" (")[0])).toEqual(["StatefulSet \"order-management\"", "ReplicaSet \"order-management\""]);
    });
});
