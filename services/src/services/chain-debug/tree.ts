/**
 * One trace as a tree: spans under their parents, ordered by start. A span whose parent was not
 * received (sampled out, exporter dropped it, still in flight) becomes a root rather than vanishing.
 * Exported spans may arrive twice (exporter retries): the tree keeps one per span id.
 */
import type { SpanRow } from "./otlp";

export interface SpanNode {
  spanId: string;
  parentSpanId: string | null;
  service: string;
  name: string;
  kind: string;
  startUs: number;
  durationUs: number;
  status: "unset" | "ok" | "error";
  statusMessage?: string;
  httpStatus?: number;
  requestId?: string;
  attributes: Record<string, unknown>;
  events: unknown[];
  links: Array<{ trace_id: string; span_id: string }>;
  children: SpanNode[];
}

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS = ["unset", "ok", "error"] as const;

function parse<T>(s: string, fallback: T): T {
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

export function buildTree(rows: SpanRow[]): { roots: SpanNode[]; services: string[]; spanCount: number; errorCount: number } {
  const nodes = new Map<string, SpanNode>();
  for (const r of rows) {
    if (nodes.has(r.span_id)) continue;
    nodes.set(r.span_id, {
      spanId: r.span_id,
      parentSpanId: r.parent_span_id || null,
      service: r.service,
      name: r.name,
      kind: KINDS[r.kind] ?? "unspecified",
      startUs: Number(r.start_us),
      durationUs: Number(r.duration_us),
      status: STATUS[r.status_code] ?? "unset",
      ...(r.status_message ? { statusMessage: r.status_message } : {}),
      ...(r.http_status ? { httpStatus: r.http_status } : {}),
      ...(r.request_id ? { requestId: r.request_id } : {}),
      attributes: parse(r.attributes, {}),
      events: parse(r.events, []),
      links: parse(r.links, []),
      children: [],
    });
  }
  const roots: SpanNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.parentSpanId ? nodes.get(n.parentSpanId) : undefined;
    if (parent && parent !== n) parent.children.push(n);
    else roots.push(n);
  }
  const byStart = (a: SpanNode, b: SpanNode) => a.startUs - b.startUs;
  const sort = (list: SpanNode[]) => {
    list.sort(byStart);
    for (const n of list) sort(n.children);
  };
  sort(roots);
  const all = [...nodes.values()];
  return {
    roots,
    services: [...new Set(all.sort(byStart).map((n) => n.service))],
    spanCount: nodes.size,
    errorCount: all.filter((n) => n.status === "error").length,
  };
}
