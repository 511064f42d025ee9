/**
 * Paged listings on real servers (PostgreSQL, ClickHouse 18.16, Kafka for the services' consumers):
 * `GET /api/usage/all` (and a trader's `GET /api/usage`) of usage-monitoring and
 * `GET /api/portfolio/fills` of portfolio-manager answer pages with `nextBefore`, the `before` of the
 * next page (null on the last), in an order with a tie-breaker, so walking the pages answers every
 * row once. Before (found by session 38's hunt), usage answered its first 1,000 rows without saying
 * more existed, and fills the latest ones with no way to older ones. Also: usage's period error
 * names the field the client sent (`to` when only `to` was sent; it named `from`), and a period is
 * bounded (USAGE_MAX_DAYS, USAGE_ALL_MAX_DAYS; session 46).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migrateAll, migratedClickHouse } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import usageMonitoring from "../../services/src/services/usage-monitoring";
import portfolioManager from "../../services/src/services/portfolio-manager";
import { UsageStore } from "../../services/src/services/usage-monitoring/store";
import type { pg } from "../harness";

const srv = useServers("postgres", "kafka", "clickhouse");
let pool: InstanceType<typeof pg.Pool>;
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
let usage: Service;
let portfolio: Service;
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  ch = await migratedClickHouse(srv.env);
  const env = { ...srv.env, LOG_LEVEL: "silent" };
  usage = await createService(usageMonitoring, { env, defaultMetrics: false });
  portfolio = await createService(portfolioManager, { env, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await usage?.close();
  await portfolio?.close();
  await ch?.close();
  await pool?.end();
});

async function get(svc: Service, url: string, headers: Record<string, string>) {
  const r = await svc.app.inject({ method: "GET", url, headers });
  return { status: r.statusCode, body: r.json() };
}

/** Every page of a listing from `url` (which has a `?`), following nextBefore; the pages' sizes too. */
async function walk(svc: Service, url: string, headers: Record<string, string>, rows: "usage" | "fills") {
  const all: Array<Record<string, unknown>> = [];
  const sizes: number[] = [];
  let before: string | null = null;
  for (let i = 0; i < 100; i++) {
    const r = await get(svc, before === null ? url : `${url}&before=${encodeURIComponent(before)}`, headers);
    expect(r.status).toBe(200);
    all.push(...r.body[rows]);
    sizes.push(r.body[rows].length);
    expect(r.body).toHaveProperty("nextBefore");
    before = r.body.nextBefore;
    if (before === null) return { all, sizes };
  }
  throw new Error("more than 100 pages");
}

