/**
 * The Weaviate code against a real Weaviate server (v1.35.2 built from the Go module proxy by
 * scripts/weaviate/build.sh, started by the harness on free loopback ports with API-key auth):
 * the kit client (ping, auth, readiness), database-service's class migrations (created once,
 * idempotent, the declared properties and no vectorizer), and own-vector writes and nearVector
 * queries through the same client the services use.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { weaviateAvailability } from "../harness/weaviate";
import { createService, defineService, runCommand, type Service } from "../../services/src/kit";
import databaseService from "../../services/src/services/database-service";
import { createWeaviate } from "../../services/src/kit/datastores";
import { ensureWeaviate, weaviateAdapter, weaviateClasses } from "../../services/src/migrations";
import { featuresAt, FEATURE_NAMES, LOOKBACK, type OhlcvBar } from "../../services/src/ml/features";
import { ensureRegimeClass, indexRegimes, nearestRegimes, regimeVector, REGIME_CLASS, type FeatureReference } from "../../services/src/ml/regimes";

/** A deterministic random walk of one-minute bars (a small LCG: same bars every run). */
function walk(n: number, seed: number): OhlcvBar[] {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  const bars: OhlcvBar[] = [];
  let close = 100;
  for (let i = 0; i < n; i++) {
    const next = close * Math.exp((rnd() - 0.5) * 0.01);
    bars.push({ openTime: Date.UTC(2026, 0, 1) + i * 60_000, high: Math.max(close, next) * 1.001, low: Math.min(close, next) * 0.999, close: next, volume: 10 + rnd() * 5 });
    close = next;
  }
  return bars;
}

const { available } = weaviateAvailability();

