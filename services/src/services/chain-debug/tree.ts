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

/** Levels of the tree an answer nests (a span deeper is among the roots). */
export const MAX_TREE_DEPTH = 100;

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
  // Breadth first from the spans without a received parent, at most MAX_TREE_DEPTH levels: a span
  // deeper than that, and the spans of a parent cycle (no root reaches them), are roots too, their
  // parentSpanId kept. Nested without a bound, a chain of 5,000 spans (one OTLP request) failed the
  // answer's serialization (a 500), and a cycle's spans were in no tree at all.
  // A span's parent among the received spans (not itself); a span without one starts a tree.
  const parentOf = (n: SpanNode) => (n.parentSpanId && n.parentSpanId !== n.spanId && nodes.has(n.parentSpanId) ? n.parentSpanId : undefined);
  const childrenOf = new Map<string, SpanNode[]>();
  for (const n of nodes.values()) {
    const parent = parentOf(n);
    if (parent === undefined) continue;
    const siblings = childrenOf.get(parent) ?? [];
    siblings.push(n);
    childrenOf.set(parent, siblings);
  }
  const roots: SpanNode[] = [];
  const placed = new Set<SpanNode>();
  const place = (root: SpanNode) => {
    roots.push(root);
    placed.add(root);
    const queue: Array<[SpanNode, number]> = [[root, 0]];
    for (let i = 0; i < queue.length; i++) {
      const [n, depth] = queue[i];
      for (const c of childrenOf.get(n.spanId) ?? []) {
        if (placed.has(c)) continue;
        placed.add(c);
        if (depth + 1 < MAX_TREE_DEPTH) {
          n.children.push(c);
          queue.push([c, depth + 1]);
        } else {
          roots.push(c);
          queue.push([c, 0]);
        }
      }
    }
  };
  for (const n of nodes.values()) if (parentOf(n) === undefined) place(n);
  for (const n of nodes.values()) if (!placed.has(n)) place(n);
  const byStart = (a: SpanNode, b: SpanNode) => a.startUs - b.startUs;
  roots.sort(byStart);
  for (const n of nodes.values()) n.children.sort(byStart);
  const all = [...nodes.values()];
  return {
    roots,
    services: [...new Set(all.sort(byStart).map((n) => n.service))],
    spanCount: nodes.size,
    errorCount: all.filter((n) => n.status === "error").length,
  };
}
