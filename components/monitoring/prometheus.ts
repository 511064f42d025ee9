/**
 * Prometheus: scrape configuration generated from the service catalog and alert rules kept as
 * code. The generators are pure so tests check the YAML without an engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { ServiceDefinition } from "../../catalog";
import { CRON_RUNNER_STATUS_PORT, LABEL_PROMETHEUS_RULES, probe, Runtime, DeployedWorkload } from "../workload";
import { PROMETHEUS } from "../topology";
import type { ContainerImage } from "../../stacks/images";
import { httpCheck } from "../data/definitions";
import { scheduledJobFailing, scheduledJobRules, type ScheduledJobAlertTarget } from "./scheduled-jobs";

export const PROMETHEUS_PORT = 9090;
export const RULES_PATH = "/etc/prometheus/rules/trading-alerts.yml";

/**
 * prometheus.yml: one job per catalog service, scraping /metrics on its port (a service with a
 * scheduled job exports its recorded runs there, scheduled_job_last_*_timestamp_seconds
 * {scheduled_job}, on every runtime), and one (`scheduled-jobs`) over the cron runners of the Docker
 * runtime (`scheduledJobHosts`, port CRON_RUNNER_STATUS_PORT), kept with `honor_labels` so that
 * `job` stays the scheduled job's name the runner exports (scheduled_job_runs_total{job, outcome}).
 */
