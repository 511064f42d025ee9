/** Pure generators and rules of the program, without an engine. */
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { catalog, entryPoint, otlpTracesUrl, ServiceDefinition, sizingOf, traceCollector } from "../../catalog";
import { parseStackConfig } from "../../stacks/config";
import { nginxConfig, publicRoutes } from "../../components/edge/nginx";
import { alertRulesYaml, prometheusConfig } from "../../components/monitoring/prometheus";
import { aiChainsDashboard } from "../../components/monitoring/grafana";
import { buildTopology, recordedBackups } from "../../components/topology";
import { BACKUP_HEARTBEAT, backupRunRecorderScript, backupScript, clickhouseRestoreScript, RUN_OUTCOME_DIR } from "../../components/data/backup";
import { cpuToCores, JobCompanionSpec, memoryToMiB, probe, ScheduledJobSpec, validateJobCompanion, validateWorkloadSpec, WorkloadSpec } from "../../components/workload";
import { runTimeoutSeconds } from "../../components/monitoring/scheduled-jobs";
import { fileKey, k8sProbe, k8sStartupProbe, KUBERNETES_CAPABILITIES, scaledCpu, scaledMemory, STARTUP_BUDGET_SECONDS } from "../../components/runtime/kubernetes";
import { runtimeCapabilities } from "../../components/runtime";
import { DOCKER_CAPABILITIES, dockerHealthcheck, dockerTmpfsOptions, HTTP_PROBE_SCRIPT } from "../../components/runtime/docker";

const routed = catalog.filter((s) => s.route !== null);

describe("nginx", () => {
  const conf = nginxConfig({ services: catalog, gateway: { host: "api-gateway", port: 3001 }, publicHttpsPort: 443, serverName: "trading.example.com" });

  it("has one location per routed catalog service, all through the gateway", () => {
    expect(publicRoutes(catalog).map((r) => r.path)).toEqual(["/api/health", "/api/docs/", ...routed.map((s) => `/api/${s.route}/`).sort()]);
    const locations = conf.match(/location [^{]+\{[^}]*\}/g)!;
    const proxied = locations.filter((l) => l.includes("proxy_pass"));
    expect(proxied).toHaveLength(routed.length + 2);
    for (const l of proxied) expect(l).toContain("proxy_pass http://gateway;");
  });

  it("only redirects on plain HTTP and serves TLS 1.2+ on HTTPS", () => {
    const servers = conf.split(/\n  server \{/).slice(1);
    expect(servers).toHaveLength(2);
    expect(servers[0]).toContain("return 301 https://$host$request_uri;");
    expect(servers[0]).not.toContain("proxy_pass");
    expect(servers[1]).toMatch(/listen 8443 ssl/);
    expect(servers[1]).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
  });

  it("strips identity headers clients might forge", () => {
    expect(conf).toContain('proxy_set_header X-User-Id "";');
  });
});

describe("prometheus", () => {
  it("scrapes exactly the catalog", () => {
    const conf = prometheusConfig(catalog);
    const jobs = [...conf.matchAll(/job_name: (\S+)/g)].map((m) => m[1]);
    expect(jobs.sort()).toEqual(["prometheus", ...catalog.map((s) => s.name)].sort());
  });

  it("ships alert rules with severities", () => {
    const rules = alertRulesYaml();
    expect(rules).toMatch(/^groups:\n  - name: trading-platform\n    rules:\n/);
    for (const alert of ["ServiceDown", "HighErrorRate", "HighLatencyP99", "DependencyDown"]) expect(rules).toContain(`alert: ${alert}`);
    expect(rules.match(/severity: (critical|warning)/g)!.length).toBe(rules.match(/- alert:/g)!.length);
  });

  it("the AI decision chains dashboard plots ai-chain-analytics' gauges per model version and strategy", () => {
    const d = JSON.parse(aiChainsDashboard());
    expect(d.uid).toBe("trading-ai-chains");
    const exprs: string[] = d.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr));
    for (const m of ["hit_rate", "pnl", "slippage_bps", "decision_to_order_ms_p50", "order_to_fill_ms_p50", "decisions", "orders", "fills"])
      expect(exprs).toContain(`max by (model_version, strategy_id) (ai_chain_${m})`);
    expect(new Set(d.panels.map((p: { id: number }) => p.id)).size).toBe(d.panels.length);
  });
});