describe("usage listings in pages", () => {
  const from = "2027-05-01T00:00:00.000Z";
  const to = "2027-06-01T00:00:00.000Z";
  const period = `from=${from}&to=${to}`;
  const t0 = Date.parse("2027-05-02T00:00:00.000Z");
  const users = [randomUUID(), randomUUID(), randomUUID()];

  beforeAll(async () => {
    // 3 users x 2 routes x (no key, one key): 12 rows of the breakdown, several of them equal in
    // user and route (the API key is their tie-breaker).
    const store = new UsageStore(ch);
    const events = [];
    for (const user of users)
      for (const route of ["/api/orders", "/api/portfolio"])
        for (const apiKeyId of [null, "key-1"]) events.push({ eventId: randomUUID(), ts: t0, userId: user, apiKeyId, route, method: "GET", status: 200, latencyMs: 1 });
    await store.insert(events);
  });

  it("GET /all walks every row once across pages, in (user, route, key) order; nextBefore null on the last", async () => {
    const whole = await get(usage, `/all?${period}`, admin);
    expect(whole.status).toBe(200);
    expect(whole.body.usage).toHaveLength(12);
    expect(whole.body.nextBefore).toBeNull();
    const { all, sizes } = await walk(usage, `/all?${period}&limit=5`, admin, "usage");
    expect(sizes).toEqual([5, 5, 2]);
    expect(all).toEqual(whole.body.usage);
    const keys = all.map((r) => `${r.userId} ${r.route} ${r.apiKeyId ?? ""}`);
    expect(new Set(keys).size).toBe(12);
    expect(keys).toEqual([...keys].sort());
    // A page that ends exactly at the last row says so.
    const exact = await get(usage, `/all?${period}&limit=12`, admin);
    expect([exact.body.usage.length, exact.body.nextBefore]).toEqual([12, null]);
  });

  it("a trader's own usage pages the same way and answers only their rows", async () => {
    const trader = { "x-user-id": users[1], "x-user-role": "trader", "x-auth-method": "jwt" };
    const { all, sizes } = await walk(usage, `/?${period}&limit=3`, trader, "usage");
    expect(sizes).toEqual([3, 1]);
    expect(all.every((r) => r.userId === users[1])).toBe(true);
  });

  it("without a limit, the first 1,000 rows as before, and nextBefore says more exist", async () => {
    await ch.command(
      `INSERT INTO usage_events_ms SELECT concat('many-', toString(number)), toDateTime('2027-07-02 00:00:00'), 0, concat('many-user-', toString(number)), '', '/api/orders', 'GET', 200, 1.0 FROM numbers(1001)`,
    );
    const first = await get(usage, `/all?from=2027-07-01T00:00:00.000Z&to=2027-08-01T00:00:00.000Z`, admin);
    expect(first.body.usage).toHaveLength(1000);
    expect(first.body.nextBefore).toEqual(expect.any(String));
    const rest = await get(usage, `/all?from=2027-07-01T00:00:00.000Z&to=2027-08-01T00:00:00.000Z&before=${first.body.nextBefore}`, admin);
    expect([rest.body.usage.length, rest.body.nextBefore]).toEqual([1, null]);
    expect(first.body.usage.some((r: { userId: string }) => r.userId === rest.body.usage[0].userId)).toBe(false);
  });

  it("a bad limit or before is a 400 naming it", async () => {
    for (const [query, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=ten", "limit"],
      ["before=not*a*cursor", "before"],
      [`before=${Buffer.from("not json").toString("base64url")}`, "before"],
      [`before=${Buffer.from(JSON.stringify(["a", "b"])).toString("base64url")}`, "before"],
      [`before=${Buffer.from(JSON.stringify([1, 2, 3])).toString("base64url")}`, "before"],
    ]) {
      const r = await get(usage, `/all?${period}&${query}`, admin);
      expect([query, r.status, r.body.error?.field]).toEqual([query, 400, field]);
    }
  });

  it("the period's error names the field the client sent", async () => {
    const onlyTo = await get(usage, "/all?to=2001-01-01T00:00:00.000Z", admin);
    expect([onlyTo.status, onlyTo.body.error.field]).toEqual([400, "to"]);
    const onlyFrom = await get(usage, "/all?from=2999-01-01T00:00:00.000Z", admin);
    expect([onlyFrom.status, onlyFrom.body.error.field]).toEqual([400, "from"]);
    const both = await get(usage, "/all?from=2027-05-02T00:00:00.000Z&to=2027-05-01T00:00:00.000Z", admin);
    expect([both.status, both.body.error.field]).toEqual([400, "from"]);
  });

  it("a period longer than the listing's bound is a 400 naming from and the key that sets it (session 46)", async () => {
    const trader = { "x-user-id": users[1], "x-user-role": "trader", "x-auth-method": "jwt" };
    // Before: any range was read, every page, e.g. the whole history from 1970 (every user's, for /all).
    for (const [url, headers, key, days] of [
      ["/all?from=1970-01-01T00:00:00.000Z", admin, "USAGE_ALL_MAX_DAYS", 31],
      ["/all?from=2027-05-01T00:00:00.000Z&to=2027-06-01T00:00:00.001Z", admin, "USAGE_ALL_MAX_DAYS", 31],
      ["/?from=1970-01-01T00:00:00.000Z&to=2027-06-01T00:00:00.000Z", trader, "USAGE_MAX_DAYS", 93],
      ["/?from=2027-03-01T00:00:00.000Z&to=2027-06-02T00:00:00.001Z", trader, "USAGE_MAX_DAYS", 93],
    ] as const) {
      const r = await get(usage, url, headers);
      expect([url, r.status, r.body.error?.field]).toEqual([url, 400, "from"]);
      expect(r.body.error.message).toBe(`a usage listing spans at most ${days} days (${key}): narrow from or to`);
    }
    // The bounds themselves are answered: 31 days of everyone's, 93 days of one's own.
    expect((await get(usage, "/all?from=2027-05-01T00:00:00.000Z&to=2027-06-01T00:00:00.000Z", admin)).status).toBe(200);
    const own = await get(usage, "/?from=2027-03-01T00:00:00.000Z&to=2027-06-02T00:00:00.000Z", trader);
    expect(own.status).toBe(200);
    expect(own.body.usage.length).toBeGreaterThan(0);
  });
});

describe("fills in pages", () => {
  const alice = randomUUID();
  const bob = randomUUID();
  const asAlice = { "x-user-id": alice, "x-user-role": "trader", "x-auth-method": "jwt" };

  beforeAll(async () => {
    // Alice: 7 fills, 4 of them in one microsecond (a sweep of the book), so a page boundary falls among equal times.
    const fills: Array<[string, string, string]> = [
      [alice, "f-a1", "2027-01-01T00:00:01.000001Z"],
      [alice, "f-a2", "2027-01-01T00:00:02.000002Z"],
      [alice, "f-a3", "2027-01-01T00:00:02.000002Z"],
      [alice, "f-a4", "2027-01-01T00:00:02.000002Z"],
      [alice, "f-a5", "2027-01-01T00:00:02.000002Z"],
      [alice, "f-a6", "2027-01-01T00:00:02.000003Z"],
      [alice, "f-a7", "2027-01-01T00:00:03Z"],
      [bob, "f-b1", "2027-01-01T00:00:02.000002Z"],
    ];
    for (const [user, id, ts] of fills) {
      await pool.query(
        `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
         VALUES ($1, 'o-1', $2, 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, $3::timestamptz)`,
        [`${id}-${user}`, user, ts],
      );
    }
  });

  it("walks every fill once, newest first, ties in one order; nextBefore null on the last page", async () => {
    const whole = await get(portfolio, "/fills", asAlice);
    expect(whole.status).toBe(200);
    expect(whole.body.fills.map((f: { fillId: string }) => f.fillId.slice(0, 4))).toEqual(["f-a7", "f-a6", "f-a5", "f-a4", "f-a3", "f-a2", "f-a1"]);
    expect(whole.body.nextBefore).toBeNull();
    for (const limit of [1, 2, 3]) {
      const { all, sizes } = await walk(portfolio, `/fills?limit=${limit}`, asAlice, "fills");
      expect(all).toEqual(whole.body.fills);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(7);
    }
  });

  it("a bad limit, or a before that is not one of the caller's fills, is a 400 naming it", async () => {
    for (const [query, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      [`before=f-b1-${bob}`, "before"],
      ["before=no-such-fill", "before"],
      [`before=${"x".repeat(201)}`, "before"],
    ]) {
      const r = await get(portfolio, `/fills?${query}`, asAlice);
      expect([query, r.status, r.body.error?.field]).toEqual([query, 400, field]);
    }
  });
});
