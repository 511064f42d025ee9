/**
 * Prometheus: scrape configuration generated from the service catalog and alert rules kept as
 * code. The generators are pure so tests check the YAML without an engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { ServiceDefinition } from "../../catalog";
import { LABEL_PROMETHEUS_RULES, probe, Runtime, DeployedWorkload } from "../workload";
import { PROMETHEUS } from "../topology";
import type { ContainerImage } from "../../stacks/images";
import { httpCheck } from "../data/definitions";

export const PROMETHEUS_PORT = 9090;
export const RULES_PATH = "/etc/prometheus/rules/trading-alerts.yml";

/** prometheus.yml: one job per catalog service, scraping /metrics on its port. */
export function prometheusConfig(services: readonly ServiceDefinition[], scrapeIntervalSeconds = 15): string {
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
 * seen by the services' readiness checks, and Prometheus' own rule/scrape health. Metric names are
 * those the service kit exports (http_request_duration_seconds, service_dependency_up).
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
          { path: "/etc/prometheus/prometheus.yml", content: prometheusConfig(args.services) },
          { path: RULES_PATH, content: alertRulesYaml() },
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
