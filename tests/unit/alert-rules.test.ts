/**
 * The alert rules read what the services export. Each metric an alert's expression names is looked
 * up in registries built by the code that registers it in the services (the kit's HTTP and
 * dependency metrics, the Kafka consumer lag gauge, the dead-letter counter, database-service's stuck
 * dead-letter retention mutations, the trading-engine's
 * unrecorded live orders counter, billing-service's held-charge gauges, the cron runner's metrics, the scheduled job runs a service
 * exports), the per-job overdue rules for the catalog's scheduled jobs included, and every `{{ $labels.x }}` of a
 * summary must be a label the expression keeps (its `by (...)`) and one the metric carries.
 * promtool's syntax check of the rendered file is in config-tools.test.ts.
 */
import { describe, expect, it } from "vitest";
import { alertRules, alertRulesYaml, prometheusConfig } from "../../components/monitoring/prometheus";
import { PROMETHEUS_OWN_SERIES } from "../../components/monitoring/dashboards";
import { catalog } from "../../catalog";
import { createMetrics } from "../../services/src/kit/probes";
import { consumerLagGauge } from "../../services/src/kit/datastores/kafka-lag";
import { CronRunner, runnerMetrics } from "../../services/src/kit/cron-runner";
import { createLogger } from "../../services/src/kit/app";
import { deadLettersCounter } from "../../services/src/trading/infra/deadLetters";
import { liveOrdersUnrecordedCounter } from "../../services/src/services/trading-engine/metrics";
import { registerHeldChargeGauges } from "../../services/src/services/billing-service/billing-metrics";
import { stuckMutationsGauge } from "../../services/src/services/database-service/clickhouse-dead-letter-retention";
import { exportedSeries, metricNames, parseSamples } from "../helpers/promql";
import { runTimeoutSeconds, scheduledJobRules } from "../../components/monitoring/scheduled-jobs";
import { exportScheduledJobRuns } from "../../services/src/kit/scheduled-job-runs";
import { findService, scheduledJobName } from "../../catalog";

/** The rules a stack with the catalog's scheduled jobs (every one daily) loads. */
const catalogJobs = catalog.flatMap((s) =>
  s.scheduledJob ? [{ name: scheduledJobName(s.name, s.scheduledJob.name), schedule: "30 3 * * *", runTimeoutSeconds: runTimeoutSeconds("30 3 * * *", s.scheduledJob.runTimeoutSeconds) }] : [],
);
const allRules = [...alertRules, ...scheduledJobRules(catalogJobs)];

/** What the services' /metrics and a cron runner's hold, each metric with one sample. */
async function exported(): Promise<string> {
  const m = createMetrics("trading-engine", false);
  m.httpDuration.observe({ method: "GET", route: "/x", status_code: "200" }, 0.01);
  m.dependencyUp.set({ dependency: "postgres" }, 1);
  consumerLagGauge(m.registry).set({ group: "g", topic: "t", partition: "0" }, 3);
  deadLettersCounter(m.registry).inc({ consumer_group: "g", topic: "t" });
  liveOrdersUnrecordedCounter(m.registry);
  stuckMutationsGauge(m.registry).set({ table: "consumer_dead_letters" }, 0);
  registerHeldChargeGauges(m.registry, async () => ({ held: 2, overdue: 1, oldestAgeSeconds: 700_000 }), createLogger("alerts-test", "silent"));
  const runner = new CronRunner({ name: "ml-predictor-retrain", schedule: "0 3 * * *", command: ["true"], log: createLogger("alerts-test", "silent") });
  // ml-predictor's recorded runs, as its /metrics reads them from scheduled_job_runs.
  const at = new Date("2026-01-01T03:30:00Z");
  const row = { last_started_at: at, last_succeeded_at: at, last_failed_at: at, last_failure_code: "EXIT_1" };
  const db = { query: async () => ({ rows: [row] }) } as never;
  exportScheduledJobRuns({ definition: findService("ml-predictor")!, log: createLogger("alerts-test", "silent"), postgres: () => db }, m.registry);
  return (await m.registry.metrics()) + (await runnerMetrics(runner).metrics());
}

/** Labels a series of `name` carries in the exposition (plus the scrape's `job` and `instance`). */
const labelsOf = (text: string, name: string) => new Set(["job", "instance", ...parseSamples(text, name).flatMap((s) => Object.keys(s.labels))]);

describe("alert rules", () => {
  it("renders the platform's failure alerts with their severity", () => {
    const yaml = alertRulesYaml();
    const expected: Record<string, string> = { MessagesSetAside: "warning", DeadLetterRetentionStuck: "warning", TeLiveOrderUnrecorded: "critical", KafkaConsumerLagging: "warning", ScheduledJobFailed: "warning", ScheduledJobFailing: "warning", InvoiceChargeHeldOverdue: "warning" };
    for (const [alert, severity] of Object.entries(expected)) {
      const block = yaml.split("      - alert: ").find((b) => b.startsWith(`${alert}\n`));
      expect(block, alert).toBeDefined();
      expect(block).toContain(`severity: ${severity}`);
    }
    expect(yaml).toContain('expr: "sum by (service, consumer_group, topic) (increase(consumer_dead_letters_total[15m])) > 0"');
    expect(yaml).toContain('expr: "sum by (service, outcome) (increase(te_live_orders_unrecorded_total[15m])) > 0"');
    expect(yaml).toContain('expr: "max by (service, group, topic, partition) (kafka_consumer_lag) > 1000"');
    expect(yaml).toContain('expr: "sum by (job) (increase(scheduled_job_runs_total{outcome=\\"failed\\"}[1h])) > 0"');
    expect(new Set(alertRules.map((r) => r.alert)).size).toBe(alertRules.length);
  });

  it("every metric an alert reads is exported, and every label a summary names is kept and carried", async () => {
    const text = await exported();
    const series = exportedSeries(text);
    const own = new Set([...PROMETHEUS_OWN_SERIES, "prometheus_rule_evaluation_failures_total"]);
    expect(allRules.length).toBeGreaterThan(alertRules.length);
    for (const r of allRules) {
      const names = metricNames(r.expr).filter((n) => !own.has(n));
      for (const n of names) expect(series.has(n), `${r.alert} reads ${n}`).toBe(true);
      const summaryLabels = [...r.summary.matchAll(/\$labels\.([A-Za-z_]+)/g)].map((x) => x[1]);
      const kept = [...r.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((x) => x[1].split(",").map((l) => l.trim()));
      for (const label of summaryLabels) {
        if (kept.length > 0) expect(kept, `${r.alert}: ${label} kept by the aggregation`).toContain(label);
        // A histogram's labels are on its _bucket/_count series. With group_left the result carries
        // the left side's labels: the first metric read.
        for (const n of r.expr.includes("group_left") ? names.slice(0, 1) : names) expect(labelsOf(text, n).has(label), `${r.alert}: ${n} carries ${label}`).toBe(true);
      }
    }
  });

  it("the cron runners are scraped with their own job label (honor_labels), only when there are any", () => {
    expect(prometheusConfig(catalog)).not.toContain("scheduled-jobs");
    const conf = prometheusConfig(catalog, 15, ["ml-predictor-retrain"]);
    expect(conf).toContain('  - job_name: scheduled-jobs\n    metrics_path: /metrics\n    honor_labels: true\n    static_configs:\n      - targets: ["ml-predictor-retrain:9464"]\n');
  });
});
