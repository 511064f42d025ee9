/**
 * Grafana with its datasource and dashboards (dashboards.ts, typed with the Grafana SDK) provisioned as code and a generated admin password.
 * Anonymous access and sign-up are off; on Docker the UI is bound to 127.0.0.1 only.
 */
import * as pulumi from "@pulumi/pulumi";
import { ServiceDefinition } from "../../catalog";
import { dashboardFiles } from "./dashboards";
import { GRAFANA } from "../topology";
import { DeployedWorkload, probe, Runtime } from "../workload";

export const GRAFANA_PORT = 3000;

export function datasourcesYaml(prometheusUrl: string): string {
  return [
    "apiVersion: 1",
    "datasources:",
    "  - name: Prometheus",
    "    uid: prometheus",
    "    type: prometheus",
    "    access: proxy",
    `    url: ${prometheusUrl}`,
    "    isDefault: true",
    "    editable: false",
    "",
  ].join("\n");
}

export const dashboardProviderYaml = [
  "apiVersion: 1",
  "providers:",
  "  - name: trading",
  "    folder: AI Trading",
  "    type: file",
  "    disableDeletion: true",
  "    allowUiUpdates: false",
  "    options:",
  "      path: /etc/grafana/dashboards",
  "",
].join("\n");

/**
 * The AI decision chains dashboard (ai-chain-analytics' gauges, computed from ClickHouse over its
 * look-back window): per model version and strategy, hit rate, PnL attribution, slippage versus the
 * decision price, latency per step, and the chain counts.
 */
export function aiChainsDashboard(): string {
  const by = "model_version, strategy_id";
  const series = (metric: string, legend: string) => ({ expr: `max by (${by}) (${metric})`, legend: `${legend} {{model_version}} {{strategy_id}}` });
  const panels: Array<{ title: string; unit: string; targets: Array<{ expr: string; legend: string }> }> = [
    { title: "Hit rate (filled decisions in profit at the last close)", unit: "percentunit", targets: [series("ai_chain_hit_rate", "hit rate")] },
    { title: "PnL attribution (net of fees, quote currency)", unit: "none", targets: [series("ai_chain_pnl", "pnl")] },
    { title: "Slippage vs decision price (bps)", unit: "none", targets: [series("ai_chain_slippage_bps", "slippage")] },
    {
      title: "Latency p50 per step",
      unit: "ms",
      targets: [series("ai_chain_decision_to_order_ms_p50", "decision->order"), series("ai_chain_order_to_fill_ms_p50", "order->fill")],
    },
    {
      title: "Decisions, orders, fills",
      unit: "none",
      targets: [series("ai_chain_decisions", "decisions"), series("ai_chain_orders", "orders"), series("ai_chain_fills", "fills")],
    },
  ];
  const dashboard = {
    uid: "trading-ai-chains",
    title: "AI Trading - Decision chains",
    tags: ["ai-trading", "ai"],
    timezone: "utc",
    schemaVersion: 39,
    refresh: "1m",
    time: { from: "now-24h", to: "now" },
    panels: panels.map((p, i) => ({
      id: i + 1,
      type: "timeseries",
      title: p.title,
      datasource: { type: "prometheus", uid: "prometheus" },
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legend })),
    })),
  };
  return JSON.stringify(dashboard, null, 2) + "\n";
}

export interface GrafanaArgs {
  runtime: Runtime;
  image: string;
  adminPassword: pulumi.Output<string>;
  prometheusUrl: string;
  services: readonly ServiceDefinition[];
  storageGi: number;
  hostPort?: number;
  bindAddress?: string;
  connectsTo: string[];
  acceptsFrom: string[];
}

export class Grafana extends pulumi.ComponentResource {
  readonly workload: DeployedWorkload;
  readonly url: string;

  constructor(name: string, args: GrafanaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:monitoring:Grafana", name, {}, opts);
    this.workload = args.runtime.deploy(
      {
        name: GRAFANA,
        role: "monitoring",
        kind: "stateful",
        image: args.image,
        env: {
          GF_SECURITY_ADMIN_USER: "admin",
          GF_AUTH_ANONYMOUS_ENABLED: "false",
          GF_USERS_ALLOW_SIGN_UP: "false",
          GF_SECURITY_COOKIE_SECURE: "true",
          GF_SECURITY_DISABLE_GRAVATAR: "true",
          GF_ANALYTICS_REPORTING_ENABLED: "false",
          GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
          GF_PATHS_PROVISIONING: "/etc/grafana/provisioning",
        },
        secretEnv: { GF_SECURITY_ADMIN_PASSWORD: args.adminPassword },
        // Grafana reads any setting's variable from the file GF_<...>__FILE names.
        secretEnvFiles: "__FILE",
        ports: [{ name: "http", port: GRAFANA_PORT, hostPort: args.hostPort, bindAddress: args.bindAddress }],
        volumes: [{ name: "data", mountPath: "/var/lib/grafana", sizeGi: args.storageGi }],
        files: [
          { path: "/etc/grafana/provisioning/datasources/prometheus.yml", content: datasourcesYaml(args.prometheusUrl) },
          { path: "/etc/grafana/provisioning/dashboards/trading.yml", content: dashboardProviderYaml },
          // Typed dashboards (dashboards.ts): fleet, trading, datastores, Kafka consumer lag.
          ...dashboardFiles().map((d) => ({ path: `/etc/grafana/dashboards/${d.file}`, content: d.json })),
          { path: "/etc/grafana/dashboards/ai-chains.json", content: aiChainsDashboard() },
        ],
        liveness: probe({ exec: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${GRAFANA_PORT}/api/health`] }),
        readiness: probe({ http: { path: "/api/health", port: GRAFANA_PORT } }),
        resources: { cpu: "500m", memory: "512Mi" },
        replicas: 1,
        security: { runAsUser: 472, runAsGroup: 472, fsGroup: 472, readOnlyRootFilesystem: true, scratchDirs: ["/tmp"] },
        connectsTo: args.connectsTo,
        acceptsFrom: args.acceptsFrom,
      },
      this,
    );
    this.url = `http://${this.workload.host}:${GRAFANA_PORT}`;
    this.registerOutputs({ url: this.url });
  }
}
