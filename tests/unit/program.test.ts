/**
 * The real program (index.ts) under mocks, for the dev (Docker) and prod (Kubernetes) stacks.
 */
import { describe, expect, it } from "vitest";
import { catalog, sizingOf } from "../../catalog";
import { dockerAdminHostPorts, parseStackConfig } from "../../stacks/config";
import { dockerHostPorts } from "../../stacks/host-ports";
import { keySchema } from "../../stacks/schema";
import { overdueAfterSeconds, runTimeoutSeconds, runUnfinishedAfterSeconds } from "../../components/monitoring/scheduled-jobs";
import { BACKUP_RUN_TIMEOUT_SECONDS, backupRunRecorderScript, backupScript, RUN_OUTCOME_DIR } from "../../components/data/backup";
import { upstreamImages } from "../../stacks/images";
import { ONE_SHOT_JOB_DEADLINE_SECONDS } from "../../components/workload";
import { byType, named, ProgramRun, runProgram, stackFileConfig } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const STATEFULSET = "kubernetes:apps/v1:StatefulSet";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const SECRET = "kubernetes:core/v1:Secret";
const PASSWORD = "random:index/randomPassword:RandomPassword";

const allDatastores = ["postgres", "dragonfly", "clickhouse", "weaviate", "arangodb", "redpanda"] as const;
/** Docker with every datastore on: the upstream image set (the dev stack file leaves three off). */
const dockerAllOn = { imageSource: "upstream", weaviateEnabled: "true", arangodbEnabled: "true", grafanaEnabled: "true" };

function generatedSecrets(run: ProgramRun): string[] {
  const passwords = byType(run, PASSWORD).map((r) => `Mock${r.name.replace(/[^A-Za-z0-9]/g, "")}`.padEnd(44, "x").slice(0, 44));
  return [...passwords, "ab".repeat(64)];
}

