/**
 * Session 52's hostile round on the public routes the earlier rounds named least (counted in
 * tests/hostile: /api/ai-chains, /api/performance, /api/compliance, /api/database, /api/debug,
 * /api/market, /api/ml, /api/revenue, /api/trading, /api/portfolio and /api/usage had at most one
 * hand-written case each; the generated cases of hostile.test.ts reach them with samples only).
 * Eleven services and the gateway on real servers, every answer judged by ./oracle.ts, which since
 * this session also refuses an internal name in an error body (./internal-names.ts): each case is
 * a request, who sends it, and the status and field it must be answered.
 * Found and fixed at the root (kit publicServiceName, README "hostile"): the gateway's 502 for a
 * service it cannot reach named the service ("order-management is unavailable"), the graph of a
 * decision chain without its graph store named ArangoDB, a datastore unknown to database-service
 * listed every deployed one, and the anonymous /api/health keyed the fleet by catalog name; a required
 * body left out was a 400 "Invalid body: must be object" naming no field (kit errors.ts: now `body`).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../services/src/catalog";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { portsOf } from "../helpers/raw-http";
import { internalNamesIn } from "./internal-names";
import { judge, sendJudged, type JudgedAnswer } from "./oracle";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
const PASSWORD = "correct horse battery staple";
const ADMIN = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
const SERVICES = [
  "api-gateway", "user-management", "ai-chain-analytics", "performance-analytics", "compliance-monitor", "database-service", "chain-debug",
  "data-bridge", "ml-predictor", "revenue-analytics", "trading-engine", "portfolio-manager", "usage-monitoring",
];
let p: Platform;
let internalPorts: number[];
const tokens: Record<"admin" | "trader", string> = { admin: "", trader: "" };
let traderId: string;
const failures: string[] = [];

type Who = "admin" | "trader" | "none";
function gw(who: Who, method: string, path: string, body?: unknown): Promise<JudgedAnswer> {
  const headers: Record<string, string> = who === "none" ? {} : { authorization: `Bearer ${tokens[who]}` };
  return sendJudged(`${p.gatewayUrl}${path}`, method, { headers, body, failures, internalPorts });
}

beforeAll(async () => {
  p = await startPlatform(srv.env, { BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password }, { only: SERVICES });
  internalPorts = portsOf([srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL]);
  tokens.admin = (await gw("none", "POST", "/api/users/login", ADMIN)).json.accessToken;
  const email = `h52-${randomBytes(3).toString("hex")}@example.com`;
  traderId = (await gw("none", "POST", "/api/users/register", { email, password: PASSWORD })).json.user.id;
  tokens.trader = (await gw("none", "POST", "/api/users/login", { email, password: PASSWORD })).json.accessToken;
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

const UUID = "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e";
const HEX32 = "0123456789abcdef0123456789abcdef";
const at = (iso: string) => encodeURIComponent(iso);

/** [who, method, path, body, status, field]: each answered that status naming that field (undefined: none named). */
type Case = [Who, string, string, unknown, number, string | undefined];

async function check(cases: Case[]): Promise<void> {
  for (const [who, method, path, body, status, field] of cases) {
    const r = await gw(who, method, path, body);
    expect([r.status, r.json?.error?.field], `${who} ${method} ${path.slice(0, 120)}: ${r.text.slice(0, 240)}`).toEqual([status, field]);
  }
  expect(failures).toEqual([]);
}

