/**
 * Market-regime memory in Weaviate (class MarketRegime, migrations/weaviate.ts): each object is one
 * market-state window of a symbol — its features z-scored with the model's training reference, as
 * the object's vector (computed here, no vectorizer) — with the return that followed it. The
 * orchestrator asks for the k nearest past windows of the current state. Vectors are only
 * comparable under one reference, so every query filters on the model version.
 */
import type { WeaviateClient } from "weaviate-client";
import { featuresAt, LOOKBACK, toRow, type FeatureName, type OhlcvBar } from "./features";
import { ensureWeaviate, weaviateAdapter, weaviateClasses } from "../migrations/weaviate";

export const REGIME_CLASS = "MarketRegime";

export type FeatureReference = Record<string, { mean: number; std: number }>;

export interface Regime {
  symbol: string;
  windowEnd: string;
  forwardReturn: number;
  horizonBars: number;
  distance: number;
}

/** z-scores in the model's feature order; a feature with no spread at training scores 0. */
export function regimeVector(features: Record<FeatureName, number>, names: readonly string[], reference: FeatureReference): number[] {
  return toRow(features, names).map((x, i) => {
    const ref = reference[names[i]];
    return ref && ref.std > 0 ? (x - ref.mean) / ref.std : 0;
  });
}

export async function ensureRegimeClass(client: WeaviateClient): Promise<void> {
  await ensureWeaviate(weaviateAdapter(client), weaviateClasses.filter((c) => c.name === REGIME_CLASS));
}

/**
 * Stores every `stride`-th window of each symbol's bars whose forward return is known. Returns the
 * number of objects written.
 */
export async function indexRegimes(
  client: WeaviateClient,
  model: { version: string; features: readonly string[]; horizonBars: number; reference: FeatureReference },
  barsBySymbol: ReadonlyMap<string, readonly OhlcvBar[]>,
  stride = 10,
): Promise<number> {
  await ensureRegimeClass(client);
  const col = client.collections.get(REGIME_CLASS);
  let written = 0;
  let batch: Array<{ properties: Record<string, string | number>; vectors: number[] }> = [];
  const flush = async () => {
    if (!batch.length) return;
    const r = await col.data.insertMany(batch);
    if (r.hasErrors) throw new Error(`weaviate insertMany: ${JSON.stringify(Object.values(r.errors)[0])}`);
    written += batch.length;
    batch = [];
  };
  for (const [symbol, bars] of barsBySymbol) {
    const h = model.horizonBars;
    for (let t = LOOKBACK; t + h < bars.length; t += stride) {
      const f = featuresAt(bars, t)!;
      batch.push({
        properties: {
          modelVersion: model.version,
          symbol,
          windowEnd: new Date(bars[t].openTime).toISOString(),
          horizonBars: h,
          forwardReturn: Math.log(bars[t + h].close / bars[t].close),
        },
        vectors: regimeVector(f, model.features, model.reference),
      });
      if (batch.length >= 500) await flush();
    }
  }
  await flush();
  return written;
}

/** The k past windows nearest to `vector` under `modelVersion`'s reference (any symbol). */
export async function nearestRegimes(client: WeaviateClient, modelVersion: string, vector: number[], k: number): Promise<Regime[]> {
  const col = client.collections.get(REGIME_CLASS);
  const r = await col.query.nearVector(vector, {
    limit: k,
    filters: col.filter.byProperty("modelVersion").equal(modelVersion),
    returnMetadata: ["distance"],
  });
  return r.objects.map((o) => ({
    symbol: String(o.properties.symbol),
    windowEnd: new Date(o.properties.windowEnd as string | Date).toISOString(),
    forwardReturn: Number(o.properties.forwardReturn),
    horizonBars: Number(o.properties.horizonBars),
    distance: Number(o.metadata?.distance ?? 0),
  }));
}
