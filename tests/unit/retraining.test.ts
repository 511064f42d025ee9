/**
 * ml-predictor's scheduled retraining in the real program (index.ts) under mocks, on both targets:
 * the same catalog entry becomes a Kubernetes CronJob on prod and a long-running cron-runner
 * container on dev, both in the trainer image built FROM the services image, with the service's
 * credentials only through the existing secret mechanisms. Also the decision that keeps the
 * backups Kubernetes-only, and the per-stack schedule with its config errors.
 */
import { describe, expect, it } from "vitest";
import { DOCKER_CAPABILITIES, HTTP_PROBE_SCRIPT, schedulerWorkload } from "../../components/runtime/docker";
import { KUBERNETES_CAPABILITIES } from "../../components/runtime/kubernetes";
import { backupsScheduled } from "../../components/topology";
import { canSchedule, CRON_RUNNER_STATUS_PORT, ScheduledJobSpec } from "../../components/workload";
import { runTimeoutSeconds } from "../../components/monitoring/scheduled-jobs";
import { byType, named, ProgramRun, runProgram } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";
const IMAGE = "docker:index/image:Image";
const CRONJOB = "kubernetes:batch/v1:CronJob";
const PASSWORD = "random:index/randomPassword:RandomPassword";
const TRAIN = ["node", "dist/services/src/main.js", "ml-predictor", "train"];
const DEFAULT_SCHEDULE = "30 3 * * *";
const PROGRAM_RUN_TIMEOUT_MS = 300_000;

function generatedSecrets(run: ProgramRun): string[] {
  return byType(run, PASSWORD).map((r) => `Mock${r.name.replace(/[^A-Za-z0-9]/g, "")}`.padEnd(44, "x").slice(0, 44));
}

function trainerImage(run: ProgramRun) {
  const images = byType(run, IMAGE).filter((i) => /trainer:/.test(i.inputs.imageName));
  expect(images).toHaveLength(1);
  return images[0];
}