describe("decision chains and performance (/api/ai-chains, /api/performance)", () => {
  it("ranges at the instants' bounds and backwards, ids that are no UUID, another user's figures, the admin's views as a trader, the graph without its store", async () => {
    await check([
      ["trader", "GET", `/api/ai-chains/summary?from=${at("2024-01-02T00:00:00Z")}&to=${at("2024-01-01T00:00:00Z")}`, undefined, 400, "from"],
      ["trader", "GET", `/api/ai-chains/summary?from=${at("0001-01-01T00:00:00Z")}`, undefined, 400, "from"],
      ["trader", "GET", `/api/ai-chains/summary?to=${at("9999-12-31T23:59:59Z")}`, undefined, 400, "to"],
      ["trader", "GET", "/api/ai-chains/summary?strategyId=not-a-uuid", undefined, 400, "strategyId"],
      ["trader", "GET", "/api/ai-chains/summary/all", undefined, 403, undefined],
      ["trader", "GET", `/api/ai-chains/chains/${UUID}`, undefined, 404, undefined],
      ["trader", "GET", "/api/ai-chains/chains/%00", undefined, 400, "*"],
      ["trader", "GET", `/api/ai-chains/chains/${UUID}/graph`, undefined, 404, undefined],
      ["admin", "GET", `/api/ai-chains/chains/${UUID.toUpperCase()}`, undefined, 404, undefined],
      ["trader", "GET", "/api/performance/daily?strategy=a%20b", undefined, 400, "strategy"],
      ["trader", "GET", "/api/performance/daily?strategy=constructor", undefined, 200, undefined],
      ["trader", "GET", `/api/performance/users/${UUID}`, undefined, 403, undefined],
      ["admin", "GET", "/api/performance/users/not-a-uuid", undefined, 400, "userId"],
      ["trader", "POST", "/api/performance/rollup", undefined, 403, undefined],
      ["admin", "POST", "/api/performance/rollup?full=maybe", undefined, 400, "full"],
    ]);
  });
});

describe("surveillance, datastores and traces (/api/compliance, /api/database, /api/debug)", () => {
  it("admin views as a trader, a userId that is none, parameters a route does not take, names and ids out of their patterns, internal paths", async () => {
    await check([
      ["trader", "GET", "/api/compliance/alerts", undefined, 403, undefined],
      ["admin", "GET", "/api/compliance/alerts?userId=xyz", undefined, 400, "userId"],
      ["trader", "GET", `/api/compliance/alerts/mine?userId=${UUID}`, undefined, 400, "userId"],
      ["trader", "GET", "/api/compliance/alerts/mine?limit=0", undefined, 400, "limit"],
      ["trader", "GET", "/api/database/datastores/postgres", undefined, 403, undefined],
      ["admin", "GET", "/api/database/datastores/mysql", undefined, 404, undefined],
      ["admin", "GET", `/api/database/datastores/${"p".repeat(33)}`, undefined, 400, "name"],
      ["trader", "GET", "/api/database/migrations", undefined, 403, undefined],
      ["trader", "GET", "/api/debug/traces", undefined, 403, undefined],
      ["admin", "GET", "/api/debug/traces/zz", undefined, 400, "traceId"],
      ["admin", "GET", `/api/debug/traces/${HEX32}`, undefined, 404, undefined],
      ["admin", "GET", `/api/debug/requests/${"r".repeat(129)}`, undefined, 414, "url"],
      ["admin", "GET", `/api/debug/requests/${encodeURIComponent("a/b c")}`, undefined, 400, "requestId"],
      ["admin", "GET", `/api/debug/errors/${HEX32.toUpperCase()}`, undefined, 400, "fingerprint"],
      ["admin", "GET", "/api/debug/traces?service=Order_Management", undefined, 400, "service"],
      ["admin", "POST", "/api/debug/internal/otlp/v1/traces", { resourceSpans: [] }, 404, undefined],
    ]);
  });
});