function envOf(container: { inputs: Record<string, any> }): Record<string, string> {
  return Object.fromEntries((container.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

// Each case runs the whole program under mocks: seconds on a quiet machine, over a minute at load 40
// on two cores (the first prod case timed out at 60 s in a clean-clone CI run).
const PROGRAM_RUN_TIMEOUT_MS = 300_000;

/** Neither stack file sets it: the schema's default. */
const RETRAIN_SCHEDULE = String(keySchema("mlRetrainSchedule").default);

describe("dev stack (Docker)", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("deploys every datastore with a volume, a health check and a secret connection string", async () => {
    const run = await runProgram("dev", dockerAllOn);
    for (const store of allDatastores) {
      const c = named(run, CONTAINER, `${store}-container`);
      expect(c.inputs.healthcheck.tests.length, store).toBeGreaterThan(1);
      expect(c.inputs.volumes).toEqual([{ volumeName: `ai-trading-dev-${store}-data`, containerPath: expect.any(String) }]);
      named(run, VOLUME, `${store}-data`);
      expect(c.inputs.labels).toContainEqual({ label: "trading.io/role", value: "datastore" });
    }
    expect(run.secretOutputs).toContain("connectionStrings");
    const conns = run.outputs.connectionStrings as Record<string, string>;
    expect(Object.keys(conns).sort()).toEqual([...allDatastores].sort());
    expect(conns.postgres).toMatch(/^postgresql:\/\/trading:Mock\w+@127\.0\.0\.1:15432\/ai_trading$/);
  });

  it("uses the local Debian images, with the stores that have none switched off", async () => {
    const run = await runProgram("dev");
    const images = byType(run, "docker:index/remoteImage:RemoteImage").map((r) => r.inputs.name as string);
    expect(images.every((i) => i.startsWith("localhost/ai-trading/"))).toBe(true);
    expect(byType(run, CONTAINER).map((c) => c.name)).not.toContain("arangodb-container");
    // Weaviate runs from its local image (the server built from the Go module proxy), as its own user.
    const weaviate = named(run, CONTAINER, "weaviate-container");
    expect(weaviate.inputs.user).toBe("weaviate");
    expect(images).toContainEqual(expect.stringMatching(/^localhost\/ai-trading\/weaviate:\d+\.\d+\.\d+-local-[0-9a-f]{12}$/));
    expect(Object.keys(run.outputs.connectionStrings as object).sort()).toEqual(["clickhouse", "dragonfly", "postgres", "redpanda", "weaviate"]);
  });

  it("publishes ports on 127.0.0.1 only and hardens every container", async () => {
    const run = await runProgram("dev", dockerAllOn);
    for (const c of byType(run, CONTAINER)) {
      for (const p of c.inputs.ports ?? []) expect(p.ip, c.name).toBe("127.0.0.1");
      expect(c.inputs.privileged, c.name).toBe(false);
      expect(c.inputs.capabilities.drops, c.name).toEqual(["ALL"]);
      expect(c.inputs.securityOpts, c.name).toContain("no-new-privileges:true");
      expect(c.inputs.memory, c.name).toBeGreaterThan(0);
      expect(c.inputs.pidsLimit, c.name).toBeGreaterThan(0);
      expect(c.inputs.networkMode, c.name).toBeUndefined();
    }
  });

  it("limits the processes of every container by workload kind, as the stack configures", async () => {
    const limitOf = (run: Awaited<ReturnType<typeof runProgram>>, name: string) => named(run, CONTAINER, name).inputs.pidsLimit;
    const defaults = await runProgram("dev");
    expect(limitOf(defaults, "api-gateway-container")).toBe(512);
    expect(limitOf(defaults, "nginx-container")).toBe(512);
    expect(limitOf(defaults, "postgres-container")).toBe(4096);
    expect(limitOf(defaults, "prometheus-container")).toBe(4096);
    expect(limitOf(defaults, "database-service-migrate-container")).toBe(256);
    const tuned = await runProgram("dev", { dockerPidsLimitStateless: "200", dockerPidsLimitStateful: "1000", dockerPidsLimitJob: "50" });
    expect(limitOf(tuned, "api-gateway-container")).toBe(200);
    expect(limitOf(tuned, "clickhouse-container")).toBe(1000);
    expect(limitOf(tuned, "database-service-migrate-container")).toBe(50);
    await expect(runProgram("dev", { dockerPidsLimitStateful: "0" })).rejects.toThrow("trading:dockerPidsLimitStateful on stack 'dev': must be between 16 and 32768 (the policy pack's pids-limit refuses a container above its default maxPidsLimit, 32768: above it a limit no longer bounds a fork bomb on the host), got 0");
  });

  it("builds the services image and runs every catalog service from it", async () => {
    const run = await runProgram("dev");
    const image = named(run, "docker:index/image:Image", "trading-services-image-build");
    expect(image.inputs.imageName).toBe("localhost/ai-trading/services:0.1.0");
    expect(image.inputs.skipPush).toBe(true);
    for (const s of catalog) {
      const c = named(run, CONTAINER, `${s.name}-container`);
      expect(c.inputs.image).toBe("localhost/ai-trading/services:0.1.0");
      expect(c.inputs.command).toEqual([s.name]);
      expect(envOf(c)).toMatchObject({ SERVICE_NAME: s.name, PORT: String(s.port) });
      expect(c.inputs.readOnly).toBe(true);
      expect(c.inputs.user).toBe("10001:10001");
    }
  });

  it("runs migrations as a one-shot container that the fleet waits for", async () => {
    const run = await runProgram("dev");
    const job = named(run, CONTAINER, "database-service-migrate-container");
    expect(job.inputs.command).toEqual(["database-service", "migrate"]);
    expect(job.inputs.mustRun).toBe(false);
    expect(job.inputs.restart).toBe("no");
    // Session 64: bounded like the Kubernetes Job, by the same hour (one constant): the provider
    // stops a run past it and fails the update rather than wait, holding the stack's lock, forever.
    expect(job.inputs.attach).toBe(true);
    expect(job.inputs.attachTimeout).toBe(ONE_SHOT_JOB_DEADLINE_SECONDS);
    expect(ONE_SHOT_JOB_DEADLINE_SECONDS).toBe(3_600);
    // Only the one-shot containers: a long-running one is not attached, so a limit would bound nothing.
    const bounded = byType(run, CONTAINER).filter((c) => c.inputs.attachTimeout !== undefined).map((c) => c.name);
    expect(bounded).toEqual(["database-service-migrate-container"]);
  });

  it("gives each service exactly the datastores it uses", async () => {
    const run = await runProgram("dev");
    // Credentials are owner-only files named by <NAME>_FILE (components/runtime/docker.ts dockerSecretsAsFiles), secret in the state.
    const secretFile = (container: string, path: string) =>
      (named(run, CONTAINER, container).inputs.uploads as { file: string; content: string }[]).find((u) => u.file === path)?.content;
    const hub = envOf(named(run, CONTAINER, "central-hub-container"));
    expect(hub.DRAGONFLY_URL_FILE).toBe("/run/secrets/dragonfly_url");
    expect(secretFile("central-hub-container", "/run/secrets/dragonfly_url")).toMatch(/^redis:\/\/:Mock\w+@dragonfly:6379$/);
    expect(hub.DRAGONFLY_URL).toBeUndefined();
    expect(hub.POSTGRES_URL_FILE).toBeUndefined();
    const gateway = envOf(named(run, CONTAINER, "api-gateway-container"));
    expect(gateway).toMatchObject({ RATE_LIMIT_WINDOW_MS: "900000", RATE_LIMIT_MAX_REQUESTS: "100", JWT_SECRET_FILE: "/run/secrets/jwt_secret" });
    expect(secretFile("api-gateway-container", "/run/secrets/jwt_secret")).toHaveLength(128);
    expect(named(run, CONTAINER, "api-gateway-container").secretPaths).toContain("uploads");
  });

  it("generates nginx routes from the catalog and redirects HTTP", async () => {
    const run = await runProgram("dev");
    const nginx = named(run, CONTAINER, "nginx-container");
    const conf = (nginx.inputs.uploads as { file: string; content: string }[]).find((u) => u.file === "/etc/nginx/nginx.conf")!.content;
    for (const s of catalog.filter((x) => x.route)) expect(conf).toContain(`location /api/${s.route}/ {`);
    expect(conf).toMatch(/listen 8080 default_server;\s+server_name _;\s+return 301 https:\/\/\$host:8443\$request_uri;/);
    expect(nginx.inputs.ports).toEqual([
      { internal: 8080, external: 8080, ip: "127.0.0.1", protocol: "tcp" },
      { internal: 8443, external: 8443, ip: "127.0.0.1", protocol: "tcp" },
    ]);
  });

  it("publishes exactly the admin host ports the parser keeps the edge off (stacks/config.ts dockerAdminHostPorts)", async () => {
    const run = await runProgram("dev", { ...dockerAllOn, redisEnabled: "true", adminBindAddress: "10.8.0.1" });
    const published = byType(run, CONTAINER).flatMap((c) => (c.inputs.ports ?? []).filter((p: { ip: string }) => p.ip === "10.8.0.1").map((p: { external: number }) => p.external));
    expect(published.sort()).toEqual(Object.values(dockerAdminHostPorts).sort());
  });

  it("publishes exactly the host ports npm run up checks before its builds (stacks/host-ports.ts dockerHostPorts)", async () => {
    const configs: Record<string, string>[] = [{}, { ...dockerAllOn, redisEnabled: "true", adminBindAddress: "10.8.0.1", httpsPort: "9443" }, { publishAdminPorts: "false" }];
    for (const config of configs) {
      const run = await runProgram("dev", config);
      const published = byType(run, CONTAINER).flatMap((c) => (c.inputs.ports ?? []).map((p: { ip: string; external: number }) => `${p.ip}:${p.external}`));
      const raw = Object.fromEntries(Object.entries({ ...stackFileConfig("dev"), ...Object.fromEntries(Object.entries(config).map(([k, v]) => [`trading:${k}`, v])) }).map(([k, v]) => [k.replace(/^trading:/, ""), v]));
      const checked = dockerHostPorts(parseStackConfig("dev", raw)).map((p) => `${p.address}:${p.port}`);
      expect(checked.sort(), JSON.stringify(config)).toEqual(published.sort());
    }
  }, PROGRAM_RUN_TIMEOUT_MS);

  it("labels every container, and no volume or network, with the state it was deployed from (npm run up tells another clone's containers by it; session 45)", async () => {
    const before = process.env.PULUMI_BACKEND_URL;
    process.env.PULUMI_BACKEND_URL = "file:///home/someone/clone/.pulumi-state";
    try {
      const run = await runProgram("dev");
      const containers = byType(run, CONTAINER);
      expect(containers.length).toBeGreaterThan(10);
      for (const c of containers) expect(c.inputs.labels, c.name).toContainEqual({ label: "trading.io/pulumi-state", value: "/home/someone/clone/.pulumi-state" });
      // A label change replaces a volume (its data) or the network (every container): none there.
      for (const r of [...byType(run, VOLUME), ...byType(run, "docker:index/network:Network")]) expect(JSON.stringify(r.inputs.labels ?? []), r.name).not.toContain("pulumi-state");
    } finally {
      if (before === undefined) delete process.env.PULUMI_BACKEND_URL;
      else process.env.PULUMI_BACKEND_URL = before;
    }
  }, PROGRAM_RUN_TIMEOUT_MS);

  it("scrapes every catalog service from Prometheus", async () => {
    const run = await runProgram("dev");
    const prom = named(run, CONTAINER, "prometheus-container");
    const conf = (prom.inputs.uploads as { file: string; content: string }[]).find((u) => u.file.endsWith("prometheus.yml"))!.content;
    for (const s of catalog) expect(conf).toContain(`targets: ["${s.name}:${s.port}"]`);
    // The cron runner of ml-predictor's retraining (scheduled_job_runs_total: the ScheduledJobFailed alert).
    expect(conf).toContain('  - job_name: scheduled-jobs\n    metrics_path: /metrics\n    honor_labels: true\n    static_configs:\n      - targets: ["ml-predictor-retrain:9464"]\n');
    // The retraining's recorded runs (ml-predictor's /metrics): failing and overdue, its threshold from mlRetrainSchedule.
    const rules = (prom.inputs.uploads as { file: string; content: string }[]).find((u) => u.file.endsWith("trading-alerts.yml"))!.content;
    expect(rules).toContain("alert: ScheduledJobFailing");
    expect(rules).toContain(`expr: ${JSON.stringify(`time() - max by (scheduled_job) (scheduled_job_last_success_timestamp_seconds{scheduled_job="ml-predictor-retrain"}) > ${overdueAfterSeconds(RETRAIN_SCHEDULE)}`)}`);
    // A run with no recorded end, past the catalog's 1 h time limit (the runner's --timeout) + the margin.
    expect(rules).toContain(`expr: ${JSON.stringify(`time() - max by (scheduled_job) (scheduled_job_last_start_timestamp_seconds{scheduled_job="ml-predictor-retrain"}) > ${runUnfinishedAfterSeconds(3_600)}`)}`.slice(0, -1));
    // Docker runs no backup job: no rule waits for one.
    expect(rules).not.toContain("backup");
  });
});

describe("prod stack (Kubernetes)", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("deploys every datastore as a StatefulSet with storage and probes, credentials via Secrets", async () => {
    const run = await runProgram("prod");
    for (const store of allDatastores) {
      const sts = named(run, STATEFULSET, `${store}-statefulset`);
      expect(sts.inputs.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toMatch(/^\d+Gi$/);
      expect(sts.inputs.spec.volumeClaimTemplates[0].spec.storageClassName).toBe("standard");
      const container = sts.inputs.spec.template.spec.containers[0];
      expect(container.livenessProbe, store).toBeDefined();
      expect(container.readinessProbe, store).toBeDefined();
      expect(container.image).toBe(upstreamImages[store].ref);
      for (const e of container.env) {
        if (/PASSWORD|SECRET|_KEY$|_KEYS$|TOKEN|REQUIREPASS|^REDISCLI_AUTH$|_URL$/.test(e.name)) expect(e.valueFrom?.secretKeyRef, `${store} ${e.name}`).toBeDefined();
      }
    }
    expect(run.secretOutputs).toContain("connectionStrings");
    const conns = run.outputs.connectionStrings as Record<string, string>;
    expect(conns.postgres).toContain("@postgres.ai-trading.svc.cluster.local:5432/ai_trading");
  });

  it("runs stateless services with replicas, a PodDisruptionBudget and restricted security", async () => {
    const run = await runProgram("prod");
    for (const s of catalog.filter((x) => !x.singleton)) {
      const d = named(run, DEPLOYMENT, `${s.name}-deployment`);
      expect(d.inputs.spec.replicas).toBeGreaterThanOrEqual(2);
      expect(d.inputs.spec.strategy.type).toBe("RollingUpdate");
      named(run, "kubernetes:policy/v1:PodDisruptionBudget", `${s.name}-pdb`);
      const c = d.inputs.spec.template.spec.containers[0];
      expect(c.image).toBe(`registry.example.com/ai-trading/ai-trading-services@sha256:${"0".repeat(64)}`);
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.resources.limits).toEqual({ cpu: sizingOf(s).resources.cpu, memory: sizingOf(s).resources.memory });
    }
  });

  it("never runs two instances of a singleton, not even during a rollout", async () => {
    const run = await runProgram("prod");
    const singletons = catalog.filter((s) => s.singleton);
    expect(singletons.length).toBeGreaterThan(0);
    for (const s of singletons) {
      const d = named(run, DEPLOYMENT, `${s.name}-deployment`);
      expect(d.inputs.spec.replicas).toBe(1);
      expect(d.inputs.spec.strategy).toEqual({ type: "Recreate" });
      expect(d.inputs.metadata.labels["trading.io/singleton"]).toBe("true");
      expect(byType(run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").map((h) => h.name)).not.toContain(`${s.name}-hpa`);
    }
  });

  it("has a default-deny network policy and explicit allows from the catalog", async () => {
    const run = await runProgram("prod");
    const deny = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "trading-k8s-default-deny");
    expect(deny.inputs.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const pg = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-netpol");
    const allowed = pg.inputs.spec.ingress[0].from.map((f: any) => f.podSelector.matchLabels["trading.io/workload"]);
    const users = catalog.filter((s) => s.requires.includes("postgres") || s.optional.includes("postgres")).map((s) => s.name);
    expect(allowed).toEqual(expect.arrayContaining([...users, "postgres-backup", "database-service-migrate"]));
    expect(allowed).not.toContain("api-gateway");
  });

  it("admits the ingress controller to the gateway by its namespace, and with its pods' labels only those pods of it (session 41)", async () => {
    // The gateway's peers outside its namespace (Prometheus, inside it, scrapes it too).
    const gatewayFrom = (run: ProgramRun) => {
      const rules = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "api-gateway-netpol").inputs.spec.ingress as any[];
      expect(rules).toHaveLength(1);
      return (rules[0].from as any[]).filter((peer) => peer.namespaceSelector !== undefined);
    };
    // A dedicated namespace (prod's default ingress-nginx): the namespace alone, as before.
    expect(gatewayFrom(await runProgram("prod"))).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }]);
    // A controller in kube-system: one peer with both selectors, so only its pods match.
    const shared = await runProgram("prod", { ingressControllerNamespace: "kube-system", ingressControllerPodLabels: "app.kubernetes.io/name=rke2-ingress-nginx,app.kubernetes.io/component=controller" });
    expect(gatewayFrom(shared)).toEqual([
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "app.kubernetes.io/name": "rke2-ingress-nginx", "app.kubernetes.io/component": "controller" } },
      },
    ]);
    await expect(runProgram("prod", { ingressControllerNamespace: "kube-system" })).rejects.toThrow(
      "Invalid configuration trading:ingressControllerNamespace on stack 'prod': 'kube-system' holds the cluster's own pods too",
    );
  });

  it("opens internet egress from the configuration: Binance's REST and stream ports for data-bridge, the SMTP relay's port (or its private address)", async () => {
    const egressOf = (run: ProgramRun, name: string) => named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", `${name}-netpol`).inputs.spec.egress as any[];
    const internet = (rules: any[]) => rules.filter((r) => r.to?.[0]?.ipBlock?.cidr === "0.0.0.0/0").flatMap((r) => r.ports.map((p: any) => p.port));
    const synthetic = await runProgram("prod");
    expect(internet(egressOf(synthetic, "data-bridge"))).toEqual([]);
    expect(internet(egressOf(synthetic, "notification-service"))).toEqual([443]);
    const binance = await runProgram("prod", { marketDataSource: "binance", smtpHost: "smtp.example.com", smtpPort: "465" });
    expect(internet(egressOf(binance, "data-bridge"))).toEqual([443, 9443]);
    expect(internet(egressOf(binance, "notification-service"))).toEqual([443, 465]);
    // Paper trading: the engine places no order on Binance, whatever the market data source.
    expect(internet(egressOf(binance, "trading-engine"))).toEqual([]);
    const relay = await runProgram("prod", { smtpHost: "10.20.30.40" });
    const rules = egressOf(relay, "notification-service");
    expect(internet(rules)).toEqual([443]);
    expect(rules).toContainEqual({ to: [{ ipBlock: { cidr: "10.20.30.40/32" } }], ports: [{ protocol: "TCP", port: 587 }] });
  });

  it("serves HTTPS through an Ingress with forced redirect, and backs up PostgreSQL and ClickHouse", async () => {
    const run = await runProgram("prod");
    const ingress = named(run, "kubernetes:networking.k8s.io/v1:Ingress", "nginx-ingress");
    expect(ingress.inputs.metadata.annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"]).toBe("true");
    expect(ingress.inputs.spec.tls).toEqual([{ hosts: ["trading.example.com"], secretName: "ai-trading-tls" }]);
    // The API docs are a prefix (page, assets, document), the fleet's health an exact path.
    const paths = ingress.inputs.spec.rules[0].http.paths as Array<{ path: string; pathType: string }>;
    expect(paths.find((x) => x.path === "/api/docs")?.pathType).toBe("Prefix");
    expect(paths.find((x) => x.path === "/api/health")?.pathType).toBe("Exact");
    const backups = byType(run, "kubernetes:batch/v1:CronJob").map((c) => c.inputs.metadata.labels["trading.io/backup-of"]).filter(Boolean);
    expect(backups.sort()).toEqual(["clickhouse", "postgres"]);
    const rules = byType(run, "kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.labels["trading.io/prometheus-rules"] === "true");
    const ruleText = Object.values(rules!.inputs.data).join("\n");
    expect(ruleText).toContain("alert: ServiceDown");
    // The retraining CronJob runs no cron runner: its alerts read the runs it records, which ml-predictor exports.
    expect(ruleText).toContain("alert: ScheduledJobFailing");
    expect(ruleText).toContain(`scheduled_job_last_success_timestamp_seconds{scheduled_job=\\"ml-predictor-retrain\\"}) > ${overdueAfterSeconds(RETRAIN_SCHEDULE)}`);
    expect(ruleText).toContain('expr: "absent(scheduled_job_last_success_timestamp_seconds{scheduled_job=\\"ml-predictor-retrain\\"})"');
    expect(ruleText).toContain(`scheduled_job_last_start_timestamp_seconds{scheduled_job=\\"ml-predictor-retrain\\"}) > ${runUnfinishedAfterSeconds(3_600)} unless`);
    // Every run is bounded (activeDeadlineSeconds): the retraining's 1 h; the nightly backups' 3 h
    // (BACKUP_RUN_TIMEOUT_SECONDS, under half the daily schedule's gap).
    const deadlines = Object.fromEntries(byType(run, "kubernetes:batch/v1:CronJob").map((c) => [c.inputs.metadata.name, c.inputs.spec.jobTemplate.spec.activeDeadlineSeconds]));
    expect(runTimeoutSeconds("15 2 * * *", BACKUP_RUN_TIMEOUT_SECONDS)).toBe(10_800);
    expect(deadlines).toEqual({ "ml-predictor-retrain": 3_600, "postgres-backup": 10_800, "clickhouse-backup": 10_800 });
    // Session 64: the one-shot Jobs (the migrations) are bounded too, an hour (ONE_SHOT_JOB_DEADLINE_SECONDS).
    const jobDeadlines = Object.fromEntries(byType(run, "kubernetes:batch/v1:Job").map((j) => [j.inputs.metadata.name, j.inputs.spec.activeDeadlineSeconds]));
    expect(jobDeadlines).toEqual({ "database-service-migrate": ONE_SHOT_JOB_DEADLINE_SECONDS });
    // The backups' recorded runs (database-service's /metrics): overdue from backupSchedule, unfinished
    // past their 3 h limit; the ClickHouse one's recorded by its run recorder container (below).
    for (const job of ["postgres-backup", "clickhouse-backup"]) {
      expect(ruleText).toContain(`scheduled_job_last_success_timestamp_seconds{scheduled_job=\\"${job}\\"}) > ${overdueAfterSeconds("15 2 * * *")}`);
      expect(ruleText).toContain(`expr: "absent(scheduled_job_last_success_timestamp_seconds{scheduled_job=\\"${job}\\"})"`);
      expect(ruleText).toContain(`scheduled_job_last_start_timestamp_seconds{scheduled_job=\\"${job}\\"}) > ${runUnfinishedAfterSeconds(10_800)} unless`);
    }
  });

  it("records the backups' runs from a second container of their pods, in ClickHouse's the only one holding the PostgreSQL password", async () => {
    const run = await runProgram("prod");
    const cron = (name: string) => named(run, "kubernetes:batch/v1:CronJob", `${name}-cronjob`).inputs.spec.jobTemplate.spec;
    const pod = cron("clickhouse-backup").template.spec;
    expect(pod.containers.map((c: any) => c.name)).toEqual(["clickhouse-backup", "run-recorder"]);
    const [backup, recorder] = pod.containers;
    // The backup in the ClickHouse image, the recorder in the PostgreSQL one (psql), each as its image's user.
    expect(backup.image).toBe(upstreamImages.clickhouse.ref);
    expect(recorder.image).toBe(upstreamImages.postgres.ref);
    expect(recorder.command).toEqual(["sh", "-c", backupRunRecorderScript("clickhouse-backup")]);
    expect(backup.command).toEqual(["sh", "-c", backupScript("clickhouse")]);
    expect(recorder.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: upstreamImages.postgres.user!.uid,
      runAsGroup: upstreamImages.postgres.user!.uid,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(recorder.resources.limits).toEqual({ cpu: "100m", memory: "64Mi" });
    // Each container references its own key of the job's Secret, and nothing else.
    const secret = named(run, SECRET, "clickhouse-backup-secret");
    expect(Object.keys(secret.inputs.stringData).sort()).toEqual(["CLICKHOUSE_PASSWORD", "PGPASSWORD"]);
    expect(secret.secretPaths).toContain("stringData");
    expect(backup.env).toEqual([{ name: "CLICKHOUSE_PASSWORD", valueFrom: { secretKeyRef: { name: "clickhouse-backup-credentials", key: "CLICKHOUSE_PASSWORD" } } }]);
    expect(recorder.env).toEqual([{ name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "clickhouse-backup-credentials", key: "PGPASSWORD" } } }]);
    // Their only channel: an emptyDir both mount where the backup leaves its outcome; the backups'
    // volume and scratch directory are the backup container's alone.
    const shared = { name: "companion-shared", mountPath: RUN_OUTCOME_DIR };
    expect(pod.volumes).toContainEqual({ name: "companion-shared", emptyDir: { sizeLimit: "1Mi" } });
    expect(recorder.volumeMounts).toEqual([shared]);
    expect(backup.volumeMounts).toEqual(expect.arrayContaining([shared, { name: "backups", mountPath: "/backups" }]));
    // A retry is a new pod, with a new recorder; the run's time limit stops both containers.
    expect(pod.restartPolicy).toBe("Never");
    expect(cron("clickhouse-backup").activeDeadlineSeconds).toBe(10_800);
    // The PostgreSQL backup's runs are recorded by a recorder of its own (a backup killed outright
    // records nothing itself); the backup reports to it instead of recording with psql.
    const pgPod = cron("postgres-backup").template.spec;
    expect(pgPod.containers.map((c: any) => c.name)).toEqual(["postgres-backup", "run-recorder"]);
    const [pgBackup, pgRecorder] = pgPod.containers;
    expect(pgBackup.command).toEqual(["sh", "-c", backupScript("postgres", { postgresRecording: "run-recorder" })]);
    expect(pgBackup.command[2]).not.toContain("psql");
    expect(pgRecorder.command).toEqual(["sh", "-c", backupRunRecorderScript("postgres-backup")]);
    expect(pgRecorder.image).toBe(upstreamImages.postgres.ref);
    expect(pgRecorder.resources.limits).toEqual({ cpu: "100m", memory: "64Mi" });
    // Both need the one PostgreSQL password (pg_dump, psql): one key of the Secret, referenced by each.
    expect(Object.keys(named(run, SECRET, "postgres-backup-secret").inputs.stringData)).toEqual(["PGPASSWORD"]);
    const pgPasswordRef = [{ name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "postgres-backup-credentials", key: "PGPASSWORD" } } }];
    expect(pgBackup.env).toEqual(pgPasswordRef);
    expect(pgRecorder.env).toEqual(pgPasswordRef);
    expect(pgRecorder.volumeMounts).toEqual([shared]);
    expect(pgBackup.volumeMounts).toEqual(expect.arrayContaining([shared, { name: "backups", mountPath: "/backups" }]));
    expect(pgPod.restartPolicy).toBe("Never");
    // The pod may reach PostgreSQL, which accepts it.
    const policy = (name: string) => named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", `${name}-netpol`).inputs.spec;
    const workloadsOf = (peers: any[]) => peers.map((p) => p.podSelector.matchLabels["trading.io/workload"]);
    expect(workloadsOf(policy("clickhouse-backup").egress[0].to)).toEqual(["clickhouse", "postgres"]);
    expect(workloadsOf(policy("postgres").ingress[0].from)).toContain("clickhouse-backup");
  });

  it("puts no Service of a datastore or of monitoring outside the cluster", async () => {
    const run = await runProgram("prod");
    for (const svc of byType(run, "kubernetes:core/v1:Service")) {
      expect(svc.inputs.spec.type ?? "ClusterIP", svc.name).toBe("ClusterIP");
    }
  });

  it("keeps generated credentials out of plain outputs and out of pod specs", async () => {
    const run = await runProgram("prod");
    const secrets = generatedSecrets(run);
    const plain = JSON.stringify(Object.fromEntries(Object.entries(run.outputs).filter(([k]) => !run.secretOutputs.includes(k))));
    for (const s of secrets) expect(plain).not.toContain(s);
    for (const r of run.resources.filter((x) => x.type !== SECRET && x.type !== PASSWORD && !x.type.startsWith("trading:"))) {
      const text = JSON.stringify(r.inputs);
      for (const s of secrets) expect(text, `${r.type} ${r.name}`).not.toContain(s);
    }
  });
});

