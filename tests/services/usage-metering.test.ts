/**
 * usage-monitoring meters requests to the millisecond (ClickHouse migration 0021, `usage_events_ms`),
 * on a real ClickHouse (the oldest we meet, 18.16: no DateTime64, so a DateTime and its millisecond).
 * Before, `usage_events.at` held whole seconds and the bounds of a query were cut to the second: a
 * request in the second of a plan change went to the window after it (priced on the new plan), and
 * the window [12:00:00.000, 12:00:00.500) counted nothing. Rows written before the change (whole
 * seconds) are still read as they were: a window split then counts each of them once.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { clickHouseUnder, migratedClickHouse } from "../helpers/schemas";
import { UsageStore } from "../../services/src/services/usage-monitoring/store";
import type { UsageEventMsg } from "../../services/src/business/events";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
let store: UsageStore;

beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
  store = new UsageStore(ch);
}, 300_000);

afterAll(async () => {
  await ch?.close();
});

const SECOND = Date.parse("2026-11-02T12:00:00.000Z");
const at = (ms: number) => new Date(SECOND + ms);
const request = (userId: string, ms: number): UsageEventMsg => ({ eventId: randomUUID(), ts: SECOND + ms, userId, apiKeyId: null, route: "/api/orders", method: "POST", status: 200, latencyMs: 3 });

describe("billable units to the millisecond", () => {
  it("two requests in one second fall on either side of a boundary inside it", async () => {
    const userId = randomUUID();
    await store.insert([request(userId, 200), request(userId, 700), request(userId, 999), request(userId, 1000)]);
    expect(await store.billableUnits(userId, at(0), at(500))).toBe(1);
    expect(await store.billableUnits(userId, at(500), at(1000))).toBe(2);
    expect(await store.billableUnits(userId, at(1000), at(1001))).toBe(1);
    expect(await store.billableUnits(userId, at(0), at(2000))).toBe(4);
    expect(await store.billableUnits(userId, at(200), at(201))).toBe(1);
    expect(await store.billableUnits(userId, at(201), at(700))).toBe(0);
  });

  it("the per-route breakdown counts to the millisecond too", async () => {
    const userId = randomUUID();
    await store.insert([request(userId, 100), request(userId, 600)]);
    const [row] = await store.breakdown(at(500), at(1000), userId);
    expect(row).toMatchObject({ userId, route: "/api/orders", requests: 1 });
  });

  it("rows written in whole seconds before the change are counted once across a split inside their second", async () => {
    const userId = randomUUID();
    const legacy = (ms: number) => ({ event_id: randomUUID(), at: new Date(SECOND + ms).toISOString().slice(0, 19).replace("T", " "), user_id: userId, api_key_id: "", route: "/api/orders", method: "GET", status: 200, latency_ms: 1 });
    await ch.insert("usage_events", [legacy(0), legacy(1000), legacy(1000)]);
    await store.insert([request(userId, 1200)]);
    const before = await store.billableUnits(userId, at(-1000), at(1500));
    const after = await store.billableUnits(userId, at(1500), at(3000));
    // A legacy row of the second 1500 falls in is counted, as before, in the window that starts in it.
    expect([before, after]).toEqual([2, 2]);
    expect(await store.billableUnits(userId, at(-1000), at(3000))).toBe(4);
  });
});

describe("one user's usage reads that user's rows", () => {
  // GET /api/usage (any trader, the whole period the route allows): the filter was
  // `({all} = 1 OR user_id = ...)`, which ClickHouse cannot match to the tables' key (user_id, at, ...),
  // so it read every user's rows of the period; here 600,000 rows of others for 2 of the caller's.
  it("a trader's breakdown reads at most a few granules, whoever else used the platform", async () => {
    const userId = randomUUID();
    const day = "2026-11-03 00:00:00";
    await ch.command(
      `INSERT INTO usage_events_ms SELECT concat('other-', toString(number)), toDateTime('${day}') + intDiv(number, 10), 0, concat('user-', toString(number % 5000)), '', '/api/orders', 'GET', 200, 1.0 FROM numbers(300000)`,
    );
    await ch.command(
      `INSERT INTO usage_events SELECT concat('other-old-', toString(number)), toDateTime('${day}') + intDiv(number, 10), concat('user-', toString(number % 5000)), '', '/api/orders', 'GET', 200, 1.0 FROM numbers(300000)`,
    );
    const t0 = Date.parse("2026-11-03T01:00:00.000Z");
    await store.insert([0, 1].map((i) => ({ eventId: randomUUID(), ts: t0 + i, userId, apiKeyId: null, route: "/api/orders", method: "GET", status: 200, latencyMs: 2 })));
    const from = new Date("2026-11-01T00:00:00.000Z");
    const to = new Date("2026-12-01T00:00:00.000Z");
    const rows = await new UsageStore(clickHouseUnder(ch, { max_rows_to_read: "100000" })).breakdown(from, to, userId);
    expect(rows).toEqual([expect.objectContaining({ userId, route: "/api/orders", requests: 2, errors: 0 })]);
    // Every user's (admin, /api/usage/all) still reads them all: 5,000 users' rows, the first 1,000 answered.
    const all = await store.breakdown(from, to);
    expect(all).toHaveLength(1000);
    expect(all.find((r) => r.userId === "user-0")).toMatchObject({ requests: 120 });
  });
});