describe("retraining on dev (Docker: the cron runner in a long-running trainer container)", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("builds the trainer FROM the services image and schedules `ml-predictor train` in it, secrets only in the secret env", async () => {
    const run = await runProgram("dev");
    const services = byType(run, IMAGE).find((i) => /services:/.test(i.inputs.imageName))!;
    const trainer = trainerImage(run);
    expect(trainer.inputs.imageName).toBe("localhost/ai-trading/trainer:0.1.0");
    expect(trainer.inputs.build.context).toMatch(/\/ml$/);
    expect(trainer.inputs.build.dockerfile).toMatch(/\/ml\/Dockerfile$/);
    // FROM the services image by tag, and its content id so a rebuilt services image rebuilds the trainer.
    expect(trainer.inputs.build.args).toEqual({ SERVICES_IMAGE: services.inputs.imageName, SERVICES_IMAGE_ID: `${services.name}-id` });
    expect(trainer.inputs.skipPush).toBe(true);

    const c = named(run, CONTAINER, "ml-predictor-retrain-container");
    expect(c.inputs.image).toBe("localhost/ai-trading/trainer:0.1.0");
    expect(c.inputs.entrypoints).toEqual([
      "node", "dist/services/src/cron.js", "--name", "ml-predictor-retrain", "--schedule", DEFAULT_SCHEDULE, "--timeout", "3600", "--port", String(CRON_RUNNER_STATUS_PORT), "--", ...TRAIN,
    ]);
    expect(c.inputs.command ?? []).toEqual([]);
    expect(c.inputs.restart).toBe("unless-stopped");
    expect(c.inputs.healthcheck.tests).toEqual(["CMD", "bash", "-c", HTTP_PROBE_SCRIPT, String(CRON_RUNNER_STATUS_PORT), "/health"]);
    expect(c.inputs.user).toBe("10001:10001");
    expect(c.inputs.readOnly).toBe(true);
    expect(c.inputs.memory).toBe(1024);
    expect(c.inputs.pidsLimit).toBe(256); // the job limit (trading:dockerPidsLimitJob): it runs the job
    expect(c.inputs.labels).toContainEqual({ label: "trading.io/role", value: "job" });
    expect(c.inputs.ports ?? []).toEqual([]);
    // The service's datastores, by the service's own variables; the credentials are files named by
    // <NAME>_FILE (secret in state), so no variable holds one.
    const env = (c.inputs.envs as string[]).map((e) => e.slice(0, e.indexOf("=")));
    expect(env).toEqual(expect.arrayContaining(["SERVICE_NAME", "POSTGRES_URL_FILE", "CLICKHOUSE_PASSWORD_FILE", "WEAVIATE_URL", "WEAVIATE_API_KEY_FILE"]));
    expect(c.secretPaths).toContain("uploads");
    const plain = JSON.stringify({ ...c.inputs, uploads: undefined });
    for (const s of generatedSecrets(run)) expect(plain).not.toContain(s);
  });

  it("keeps the backups off Docker by decision (their datastore images carry no cron runner)", async () => {
    const run = await runProgram("dev");
    const names = byType(run, CONTAINER).map((c) => c.name);
    expect(names).not.toContain("postgres-backup-container");
    expect(names).not.toContain("clickhouse-backup-container");
    expect(backupsScheduled(DOCKER_CAPABILITIES)).toBe(false);
    expect(backupsScheduled(KUBERNETES_CAPABILITIES)).toBe(true);
    expect(DOCKER_CAPABILITIES.scheduledJobs).toBe(true);
    expect(canSchedule(DOCKER_CAPABILITIES, { cronRunner: ["node", "cron.js"] })).toBe(true);
    expect(canSchedule(DOCKER_CAPABILITIES, {})).toBe(false);
    // A job's companion (the ClickHouse backup's run recorder) runs only where a run is a pod.
    expect(DOCKER_CAPABILITIES.jobCompanions).toBe(false);
    expect(KUBERNETES_CAPABILITIES.jobCompanions).toBe(true);
  });

  it("takes the schedule from trading:mlRetrainSchedule, and names key and stack when it is bad", async () => {
    const run = await runProgram("dev", { mlRetrainSchedule: "*/20 * * * 1-5" });
    const entrypoints = named(run, CONTAINER, "ml-predictor-retrain-container").inputs.entrypoints as string[];
    expect(entrypoints).toContain("*/20 * * * 1-5");
    // The catalog's hour is cut to half the 20 minutes between ticks.
    expect(entrypoints.slice(entrypoints.indexOf("--timeout"), entrypoints.indexOf("--timeout") + 2)).toEqual(["--timeout", "600"]);
    await expect(runProgram("dev", { mlRetrainSchedule: "every day" })).rejects.toThrow(
      "Invalid configuration trading:mlRetrainSchedule on stack 'dev': must be a five-field cron expression",
    );
    await expect(runProgram("prod", { mlRetrainSchedule: "0 25 * * *" })).rejects.toThrow(
      /Invalid configuration trading:mlRetrainSchedule on stack 'prod': is not a valid cron expression: .*hour/,
    );
  });

  it("schedules nothing and builds no trainer when ml-predictor is switched off", async () => {
    const run = await runProgram("dev", { disabledServices: "ml-predictor,ai-orchestrator,ai-chain-analytics" });
    expect(byType(run, IMAGE).filter((i) => /trainer:/.test(i.inputs.imageName))).toHaveLength(0);
    expect(byType(run, CONTAINER).map((c) => c.name)).not.toContain("ml-predictor-retrain-container");
  });
});

