/**
 * Metric names a PromQL expression reads, and exposition-format parsing of /metrics: enough to
 * check that dashboards only query series the services export (tests/services/fleet-metrics).
 */
const NOT_METRICS = new Set([
  "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group", "count_values",
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
  "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "vector", "scalar", "abs", "clamp_min", "clamp_max", "label_replace", "label_values", "time",
]);

/** `sum by (service) (rate(x_total{a="b"}[5m])) / y` -> ["x_total", "y"]. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, " ") // matchers
    .replace(/\[[^\]]*\]/g, " ") // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // label lists
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || NOT_METRICS.has(m[1])) continue;
    names.add(m[1]);
  }
  return [...names];
}

/** Series names a /metrics text can produce (histograms: _bucket/_sum/_count; summaries: _sum/_count). */
export function exportedSeries(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    out.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) out.add(name + s);
  }
  for (const m of text.matchAll(/^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/gm)) out.add(m[1]);
  return out;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a /metrics text (`name{a="b"} 1`), optionally of one series name. */
export function parseSamples(text: string, name?: string): Sample[] {
  const out: Sample[] = [];
  for (const m of text.matchAll(/^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/gm)) {
    if (name !== undefined && m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The metric a Grafana `label_values(metric, label)` variable query reads. */
export function variableMetric(query: string): string | undefined {
  return /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,/.exec(query.trim())?.[1];
}

/** Grafana's variables replaced by values PromQL accepts (for promtool). */
export function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$[A-Za-z_]+/g, ".*");
}