describe("topology", () => {
  it("derives network allows from the catalog (Kubernetes)", () => {
    const config = parseStackConfig("prod", { target: "kubernetes", registry: "r.example.com", certIssuer: "x", ingressHost: "trading.example.com" });
    const t = buildTopology(config, runtimeCapabilities(config.target));
    for (const s of catalog) {
      for (const store of s.requires) {
        expect(t.connectsTo[s.name]).toContain(store);
        expect(t.acceptsFrom[store]).toContain(s.name);
      }
      expect(t.acceptsFrom[s.name]).toContain("prometheus");
    }
    expect(t.acceptsFrom["api-gateway"]).toContain("@ingress");
    expect(t.connectsTo["postgres-backup"]).toEqual(["postgres"]);
    // The ClickHouse backup's run recorder writes its runs to PostgreSQL from the backup's pod.
    expect(t.connectsTo["clickhouse-backup"]).toEqual(["clickhouse", "postgres"]);
    expect(t.acceptsFrom.postgres).toContain("clickhouse-backup");
  });

  it("records the runs of the scheduled backups where PostgreSQL is deployed and the runtime runs a job's companion", () => {
    const both = ["postgres", "clickhouse"] as const;
    expect(recordedBackups(KUBERNETES_CAPABILITIES, [...both])).toEqual(["postgres", "clickhouse"]);
    // No PostgreSQL, nowhere to record a run (the recorder would have no server).
    expect(recordedBackups(KUBERNETES_CAPABILITIES, ["clickhouse"])).toEqual([]);
    expect(recordedBackups(KUBERNETES_CAPABILITIES, ["postgres"])).toEqual(["postgres"]);
    // A scheduler of any image without companions: the PostgreSQL backup records its own runs only.
    expect(recordedBackups({ ...KUBERNETES_CAPABILITIES, jobCompanions: false }, [...both])).toEqual(["postgres"]);
    // Docker schedules no backup at all.
    expect(recordedBackups(DOCKER_CAPABILITIES, [...both])).toEqual([]);
    const config = parseStackConfig("prod", { target: "kubernetes", registry: "r.example.com", certIssuer: "x", ingressHost: "trading.example.com", clickhouseEnabled: "true", postgresEnabled: "true" });
    expect(buildTopology(config, { ...KUBERNETES_CAPABILITIES, jobCompanions: false }).connectsTo["clickhouse-backup"]).toEqual(["clickhouse"]);
  });

  it("lets every service reach the trace collector (chain-debug), which reaches none of them", () => {
    const config = parseStackConfig("prod", { target: "kubernetes", registry: "r.example.com", certIssuer: "x", ingressHost: "trading.example.com" });
    const t = buildTopology(config, runtimeCapabilities(config.target));
    const collector = traceCollector(config.services)!;
    expect(collector.name).toBe("chain-debug");
    expect(otlpTracesUrl(collector)).toBe("http://chain-debug:8030/internal/otlp/v1/traces");
    for (const s of config.services) if (s.name !== collector.name) expect(t.connectsTo[s.name], s.name).toContain("chain-debug");
    expect(t.connectsTo["chain-debug"]).toEqual(["clickhouse"]);
  });

  it("does not connect services to switched-off optional datastores", () => {
    const config = parseStackConfig("dev", { target: "docker", weaviateEnabled: "false", arangodbEnabled: "false" });
    const t = buildTopology(config, runtimeCapabilities(config.target));
    for (const list of Object.values(t.connectsTo)) {
      expect(list).not.toContain("weaviate");
      expect(list).not.toContain("arangodb");
    }
    expect(t.acceptsFrom["api-gateway"]).toEqual(["nginx", "prometheus"]);
  });
});

