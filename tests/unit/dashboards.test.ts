/**
 * The Grafana dashboards (components/monitoring/dashboards.ts, built with the Grafana SDK): every
 * dashboard builds, every panel queries the provisioned Prometheus datasource, and every panel
 * query parses, checked by the real `promtool` (each one as a recording rule).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dashboardFiles, PROMETHEUS_DATASOURCE } from "../../components/monitoring/dashboards";
import { datasourcesYaml } from "../../components/monitoring/grafana";
import { metricNames, withGrafanaVariables } from "../helpers/promql";

type Target = { expr?: string; datasource?: { uid?: string } };
type Panel = { type: string; title: string; targets?: Target[]; datasource?: { uid?: string } };
const built = dashboardFiles().map((f) => ({ file: f.file, dashboard: JSON.parse(f.json) as { uid: string; title: string; panels: Panel[] } }));
/** Every panel query as Grafana will run it, read back from the built JSON. */
const queries = built.flatMap(({ file, dashboard }) =>
  dashboard.panels.filter((p) => p.type !== "row").flatMap((p) => (p.targets ?? []).map((t) => ({ file, panel: p.title, expr: t.expr ?? "", target: t, p }))),
);
const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;

describe("dashboards as code", () => {
  it("builds the fleet, trading, datastores and Kafka dashboards with unique uids", () => {
    expect(built.map((b) => b.file)).toEqual(["fleet.json", "trading.json", "datastores.json", "kafka.json"]);
    expect(new Set(built.map((b) => b.dashboard.uid)).size).toBe(built.length);
    for (const { dashboard } of built) expect(dashboard.panels.filter((p) => p.type !== "row").length).toBeGreaterThan(2);
  });

  it("every panel has queries on the provisioned Prometheus datasource", () => {
    for (const { dashboard } of built)
      for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
        expect(p.targets?.length, `${dashboard.title} / ${p.title}`).toBeGreaterThan(0);
        expect(p.datasource?.uid).toBe(PROMETHEUS_DATASOURCE.uid);
      }
    for (const q of queries) {
      expect(q.expr, `${q.file} / ${q.panel}`).not.toBe("");
      expect(q.target.datasource?.uid).toBe(PROMETHEUS_DATASOURCE.uid);
      expect(metricNames(q.expr).length, `${q.file} / ${q.panel}: ${q.expr}`).toBeGreaterThan(0);
    }
    expect(datasourcesYaml("http://prometheus:9090")).toContain(`uid: ${PROMETHEUS_DATASOURCE.uid}`);
  });

  it("the fleet dashboard shows each scheduled job's last start, success and failure (the gauges its alerts read)", () => {
    const fleet = built.find((b) => b.file === "fleet.json")!.dashboard;
    const jobs = fleet.panels.find((p) => p.title === "Time since a scheduled job's last start, success and failure");
    expect(jobs?.type).toBe("timeseries");
    expect((jobs!.targets ?? []).map((t) => t.expr)).toEqual(
      ["start", "success", "failure"].map((what) => `time() - max by (scheduled_job) (scheduled_job_last_${what}_timestamp_seconds)`),
    );
    expect(fleet.panels.some((p) => p.type === "row" && p.title === "Scheduled jobs")).toBe(true);
  });

  it.skipIf(!hasPromtool)("promtool parses every panel query (each as a recording rule)", () => {
    const dir = mkdtempSync(join(tmpdir(), "dashboards-"));
    const rules = [
      "groups:",
      "  - name: dashboard-queries",
      "    rules:",
      ...queries.flatMap((q, i) => [`      - record: dashboard:query_${i}`, `        expr: ${JSON.stringify(withGrafanaVariables(q.expr))}`]),
      "",
    ].join("\n");
    writeFileSync(join(dir, "rules.yml"), rules);
    const r = spawnSync("promtool", ["check", "rules", join(dir, "rules.yml")], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(r.status).toBe(0);
  });
  if (!hasPromtool) it("promtool is not installed: scripts/deps/install-test-deps.sh installs it (Debian package prometheus)", () => expect(hasPromtool).toBe(false));
});
