/**
 * The decision chains as a graph in ArangoDB: vertex collections ai_signals, ai_decisions,
 * ai_orders, ai_fills and the edge collection ai_chain_links, in the named graph ai_chains. A THIN
 * adapter over arangojs: no ArangoDB server can run here, so everything it sends is listed in the
 * README as unverified; tests/ai-chain/chains.test.ts checks the calls it makes on a recording
 * arangojs double. Writes are idempotent: vertices and edges have deterministic keys and are saved
 * with `overwriteMode: "update"`. Copies of decisions older than their retention go with their chain
 * (removeOlderThan: CHAIN_GRAPH_RETENTION_DAYS, as ai-orchestrator keeps its decisions).
 */
import type { Database } from "arangojs";
import type { GraphDoc, GraphEdge } from "./chains";

export const CHAIN_GRAPH = "ai_chains";
export const VERTEX_COLLECTIONS = ["ai_signals", "ai_decisions", "ai_orders", "ai_fills"] as const;
export const EDGE_COLLECTION = "ai_chain_links";

/**
 * The traversal behind GET /chains/:decisionId/graph (UNVERIFIED against a real server). It follows
 * only edges of the decision's user (@userId): another user's order naming the decision id as its
 * clientOrderId has an edge to the decision, and it and its fills must not show in this chain. A
 * filter on every edge of the path is applied while traversing (ArangoDB's path-filter
 * optimisation), so such an edge is not followed; edges written before they carried a user
 * (`userId` null) are not followed either.
 */
export const CHAIN_AQL = `FOR v, e, p IN 0..3 ANY @start GRAPH @graph
  OPTIONS { uniqueVertices: "global", order: "bfs" }
  FILTER p.edges[*].userId ALL == @userId
  RETURN { id: v._id, vertex: UNSET(v, "_rev"), step: e.step }`;

/** Index of ai_decisions on decidedAt (an ISO-8601 instant in UTC, so text order is time order): what the retention reads. */
export const DECIDED_AT_INDEX = "ai_decisions_decided_at";

/**
 * The oldest decision copies made before @before, at most @batch (UNVERIFIED against a real server, as
 * the rest). `> ""` keeps the range to strings: null sorts below every string in AQL, so a copy without
 * decidedAt would be removed, and read again by every pass from the index's start.
 */
export const DUE_DECISIONS_AQL = `FOR d IN ai_decisions
  FILTER d.decidedAt > "" AND d.decidedAt < @before
  SORT d.decidedAt
  LIMIT @batch
  RETURN d._key`;

/** What hangs off those decisions: their orders and the orders' fills, with the edges to them (UNVERIFIED; WITH names the vertex collections, as a cluster requires). */
export const CHAIN_REACH_AQL = `WITH ai_decisions, ai_orders, ai_fills
FOR k IN @keys
  FOR v, e IN 1..2 OUTBOUND CONCAT("ai_decisions/", k) ai_chain_links
    RETURN { vertex: v._id, edge: e._key }`;

/** Removes the documents of @keys from @@collection; one already gone (another replica's pass) is no error (UNVERIFIED). */
export const REMOVE_KEYS_AQL = `FOR k IN @keys
  REMOVE k IN @@collection OPTIONS { ignoreErrors: true }`;

