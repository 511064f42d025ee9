/**
 * Weaviate classes (v3 client "collections") of the platform, declared in code and created when
 * missing. Thin adapter (`WeaviateLike`) mapped onto weaviate-client v3 by `weaviateAdapter(client)`;
 * tested against a real Weaviate server (tests/services/weaviate.test.ts).
 */
import type { WeaviateClient } from "weaviate-client";

export type WeaviateDataType = "text" | "text[]" | "number" | "int" | "boolean" | "date" | "uuid";

export interface WeaviateClassSpec {
  name: string;
  description: string;
  /**
   * `tokenization: "field"` for identifiers compared whole: the default "word" tokenization
   * splits "lgbm-1-a" into words, so an `equal` filter on "lgbm-1" would also match it.
   */
  properties: Array<{ name: string; dataType: WeaviateDataType; description?: string; tokenization?: "field" | "word" }>;
}

/** Vectors are supplied by the services (no vectorizer module in the stack). */
export const weaviateClasses: readonly WeaviateClassSpec[] = [
  {
    name: "NewsArticle",
    description: "Market news with embeddings for sentiment / similarity search",
    properties: [
      { name: "title", dataType: "text" },
      { name: "body", dataType: "text" },
      { name: "source", dataType: "text" },
      { name: "symbols", dataType: "text[]" },
      { name: "publishedAt", dataType: "date" },
      { name: "sentiment", dataType: "number" },
    ],
  },
  {
    name: "MarketRegime",
    description: "Market-state windows (z-scored model features, vectors supplied by ml-predictor) with the return that followed",
    properties: [
      { name: "modelVersion", dataType: "text", tokenization: "field", description: "model whose feature reference scaled the vector" },
      { name: "symbol", dataType: "text", tokenization: "field" },
      { name: "windowEnd", dataType: "date", description: "open time of the window's last bar" },
      { name: "horizonBars", dataType: "int" },
      { name: "forwardReturn", dataType: "number", description: "ln(close horizonBars later / close at windowEnd)" },
    ],
  },
  {
    name: "StrategyDoc",
    description: "Strategy descriptions and research notes for retrieval",
    properties: [
      { name: "strategyId", dataType: "uuid" },
      { name: "title", dataType: "text" },
      { name: "content", dataType: "text" },
      { name: "tags", dataType: "text[]" },
    ],
  },
];

export interface WeaviateLike {
  exists(name: string): Promise<boolean>;
  create(spec: WeaviateClassSpec): Promise<void>;
}

export function weaviateAdapter(client: WeaviateClient): WeaviateLike {
  return {
    exists: (name) => client.collections.exists(name),
    async create(spec) {
      await client.collections.create({
        name: spec.name,
        description: spec.description,
        properties: spec.properties.map((p) => ({ name: p.name, dataType: p.dataType, description: p.description, tokenization: p.tokenization })),
      } as Parameters<WeaviateClient["collections"]["create"]>[0]);
    },
  };
}

export async function ensureWeaviate(w: WeaviateLike, classes: readonly WeaviateClassSpec[] = weaviateClasses): Promise<{ created: string[] }> {
  const created: string[] = [];
  for (const c of classes) {
    if (!/^[A-Z][A-Za-z0-9_]*$/.test(c.name)) throw new Error(`weaviate class ${c.name} must start with an upper-case letter`);
    if (!(await w.exists(c.name))) {
      await w.create(c);
      created.push(c.name);
    }
  }
  return { created };
}
