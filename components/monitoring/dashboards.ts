/**
 * The platform's Grafana dashboards as typed code (@grafana/grafana-foundation-sdk builders), built
 * into the JSON that Grafana's file provisioning loads (grafana.ts) on both targets:
 *   fleet       request rate, errors and duration per service, process health
 *   trading     orders/s by outcome, fills, fill latency, rejections by reason, PnL, predictions
 *   datastores  each service's view of its datastores, database-service's probe latencies, ingestion
 *   kafka       consumer lag per group, topic and partition; what is produced
 * Every query names metrics the services export or that Prometheus records itself (`up`): checked by
 * `promtool` (tests/unit/dashboards.test.ts) and against every service's real /metrics
 * (tests/services/fleet-metrics.test.ts).
 */
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { DashboardBuilder, QueryVariableBuilder, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanelBuilder } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";

/** The provisioned Prometheus datasource (grafana.ts datasourcesYaml). */
export const PROMETHEUS_DATASOURCE = { type: "prometheus", uid: "prometheus" } as const;
/** Series Prometheus records itself for every target (not in any /metrics). */
export const PROMETHEUS_OWN_SERIES = ["up", "scrape_duration_seconds"];

export interface PanelQuery {
  expr: string;
  legend: string;
}
export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  kind?: "timeseries" | "stat";
  queries: PanelQuery[];
}
export interface DashboardSpec {
  /** File name (without .json) and uid suffix. */
  name: string;
  title: string;
  description: string;
  /** Adds the `service` variable (multi-select, from the series' labels). */
  serviceVariable: boolean;
  rows: Array<{ title: string; panels: PanelSpec[] }>;
}

const R = "$__rate_interval";
const svc = 'service=~"$service"';
const q = (expr: string, legend: string): PanelQuery => ({ expr, legend });