describe("retraining on prod (Kubernetes CronJob)", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("is a CronJob (Forbid) of the pushed trainer image running `ml-predictor train`, credentials by secretKeyRef", async () => {
    const run = await runProgram("prod", { mlRetrainSchedule: "0 */6 * * *" });
    const trainer = trainerImage(run);
    expect(trainer.inputs.imageName).toBe("registry.example.com/ai-trading/ai-trading-trainer:0.1.0");
    expect(trainer.inputs.skipPush).toBe(false);
    expect(trainer.inputs.build.args).toEqual({
      SERVICES_IMAGE: `registry.example.com/ai-trading/ai-trading-services@sha256:${"0".repeat(64)}`,
      SERVICES_IMAGE_ID: `registry.example.com/ai-trading/ai-trading-services@sha256:${"0".repeat(64)}`,
    });

    const cron = named(run, CRONJOB, "ml-predictor-retrain-cronjob");
    expect(cron.inputs.spec.schedule).toBe("0 */6 * * *");
    expect(cron.inputs.spec.concurrencyPolicy).toBe("Forbid");
    // The catalog's time limit of a run (1 h, under half of the 6 h between ticks), retries included.
    expect(cron.inputs.spec.jobTemplate.spec.activeDeadlineSeconds).toBe(3_600);
    const pod = cron.inputs.spec.jobTemplate.spec.template.spec;
    expect(pod.containers).toHaveLength(1);
    const container = pod.containers[0];
    expect(container.image).toBe(`registry.example.com/ai-trading/ai-trading-trainer@sha256:${"0".repeat(64)}`);
    expect(container.command).toEqual(TRAIN);
    expect(container.args ?? []).toEqual([]);
    expect(container.resources.limits).toMatchObject({ cpu: "1", memory: "1Gi" });
    expect(container.securityContext).toMatchObject({ runAsUser: 10001, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const env = container.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: object } }>;
    const credentials = env.filter((e) => /PASSWORD|_KEY$|^POSTGRES_URL$/.test(e.name));
    expect(credentials.map((e) => e.name)).toEqual(expect.arrayContaining(["POSTGRES_URL", "CLICKHOUSE_PASSWORD"]));
    for (const e of credentials) expect(e.valueFrom?.secretKeyRef, e.name).toBeDefined();
    const text = JSON.stringify(cron.inputs);
    for (const s of generatedSecrets(run)) expect(text).not.toContain(s);
    // The datastores accept the job (network policies), and only what it uses.
    const policy = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "ml-predictor-retrain-netpol");
    expect(JSON.stringify(policy.inputs.spec.egress)).toContain("postgres");
    const pgPolicy = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-netpol");
    expect(JSON.stringify(pgPolicy.inputs.spec.ingress)).toContain("ml-predictor-retrain");
  });
});

describe("schedulerWorkload (Docker)", () => {
  const job: ScheduledJobSpec = {
    name: "demo-job", role: "job", kind: "job", image: "img", schedule: "0 1 * * *", runTimeoutSeconds: runTimeoutSeconds("0 1 * * *"), command: ["run", "it"], env: {}, secretEnv: {},
    ports: [], volumes: [], files: [], resources: { cpu: "1", memory: "1Gi" }, replicas: 1,
    security: { runAsUser: 1, readOnlyRootFilesystem: true, scratchDirs: [] }, connectsTo: [], acceptsFrom: [],
  };
  it("wraps the job's command in the image's cron runner, one instance, health on the runner's status", () => {
    const w = schedulerWorkload({ ...job, cronRunner: ["cron"] });
    expect(w).toMatchObject({ kind: "stateless", replicas: 1, singleton: true, liveness: { http: { path: "/health", port: CRON_RUNNER_STATUS_PORT } } });
    // The schedule's default time limit (an hour for a daily job), which every spec carries.
    expect(w.command).toEqual(["cron", "--name", "demo-job", "--schedule", "0 1 * * *", "--timeout", "3600", "--port", String(CRON_RUNNER_STATUS_PORT), "--", "run", "it"]);
  });
  it("passes the job's own time limit of a run to the runner (--timeout)", () => {
    const w = schedulerWorkload({ ...job, cronRunner: ["cron"], runTimeoutSeconds: 900 });
    expect(w.command).toEqual(["cron", "--name", "demo-job", "--schedule", "0 1 * * *", "--timeout", "900", "--port", String(CRON_RUNNER_STATUS_PORT), "--", "run", "it"]);
    expect(w).not.toHaveProperty("runTimeoutSeconds");
  });
  it("refuses an image without a cron runner", () => {
    expect(() => schedulerWorkload(job)).toThrow(/no cron runner/);
  });
});
