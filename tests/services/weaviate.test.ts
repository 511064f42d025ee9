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
import { createService, defineService, type Service } from "../../services/src/kit";
import { createWeaviate } from "../../services/src/kit/datastores";
import { ensureWeaviate, weaviateAdapter, weaviateClasses } from "../../services/src/migrations";

const { available } = weaviateAvailability();

describe.skipIf(!available)("weaviate (real server)", () => {
  const srv = useServers("weaviate");
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