export const dashboardSpecs: readonly DashboardSpec[] = [
  {
    name: "fleet",
    title: "AI Trading - Fleet overview",
    description: "Rate, errors and duration of every service (RED), and process health",
    serviceVariable: true,
    rows: [
      {
        title: "Requests",
        panels: [
          { title: "Requests per second", description: "All HTTP requests a service answered", unit: "reqps", queries: [q(`sum by (service) (rate(http_request_duration_seconds_count{${svc}}[${R}]))`, "{{service}}")] },
          {
            title: "5xx ratio",
            description: "Share of requests answered with a server error",
            unit: "percentunit",
            queries: [q(`sum by (service) (rate(http_request_duration_seconds_count{${svc},status_code=~"5.."}[${R}])) / sum by (service) (rate(http_request_duration_seconds_count{${svc}}[${R}]))`, "{{service}}")],
          },
          { title: "4xx per second", description: "Client errors (bad input, auth, rate limits)", unit: "reqps", queries: [q(`sum by (service, status_code) (rate(http_request_duration_seconds_count{${svc},status_code=~"4.."}[${R}]))`, "{{service}} {{status_code}}")] },
          {
            title: "Gateway upstream errors",
            description: "Proxied responses with 5xx (502/504: the upstream did not answer)",
            unit: "reqps",
            queries: [q(`sum by (upstream, status_code) (rate(gateway_upstream_responses_total{status_code=~"5.."}[${R}]))`, "{{upstream}} {{status_code}}")],
          },
        ],
      },
      {
        title: "Duration",
        panels: [
          { title: "p99 duration", description: "99th percentile of request duration", unit: "s", queries: [q(`histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket{${svc}}[${R}])))`, "{{service}}")] },
          { title: "p50 duration", description: "Median request duration", unit: "s", queries: [q(`histogram_quantile(0.5, sum by (service, le) (rate(http_request_duration_seconds_bucket{${svc}}[${R}])))`, "{{service}}")] },
          { title: "Slowest routes (p99)", description: "p99 per route, the ten slowest", unit: "s", queries: [q(`topk(10, histogram_quantile(0.99, sum by (service, route, le) (rate(http_request_duration_seconds_bucket{${svc}}[${R}]))))`, "{{service}} {{route}}")] },
        ],
      },
      {
        title: "Processes",
        panels: [
          { title: "Targets up", description: "Prometheus could scrape the target", unit: "bool", queries: [q(`up{${svc}}`, "{{service}} {{instance}}")] },
          { title: "Resident memory", description: "RSS per instance", unit: "bytes", queries: [q(`process_resident_memory_bytes{${svc}}`, "{{service}} {{instance}}")] },
          { title: "Event loop lag p99", description: "Node.js event loop delay", unit: "s", queries: [q(`nodejs_eventloop_lag_p99_seconds{${svc}}`, "{{service}} {{instance}}")] },
          { title: "CPU", description: "CPU seconds per second", unit: "percentunit", queries: [q(`rate(process_cpu_seconds_total{${svc}}[${R}])`, "{{service}} {{instance}}")] },
        ],
      },
      {
        title: "Scheduled jobs",
        panels: [
          {
            title: "Time since a scheduled job's last start, success and failure",
            // The job's own record (scheduled_job_runs), exported by its service on every runtime; a start
            // younger than both ends is a run going (or dead without an end: ScheduledJobRunUnfinished).
            description: "Per job (scheduled_job_runs, exported by its service): a line missing is an outcome never recorded",
            unit: "s",
            queries: (["start", "success", "failure"] as const).map((what) =>
              q(`time() - max by (scheduled_job) (scheduled_job_last_${what}_timestamp_seconds)`, `{{scheduled_job}} last ${what}`),
            ),
          },
        ],
      },
    ],
  },
  {
    name: "trading",
    title: "AI Trading - Trading",
    description: "Orders, fills, fill latency, risk rejections, PnL and the model's predictions",
    serviceVariable: false,
    rows: [
      {
        title: "Orders and fills",
        panels: [
          { title: "Orders per second", description: "Orders submitted, by outcome (accepted, rejected, replayed)", unit: "ops", queries: [q(`sum by (outcome) (rate(om_orders_submitted_total[${R}]))`, "{{outcome}}")] },
          { title: "Fills per second", description: "Fills produced by the trading engine, by liquidity", unit: "ops", queries: [q(`sum by (liquidity) (rate(te_fills_total[${R}]))`, "{{liquidity}}")] },
          {
            title: "Fill latency",
            description: "Order created to fill applied (through risk, Kafka and the trading engine)",
            unit: "s",
            queries: [0.5, 0.95, 0.99].map((p) => q(`histogram_quantile(${p}, sum by (le) (rate(om_fill_latency_seconds_bucket[${R}])))`, `p${Math.round(p * 100)}`)),
          },
          { title: "Rejections by reason", description: "Orders refused by pre-trade risk", unit: "ops", queries: [q(`sum by (reason) (rate(om_order_rejections_total[${R}]))`, "{{reason}}")] },
        ],
      },
      {
        title: "PnL",
        panels: [
          { title: "Realized PnL by symbol", description: "All accounts, quote currency (every replica reports the same totals)", unit: "currencyUSD", queries: [q("max by (symbol) (portfolio_realized_pnl)", "{{symbol}}")] },
          { title: "Realized PnL", description: "All accounts and symbols", unit: "currencyUSD", kind: "stat", queries: [q("sum(max by (symbol) (portfolio_realized_pnl))", "realized")] },
          { title: "Fees", description: "All accounts and symbols", unit: "currencyUSD", kind: "stat", queries: [q("sum(max by (symbol) (portfolio_fees))", "fees")] },
          { title: "Open positions", description: "Positions with a non-zero quantity", unit: "short", kind: "stat", queries: [q("max(portfolio_open_positions)", "open")] },
        ],
      },
      {
        title: "Model",
        panels: [
          { title: "Predictions per second", description: "Served by ml-predictor, by model version", unit: "ops", queries: [q(`sum by (model_version) (rate(ml_predictions_total[${R}]))`, "{{model_version}}")] },
          { title: "Prediction refusals", description: "No model, stale model or bars, missing features", unit: "ops", queries: [q(`sum by (reason) (rate(ml_prediction_refusals_total[${R}]))`, "{{reason}}")] },
          { title: "Model age", description: "Since the promoted model was trained", unit: "s", queries: [q("max(ml_model_age_seconds)", "age")] },
          { title: "Prediction drift (PSI)", description: "Served predictions vs the out-of-sample ones at training", unit: "short", queries: [q("max(ml_prediction_drift_psi)", "psi")] },
        ],
      },
    ],
  },
  {
    name: "datastores",
    title: "AI Trading - Datastores",
    description: "Each service's view of its datastores and the database service's probes",
    serviceVariable: true,
    rows: [
      {
        title: "Reachability",
        panels: [
          { title: "Dependencies up", description: "1 when the datastore answered the service's last readiness check", unit: "bool", queries: [q(`min by (service, dependency) (service_dependency_up{${svc}})`, "{{service}} -> {{dependency}}")] },
          { title: "Dependencies down", description: "Services whose last readiness check of a dependency failed", unit: "short", kind: "stat", queries: [q(`count(service_dependency_up{${svc}} == 0) or vector(0)`, "down")] },
          { title: "Probe latency", description: "The database service's last probe of each datastore (ms, -1 when failing)", unit: "ms", queries: [q("max by (datastore) (datastore_probe_latency_ms)", "{{datastore}}")] },
        ],
      },
      {
        title: "Ingestion",
        panels: [
          { title: "Bars in", description: "Market bars ingested by data-bridge", unit: "ops", queries: [q(`sum(rate(data_bridge_bars_total[${R}]))`, "bars/s")] },
          { title: "ClickHouse rows written", description: "Candle rows inserted by data-bridge", unit: "ops", queries: [q(`sum(rate(data_bridge_clickhouse_rows_total[${R}]))`, "rows/s")] },
        ],
      },
    ],
  },
  {
    name: "kafka",
    title: "AI Trading - Kafka consumer lag",
    description: "What the consumer groups have not processed yet, and what is produced",
    serviceVariable: false,
    rows: [
      {
        title: "Consumer lag",
        panels: [
          { title: "Lag per consumer group", description: "Messages not processed yet, all partitions", unit: "short", queries: [q("sum by (group) (max by (group, topic, partition) (kafka_consumer_lag))", "{{group}}")] },
          { title: "Lag per partition", description: "Per group, topic and partition", unit: "short", queries: [q("max by (group, topic, partition) (kafka_consumer_lag)", "{{group}} {{topic}}/{{partition}}")] },
          { title: "Largest lag", description: "The most behind partition of any group", unit: "short", kind: "stat", queries: [q("max(kafka_consumer_lag) or vector(0)", "max")] },
        ],
      },
      {
        title: "Producers",
        panels: [
          { title: "Bars published", description: "Market bars published by data-bridge, by symbol", unit: "ops", queries: [q(`sum by (symbol) (rate(data_bridge_bars_total[${R}]))`, "{{symbol}}")] },
          { title: "Usage events dropped", description: "Gateway usage events lost (Kafka unavailable, buffer full)", unit: "ops", queries: [q(`sum(rate(gateway_usage_events_dropped_total[${R}]))`, "dropped/s")] },
        ],
      },
    ],
  },
];