const edgeKey = (e: Pick<GraphEdge, "from" | "to">) => `${e.from}>${e.to}`.replace(/[^A-Za-z0-9_\-:.@()+,=;$!*'%]/g, "_");

/** saveAll reports per-document failures in its result instead of throwing. */
function failOnErrors(collection: string, results: ReadonlyArray<object>): void {
  const bad = results.find((r) => "error" in r && (r as { error?: unknown }).error === true) as { errorMessage?: string } | undefined;
  if (bad) throw new Error(`arangodb ${collection}: ${bad.errorMessage ?? "document rejected"}`);
}

export class ChainGraph {
  constructor(private readonly db: Database) {}

  /** Creates the collections and the named graph when missing. */
  async ensure(): Promise<void> {
    const have = new Set((await this.db.collections(true)).map((c) => c.name));
    for (const name of VERTEX_COLLECTIONS) if (!have.has(name)) await this.db.createCollection(name);
    if (!have.has(EDGE_COLLECTION)) await this.db.createEdgeCollection(EDGE_COLLECTION);
    // Idempotent: an index of that definition already there is answered as it is.
    await this.db.collection("ai_decisions").ensureIndex({ type: "persistent", fields: ["decidedAt"], name: DECIDED_AT_INDEX });
    const graphs = new Set((await this.db.graphs()).map((g) => g.name));
    if (!graphs.has(CHAIN_GRAPH))
      await this.db.createGraph(CHAIN_GRAPH, [{ collection: EDGE_COLLECTION, from: [...VERTEX_COLLECTIONS], to: [...VERTEX_COLLECTIONS] }]);
  }

  async write(vertices: GraphDoc[], edges: GraphEdge[]): Promise<void> {
    const byCollection = new Map<string, Array<Record<string, unknown>>>();
    for (const v of vertices) {
      const list = byCollection.get(v.collection) ?? [];
      list.push({ _key: v.key, ...v.doc });
      byCollection.set(v.collection, list);
    }
    for (const [name, docs] of byCollection) failOnErrors(name, await this.db.collection(name).saveAll(docs, { overwriteMode: "update" }));
    if (edges.length)
      failOnErrors(
        EDGE_COLLECTION,
        await this.db.collection(EDGE_COLLECTION).saveAll(
          edges.map((e) => ({ _key: edgeKey(e), _from: e.from, _to: e.to, step: e.step, userId: e.userId })),
          { overwriteMode: "update" },
        ),
      );
  }

  /**
   * Removes the copies of the `batch` oldest decisions made before `before` (an instant) with their
   * chains: the signal (same key), the orders and their fills, and the edges between them; the
   * decisions go last, so a pass cut short is finished by the next one, which finds them again.
   * Answers how many decisions went (0: nothing due).
   */
  async removeOlderThan(before: Date, batch: number): Promise<number> {
    const keys = await (await this.db.query<string>({ query: DUE_DECISIONS_AQL, bindVars: { before: before.toISOString(), batch } })).all();
    if (keys.length === 0) return 0;
    const reach = await (await this.db.query<{ vertex: string | null; edge: string }>({ query: CHAIN_REACH_AQL, bindVars: { keys } })).all();
    // The signals share their decision's key; the edge from each is keyed as write() keys it.
    const byCollection = new Map<string, string[]>([
      [EDGE_COLLECTION, keys.map((k) => edgeKey({ from: `ai_signals/${k}`, to: `ai_decisions/${k}` }))],
      ["ai_signals", keys],
      ["ai_orders", []],
      ["ai_fills", []],
    ]);
    for (const r of reach) {
      byCollection.get(EDGE_COLLECTION)!.push(r.edge);
      // A vertex never written (an edge saved before it) is null.
      const [collection, key] = r.vertex?.split("/") ?? [];
      if (key) byCollection.get(collection)?.push(key);
    }
    for (const collection of [EDGE_COLLECTION, "ai_fills", "ai_orders", "ai_signals"]) {
      const of = byCollection.get(collection);
      if (of?.length) await this.db.query({ query: REMOVE_KEYS_AQL, bindVars: { keys: of, "@collection": collection } });
    }
    await this.db.query({ query: REMOVE_KEYS_AQL, bindVars: { keys, "@collection": "ai_decisions" } });
    return keys.length;
  }

  /** The chain around one decision of `userId` (its owner): its signal, that user's order(s) and their fills. */
  async chain(decisionKey: string, userId: string): Promise<Array<{ id: string; vertex: Record<string, unknown>; step: string | null }>> {
    const cursor = await this.db.query({ query: CHAIN_AQL, bindVars: { start: `ai_decisions/${decisionKey}`, graph: CHAIN_GRAPH, userId } });
    return cursor.all();
  }
}