describe("local-k8s stack (the local cluster of scripts/cluster/)", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };

  it("runs the local images imported into the node, never pulled and never built by the program", async () => {
    const run = await runProgram("local-k8s", {}, tls);
    expect(byType(run, "docker:index/image:Image")).toEqual([]);
    const workloads = [...byType(run, DEPLOYMENT), ...byType(run, STATEFULSET)];
    expect(workloads.length).toBeGreaterThan(5);
    for (const w of workloads) {
      const c = w.inputs.spec.template.spec.containers[0];
      expect(c.image, w.name).toMatch(/^localhost\/ai-trading\/[a-z]+:[\w.-]+$/);
      expect(c.imagePullPolicy, w.name).toBe("Never");
      // A twentieth of each CPU limit and half of each memory limit are requested, so the whole
      // platform schedules on one 2-core node; the limits are prod's.
      const milli = (q: string) => (q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000);
      const mib = (q: string) => (q.endsWith("Gi") ? Number(q.slice(0, -2)) * 1024 : Number(q.slice(0, -2)));
      expect(milli(c.resources.requests.cpu), w.name).toBe(Math.ceil(milli(c.resources.limits.cpu) / 20));
      expect(c.resources.requests.memory, w.name).toBe(`${Math.ceil(mib(c.resources.limits.memory) / 2)}Mi`);
    }
    expect(named(run, DEPLOYMENT, "api-gateway-deployment").inputs.spec.template.spec.containers[0].image).toBe("localhost/ai-trading/services:0.1.0-local-k8s");
    // Every long-running container has a startup probe (liveness waits for it), and the Kafka
    // stand-in does not fence itself over a late heartbeat (a starved single node lost its leaders).
    for (const w of workloads) expect(w.inputs.spec.template.spec.containers[0].startupProbe?.failureThreshold, w.name).toBeGreaterThanOrEqual(30);
    const kafkaEnv = named(run, STATEFULSET, "redpanda-statefulset").inputs.spec.template.spec.containers[0].env;
    expect(kafkaEnv).toContainEqual({ name: "KAFKA_EXTRA_CONFIG", value: "broker.session.timeout.ms=120000" });
  });

  it("runs one replica of each service, autoscaled from one, except portfolio-manager: two, a PDB (the suite's resilience case)", async () => {
    const run = await runProgram("local-k8s", {}, tls);
    const HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler";
    const services = byType(run, DEPLOYMENT).filter((d) => d.inputs.metadata.labels["trading.io/role"] === "service");
    expect(services.length).toBeGreaterThan(10);
    for (const d of services) {
      const name = d.inputs.metadata.name;
      expect(d.inputs.spec.replicas, name).toBe(name === "portfolio-manager" ? 2 : 1);
      const hpa = byType(run, HPA).find((h) => h.inputs.spec.scaleTargetRef.name === name);
      if (hpa) expect(hpa.inputs.spec.minReplicas, name).toBe(d.inputs.spec.replicas);
    }
    const pdbs = byType(run, "kubernetes:policy/v1:PodDisruptionBudget").map((p) => p.inputs.metadata.name);
    // edge-errors (Traefik's refusals as JSON, session 53) keeps its two replicas and their PDB, as on every stack.
    expect(pdbs).toEqual(["edge-errors", "portfolio-manager"]);
  });

  it("serves the Ingress with Traefik and the stack's own TLS secret, reachable only from Traefik's namespace", async () => {
    const run = await runProgram("local-k8s", {}, tls);
    const ingress = named(run, "kubernetes:networking.k8s.io/v1:Ingress", "nginx-ingress");
    expect(ingress.inputs.spec.ingressClassName).toBe("traefik");
    expect(ingress.inputs.spec.tls).toEqual([{ hosts: ["trading.local-k8s.test"], secretName: "ai-trading-tls" }]);
    const secret = named(run, SECRET, "nginx-tls");
    expect(secret.inputs.type).toBe("kubernetes.io/tls");
    expect(secret.inputs.metadata.name).toBe("ai-trading-tls");
    expect(secret.secretPaths).toEqual(expect.arrayContaining([expect.stringMatching(/stringData/)]));
    const gw = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "api-gateway-netpol");
    expect(JSON.stringify(gw.inputs.spec.ingress)).toContain('"kubernetes.io/metadata.name":"traefik"');
    const ns = named(run, "kubernetes:core/v1:Namespace", "trading-k8s-namespace");
    expect(ns.inputs.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });
});