function panel(p: PanelSpec, x: number, y: number) {
  const b = p.kind === "stat" ? new StatPanelBuilder() : new TimeseriesPanelBuilder();
  b.title(p.title).description(p.description).unit(p.unit).datasource(PROMETHEUS_DATASOURCE).gridPos({ x, y, w: p.kind === "stat" ? 6 : 12, h: 8 });
  p.queries.forEach((query, i) =>
    b.withTarget(
      new DataqueryBuilder()
        .datasource(PROMETHEUS_DATASOURCE)
        .expr(query.expr)
        .legendFormat(query.legend)
        .refId(String.fromCharCode(65 + i)),
    ),
  );
  return b;
}

/** One dashboard, built by the SDK. */
export function buildDashboard(spec: DashboardSpec): Dashboard {
  const d = new DashboardBuilder(spec.title)
    .uid(`trading-${spec.name}`)
    .description(spec.description)
    .tags(["ai-trading"])
    .editable()
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .timezone("utc");
  if (spec.serviceVariable)
    d.withVariable(
      new QueryVariableBuilder("service")
        .label("Service")
        .datasource(PROMETHEUS_DATASOURCE)
        .query("label_values(http_request_duration_seconds_count, service)")
        .multi(true)
        .includeAll(true)
        .allValue(".*"),
    );
  let y = 0;
  for (const row of spec.rows) {
    d.withRow(new RowBuilder(row.title).gridPos({ x: 0, y, w: 24, h: 1 }));
    y += 1;
    let x = 0;
    for (const p of row.panels) {
      const w = p.kind === "stat" ? 6 : 12;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      d.withPanel(panel(p, x, y));
      x += w;
    }
    y += 8;
  }
  return d.build();
}

/** The files Grafana provisions: `<name>.json` for every dashboard. */
export function dashboardFiles(): Array<{ file: string; json: string }> {
  return dashboardSpecs.map((s) => ({ file: `${s.name}.json`, json: JSON.stringify(buildDashboard(s), null, 2) + "\n" }));
}

/** Every query of every dashboard (for checks), with its dashboard and panel. */
export function dashboardQueries(): Array<{ dashboard: string; panel: string; expr: string }> {
  return dashboardSpecs.flatMap((d) => d.rows.flatMap((r) => r.panels.flatMap((p) => p.queries.map((x) => ({ dashboard: d.name, panel: p.title, expr: x.expr })))));
}
