/**
 * The generated Nginx and Prometheus configuration, checked by the tools that will load it
 * (`nginx -t`, `promtool check`), installed by scripts/deps/install-test-deps.sh.
 */
import { spawn, spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as http from "http";
import * as https from "https";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import { nginxConfig, TLS_DIR } from "../../components/edge/nginx";
import { alertRules, alertRulesYaml, prometheusConfig, RULES_PATH, type AlertRule } from "../../components/monitoring/prometheus";
import { scheduledJobRules } from "../../components/monitoring/scheduled-jobs";
import { BACKUP_RUN_TIMEOUT_SECONDS } from "../../components/data/backup";
import { KUBERNETES_CAPABILITIES } from "../../components/runtime/kubernetes";
import { backupJobName, recordedBackups } from "../../components/topology";
import { freeLoopbackPort, startEdgeNginx, throwawayTls } from "../helpers/edge-nginx";
import { PATIENCE_MS } from "../helpers/patience";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "trading-conf-"));
/**
 * Resolves once nginx's access log at `log` holds `count` lines containing `text`: a request's line is
 * written in its log phase, after the client has its answer, so what a line must not hold is read after it.
 */
async function logged(log: string, text: string, count = 1): Promise<void> {
  const end = Date.now() + PATIENCE_MS;
  const seen = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split(text).length - 1 : 0);
  while (seen() < count) {
    if (Date.now() > end) throw new Error(`${count} line(s) with ${text} not in ${log} within ${PATIENCE_MS} ms: ${seen()}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

const START = "scheduled_job_last_start_timestamp_seconds";
const SUCCESS = "scheduled_job_last_success_timestamp_seconds";
const FAILURE = "scheduled_job_last_failure_timestamp_seconds";
/** A gauge series of a scheduled job as ml-predictor's /metrics exports it (the failure's with its code). */
const jobSeries = (metric: string, job: string, values: string) => ({
  series: `${metric}{job="ml-predictor", service="ml-predictor", scheduled_job="${job}"${metric === FAILURE ? ', code="EXIT_1"' : ""}}`,
  values,
});
/** The platform's rules plus the per-job rules of `names`, every 6 hours with a 30-minute time limit. */
const rulesWithJobs = (names: string[]) => [...alertRules, ...scheduledJobRules(names.map((name) => ({ name, schedule: "0 */6 * * *", runTimeoutSeconds: 1_800 })))];
/** `promtool test rules` of `rules` on one-minute series: it must pass every expectation. */
/**
 * promtool's expectation that `name` fires at minute `minutes` once per label set of `alerts` (none:
 * silent), each alert's summary the rule's with its labels filled in.
 */
function alertsAt(rulesList: readonly AlertRule[], minutes: number, name: string, alerts: Array<Record<string, string>>) {
  const summary = (labels: Record<string, string>) =>
    Object.entries(labels).reduce((text, [k, v]) => text.replaceAll(`{{ $labels.${k} }}`, v), rulesList.find((r) => r.alert === name)!.summary);
  return {
    eval_time: `${minutes}m`,
    alertname: name,
    exp_alerts: alerts.map((labels) => ({ exp_labels: { severity: "warning", ...labels }, exp_annotations: { summary: summary(labels) } })),
  };
}

function promtoolTestRules(rules: Parameters<typeof alertRulesYaml>[0], inputSeries: unknown[], alertRuleTests: unknown[]): void {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "rules.yml"), alertRulesYaml(rules));
  const tests = { rule_files: ["rules.yml"], evaluation_interval: "1m", tests: [{ interval: "1m", input_series: inputSeries, alert_rule_test: alertRuleTests }] };
  fs.writeFileSync(path.join(dir, "tests.yml"), JSON.stringify(tests, null, 2));
  const r = spawnSync("promtool", ["test", "rules", path.join(dir, "tests.yml")], { encoding: "utf8", cwd: dir });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain("SUCCESS");
}

describe("generated configuration accepted by the real tools", () => {
  it("nginx -t accepts the edge configuration", () => {
    const dir = tmp();
    throwawayTls(dir);
    // The gateway's DNS name exists only inside the Docker network; loopback stands in for it.
    const conf = nginxConfig({ services: catalog, gateway: { host: "127.0.0.1", port: 3001 }, publicHttpsPort: 8443, serverName: "localhost" })
      .replaceAll(TLS_DIR, path.join(dir, "tls"));
    fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
    // stdout to /dev/null: the config logs to /dev/stdout, which a container's pipe allows but a
    // socketpair (the default here) does not.
    const r = spawnSync("nginx", ["-t", "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], {
      encoding: "utf8",
      stdio: ["ignore", "ignore", "pipe"],
    });
    expect(r.stderr, r.stderr).toContain("test is successful");
  });

  // Session 43's secrets hunt: the edge wrote nginx's default "combined" line, the query and the Referer whole.
  it("the edge's access line holds neither a request's query nor its Referer (the real nginx, both servers)", async () => {
    const edge = await startEdgeNginx(1);
    const [httpPort, httpsPort, log] = [edge.httpPort, edge.httpsPort, edge.log];
    const [q, r, t, f] = [1, 2, 3, 4].map(() => randomBytes(12).toString("hex"));
    const get = (mod: typeof http | typeof https, port: number, pathAndQuery: string) =>
      new Promise<number>((resolve, reject) => {
        const req = mod.get({ host: "127.0.0.1", port, path: pathAndQuery, headers: { referer: `https://app.example/reset?token=${r}` }, rejectUnauthorized: false }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
      });
    try {
      expect(await get(https, httpsPort, `/no/such/route?access_token=${q}`)).toBe(404);
      expect(await get(https, httpsPort, `/no/such/route#access_token=${f}`)).toBe(404);
      expect(await get(http, httpPort, `/api/orders/?token=${t}`)).toBe(301);
      await logged(log, '"GET /no/such/route HTTP/1.1" 404', 2);
      await logged(log, '"GET /api/orders/ HTTP/1.1" 301');
      const lines = fs.readFileSync(log, "utf8");
      for (const v of [q, r, t, f]) expect(lines).not.toContain(v);
      expect(lines).toContain('"GET /no/such/route HTTP/1.1" 404');
      expect(lines).toContain('"GET /api/orders/ HTTP/1.1" 301');
    } finally {
      await edge.stop();
    }
  });

  // Session 44's secrets hunt: the local image's own nginx.conf (served until the program's replaces it) logged "combined".
  it("the local Nginx image's own nginx.conf logs the edge's line, from the same file as the generated one (the real nginx)", async () => {
    const formatFile = path.join(__dirname, "..", "..", "images", "nginx", "edge-log-format.conf");
    const format = fs.readFileSync(formatFile, "utf8").split("\n").find((l) => l.startsWith("log_format "))!;
    expect(nginxConfig({ services: catalog, gateway: { host: "g", port: 1 }, publicHttpsPort: 8443, serverName: "localhost" })).toContain(format);
    const own = fs.readFileSync(path.join(__dirname, "..", "..", "images", "nginx", "nginx.conf"), "utf8");
    expect(own).not.toContain("log_format");
    const dir = tmp();
    throwawayTls(dir);
    const [port, tlsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
    const log = path.join(dir, "access.log");
    fs.copyFileSync(formatFile, path.join(dir, "edge-log-format.conf"));
    const conf = own
      .replace("include /etc/nginx/edge-log-format.conf;", `include ${path.join(dir, "edge-log-format.conf")};`)
      .replace("pid /run/nginx/nginx.pid;", `pid ${path.join(dir, "nginx.pid")};`)
      .replaceAll("/etc/nginx/tls", path.join(dir, "tls"))
      .replaceAll("/var/lib/nginx", dir)
      .replace("listen 8080;", `listen 127.0.0.1:${port};`)
      .replace("listen 8443 ssl;", `listen 127.0.0.1:${tlsPort} ssl;`)
      .replace("error_log /dev/stderr", `error_log ${path.join(dir, "error.log")}`)
      .replace(/access_log \/dev\/stdout/, `access_log ${log}`);
    expect(conf).toContain(`access_log ${log} edge;`);
    fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
    const nginx = spawn("nginx", ["-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    nginx.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const [q, r] = [1, 2].map(() => randomBytes(12).toString("hex"));
    const get = (pathAndQuery: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: pathAndQuery, headers: { referer: `https://app.example/reset?token=${r}` } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
      });
    try {
      for (let i = 0; ; i++) {
        try {
          expect(await get(`/login?access_token=${q}`)).toBe(301);
          break;
        } catch (err) {
          if (i > 100 || nginx.exitCode !== null) throw new Error(`nginx did not start: ${stderr} ${String(err)}`);
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      await logged(log, '"GET /login HTTP/1.1" 301');
    } finally {
      if (nginx.exitCode === null) {
        nginx.kill("SIGQUIT");
        await new Promise((res) => nginx.once("exit", res));
      }
    }
    const lines = fs.readFileSync(log, "utf8");
    for (const v of [q, r]) expect(lines).not.toContain(v);
    expect(lines).toContain('"GET /login HTTP/1.1" 301');
  });

  it("promtool accepts the scrape configuration and the alert rules", () => {
    const dir = tmp();
    const rules = path.join(dir, "rules.yml");
    fs.writeFileSync(rules, alertRulesYaml([...alertRules, ...scheduledJobRules([{ name: "ml-predictor-retrain", schedule: "30 3 * * *", runTimeoutSeconds: 3_600 }])]));
    fs.writeFileSync(path.join(dir, "prometheus.yml"), prometheusConfig(catalog, 15, ["ml-predictor-retrain"]).replace(RULES_PATH, rules));
    const checkRules = spawnSync("promtool", ["check", "rules", rules], { encoding: "utf8" });
    expect(checkRules.status, checkRules.stdout + checkRules.stderr).toBe(0);
    expect(checkRules.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const checkConfig = spawnSync("promtool", ["check", "config", path.join(dir, "prometheus.yml")], { encoding: "utf8" });
    expect(checkConfig.status, checkConfig.stdout + checkConfig.stderr).toBe(0);
  });

  it("promtool test rules: the scheduled job alerts fire on the series a service exports, and only then", () => {
    // Every 6 hours: overdue after 2 x 6h + 1h = 13h (780 minutes).
    const names = ["a-ok", "b-failing", "c-never", "d-recovered"];
    const rulesList = rulesWithJobs(names);
    // ScheduledJobFailing keeps the failure's code.
    const labels = (name: string, job: string): Record<string, string> => ({ scheduled_job: job, ...(name === "ScheduledJobFailing" ? { code: "EXIT_1" } : {}) });
    const at = (minutes: number, name: string, jobs: string[]) => alertsAt(rulesList, minutes, name, jobs.map((job) => labels(name, job)));
    promtoolTestRules(
      rulesList,
      [
        // Succeeded at 60 s, nothing since.
        jobSeries(SUCCESS, "a-ok", "60x800"),
        // Succeeded at 60 s; from minute 10 a failure at 600 s is its last run.
        jobSeries(SUCCESS, "b-failing", "60x800"),
        jobSeries(FAILURE, "b-failing", "_x9 600x790"),
        // Only a failure: never succeeded.
        jobSeries(FAILURE, "c-never", "60x800"),
        // Failed at 60 s, then succeeded at 120 s.
        jobSeries(FAILURE, "d-recovered", "60x800"),
        jobSeries(SUCCESS, "d-recovered", "120x800"),
      ],
      [
        at(5, "ScheduledJobFailing", ["c-never"]),
        at(20, "ScheduledJobFailing", ["b-failing", "c-never"]),
        at(700, "ScheduledJobOverdue", []),
        at(700, "ScheduledJobNeverSucceeded", []),
        // 13h after their last success (+ the rule's 5 minutes), a-ok and b-failing are overdue; d-recovered
        // succeeded a minute later. c-never has had no success series for 13h.
        at(787, "ScheduledJobOverdue", ["a-ok", "b-failing"]),
        at(790, "ScheduledJobOverdue", ["a-ok", "b-failing", "d-recovered"]),
        at(790, "ScheduledJobNeverSucceeded", ["c-never"]),
      ],
    );
  });

  it("promtool test rules: the backups' rules as the prod stack renders them, on the series database-service exports for both backups", () => {
    // recordedBackups on Kubernetes: both backups, the default backupSchedule, their 3 h time limit.
    const backups = recordedBackups(KUBERNETES_CAPABILITIES, ["postgres", "clickhouse"]).map((store) => backupJobName(store));
    expect(backups).toEqual(["postgres-backup", "clickhouse-backup"]);
    const rulesList = [...alertRules, ...scheduledJobRules(backups.map((name) => ({ name, schedule: "15 2 * * *", runTimeoutSeconds: BACKUP_RUN_TIMEOUT_SECONDS })))];
    const exported = (metric: string, job: string, values: string, code?: string) => ({
      series: `${metric}{job="database-service", service="database-service", scheduled_job="${job}"${code ? `, code="${code}"` : ""}}`,
      values,
    });
    const at = (minutes: number, name: string, alerts: Array<Record<string, string>>) => alertsAt(rulesList, minutes, name, alerts);
    promtoolTestRules(
      rulesList,
      [
        // postgres-backup: started at 0, succeeded at 60 s; run 2 started at minute 200 and was
        // stopped at minute 240 by its image's STOPSIGNAL: SIGINT.
        exported(START, "postgres-backup", "0x199 12000x100"),
        exported(SUCCESS, "postgres-backup", "60x300"),
        exported(FAILURE, "postgres-backup", "_x240 14400x59", "SIGINT"),
        // clickhouse-backup: run 1 started at 0 and its recorder was killed with it (no end); run 2
        // started at 12,000 s (minute 200) and was stopped at minute 230: SIGTERM.
        exported(START, "clickhouse-backup", "0x199 12000x100"),
        exported(FAILURE, "clickhouse-backup", "_x230 13800x69", "SIGTERM"),
      ],
      [
        // 3 h + 10 min (11,400 s) after its start at 0: minute 190 is not past it, 191 is.
        at(190, "ScheduledJobRunUnfinished", []),
        at(191, "ScheduledJobRunUnfinished", [{ scheduled_job: "clickhouse-backup" }]),
        // Its second start clears it; its failure, never followed by a success, is reported with its code.
        at(200, "ScheduledJobRunUnfinished", []),
        at(229, "ScheduledJobFailing", []),
        at(231, "ScheduledJobFailing", [{ scheduled_job: "clickhouse-backup", code: "SIGTERM" }]),
        at(231, "ScheduledJobNeverSucceeded", []),
        // Whatever the signal's name: the rule compares times only.
        at(241, "ScheduledJobFailing", [{ scheduled_job: "clickhouse-backup", code: "SIGTERM" }, { scheduled_job: "postgres-backup", code: "SIGINT" }]),
      ],
    );
  });

  it("promtool test rules: a run that recorded its start and no end is reported its time limit + 10 minutes after its start, and not before", () => {
    // Time limit 30 minutes: reported once more than 40 minutes (2,400 s) passed since the run's start.
    const names = ["e-never-ended", "f-killed", "g-failed", "h-succeeded", "i-no-start", "j-restarted"];
    const rulesList = rulesWithJobs(names);
    const name = "ScheduledJobRunUnfinished";
    const at = (minutes: number, jobs: string[]) => alertsAt(rulesList, minutes, name, jobs.map((job) => ({ scheduled_job: job })));
    promtoolTestRules(
      rulesList,
      [
        // Its first run started at 60 s and never ended: no success or failure gauge at all.
        jobSeries(START, "e-never-ended", "60x200"),
        // Run 1 started at 0 and succeeded at 30 s; run 2 started at 600 s (minute 10) and was killed.
        jobSeries(START, "f-killed", "0x9 600x190"),
        jobSeries(SUCCESS, "f-killed", "30x200"),
        // Started at 0, failed at 60 s: an end (ScheduledJobFailing's business).
        jobSeries(START, "g-failed", "0x200"),
        jobSeries(FAILURE, "g-failed", "60x200"),
        // Started at 0, succeeded at 30 s.
        jobSeries(START, "h-succeeded", "0x200"),
        jobSeries(SUCCESS, "h-succeeded", "30x200"),
        // No start gauge (nothing recorded a start): not this alert's business.
        jobSeries(SUCCESS, "i-no-start", "30x200"),
        // Run 1 started at 0 and never ended; run 2 started at 1,800 s (minute 30) and succeeded at 2,400 s (minute 40).
        jobSeries(START, "j-restarted", "0x29 1800x170"),
        jobSeries(SUCCESS, "j-restarted", "_x39 2400x160"),
      ],
      [
        at(5, []),
        // 2,400 s after e's start at 60 s is minute 41: not more than the limit yet.
        at(41, []),
        at(42, ["e-never-ended"]),
        // f's run 2 started at 600 s: more than 2,400 s after it from minute 51.
        at(50, ["e-never-ended"]),
        at(51, ["e-never-ended", "f-killed"]),
        at(180, ["e-never-ended", "f-killed"]),
      ],
    );
  });
});
