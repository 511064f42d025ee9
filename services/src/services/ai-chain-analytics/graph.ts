/**
 * The decision chains as a graph in ArangoDB: vertex collections ai_signals, ai_decisions,
 * ai_orders, ai_fills and the edge collection ai_chain_links, in the named graph ai_chains. A THIN
 * adapter over arangojs: no ArangoDB server can run here, so everything it sends is listed in the
 * README as unverified; tests/ai-chain/graph.test.ts checks the calls it makes on a recording
 * arangojs double. Writes are idempotent: vertices and edges have deterministic keys and are saved
 * with `overwriteMode: "update"`.
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

const edgeKey = (e: GraphEdge) => `${e.from}>${e.to}`.replace(/[^A-Za-z0-9_\-:.@()+,=;$!*'%]/g, "_");

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

  /** The chain around one decision of `userId` (its owner): its signal, that user's order(s) and their fills. */
  async chain(decisionKey: string, userId: string): Promise<Array<{ id: string; vertex: Record<string, unknown>; step: string | null }>> {
    const cursor = await this.db.query({ query: CHAIN_AQL, bindVars: { start: `ai_decisions/${decisionKey}`, graph: CHAIN_GRAPH, userId } });
    return cursor.all();
  }
}
