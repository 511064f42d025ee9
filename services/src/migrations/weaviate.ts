/**
 * Weaviate classes (v3 client "collections") of the platform, declared in code and created when
 * missing. No Weaviate runs in the test environment: thin adapter (`WeaviateLike`), tested with a
 * fake; `weaviateAdapter(client)` maps it onto weaviate-client v3.
 */
import type { WeaviateClient } from "weaviate-client";

export type WeaviateDataType = "text" | "text[]" | "number" | "int" | "boolean" | "date" | "uuid";

export interface WeaviateClassSpec {
  name: string;
  description: string;
  properties: Array<{ name: string; dataType: WeaviateDataType; description?: string }>;
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
        properties: spec.properties.map((p) => ({ name: p.name, dataType: p.dataType, description: p.description })),
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