describe("market data, models and revenue (/api/market, /api/ml, /api/revenue)", () => {
  it("symbols out of their pattern or unknown, internal paths, predictions of no or repeated symbols, model changes as a trader, revenue periods at their bounds", async () => {
    await check([
      ["trader", "GET", "/api/market/last/btcusdt", undefined, 400, "symbol"],
      ["trader", "GET", "/api/market/last/ZZZZUSDT", undefined, 404, undefined],
      ["admin", "POST", "/api/market/internal/bars", { bars: [] }, 404, undefined],
      ["trader", "POST", "/api/ml/predict", { symbols: [] }, 400, "symbols"],
      ["trader", "POST", "/api/ml/predict", { symbols: ["BTCUSDT", "BTCUSDT"] }, 400, "symbols"],
      // A required body left out: validated before the role, and named (it was "must be object", naming nothing).
      ["trader", "POST", "/api/ml/models/rollback", undefined, 400, "body"],
      ["trader", "POST", "/api/ml/models/rollback", { fromVersion: "x" }, 403, undefined],
      ["admin", "POST", `/api/ml/models/${"v".repeat(300)}/promote`, undefined, 414, "url"],
      ["admin", "POST", "/api/ml/models/bad%20version/promote", undefined, 400, "version"],
      ["trader", "GET", "/api/ml/models/%00", undefined, 400, "*"],
      ["trader", "GET", "/api/revenue/", undefined, 403, undefined],
      ["admin", "GET", "/api/revenue/?periodDays=0", undefined, 400, "periodDays"],
      ["admin", "GET", "/api/revenue/?periodDays=3661", undefined, 400, "periodDays"],
      ["admin", "GET", `/api/revenue/?asOf=${at("0001-01-01T00:00:00Z")}`, undefined, 400, "asOf"],
      ["admin", "GET", `/api/revenue/?asOf=${at("9999-12-31T23:59:59Z")}`, undefined, 400, "asOf"],
    ]);
  });
});

describe("the book, portfolio and usage (/api/trading, /api/portfolio, /api/usage)", () => {
  it("limits past their bounds, parameters a route does not take, cursors that are none, backwards ranges, another user's usage, internal paths", async () => {
    await check([
      ["trader", "GET", "/api/trading/book?limit=1001", undefined, 400, "limit"],
      ["trader", "GET", "/api/trading/last/BTCUSDT?x=1", undefined, 400, "x"],
      // Live-mode routes: a paper engine has none.
      ["trader", "GET", "/api/trading/live/refusals", undefined, 404, undefined],
      ["admin", "POST", `/api/trading/live/refusals/${UUID}/release`, undefined, 404, undefined],
      ["trader", "GET", "/api/portfolio/fills?before=garbage", undefined, 400, "before"],
      ["trader", "GET", "/api/portfolio/fills?limit=1001", undefined, 400, "limit"],
      ["trader", "GET", "/api/portfolio/?limit=1", undefined, 400, "limit"],
      ["trader", "GET", `/api/usage/?from=${at("2024-01-02T00:00:00Z")}&to=${at("2024-01-01T00:00:00Z")}`, undefined, 400, "from"],
      ["trader", "GET", "/api/usage/all", undefined, 403, undefined],
      ["trader", "GET", "/api/usage/?before=!!!", undefined, 400, "before"],
      ["admin", "GET", `/api/usage/internal/usage/units?userId=${traderId}&metric=api_requests`, undefined, 404, undefined],
    ]);
  });
});

describe("the gateway's own answers name no internal service", () => {
  it("a routed service that is not running is a 502 naming its public route; /api/health keys the fleet by public route", async () => {
    const stopped = catalog.filter((s) => s.route && !SERVICES.includes(s.name));
    expect(stopped.length).toBeGreaterThan(3);
    for (const s of stopped) {
      const r = await fetch(`${p.gatewayUrl}/api/${s.route}/x`, { headers: { authorization: `Bearer ${tokens.trader}` } });
      const text = await r.text();
      // A 502 is the honest answer here (the service is down); everything else the oracle refuses, it must not show.
      expect([r.status, JSON.parse(text).error.code, judge(r.status, text, r.headers.get("content-type"), internalPorts).problems], text).toEqual([502, "UPSTREAM_UNAVAILABLE", ["status 502"]]);
      expect(JSON.parse(text).error.message).toBe(`the service at /api/${s.route}/ is unavailable`);
    }
    const health = await fetch(`${p.gatewayUrl}/api/health`);
    const body = (await health.json()) as { services: Record<string, unknown> };
    expect(Object.keys(body.services).filter((k) => internalNamesIn(k).length > 0 || !k.startsWith("/api/"))).toEqual([]);
    expect(body.services["/api/users/"]).toMatchObject({ status: "ok" });
    expect(body.services[`/api/${stopped[0].route}/`]).toMatchObject({ status: "down" });
  });
});