describe("workload spec", () => {
  const spec: WorkloadSpec = {
    name: "svc",
    role: "service",
    kind: "stateless",
    image: "x:1",
    env: { A: "1" },
    secretEnv: {},
    ports: [{ name: "http", port: 80 }],
    volumes: [],
    files: [],
    liveness: probe({ http: { path: "/health", port: 80 } }),
    resources: { cpu: "250m", memory: "1Gi" },
    replicas: 1,
    security: { readOnlyRootFilesystem: true, scratchDirs: [] },
    connectsTo: [],
    acceptsFrom: [],
  };

  it("converts quantities", () => {
    expect(cpuToCores("250m")).toBe(0.25);
    expect(cpuToCores("2")).toBe(2);
    expect(memoryToMiB("1Gi")).toBe(1024);
    expect(() => memoryToMiB("1G")).toThrow("use Mi or Gi");
  });

  it.each([
    [{ name: "Bad_Name" }, "DNS label"],
    [{ kind: "stateful" as const }, "needs a volume"],
    [{ ports: [{ name: "a", port: 80 }, { name: "b", port: 80 }] }, "declared twice"],
    [{ secretEnv: { A: "s" } }, "both a plain and a secret"],
    [{ liveness: { intervalSeconds: 1, timeoutSeconds: 1, retries: 1, startPeriodSeconds: 1 } }, "liveness check is required"],
  ])("rejects %j", (patch, message) => {
    expect(() => validateWorkloadSpec({ ...spec, ...patch } as WorkloadSpec)).toThrow(message);
  });

  it("asks no liveness check of a job (it runs to completion), and one of everything else", () => {
    expect(() => validateWorkloadSpec({ ...spec, kind: "job", liveness: undefined })).not.toThrow();
    expect(() => validateWorkloadSpec({ ...spec, liveness: undefined })).toThrow("liveness check is required");
  });

  it("maps probes for Docker and file keys for Kubernetes", () => {
    expect(dockerHealthcheck(probe({ exec: ["pg_isready"] }))).toEqual({ tests: ["CMD", "pg_isready"], interval: "10s", timeout: "5s", retries: 5, startPeriod: "20s" });
    expect(dockerHealthcheck(probe({ http: { path: "/health", port: 80 } })).tests).toEqual(["CMD", "bash", "-c", HTTP_PROBE_SCRIPT, "80", "/health"]);
    for (const path of ["health", "/health now", "/a\r\nX: y", ""]) expect(() => dockerHealthcheck(probe({ http: { path, port: 80 } }))).toThrow("probe path");
    expect(fileKey("/etc/nginx/nginx.conf")).toBe("etc_nginx_nginx.conf");
  });

  it("the Docker HTTP probe, run by bash against a real server: healthy on 200 only", async () => {
    const server = createServer((req, res) => {
      res.statusCode = req.url === "/health" ? 200 : req.url === "/ready" ? 503 : 404;
      res.end(req.url === "/health" ? "ok" : "no");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = String((server.address() as AddressInfo).port);
    const exitOf = (args: string[]) =>
      new Promise<number | null>((resolve) => execFile("bash", ["-c", HTTP_PROBE_SCRIPT, ...args], { timeout: 30_000 }, (err) => resolve(err ? (err.code as number) : 0)));
    try {
      expect(await exitOf([port, "/health"])).toBe(0);
      expect(await exitOf([port, "/ready"])).not.toBe(0);
      expect(await exitOf([port, "/nope"])).not.toBe(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await exitOf([port, "/health"])).not.toBe(0); // nothing listens any more
  });

  it("scales CPU and memory requests to a fraction of the limit, whole millicores / MiB rounded up, never 0", () => {
    expect(scaledCpu("250m", 1)).toBe("250m");
    expect(scaledCpu("250m", 0.1)).toBe("25m");
    expect(scaledCpu("1", 0.1)).toBe("100m");
    expect(scaledCpu("0.5", 0.25)).toBe("125m");
    expect(scaledCpu("5m", 0.1)).toBe("1m");
    expect(() => scaledCpu("a lot", 0.5)).toThrow("invalid CPU quantity 'a lot'");
    expect(scaledMemory("256Mi", 1)).toBe("256Mi");
    expect(scaledMemory("256Mi", 0.5)).toBe("128Mi");
    expect(scaledMemory("1Gi", 0.5)).toBe("512Mi");
    expect(scaledMemory("1536Mi", 0.3)).toBe("461Mi");
    expect(scaledMemory("1Mi", 0.1)).toBe("1Mi");
    expect(() => scaledMemory("1G", 0.5)).toThrow("use Mi or Gi");
  });

  it("guards each liveness check with a startup probe of the same check, five minutes at least", () => {
    const live = probe({ http: { path: "/health", port: 8010 } }, { startPeriodSeconds: 15 });
    expect(k8sStartupProbe(live)).toEqual({ ...k8sProbe(live), initialDelaySeconds: 0, failureThreshold: 30 });
    expect(k8sStartupProbe(probe({ exec: ["true"] }, { intervalSeconds: 7 })).failureThreshold).toBe(Math.ceil(STARTUP_BUDGET_SECONDS / 7));
    // A start period longer than the budget wins.
    expect(k8sStartupProbe(probe({ exec: ["true"] }, { startPeriodSeconds: 600, retries: 10 })).failureThreshold).toBe(70);
    expect(dockerTmpfsOptions()).toBe("rw,noexec,nosuid,size=64m,mode=1777");
    expect(dockerTmpfsOptions(33)).toBe("rw,noexec,nosuid,size=64m,uid=33,gid=33");
  });
});

describe("backups", () => {
  it("dump with credentials from the environment only and keep seven", () => {
    const pg = backupScript("postgres");
    expect(pg).toContain("pg_dump --format=custom");
    expect(pg).not.toMatch(/password/i);
    expect(pg).toContain("tail -n +8");
    const ch = backupScript("clickhouse");
    expect(ch).toContain("FORMAT Native");
    // Rows of tables only; views' CREATE apart (run against ClickHouse in tests/services/clickhouse-backup.test.ts).
    expect(ch).toContain("engine NOT IN ('View', 'MaterializedView')");
    expect(ch).not.toContain("SHOW TABLES");
    expect(ch).toMatch(/for v in \$views; do\n  ch_stoppable --query "SHOW CREATE TABLE \$v FORMAT TSVRaw" > "\$dir\/views\/\$v.sql"\ndone/);
    // Every client run is stoppable, the system.tables lookups too (their lists through the private directory).
    const clientRuns = ch.split("\n").filter((line) => /\bch(_exec|_stoppable)? --query/.test(line));
    expect(clientRuns.length).toBe(5);
    for (const line of clientRuns) expect(line.trimStart()).toMatch(/^ch_stoppable /);
    expect(ch).toContain(`ch_stoppable --query "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT IN ('View', 'MaterializedView') ORDER BY name" > "$client_dir/tables"`);
    expect(ch).toContain('tables=$(cat "$client_dir/tables")\nviews=$(cat "$client_dir/views")');
  });

  it("give ClickHouse's password to the client in a private config file, never on a command line", () => {
    for (const script of [backupScript("clickhouse"), clickhouseRestoreScript("/backups/20260101T000000Z")]) {
      // The variable is read by the shell's `:` and `printf` builtins only, printf's output piped to sed.
      expect(script.split("\n").filter((line) => line.includes("CLICKHOUSE_PASSWORD"))).toEqual([
        ': "${CLICKHOUSE_PASSWORD:?is not set}"',
        `    printf '%s' "$CLICKHOUSE_PASSWORD" | sed -e 's/&/\\&amp;/g' -e 's/</\\&lt;/g' -e 's/>/\\&gt;/g'`,
      ]);
      expect(script).not.toContain("--password");
      expect(script).not.toContain("--user");
      expect(script).toContain("client_dir=$(mktemp -d");
      expect(script).toContain("umask 077");
      expect(script).toContain(`ch() { clickhouse-client --config-file "$client_dir/client.xml" --host 'clickhouse' --port 9000 --database 'ai_trading' "$@"; }`);
      expect(script).toContain("printf '%s' '<config><user>trading</user><password>'");
    }
  });

  it("remove the client's password file on every exit: the restore with its own trap, the backup with the one that also reports its outcome", () => {
    expect(clickhouseRestoreScript("/backups/20260101T000000Z")).toContain("client_dir=$(mktemp -d)\ntrap 'rm -rf \"$client_dir\"' EXIT");
    const backup = backupScript("clickhouse");
    const traps = backup.split("\n").filter((line) => line.startsWith("trap "));
    // One EXIT trap, set before anything can fail: the client directory removed, a failure's code reported.
    expect(traps).toEqual([
      'trap \'status=$?; trap - EXIT; [ -z "$client_dir" ] || rm -rf "$client_dir"; [ -z "${partial:-}" ] || rm -rf "$partial"; if [ "$status" -ne 0 ]; then report_outcome "${stop_code:-EXIT_$status}"; fi; [ -z "$heartbeat_pid" ] || kill "$heartbeat_pid" 2>/dev/null || true; exit "$status"\' EXIT',
      // A signal names itself and stops the running export at once (the client runs in the background: ch_stoppable).
      "trap 'stop SIGHUP 129' HUP; trap 'stop SIGINT 130' INT; trap 'stop SIGTERM 143' TERM",
    ]);
    expect(backup.indexOf("trap 'status")).toBeLessThan(backup.indexOf("stamp="));
    expect(backup.indexOf("trap 'status")).toBeLessThan(backup.indexOf("client_dir=$(mktemp -d"));
    // The backup's directory has a name of its own in the scratch, and each run first removes what a
    // run killed outright left there (run for real in tests/services/clickhouse-backup.test.ts).
    expect(backup).toContain('client_dir=$(mktemp -d "${TMPDIR:-/tmp}/clickhouse-backup-client.XXXXXX")');
    expect(backup).toContain('rm -rf /backups/*.partial\nrm -rf "${TMPDIR:-/tmp}"/clickhouse-backup-client.*\n');
    expect(backup.indexOf("/clickhouse-backup-client.*")).toBeLessThan(backup.indexOf("client_dir=$(mktemp -d"));
    // The success is reported last, after the pruning.
    expect(backup.trimEnd().split("\n").slice(-2)).toEqual([expect.stringContaining("tail -n +8"), "report_outcome SUCCESS"]);
    expect(backup).toContain(`[ -d '${RUN_OUTCOME_DIR}' ] || return 0`);
    // The heartbeat, where the recorder's directory is, from a loop of the shell's started before any client runs.
    expect(backup).toContain(`if [ -d '${RUN_OUTCOME_DIR}' ]; then\n  ( set +e; beat=0; while kill -0 "$$" 2>/dev/null; do`);
    expect(backup).toContain(`mv -f '${RUN_OUTCOME_DIR}/heartbeat.partial' '${RUN_OUTCOME_DIR}/heartbeat'; } 2>/dev/null; sleep ${BACKUP_HEARTBEAT.intervalSeconds}; done ) < /dev/null > /dev/null 2>&1 &`);
    expect(backup.indexOf("heartbeat_pid=$!")).toBeLessThan(backup.indexOf("ch_stoppable --query"));
  });

  it("give the PostgreSQL backup with a run recorder the ClickHouse backup's outcome, heartbeat and traps instead of psql", () => {
    const own = backupScript("postgres");
    const reported = backupScript("postgres", { postgresRecording: "run-recorder" });
    // Without a recorder: its own psql records, as before.
    expect(own).toContain("record_start\nrm -rf /backups/*.partial\npg_dump");
    expect(own.trimEnd().split("\n").at(-1)).toBe("record_success");
    expect(own).not.toContain(RUN_OUTCOME_DIR);
    // With one: no psql at all (one writer of the run's row), the outcome reported last, the heartbeat before pg_dump.
    expect(reported).not.toContain("psql");
    expect(reported).not.toMatch(/record_(start|success|failure)/);
    expect(reported.trimEnd().split("\n").slice(-2)).toEqual([expect.stringContaining("tail -n +8"), "report_outcome SUCCESS"]);
    expect(reported.split("\n").filter((line) => line.startsWith("trap "))).toEqual([
      'trap \'status=$?; trap - EXIT; rm -f "$file.partial"; if [ "$status" -ne 0 ]; then report_outcome "${stop_code:-EXIT_$status}"; fi; [ -z "$heartbeat_pid" ] || kill "$heartbeat_pid" 2>/dev/null || true; exit "$status"\' EXIT',
      "trap 'stop SIGHUP 129' HUP; trap 'stop SIGINT 130' INT; trap 'stop SIGTERM 143' TERM",
    ]);
    expect(reported.indexOf("heartbeat_pid=$!")).toBeLessThan(reported.indexOf("pg_dump"));
    expect(reported).toContain(`sleep ${BACKUP_HEARTBEAT.intervalSeconds}; done`);
    expect(reported).not.toMatch(/password/i);
  });

  it("record the ClickHouse backup's runs from a script with no credential on it and no code but the ones the backup writes", () => {
    const recorder = backupRunRecorderScript("clickhouse-backup");
    expect(recorder).not.toMatch(/password/i);
    expect(recorder).toContain("psql -X -q -v ON_ERROR_STOP=1 -h 'postgres' -p 5432 -U 'trading' -d 'ai_trading'");
    expect(recorder).toContain("VALUES ('clickhouse-backup', statement_timestamp(), '$1')");
    // Start first, then the wait for the backup's outcome, in the background so a stop is handled at once.
    const wait = `while [ ! -e '${RUN_OUTCOME_DIR}/outcome' ] && [ "$unchanged" -lt ${BACKUP_HEARTBEAT.staleAfterSeconds} ]; do\n  sleep 1 & sleeper=$!; wait "$sleeper"; sleeper=""`;
    expect(recorder.indexOf("\nrecord_start\n")).toBeGreaterThan(0);
    expect(recorder.indexOf("\nrecord_start\n")).toBeLessThan(recorder.indexOf(wait));
    // Stopped, it names the signal it got (the backup's own outcome, if written within its wait, wins).
    expect(recorder).toContain("trap 'stopped 129 SIGHUP' HUP; trap 'stopped 130 SIGINT' INT; trap 'stopped 143 SIGTERM' TERM");
    // A heartbeat stale far beyond its interval (and the production bounds as documented).
    expect(BACKUP_HEARTBEAT).toEqual({ intervalSeconds: 10, staleAfterSeconds: 90 });
    expect(recorder).toContain("  finish BACKUP_STOPPED_WITHOUT_OUTCOME\nfi");
    expect(backupRunRecorderScript("clickhouse-backup", undefined, { intervalSeconds: 1, staleAfterSeconds: 4 })).toContain(`[ "$unchanged" -lt 4 ]`);
  });

  it("refuse a job companion that is the job, runs as root or shares a variable with the job but the same credential", () => {
    const companion: JobCompanionSpec = { name: "run-recorder", image: "pg", command: ["sh"], env: {}, secretEnv: { PGPASSWORD: "x" }, resources: { cpu: "100m", memory: "64Mi" }, runAsUser: 999, sharedDir: "/run-outcome" };
    const job = (c: Partial<JobCompanionSpec>, secretEnv: Record<string, string> = { CLICKHOUSE_PASSWORD: "y" }): ScheduledJobSpec => ({
      name: "clickhouse-backup", role: "job", kind: "job", schedule: "15 2 * * *", runTimeoutSeconds: runTimeoutSeconds("15 2 * * *"), image: "ch", command: ["sh"], env: {}, secretEnv, ports: [], volumes: [], files: [],
      resources: { cpu: "500m", memory: "512Mi" }, replicas: 1, security: { readOnlyRootFilesystem: true, scratchDirs: [] }, connectsTo: [], acceptsFrom: [],
      companion: { ...companion, ...c },
    });
    expect(() => validateJobCompanion(job({}))).not.toThrow();
    expect(() => validateJobCompanion(job({ name: "clickhouse-backup" }))).toThrow(/DNS label other than the job's/);
    expect(() => validateJobCompanion(job({ runAsUser: 0 }))).toThrow(/runs as root/);
    expect(() => validateJobCompanion(job({}, { PGPASSWORD: "y" }))).toThrow(/PGPASSWORD is also a variable of the job's container, with another value/);
    // The same credential in both (the PostgreSQL backup and its recorder): one key of the Secret.
    expect(() => validateJobCompanion(job({}, { PGPASSWORD: "x" }))).not.toThrow();
    expect(() => validateJobCompanion({ ...job({}), env: { PGPASSWORD: "x" } })).toThrow(/PGPASSWORD is also a variable of the job's container/);
    expect(() => validateJobCompanion(job({ sharedDir: "run-outcome" }))).toThrow(/not an absolute path/);
  });

  it("restore ClickHouse tables, then their rows, then the views", () => {
    const restore = clickhouseRestoreScript("/backups/20260101T000000Z");
    const at = (s: string) => restore.indexOf(s);
    expect(at('"$dir"/tables/*.sql')).toBeGreaterThan(0);
    expect(at('"$dir"/tables/*.native')).toBeGreaterThan(at('"$dir"/tables/*.sql'));
    expect(at('"$dir"/views/*.sql')).toBeGreaterThan(at('"$dir"/tables/*.native'));
    expect(clickhouseRestoreScript("/b/it's")).toContain("dir='/b/it'\\''s'");
  });
});

// A catalog entry shape check, so a new service cannot join half-described.
describe("catalog", () => {
  it.each(catalog.map((s) => [s.name, s] as [string, ServiceDefinition]))("%s is complete", (_name, s) => {
    expect(s.name).toMatch(/^[a-z][a-z-]*[a-z]$/);
    expect(s.port).toBeGreaterThan(1024);
    expect(s.description.length).toBeGreaterThan(10);
    const { scaling } = sizingOf(s);
    expect(scaling.minReplicas).toBeLessThanOrEqual(scaling.maxReplicas);
    expect(scaling.maxReplicas === 1, "a service limited to one replica is a singleton").toBe(s.singleton);
    for (const peer of s.calls) expect(catalog.some((c) => c.name === peer), `${s.name} calls ${peer}`).toBe(true);
  });

  it("has exactly one entry point, which calls every routed service and nothing else", () => {
    expect(catalog.filter((s) => s.entryPoint)).toHaveLength(1);
    expect(entryPoint()!.calls).toEqual(routed.map((s) => s.name));
    expect(entryPoint()!.route).toBeNull();
  });

  it("is frozen: importing it changes nothing, and nobody can change it afterwards", () => {
    expect(Object.isFrozen(catalog)).toBe(true);
    expect(() => (entryPoint()!.calls as string[]).push("x")).toThrow();
  });

  it("has unique names, ports and routes", () => {
    const unique = (xs: unknown[]) => new Set(xs).size === xs.length;
    expect(unique(catalog.map((s) => s.name))).toBe(true);
    expect(unique(catalog.map((s) => s.port))).toBe(true);
    expect(unique(routed.map((s) => s.route))).toBe(true);
  });
});
