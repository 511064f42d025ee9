/**
 * Hostile page cursors on real servers (PostgreSQL, ClickHouse 18.16, Redis):
 * usage-monitoring's `before` (base64url JSON, opaque to clients) and portfolio-manager's fills
 * `before` (a fill id), sent by a client that crafts them: malformed base64, JSON of the wrong shape,
 * strings the request guards would have refused in the query itself (U+0000, lone surrogates) but
 * that arrive hidden in the base64, huge values, another user's place in the order. Each is a 400
 * naming `before` or a page of the caller's own rows: never a 5xx, never another user's row.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migrateAll, migratedClickHouse } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import usageMonitoring from "../../services/src/services/usage-monitoring";
import portfolioManager from "../../services/src/services/portfolio-manager";
import centralHub from "../../services/src/services/central-hub";
import { UsageStore } from "../../services/src/services/usage-monitoring/store";
import { judge } from "../hostile/oracle";
import type { pg } from "../harness";

const srv = useServers("postgres", "kafka", "clickhouse", "redis");
let pool: InstanceType<typeof pg.Pool>;
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
let usage: Service;
let portfolio: Service;
let hub: Service;
const HUB_LOCK_MAX_TTL_MS = 60_000;

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  ch = await migratedClickHouse(srv.env);
  const env = { ...srv.env, LOG_LEVEL: "silent" };
  usage = await createService(usageMonitoring, { env, defaultMetrics: false });
  portfolio = await createService(portfolioManager, { env, defaultMetrics: false });
  hub = await createService(centralHub, { env: { LOG_LEVEL: "silent", DRAGONFLY_URL: srv.redis.url, HUB_LOCK_MAX_TTL_MS: String(HUB_LOCK_MAX_TTL_MS) }, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await usage?.close();
  await portfolio?.close();
  await hub?.close();
  await ch?.close();
  await pool?.end();
});

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
/** base64url of raw bytes (for invalid UTF-8). */
const b64bytes = (bytes: number[]) => Buffer.from(bytes).toString("base64url");

async function get(svc: Service, url: string, headers: Record<string, string>) {
  const r = await svc.app.inject({ method: "GET", url, headers });
  return { status: r.statusCode, text: r.body, type: String(r.headers["content-type"] ?? ""), body: r.json() };
}

describe("usage cursors a client crafts", () => {
  const from = "2028-03-01T00:00:00.000Z";
  const to = "2028-04-01T00:00:00.000Z";
  const period = `from=${from}&to=${to}`;
  // Sorted so that `victim` precedes `trader` in the listing's order.
  const [victim, trader] = [randomUUID(), randomUUID()].sort();
  const asTrader = { "x-user-id": trader, "x-user-role": "trader", "x-auth-method": "jwt" };
  const asAdmin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

  beforeAll(async () => {
    const ts = Date.parse("2028-03-02T00:00:00.000Z");
    const events = [victim, trader].flatMap((userId) =>
      ["/api/orders", "/api/portfolio"].map((route) => ({ eventId: randomUUID(), ts, userId, apiKeyId: null, route, method: "GET", status: 200, latencyMs: 1 })),
    );
    await new UsageStore(ch).insert(events);
  });

  const hostile: Array<[string, string]> = [
    ["not base64", "%2A%2A%2A"],
    ["base64 of not JSON", b64("not json")],
    ["base64 of invalid UTF-8", b64bytes([0xc0, 0xaf, 0xff, 0xfe])],
    ["JSON object", b64('{"user":"a","route":"b","key":"c"}')],
    ["JSON null", b64("null")],
    ["JSON number", b64("1e309")],
    ["two strings", b64('["a","b"]')],
    ["four strings", b64('["a","b","c","d"]')],
    ["numbers", b64("[1,2,3]")],
    ["nested arrays", b64('[["a"],["b"],["c"]]')],
    ["U+0000 in a string", b64('["a\\u0000b","/api/orders",""]')],
    ["raw NUL byte in a string", b64('["a\u0000b","/api/orders",""]')],
    ["lone high surrogate", b64('["\\ud800","/api/orders",""]')],
    ["lone low surrogate", b64('["a","\\udc00",""]')],
    ["quote and backslash", b64(`["a'\\\\","b' OR 1=1 --",""]`)],
    ["3,000-character strings", b64(JSON.stringify(["x".repeat(1000), "y".repeat(1000), "z".repeat(1000)]))],
    ["__proto__ array", b64('{"__proto__":["a","b","c"],"length":3}')],
  ];

  for (const [who, base, headers] of [["trader", "/", asTrader], ["admin", "/all", asAdmin]] as const) {
    it(`${who}: a crafted before is a 400 naming before or a page, never a 5xx or an internal detail`, async () => {
      const problems: string[] = [];
      for (const [label, before] of hostile) {
        const r = await get(usage, `${base}?${period}&before=${before}`, headers);
        const v = judge(r.status, r.text, r.type);
        if (!v.ok) problems.push(`${label}: ${r.status} ${v.problems.join(", ")} ${r.text.slice(0, 200)}`);
        else if (r.status !== 200 && (r.status !== 400 || r.body.error?.field !== "before")) problems.push(`${label}: ${r.status} ${r.text.slice(0, 200)}`);
        else if (who === "trader" && r.status === 200 && r.body.usage.some((u: { userId: string }) => u.userId !== trader)) problems.push(`${label}: another user's rows`);
      }
      expect(problems).toEqual([]);
    });
  }

  it("a trader's forged cursor (another user's place in the order) still answers only the trader's rows", async () => {
    for (const forged of [[victim, "", ""], ["", "", ""], [victim, "/api/orders", ""], ["\u0000", "", ""]]) {
      const r = await get(usage, `/?${period}&before=${b64(JSON.stringify(forged))}`, asTrader);
      if (r.status === 400) expect(r.body.error.field).toBe("before");
      else {
        expect(r.status).toBe(200);
        expect(r.body.usage.length).toBeGreaterThan(0);
        expect(r.body.usage.every((u: { userId: string }) => u.userId === trader)).toBe(true);
      }
    }
  });

  it("limit edge values: 1 and 1000 answer pages; 0, 1001, -1, 1.5, huge and NUL are a 400 naming limit", async () => {
    for (const limit of ["1", "1000"]) expect((await get(usage, `/?${period}&limit=${limit}`, asTrader)).status).toBe(200);
    for (const limit of ["0", "1001", "-1", "1.5", "99999999999999999999", "%00"]) {
      const r = await get(usage, `/?${period}&limit=${limit}`, asTrader);
      expect([limit, r.status, r.body.error?.field]).toEqual([limit, 400, "limit"]);
    }
  });
});

