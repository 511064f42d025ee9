/**
 * ArangoDB collections and graphs of the platform, declared in code and created when missing.
 * No ArangoDB runs in the test environment: the adapter is kept thin (`ArangoLike`) and tested
 * with a fake; `arangoAdapter(db)` maps it onto arangojs.
 */
import type { Database } from "arangojs";

export interface ArangoCollectionSpec {
  name: string;
  type: "document" | "edge";
}
export interface ArangoGraphSpec {
  name: string;
  edgeDefinitions: Array<{ collection: string; from: string[]; to: string[] }>;
}

export const arangoCollections: readonly ArangoCollectionSpec[] = [
  { name: "assets", type: "document" },
  { name: "strategies", type: "document" },
  { name: "news_entities", type: "document" },
  { name: "correlated_with", type: "edge" },
  { name: "mentions", type: "edge" },
  { name: "trades_asset", type: "edge" },
];

export const arangoGraphs: readonly ArangoGraphSpec[] = [
  {
    name: "market_graph",
    edgeDefinitions: [
      { collection: "correlated_with", from: ["assets"], to: ["assets"] },
      { collection: "mentions", from: ["news_entities"], to: ["assets"] },
      { collection: "trades_asset", from: ["strategies"], to: ["assets"] },
    ],
  },
];

export interface ArangoLike {
  listCollections(): Promise<string[]>;
  createCollection(name: string, type: "document" | "edge"): Promise<void>;
  listGraphs(): Promise<string[]>;
  createGraph(name: string, edgeDefinitions: ArangoGraphSpec["edgeDefinitions"]): Promise<void>;
}

export function arangoAdapter(db: Database): ArangoLike {
  return {
    async listCollections() {
      return (await db.collections(true)).map((c) => c.name);
    },
    async createCollection(name, type) {
      if (type === "edge") await db.createEdgeCollection(name);
      else await db.createCollection(name);
    },
    async listGraphs() {
      return (await db.graphs()).map((g) => g.name);
    },
    async createGraph(name, edgeDefinitions) {
      await db.createGraph(name, edgeDefinitions);
    },
  };
}

export async function ensureArango(
  db: ArangoLike,
  collections: readonly ArangoCollectionSpec[] = arangoCollections,
  graphs: readonly ArangoGraphSpec[] = arangoGraphs,
): Promise<{ createdCollections: string[]; createdGraphs: string[] }> {
  for (const g of graphs)
    for (const e of g.edgeDefinitions) {
      const spec = collections.find((c) => c.name === e.collection);
      if (spec?.type !== "edge") throw new Error(`graph ${g.name}: ${e.collection} must be a declared edge collection`);
      for (const v of [...e.from, ...e.to])
        if (collections.find((c) => c.name === v)?.type !== "document") throw new Error(`graph ${g.name}: ${v} must be a declared document collection`);
    }
  const have = new Set(await db.listCollections());
  const createdCollections: string[] = [];
  for (const c of collections)
    if (!have.has(c.name)) {
      await db.createCollection(c.name, c.type);
      createdCollections.push(c.name);
    }
  const haveGraphs = new Set(await db.listGraphs());
  const createdGraphs: string[] = [];
  for (const g of graphs)
    if (!haveGraphs.has(g.name)) {
      await db.createGraph(g.name, g.edgeDefinitions);
      createdGraphs.push(g.name);
    }
  return { createdCollections, createdGraphs };
}
