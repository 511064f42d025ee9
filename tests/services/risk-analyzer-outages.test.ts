/**
 * risk-analyzer's answers when a datastore is down, unreachable or switched off, on real servers
 * (PostgreSQL, ClickHouse 18.16, a private Redis as Dragonfly): the platform's outage answer (503
 * DATASTORE_UNAVAILABLE with Retry-After, as the kit's error handler gives for the drivers' transient
 * errors), or a 503 saying what is not available, and never an internal name in the body; the log
 * names the datastore. Before (found by session 38's hunt), the bodies said "Dragonfly, which holds
 * the enforced trading state, did not answer", "VaR needs ClickHouse, which is disabled in this
 * stack" (code CLICKHOUSE_DISABLED) and "only 0 candles of X in ClickHouse".
 */
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadAddress, startRedis, type RedisServer } from "../harness";
import { useServers } from "../harness/shared";
import { migrateAll } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import riskAnalyzer from "../../services/src/services/risk-analyzer";
import type { pg } from "../harness";

const srv = useServers("postgres", "kafka", "clickhouse");
const INTERNAL_NAMES = /dragonfly|redis|clickhouse|postgres|kafka|ECONN|127\.0\.0\.1|localhost/i;
let pool: InstanceType<typeof pg.Pool>;
let redis: RedisServer;
const services: Service[] = [];
const logs: string[] = [];
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };

async function start(env: Record<string, string>): Promise<Service> {
  const logStream = new Writable({ write: (chunk, _enc, done) => (logs.push(String(chunk)), done()) });
  const svc = await createService(riskAnalyzer, { env: { LOG_LEVEL: "info", POSTGRES_URL: srv.postgres.url, TRADING_STATE_RECONCILE_MS: "600000", ...env }, defaultMetrics: false, logStream });
  services.push(svc);
  return svc;
}

async function call(svc: Service, method: "GET" | "PUT", url: string, headers: Record<string, string>, payload?: Record<string, unknown>) {
  const r = await svc.app.inject({ method, url, headers, payload });
  return { status: r.statusCode, body: r.json(), text: r.body, retryAfter: r.headers["retry-after"] };
}

/** The platform's outage answer, naming nothing internal. */
function expectOutageAnswer(r: Awaited<ReturnType<typeof call>>) {
  expect([r.status, r.body.error?.code, r.retryAfter]).toEqual([503, "DATASTORE_UNAVAILABLE", "1"]);
  expect(r.body.error.message).toMatch(/^A datastore is unavailable/);
  expect(r.text).not.toMatch(INTERNAL_NAMES);
}

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  redis = await startRedis({ persistent: false });
}, 600_000);
afterAll(async () => {
  for (const s of services) await s.close();
  await redis?.stop();
  await pool?.end();
});

describe("risk-analyzer names no datastore to its clients", () => {
  it("Dragonfly refusing the kill switch's write, then stopped: the outage answer; the log names it", async () => {
    const svc = await start({ DRAGONFLY_URL: redis.url, ...srv.clickhouse.env });
    const admin0 = new (await import("../harness")).Redis(redis.url);
    await admin0.config("SET", "maxmemory-policy", "noeviction");
    await admin0.config("SET", "maxmemory", "1");
    try {
      const r = await call(svc, "PUT", "/trading-state/global", admin, { state: "halted", reason: "during an outage" });
      expectOutageAnswer(r);
      expect(r.body.error.message).toMatch(/not changed/);
    } finally {
      await admin0.config("SET", "maxmemory", "0");
      admin0.disconnect();
    }
    expect(logs.join("")).toMatch(/Dragonfly, which holds the enforced trading state, did not answer/);
    // Stopped: a read of the trading state.
    await redis.stop();
    expectOutageAnswer(await call(svc, "GET", "/trading-state", trader));
  }, 120_000);

  it("ClickHouse unreachable: the outage answer to a VaR request", async () => {
    const svc = await start({ ...srv.clickhouse.env, CLICKHOUSE_URL: `http://${await deadAddress()}` });
    expectOutageAnswer(await call(svc, "GET", "/var?symbol=BTCUSDT", trader));
  }, 120_000);

  it("a symbol without enough closes: a 404 that names no datastore", async () => {
    const svc = await start({ ...srv.clickhouse.env });
    const r = await call(svc, "GET", "/var?symbol=NOSUCHSYM", trader);
    expect([r.status, r.body.error.code]).toEqual([404, "NOT_ENOUGH_DATA"]);
    expect(r.text).not.toMatch(INTERNAL_NAMES);
  });

  it("Dragonfly and ClickHouse switched off: 503 saying what is not available, naming neither; the log does", async () => {
    const before = logs.length;
    const svc = await start({});
    const v = await call(svc, "GET", "/var?symbol=BTCUSDT", trader);
    expect([v.status, v.body.error.code]).toEqual([503, "VAR_UNAVAILABLE"]);
    const k = await call(svc, "GET", "/trading-state", trader);
    expect([k.status, k.body.error.code]).toEqual([503, "TRADING_STATE_UNAVAILABLE"]);
    for (const r of [v, k]) expect(r.text).not.toMatch(INTERNAL_NAMES);
    const logged = logs.slice(before).join("");
    expect(logged).toMatch(/ClickHouse/);
    expect(logged).toMatch(/Dragonfly is disabled/);
  });
});