describe("fills cursors a client crafts", () => {
  const alice = randomUUID();
  const bob = randomUUID();
  const asAlice = { "x-user-id": alice, "x-user-role": "trader", "x-auth-method": "jwt" };

  beforeAll(async () => {
    for (const [user, id] of [[alice, `h-a1-${alice}`], [alice, `h-a2-${alice}`], [bob, `h-b1-${bob}`]]) {
      await pool.query(
        `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
         VALUES ($1, 'o-1', $2, 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, now())`,
        [id, user],
      );
    }
  });

  it("another user's fill id, an unknown id, garbage, SQL, NUL: a 400 naming before; never bob's fills", async () => {
    const problems: string[] = [];
    for (const before of [`h-b1-${bob}`, randomUUID(), "no-such-fill", encodeURIComponent("' OR '1'='1"), encodeURIComponent(`h-a1-${alice}' OR user_id <> '`), "%00", "%ED%A0%80", "%zz", "x".repeat(200), encodeURIComponent("%"), encodeURIComponent("_")]) {
      const r = await get(portfolio, `/fills?before=${before}`, asAlice);
      const v = judge(r.status, r.text, r.type);
      if (!v.ok || r.status !== 400 || r.body.error?.field !== "before") problems.push(`${before.slice(0, 40)}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    expect(problems).toEqual([]);
    const own = await get(portfolio, `/fills?before=h-a2-${alice}`, asAlice);
    expect(own.status).toBe(200);
    expect(own.body.fills.every((f: { fillId: string }) => f.fillId.endsWith(alice))).toBe(true);
  });
});

describe("central-hub lock names and TTLs a client crafts", () => {
  const acquire = (name: string, body: unknown) => hub.app.inject({ method: "POST", url: `/locks/${name}/acquire`, payload: body as Record<string, unknown> });

  it("odd names and TTLs are a 4xx naming the field; a lock's fence counter lives at most twice the longest TTL", async () => {
    const problems: string[] = [];
    for (const name of ["%00", "%ED%A0%80", "%C0%AF", "a%2Fb", "..%2F..%2Fx", "a%7Cb", "%F0%9F%98%80", "x".repeat(101), "x".repeat(5000), "-lead", "a%20b"]) {
      const r = await acquire(name, { owner: "job", ttlMs: 1000 });
      const v = judge(r.statusCode, r.body, String(r.headers["content-type"] ?? ""));
      // A 4xx naming the name, or the URL when the kit's URL guards refused it first (bad encoding, length).
      if (!v.ok || r.statusCode < 400 || r.statusCode >= 500 || !["name", "url"].includes(r.json().error?.field)) problems.push(`${name.slice(0, 30)}: ${r.statusCode} ${r.body.slice(0, 160)}`);
    }
    for (const ttlMs of [0, 99, HUB_LOCK_MAX_TTL_MS + 1, 1e21, -1, 1.5, "1000", null]) {
      const r = await acquire("ttl-probe", { owner: "job", ttlMs });
      if (r.statusCode !== 400 || r.json().error?.field !== "ttlMs") problems.push(`ttlMs ${String(ttlMs)}: ${r.statusCode} ${r.body.slice(0, 160)}`);
    }
    expect(problems).toEqual([]);
    const ok = await acquire("a.B:c-1", { owner: "job", ttlMs: HUB_LOCK_MAX_TTL_MS });
    expect(ok.statusCode, ok.body).toBe(200);
    const pttl = await hub.app.redis.pttl("hub:lock-fence:a.B:c-1");
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2 * HUB_LOCK_MAX_TTL_MS);
  });
});