export function prometheusConfig(services: readonly ServiceDefinition[], scrapeIntervalSeconds = 15, scheduledJobHosts: readonly string[] = []): string {
  const lines = [
    "# Generated from catalog/services.ts by components/monitoring/prometheus.ts; do not edit.",
    "global:",
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  evaluation_interval: ${scrapeIntervalSeconds}s`,
    "rule_files:",
    `  - ${RULES_PATH}`,
    "scrape_configs:",
    "  - job_name: prometheus",
    "    static_configs:",
    `      - targets: ["127.0.0.1:${PROMETHEUS_PORT}"]`,
  ];
  for (const s of [...services].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(
      `  - job_name: ${s.name}`,
      "    metrics_path: /metrics",
      "    static_configs:",
      `      - targets: ["${s.name}:${s.port}"]`,
      // The kit labels every series with `service` itself; the target adds only the tier.
      "        labels:",
      `          tier: ${s.tier}`,
    );
  }
  if (scheduledJobHosts.length > 0) {
    lines.push("  - job_name: scheduled-jobs", "    metrics_path: /metrics", "    honor_labels: true", "    static_configs:");
    lines.push(`      - targets: [${[...scheduledJobHosts].sort().map((h) => `"${h}:${CRON_RUNNER_STATUS_PORT}"`).join(", ")}]`);
  }
  return lines.join("\n") + "\n";
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  severity: "critical" | "warning";
  summary: string;
}

/**
 * Alerts every platform needs: a target down, error and latency budgets, a failing dependency
 * seen by the services' readiness checks, and Prometheus' own rule/scrape health; then the
 * platform's own failures, which otherwise reach only the logs: a message set aside as a dead
 * letter, a dead-letter retention mutation stuck, a live order Binance accepted that the trading-engine could not record, a consumer group
 * falling behind, an invoice's charge held for review past its bound, a failed scheduled job (the per-job rules, overdue and unfinished runs, which depend
 * on the stack's schedules and the runs' time limits, are scheduledJobRules in ./scheduled-jobs.ts). Metric names are those the services export
 * (tests/unit/alert-rules.test.ts checks each one against the code that registers it).
 */
export const alertRules: readonly AlertRule[] = [
  { alert: "ServiceDown", expr: "up == 0", for: "2m", severity: "critical", summary: "{{ $labels.job }} has been unreachable for 2 minutes" },
  {
    alert: "HighErrorRate",
    expr: 'sum by (service) (rate(http_request_duration_seconds_count{status_code=~"5.."}[5m])) / sum by (service) (rate(http_request_duration_seconds_count[5m])) > 0.05',
    for: "5m",
    severity: "critical",
    summary: "{{ $labels.service }} answers more than 5% of requests with 5xx",
  },
  {
    alert: "HighLatencyP99",
    expr: "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m]))) > 1",
    for: "10m",
    severity: "warning",
    summary: "{{ $labels.service }} p99 latency is above 1s",
  },
  {
    alert: "DependencyDown",
    expr: "min by (service, dependency) (service_dependency_up) == 0",
    for: "2m",
    severity: "critical",
    summary: "{{ $labels.service }} cannot reach {{ $labels.dependency }}",
  },
  {
    alert: "PrometheusRuleFailures",
    expr: "increase(prometheus_rule_evaluation_failures_total[10m]) > 0",
    for: "10m",
    severity: "warning",
    summary: "Prometheus fails to evaluate alert rules",
  },
  {
    // trading/infra/deadLetters.ts: counted once per dead letter written; each series starts at 0.
    alert: "MessagesSetAside",
    expr: "sum by (service, consumer_group, topic) (increase(consumer_dead_letters_total[15m])) > 0",
    for: "0m",
    severity: "warning",
    summary: "{{ $labels.service }} (group {{ $labels.consumer_group }}) set messages of {{ $labels.topic }} aside in consumer_dead_letters in the last 15 minutes; they were never applied",
  },
  {
    // database-service/clickhouse-dead-letter-retention.ts, set at each pass (every 15 minutes): a retention
    // mutation of ClickHouse's dead letters that failed or hangs holds every later pass back, which 18.16
    // (no KILL MUTATION) never ends by itself. Every replica sees the same mutations: max, not sum.
    alert: "DeadLetterRetentionStuck",
    expr: "max by (service, table) (dead_letter_retention_stuck_mutations) > 0",
    for: "0m",
    severity: "warning",
    summary: "{{ $labels.service }}: a retention mutation of ClickHouse's {{ $labels.table }} failed or has been unfinished over an hour; no dead letter, id or replay record is deleted until it is removed (README: Retention)",
  },
  {
    // trading-engine/metrics.ts: each one is an order at Binance missing from te_orders.
    alert: "TeLiveOrderUnrecorded",
    expr: "sum by (service, outcome) (increase(te_live_orders_unrecorded_total[15m])) > 0",
    for: "0m",
    severity: "critical",
    summary: "{{ $labels.service }} could not record a live order Binance accepted (outcome {{ $labels.outcome }}); te_live_sends keeps it with its latest outcome (column unrecorded); ended at Binance, order-management got its fills and order.expired LIVE_ORDER_UNRECORDED (cancel_failed: still open): reconcile it with Binance by hand",
  },
  {
    // kit/datastores/kafka-lag.ts. 1,000 messages is minutes of the order path's or a market's
    // normal flow; ten minutes above it is a consumer that does not keep up, not a burst or a
    // rebalance (a catch-up from the beginning of a topic that long is worth a look too).
    alert: "KafkaConsumerLagging",
    expr: "max by (service, group, topic, partition) (kafka_consumer_lag) > 1000",
    for: "10m",
    severity: "warning",
    summary: "{{ $labels.service }} (group {{ $labels.group }}) is more than 1000 messages behind on {{ $labels.topic }} partition {{ $labels.partition }} for 10 minutes",
  },
  {
    // billing-service/billing-metrics.ts: an invoice whose charge payment-service holds for review
    // (a processor answer that disagrees with the booking) is charged no more until an operator acts
    // at payment-service; nothing else brings it to anyone's attention. Every replica reports the same
    // platform-wide figure (read from PostgreSQL at scrape time): max, not sum.
    alert: "InvoiceChargeHeldOverdue",
    expr: "max(billing_invoices_charge_held_overdue) > 0",
    for: "0m",
    severity: "warning",
    summary: "{{ $value }} open invoice(s) have a charge held for review longer than BILLING_CHARGE_HOLD_OVERDUE_DAYS: resolve the charge_mismatch issue at payment-service (cancel or correct the charge at the processor)",
  },
  // The job's own record, exported by its service: every runtime.
  scheduledJobFailing,
  {
    // kit/cron-runner.ts (the Docker runtime's scheduler), scraped with honor_labels: `job` is the
    // scheduled job. Kept beside ScheduledJobFailing: the runner also sees, within the hour, a run
    // that could not record its failure (refused configuration, a signal, an out-of-memory kill, an
    // image that cannot start), which elsewhere only the per-job rules catch, later: a run killed after
    // recording its start, ScheduledJobRunUnfinished after its time limit + 10 min; one that never
    // started, the overdue rules.
    alert: "ScheduledJobFailed",
    expr: 'sum by (job) (increase(scheduled_job_runs_total{outcome="failed"}[1h])) > 0',
    for: "0m",
    severity: "warning",
    summary: "scheduled job {{ $labels.job }} had a failed run in the last hour (non-zero exit, signal, or could not start)",
  },
];

export function alertRulesYaml(rules: readonly AlertRule[] = alertRules): string {
  const lines = ["groups:", "  - name: trading-platform", "    rules:"];
  for (const r of rules) {
    lines.push(
      `      - alert: ${r.alert}`,
      `        expr: ${JSON.stringify(r.expr)}`,
      `        for: ${r.for}`,
      "        labels:",
      `          severity: ${r.severity}`,
      "        annotations:",
      `          summary: ${JSON.stringify(r.summary)}`,
    );
  }
  return lines.join("\n") + "\n";
}

export interface PrometheusArgs {
  runtime: Runtime;
  /** The image and what it pins (stacks/images.ts). */
  image: ContainerImage;
  services: readonly ServiceDefinition[];
  /** Hosts of the cron runners to scrape (the Docker runtime's scheduled jobs; none elsewhere). */
  scheduledJobHosts?: readonly string[];
  /** The deployed scheduled jobs, their schedules and run time limits, for their per-job alerts (every runtime). */
  scheduledJobs?: readonly ScheduledJobAlertTarget[];
  retentionDays: number;
  storageGi: number;
  hostPort?: number;
  bindAddress?: string;
  connectsTo: string[];
  acceptsFrom: string[];
}

export class Prometheus extends pulumi.ComponentResource {
  readonly workload: DeployedWorkload;
  readonly url: string;

  constructor(name: string, args: PrometheusArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:monitoring:Prometheus", name, {}, opts);
    if (args.retentionDays < 1) throw new pulumi.ResourceError("retentionDays must be at least 1", this);
    const flags = [
      "--config.file=/etc/prometheus/prometheus.yml",
      "--storage.tsdb.path=/prometheus",
      `--storage.tsdb.retention.time=${args.retentionDays}d`,
    ];
    this.workload = args.runtime.deploy(
      {
        name: PROMETHEUS,
        role: "monitoring",
        kind: "stateful",
        image: args.image.ref,
        // The Debian build's entrypoint passes the config path and reads the retention from its env;
        // the vendor's image takes flags.
        args: args.image.server === "prometheus-env" ? undefined : flags,
        env: args.image.server === "prometheus-env" ? { PROMETHEUS_RETENTION: `${args.retentionDays}d` } : {},
        secretEnv: {},
        ports: [{ name: "http", port: PROMETHEUS_PORT, hostPort: args.hostPort, bindAddress: args.bindAddress }],
        volumes: [{ name: "data", mountPath: "/prometheus", sizeGi: args.storageGi }],
        files: [
          { path: "/etc/prometheus/prometheus.yml", content: prometheusConfig(args.services, undefined, args.scheduledJobHosts) },
          { path: RULES_PATH, content: alertRulesYaml([...alertRules, ...scheduledJobRules(args.scheduledJobs ?? [])]) },
        ],
        liveness: probe({ exec: httpCheck(args.image, `http://127.0.0.1:${PROMETHEUS_PORT}/-/healthy`) }),
        readiness: probe({ http: { path: "/-/ready", port: PROMETHEUS_PORT } }),
        resources: { cpu: "500m", memory: "1Gi" },
        replicas: 1,
        security: {
          // The uid the image pins (numeric, so Kubernetes can verify it is not root); Docker runs it by name where the image declares one.
          runAsUser: args.image.user?.uid,
          dockerUser: args.image.user?.name,
          fsGroup: 65534,
          readOnlyRootFilesystem: true,
          scratchDirs: ["/tmp"],
        },
        connectsTo: args.connectsTo,
        acceptsFrom: args.acceptsFrom,
        labels: { [LABEL_PROMETHEUS_RULES]: "true" },
      },
      this,
    );
    this.url = `http://${this.workload.host}:${PROMETHEUS_PORT}`;
    this.registerOutputs({ url: this.url });
  }
}
