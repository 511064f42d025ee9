/**
 * What a trader reads of an evaluation whose similar-regimes lookup failed (Weaviate down, refusing
 * the API key, answering an error): the decision's `error` names the failure in words of the
 * platform, never the Weaviate client's message, which carries internal addresses, ports, the gRPC
 * method and the collection's name (found by session 48's hostile hunt: "regimes unavailable:
 * ... connect ECONNREFUSED 127.0.0.1:<port>" in GET /decisions/:id). The detail is in the log.
 * ml-predictor and order-management are stand-ins; Weaviate's HTTP API answers its version and
 * its gRPC port (where v3 queries go) is closed.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { deadPort, pg } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { ensureAccount } from "../helpers/accounts";
import { REGIME_CLASS } from "../../services/src/ml/regimes";
import { leaksIn } from "../hostile/oracle";

const srv = useServers("postgres", "redis");
const servers: Server[] = [];
const services: Service[] = [];
let db: InstanceType<typeof pg.Pool>;
let mlUrl: string;
let omUrl: string;
/** A port nothing listens on (Weaviate's gRPC), and Weaviate's HTTP API answering its version. */
let closedPort: number;
let weaviateUrl: string;

async function listen(handle: (path: string, body: any) => { status: number; body: unknown }): Promise<string> {
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      const out = handle(req.url ?? "/", text ? JSON.parse(text) : undefined);
      res.writeHead(out.status, { "content-type": "application/json" }).end(JSON.stringify(out.body));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  db = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(db, { dir: POSTGRES_MIGRATIONS_DIR });
  mlUrl = await listen((_path, body) => ({
    status: 200,
    body: { modelVersion: "lgbm-test", intervalMs: 60_000, hasEdge: true, predictions: body.symbols.map((symbol: string) => ({ symbol, probabilityUp: 0.5, barTime: new Date().toISOString(), close: 100, features: {}, regimeVector: [0.1, 0.2] })) },
  }));
  omUrl = await listen(() => ({ status: 404, body: { error: { code: "NOT_FOUND", message: "no such order" } } }));
  closedPort = await deadPort();
  weaviateUrl = await listen((path) => (path.startsWith("/v1/meta") ? { status: 200, body: { version: "1.28.0", modules: {} } } : { status: 404, body: {} }));
}, 120_000);

afterAll(async () => {
  for (const s of services) await s.close();
  for (const s of servers) s.close();
  await db?.end();
});

async function orchestrator(weaviate: Record<string, string>): Promise<Service> {
  const s = await createService(aiOrchestrator, {
    env: { ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "0", SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: omUrl, ...weaviate },
    defaultMetrics: false,
  });
  services.push(s);
  return s;
}

describe("a failed similar-regimes lookup, as the trader reads the decision", () => {
  it("Weaviate's gRPC port closed: the decision says the regimes were unavailable, without the client's message", async () => {
    const orch = await orchestrator({ WEAVIATE_URL: weaviateUrl, WEAVIATE_GRPC_PORT: String(closedPort), WEAVIATE_API_KEY: "wv-secret-key-123", ORCH_REGIMES_TIMEOUT_MS: "1000" });
    const userId = randomUUID();
    await ensureAccount(db, userId);
    const headers = { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" };
    const created = await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { name: "s", symbols: ["AAAUSDT", "BBBUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9, enabled: true } });
    expect(created.statusCode, created.body).toBe(201);
    // Two symbols: each lookup is bounded by ORCH_REGIMES_TIMEOUT_MS (about 20 s each before: the client's own wait for the gRPC port).
    const t0 = Date.now();
    const evaluated = await orch.app.inject({ method: "POST", url: `/strategies/${created.json().strategyId}/evaluate`, headers });
    expect(evaluated.statusCode, evaluated.body).toBe(200);
    expect(Date.now() - t0).toBeLessThan(20_000); // two lookups of 1 s at most; half the 40 s they took before
    const [decision, second] = evaluated.json().decisions;
    expect(decision.error).toMatch(/^regimes unavailable/);
    expect(second.error).toMatch(/^regimes unavailable/);
    const read = await orch.app.inject({ method: "GET", url: `/decisions/${decision.decisionId}`, headers });
    const listed = await orch.app.inject({ method: "GET", url: `/strategies/${created.json().strategyId}/decisions`, headers });
    for (const body of [evaluated.body, read.body, listed.body]) {
      expect(leaksIn(body, [closedPort, Number(new URL(weaviateUrl).port)])).toEqual([]);
      for (const text of [String(closedPort), "127.0.0.1", "wv-secret", "gRPC", "grpc", "weaviate.v1", "ECONNREFUSED", REGIME_CLASS, "UNAVAILABLE:"]) expect(body).not.toContain(text);
    }
  }, 120_000);
});