describe("Kubernetes ordering and autoscaling", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("creates each workload's Secret and ConfigMap before the pods that reference them", async () => {
    const run = await runProgram("prod");
    const index = (type: string, name: string) => run.resources.findIndex((r) => r.type === type && r.inputs.metadata?.name === name);
    let checked = 0;
    for (const w of [...byType(run, DEPLOYMENT), ...byType(run, STATEFULSET), ...byType(run, "kubernetes:batch/v1:Job"), ...byType(run, "kubernetes:batch/v1:CronJob")]) {
      const pod = w.inputs.spec.template?.spec ?? w.inputs.spec.jobTemplate.spec.template.spec;
      const own = run.resources.indexOf(w);
      const refs = new Set<string>();
      for (const c of pod.containers) for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) refs.add(`${SECRET}|${e.valueFrom.secretKeyRef.name}`);
      for (const v of pod.volumes ?? []) {
        if (v.secret) refs.add(`${SECRET}|${v.secret.secretName}`);
        if (v.configMap) refs.add(`kubernetes:core/v1:ConfigMap|${v.configMap.name}`);
      }
      for (const ref of refs) {
        const [type, name] = ref.split("|");
        const at = index(type, name);
        expect(at, `${w.name} references ${name}, which the program does not create`).toBeGreaterThanOrEqual(0);
        expect(at, `${name} registered before ${w.name}`).toBeLessThan(own);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("keeps prod's sizing: requests = limits, two replicas of each stateless service, autoscaled from two, a PDB each", async () => {
    const run = await runProgram("prod");
    const HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler";
    const pdbs = byType(run, "kubernetes:policy/v1:PodDisruptionBudget").map((p) => p.inputs.metadata.name);
    for (const s of catalog) {
      const d = named(run, DEPLOYMENT, `${s.name}-deployment`);
      const c = d.inputs.spec.template.spec.containers[0];
      expect(c.resources.requests, s.name).toEqual(c.resources.limits);
      expect(d.inputs.spec.replicas, s.name).toBe(s.singleton ? 1 : 2);
      if (s.singleton) continue;
      expect(byType(run, HPA).find((h) => h.inputs.spec.scaleTargetRef.name === s.name)?.inputs.spec.minReplicas, s.name).toBe(2);
      expect(pdbs, s.name).toContain(s.name);
    }
  });

  it("scales the autoscalers' CPU target with the request ratio (same absolute CPU as full requests)", async () => {
    const HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler";
    const target = (r: ProgramRun) => named(r, HPA, "api-gateway-hpa").inputs.spec.metrics[0].resource.target.averageUtilization;
    expect(target(await runProgram("prod"))).toBe(70);
    const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };
    expect(target(await runProgram("local-k8s", {}, tls))).toBe(1400);
  });
});

describe("configuration changes the graph", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("removes a datastore that is switched off", async () => {
    const run = await runProgram("prod", { weaviateEnabled: "false" });
    expect(byType(run, STATEFULSET).map((s) => s.name)).not.toContain("weaviate-statefulset");
    expect(byType(run, PASSWORD).map((p) => p.name)).not.toContain("trading-secrets-weaviate");
  });

  it("scales a service and re-tags the services image", async () => {
    const run = await runProgram("prod", { serviceReplicas: JSON.stringify({ "api-gateway": 4 }), servicesImageTag: "1.2.3" });
    expect(named(run, DEPLOYMENT, "api-gateway-deployment").inputs.spec.replicas).toBe(4);
    expect(named(run, "docker:index/image:Image", "trading-services-image-build").inputs.imageName).toBe(
      "registry.example.com/ai-trading/ai-trading-services:1.2.3",
    );
  });

  it("pins a datastore image override", async () => {
    const run = await runProgram("prod", { postgresImage: "postgres:16.6-bookworm" });
    expect(named(run, STATEFULSET, "postgres-statefulset").inputs.spec.template.spec.containers[0].image).toBe("postgres:16.6-bookworm");
  });

  it("adds the legacy Redis only when asked", async () => {
    const off = await runProgram("dev");
    expect(byType(off, CONTAINER).map((c) => c.name)).not.toContain("redis-container");
    const on = await runProgram("dev", { redisEnabled: "true" });
    named(on, CONTAINER, "redis-container");
  });

  it("binds operator ports to the configured address and can expose datastores on Kubernetes", async () => {
    const dev = await runProgram("dev", { adminBindAddress: "10.8.0.1" });
    expect(named(dev, CONTAINER, "postgres-container").inputs.ports[0]).toMatchObject({ ip: "10.8.0.1", external: 15432 });
    expect(named(dev, CONTAINER, "nginx-container").inputs.ports[0].ip).toBe("127.0.0.1");
    expect((dev.outputs.connectionStrings as Record<string, string>).postgres).toContain("@10.8.0.1:15432/");
    // Kafka (the local stand-in) is not published: its address inside the network. Redpanda
    // advertises its host listener at the bind address it is published on.
    expect((dev.outputs.connectionStrings as Record<string, string>).redpanda).toBe("redpanda:9092");
    const upstream = await runProgram("dev", { adminBindAddress: "10.8.0.1", imageSource: "upstream" });
    expect((upstream.outputs.connectionStrings as Record<string, string>).redpanda).toBe("10.8.0.1:19092");
    expect(named(upstream, CONTAINER, "redpanda-container").inputs.command).toContain("internal://redpanda:9092,external://10.8.0.1:19092");
    // LoadBalancer datastores are for dev stacks only (session 50): a Kubernetes dev stack.
    const prod = await runProgram("dev-k8s", { ...stackFileConfig("prod"), exposeDatastores: "true" });
    expect(named(prod, "kubernetes:core/v1:Service", "postgres-service").inputs.spec.type).toBe("LoadBalancer");
    expect(named(prod, "kubernetes:core/v1:Service", "api-gateway-service").inputs.spec.type).toBe("ClusterIP");
  });

  it("states the user of every Docker container explicitly", async () => {
    const run = await runProgram("dev");
    for (const c of byType(run, CONTAINER)) expect(c.inputs.user, c.name).toMatch(/^(postgres|redis|clickhouse|kafka|prometheus|weaviate|www-data|10001:10001)$/);
  });

  it("renders manifests without building the image when renderYamlTo is set", async () => {
    const run = await runProgram("prod", { renderYamlTo: "rendered/prod" });
    expect(byType(run, "docker:index/image:Image")).toHaveLength(0);
    expect(byType(run, "pulumi:providers:kubernetes")[0].inputs.renderYamlToDirectory).toBe("rendered/prod");
  });

  it("fails a bad configuration with the key and the stack", async () => {
    await expect(runProgram("prod", { replicas: "many" })).rejects.toThrow(
      "Invalid configuration trading:replicas on stack 'prod': must be an integer, got 'many'",
    );
    await expect(runProgram("dev", { arangodbEnabled: "true" })).rejects.toThrow(/arangodb has no offline \(local\) image/);
    await expect(runProgram("prod", { tradingMode: "live", marketDataSource: "binance" })).rejects.toThrow(
      "Invalid configuration trading:binanceApiKey on stack 'prod': is required when tradingMode is live",
    );
    // Set, but blank: no credential either.
    await expect(runProgram("prod", { tradingMode: "live", marketDataSource: "binance" }, { binanceApiKey: "", binanceSecretKey: "s-live" })).rejects.toThrow(
      "Invalid configuration trading:binanceApiKey on stack 'prod': is set but blank",
    );
    await expect(runProgram("prod", { tradingMode: "live" }, { binanceApiKey: "k-live", binanceSecretKey: "s-live" })).rejects.toThrow(
      "Invalid configuration trading:marketDataSource on stack 'prod': must be binance when tradingMode is live (real orders on fake prices), got 'synthetic'",
    );
  });

  it("refuses a misspelt key, a credential set in plain text and a setting set as a secret before creating anything", async () => {
    await expect(runProgram("dev", { publishAdminPort: "false" })).rejects.toThrow(
      "Invalid configuration trading:publishAdminPort on stack 'dev': is not a setting of this program (a misspelt key is otherwise ignored and its default applies); did you mean trading:publishAdminPorts?",
    );
    await expect(runProgram("prod", { telegramBotToken: "123:tg-token-abcdefghijklmnopqrstuvwxyz" })).rejects.toThrow(
      "Invalid configuration trading:telegramBotToken on stack 'prod': is a credential stored in plain text in the stack's configuration; set it again with 'pulumi config set --secret trading:telegramBotToken <value>'",
    );
    await expect(runProgram("prod", {}, { ingressHost: "secret.example.com" })).rejects.toThrow(
      "Invalid configuration trading:ingressHost on stack 'prod': is set with --secret but is not a credential",
    );
  });

  it("gives notification-service its SMTP relay and channel credentials (as secrets), and no one else", async () => {
    const run = await runProgram("prod", { smtpHost: "smtp.example.com", smtpUsername: "alerts" }, { smtpPassword: "smtp-pw-1", telegramBotToken: "123:tg-token-abcdefghijklmnopqrstuvwxyz" });
    const holders = byType(run, SECRET).filter((s) => JSON.stringify(s.inputs).includes("smtp-pw-1"));
    expect(holders.map((s) => s.name)).toEqual(["notification-service-secret"]);
    expect(holders[0].inputs.stringData).toMatchObject({ SMTP_PASSWORD: "smtp-pw-1", TELEGRAM_BOT_TOKEN: "123:tg-token-abcdefghijklmnopqrstuvwxyz" });
    const env = named(run, DEPLOYMENT, "notification-service-deployment").inputs.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]))).toMatchObject({ SMTP_HOST: "smtp.example.com", SMTP_PORT: "587", SMTP_SECURE: "false", SMTP_USER: "alerts" });
    expect(JSON.stringify(named(run, DEPLOYMENT, "notification-service-deployment").inputs)).not.toContain("smtp-pw-1");
  });

  // Session 42: NOTIFY_WEBHOOK_PORTS had no stack key (the service's default, 443, or a hand-set env).
  it("gives notification-service the stack's webhook ports (notifyWebhookPorts) on both runtimes", async () => {
    const k8s = await runProgram("prod", { notifyWebhookPorts: "443, 8443" });
    const env = named(k8s, DEPLOYMENT, "notification-service-deployment").inputs.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === "NOTIFY_WEBHOOK_PORTS")?.value).toBe("443,8443");
    const docker = await runProgram("dev", { notifyWebhookPorts: "8443" });
    expect(envOf(named(docker, CONTAINER, "notification-service-container")).NOTIFY_WEBHOOK_PORTS).toBe("8443");
    expect(envOf(named(await runProgram("dev"), CONTAINER, "notification-service-container")).NOTIFY_WEBHOOK_PORTS).toBe("443");
  });

  it("hands exchange keys to the trading services only in live mode, as secrets", async () => {
    const run = await runProgram("prod", { tradingMode: "live", marketDataSource: "binance" }, { binanceApiKey: "k-live", binanceSecretKey: "s-live" });
    const secrets = byType(run, SECRET).filter((s) => JSON.stringify(s.inputs).includes("k-live"));
    const trading = catalog.filter((s) => s.secrets.includes("binance")).map((s) => `${s.name}-secret`);
    expect(secrets.map((s) => s.name).sort()).toEqual(trading.sort());
    for (const s of secrets) {
      expect(s.inputs.stringData.BINANCE_API_KEY).toBe("k-live");
      expect(s.secretPaths.some((p) => p.startsWith("stringData"))).toBe(true);
    }
  });
});