describe.skipIf(!available)("weaviate (real server)", () => {
  const srv = useServers("postgres", "weaviate");
  const kitClient = (key?: string) =>
    createWeaviate({ WEAVIATE_URL: srv.weaviate.url, WEAVIATE_GRPC_PORT: srv.weaviate.grpcPort, WEAVIATE_API_KEY: key });

  it("kit client: ping succeeds with the admin key and fails without or with a wrong key", async () => {
    const ok = kitClient(srv.weaviate.apiKey);
    await ok.ping();
    await ok.close();
    for (const key of [undefined, "not-the-key"]) {
      const bad = kitClient(key);
      await expect(bad.ping()).rejects.toThrow(/401|unauthori[sz]ed|anonymous/i);
      await bad.close();
    }
  });

  it("migrations create every declared class once, with its properties and no vectorizer", async () => {
    const c = kitClient(srv.weaviate.apiKey);
    try {
      const client = await c.client();
      const first = await ensureWeaviate(weaviateAdapter(client));
      expect(first.created.sort()).toEqual(weaviateClasses.map((k) => k.name).sort());
      const second = await ensureWeaviate(weaviateAdapter(client));
      expect(second.created).toEqual([]);
      for (const spec of weaviateClasses) {
        const cfg = await client.collections.get(spec.name).config.get();
        const props = Object.fromEntries(cfg.properties.map((p) => [p.name, p.dataType]));
        for (const p of spec.properties) expect(props[p.name], `${spec.name}.${p.name}`).toBe(p.dataType);
        expect(cfg.vectorizers.default?.vectorizer.name ?? "none").toBe("none");
      }
    } finally {
      await c.close();
    }
  });

  it("a read-only key can query but not create classes", async () => {
    const ro = kitClient(srv.weaviate.readOnlyKey);
    try {
      const client = await ro.client();
      expect(await client.collections.exists("NewsArticle")).toBe(true);
      await expect(
        weaviateAdapter(client).create({ name: "Forbidden", description: "", properties: [{ name: "x", dataType: "text" }] }),
      ).rejects.toThrow(/403|forbidden/i);
    } finally {
      await ro.close();
    }
  });

  it("migrations fail with a named error on a class name Weaviate would rename, before any call", async () => {
    await expect(ensureWeaviate({ exists: async () => false, create: async () => undefined }, [{ name: "lower", description: "", properties: [] }])).rejects.toThrow(
      /weaviate class lower must start with an upper-case letter/,
    );
  });

  describe("market-regime memory (ml/regimes.ts)", () => {
    const bars = new Map([
      ["AAAUSDT", walk(400, 7)],
      ["BBBUSDT", walk(300, 11)],
    ]);
    const reference: FeatureReference = Object.fromEntries(FEATURE_NAMES.map((f) => [f, { mean: 0, std: 1 }]));
    reference.rsi_14 = { mean: 50, std: 10 };
    reference.vol_15 = { mean: 0.003, std: 0 }; // no spread at training: scores 0
    const model = (version: string, horizonBars = 5) => ({ version, features: FEATURE_NAMES, horizonBars, reference });
    // Per symbol: windows LOOKBACK, LOOKBACK + stride, ... while t + horizon < bars.
    const expected = (stride: number, h: number) => [...bars.values()].reduce((n, b) => n + Math.ceil((b.length - h - LOOKBACK) / stride), 0);

    it("regimeVector z-scores in the model's feature order; a feature with no spread scores 0", () => {
      const f = featuresAt(bars.get("AAAUSDT")!, 100)!;
      const v = regimeVector(f, FEATURE_NAMES, reference);
      expect(v).toHaveLength(FEATURE_NAMES.length);
      expect(v[FEATURE_NAMES.indexOf("rsi_14")]).toBeCloseTo((f.rsi_14 - 50) / 10, 12);
      expect(v[FEATURE_NAMES.indexOf("vol_15")]).toBe(0);
      expect(v[0]).toBeCloseTo(f.ret_1, 12);
    });

    it("indexes every stride-th window with a known forward return, per model version, and finds the exact window first", async () => {
      const c = kitClient(srv.weaviate.apiKey);
      try {
        const client = await c.client();
        await ensureRegimeClass(client); // idempotent next to the migrations
        // Two versions whose names share every word: the filter must still keep them apart.
        expect(await indexRegimes(client, model("lgbm-t-1"), bars, 10)).toBe(expected(10, 5));
        expect(await indexRegimes(client, model("lgbm-t-1-b", 3), bars, 7)).toBe(expected(7, 3));

        const aaa = bars.get("AAAUSDT")!;
        const t = LOOKBACK + 10 * 4;
        const q = regimeVector(featuresAt(aaa, t)!, FEATURE_NAMES, reference);
        const near = await nearestRegimes(client, "lgbm-t-1", q, 3);
        expect(near).toHaveLength(3);
        expect(near[0]).toMatchObject({ symbol: "AAAUSDT", windowEnd: new Date(aaa[t].openTime).toISOString(), horizonBars: 5 });
        expect(near[0].distance).toBeLessThan(1e-5);
        expect(near[0].forwardReturn).toBeCloseTo(Math.log(aaa[t + 5].close / aaa[t].close), 9);
        expect(near[1].distance).toBeGreaterThanOrEqual(near[0].distance);
        expect(near[2].distance).toBeGreaterThanOrEqual(near[1].distance);

        const all = await nearestRegimes(client, "lgbm-t-1", q, 1000);
        expect(all).toHaveLength(expected(10, 5));
        expect(all.every((r) => r.horizonBars === 5)).toBe(true);
        const other = await nearestRegimes(client, "lgbm-t-1-b", q, 1000);
        expect(other).toHaveLength(expected(7, 3));
        expect(await nearestRegimes(client, "lgbm-unknown", q, 5)).toEqual([]);
      } finally {
        await c.close();
      }
    });

    it("a read-only key can look regimes up but not index them", async () => {
      const ro = kitClient(srv.weaviate.readOnlyKey);
      try {
        const client = await ro.client();
        const q = new Array(FEATURE_NAMES.length).fill(0);
        expect(await nearestRegimes(client, "lgbm-t-1", q, 2)).toHaveLength(2);
        await expect(indexRegimes(client, model("lgbm-ro"), bars, 50)).rejects.toThrow(/403|forbidden/i);
        expect(await nearestRegimes(client, "lgbm-ro", q, 2)).toEqual([]);
      } finally {
        await ro.close();
      }
    });

    it("the regime class keeps identifiers whole (field tokenization)", async () => {
      const c = kitClient(srv.weaviate.apiKey);
      try {
        const cfg = await (await c.client()).collections.get(REGIME_CLASS).config.get();
        const tok = Object.fromEntries(cfg.properties.map((p) => [p.name, p.tokenization]));
        expect(tok).toMatchObject({ modelVersion: "field", symbol: "field" });
      } finally {
        await c.close();
      }
    });
  });

  it("own vectors: insertMany then nearVector returns the nearest first, with filters", async () => {
    const c = kitClient(srv.weaviate.apiKey);
    try {
      const client = await c.client();
      const news = client.collections.get("NewsArticle");
      const r = await news.data.insertMany([
        { properties: { title: "up", source: "t", symbols: ["BTCUSDT"], sentiment: 0.9 }, vectors: [1, 0, 0] },
        { properties: { title: "down", source: "t", symbols: ["ETHUSDT"], sentiment: -0.8 }, vectors: [0, 1, 0] },
        { properties: { title: "flat", source: "t", symbols: ["BTCUSDT"], sentiment: 0 }, vectors: [0, 0, 1] },
      ]);
      expect(r.hasErrors, JSON.stringify(r.errors)).toBe(false);
      const near = await news.query.nearVector([0.9, 0.1, 0], { limit: 2, returnMetadata: ["distance"] });
      expect(near.objects.map((o) => o.properties.title)).toEqual(["up", "down"]);
      const filtered = await news.query.nearVector([0, 1, 0], {
        limit: 3,
        filters: news.filter.byProperty("symbols").containsAny(["BTCUSDT"]),
      });
      expect(filtered.objects.map((o) => o.properties.title).sort()).toEqual(["flat", "up"]);
    } finally {
      await c.close();
    }
  });

  it("database-service: `migrate` with WEAVIATE_URL creates the classes (again a no-op), /datastores reports weaviate enabled", async () => {
    const env = { LOG_LEVEL: "silent", ...srv.env, DATASTORE_CHECK_TIMEOUT_MS: "5000" };
    expect(await runCommand(databaseService, "migrate", [], { env, defaultMetrics: false })).toBe(0);
    expect(await runCommand(databaseService, "migrate", [], { env, defaultMetrics: false })).toBe(0);
    const c = kitClient(srv.weaviate.apiKey);
    try {
      const client = await c.client();
      for (const spec of weaviateClasses) expect(await client.collections.exists(spec.name), spec.name).toBe(true);
    } finally {
      await c.close();
    }
    const svc = await createService(databaseService, { env, defaultMetrics: false });
    try {
      const body = (await svc.app.inject({ url: "/datastores/weaviate", headers: { "x-user-id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", "x-user-role": "admin", "x-auth-method": "jwt" } })).json();
      expect(body).toMatchObject({ name: "weaviate", status: "enabled" });
      expect(body.latencyMs).toBeGreaterThanOrEqual(0);
    } finally {
      await svc.close();
    }
    const wrongKey = await createService(databaseService, { env: { ...env, WEAVIATE_API_KEY: "not-the-key" }, defaultMetrics: false });
    try {
      const body = (await wrongKey.app.inject({ url: "/datastores/weaviate", headers: { "x-user-id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", "x-user-role": "admin", "x-auth-method": "jwt" } })).json();
      expect(body).toMatchObject({ name: "weaviate", status: "failing" });
      expect(JSON.stringify(body)).not.toContain("not-the-key");
    } finally {
      await wrongKey.close();
    }
  }, 120_000);

  describe("a service with WEAVIATE_URL set", () => {
    let svc: Service;
    beforeAll(async () => {
      const probe = defineService({ name: "database-service", register() {} });
      svc = await createService(probe, {
        env: { POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/none", ...srv.weaviate.env, LOG_LEVEL: "silent", READY_TIMEOUT_MS: "10000" },
        defaultMetrics: false,
      });
    });
    afterAll(() => svc?.close());

    it("/ready reports weaviate ok", async () => {
      const body = (await svc.app.inject({ url: "/ready" })).json();
      expect(body.dependencies.weaviate).toMatchObject({ status: "ok", required: false });
    });
  });
});
