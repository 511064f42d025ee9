/**
 * The paged listings' `before` cursor read in the page's own statement (kit cursorPage), on real
 * PostgreSQL: order-management's orders, portfolio-manager's fills and user-management's API keys.
 * Each listing was two statements (is the cursor one of the caller's rows? then the page, reading the
 * cursor row again), so a cursor deleted between them answered an empty page where the check had
 * passed, and every page after the first cost two round trips. Now: one statement; the pages walk
 * every row once, in order; an unknown or another user's cursor answers undefined (the routes' 400
 * naming `before`), never a page.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import type { Queryable } from "../../services/src/kit";
import { listOrders } from "../../services/src/services/order-management/data";
import { fillsOf } from "../../services/src/services/portfolio-manager/data";
import { listApiKeys } from "../../services/src/services/user-management/api-key-data";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const [alice, bob] = [randomUUID(), randomUUID()];
const N = 7;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  for (const u of [alice, bob]) {
    await pool.query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", [u, `${u}@example.test`]);
    // Rows of one instant among others: the id orders those of one time.
    await pool.query(
      `INSERT INTO om_orders (order_id, user_id, client_order_id, request_hash, symbol, side, type, quantity, status, filled_quantity, created_at)
       SELECT gen_random_uuid(), $1, 'c', 'h', 'BTCUSDT', 'buy', 'market', 1, 'filled', 1, '2027-01-01T00:00:00Z'::timestamptz + make_interval(secs => g / 3) FROM generate_series(1, $2::int) AS g`,
      [u, N],
    );
    await pool.query(
      `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
       SELECT 'cp-' || g || '-' || $1, 'o', $1, 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, '2027-01-01T00:00:00Z'::timestamptz + make_interval(secs => g / 3) FROM generate_series(1, $2::int) AS g`,
      [u, N],
    );
    await pool.query(
      `INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at)
       SELECT $1::uuid, 'k' || g, 'cp' || g || $3, '\\x00', '2027-01-01T00:00:00Z'::timestamptz + make_interval(secs => g / 3) FROM generate_series(1, $2::int) AS g`,
      [u, N, u.replaceAll("-", "")],
    );
  }
}, 300_000);

afterAll(async () => {
  await pool?.end();
});

/** A listing as the routes call it: its rows (limit + 1 read), or undefined for a cursor not the caller's. */
type Listing = (db: Queryable, userId: string, limit: number, before: string | null) => Promise<Array<object> | undefined>;
const listings: Array<[string, Listing, (row: never) => string]> = [
  ["orders", (db, u, limit, before) => listOrders(db, u, { status: null, idempotencyKey: null, before }, limit), (r: { order_id: string }) => r.order_id],
  ["fills", fillsOf, (r: { fillId: string }) => r.fillId],
  ["API keys", listApiKeys, (r: { id: string }) => r.id],
];

/** `db` that counts the statements sent through it. */
function counting(): { db: Queryable; sent: () => number } {
  let n = 0;
  return { db: { query: (text: string, values?: unknown[]) => (n++, pool.query(text, values)) } as unknown as Queryable, sent: () => n };
}

describe("a listing's page and its cursor, in one statement", () => {
  for (const [name, list, idOf] of listings) {
    it(`${name}: every page is one statement, and the pages walk every row once, in the first read's order`, async () => {
      const all = ((await list(pool, alice, 100, null)) ?? []).map((r) => idOf(r as never));
      expect(all).toHaveLength(N);
      for (const limit of [1, 2, 3]) {
        const walked: string[] = [];
        let before: string | null = null;
        for (let i = 0; i < 2 * N; i++) {
          const c = counting();
          const rows = await list(c.db, alice, limit + 1, before);
          expect(c.sent(), "statements a page").toBe(1);
          expect(rows).toBeDefined();
          walked.push(...rows!.slice(0, limit).map((r) => idOf(r as never)));
          if (rows!.length <= limit) break;
          before = idOf(rows![limit - 1] as never);
        }
        expect(walked, `limit ${limit}`).toEqual(all);
      }
    });

    it(`${name}: the answer is in the page's order by its own ORDER BY, the nested loop and index scans disabled too`, async () => {
      const expected = ((await list(pool, alice, 100, null)) ?? []).map((r) => idOf(r as never));
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        // The order held only because the page joins the cursor check in a nested loop; the statement now
        // orders its answer by the page's key. (This join on no key is planned as a nested loop even so:
        // the settings make the planner's other choices dearer, they cannot rule it out.)
        await client.query("SET LOCAL enable_nestloop = off; SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off");
        const rows = (await list(client as unknown as Queryable, alice, 100, null)) ?? [];
        expect(rows.map((r) => idOf(r as never))).toEqual(expected);
        const before = expected[1];
        expect(((await list(client as unknown as Queryable, alice, 100, before)) ?? []).map((r) => idOf(r as never))).toEqual(expected.slice(2));
        // What orders the page is no part of a row's answer.
        for (const r of rows) expect(Object.keys(r)).not.toContain("appliedSeq");
      } finally {
        await client.query("ROLLBACK");
        client.release();
      }
    });

    it(`${name}: a cursor that is not one of the caller's rows answers no page, in one statement`, async () => {
      const bobs = idOf(((await list(pool, bob, 1, null)) ?? [])[0] as never);
      const oldest = ((await list(pool, alice, 100, null)) ?? []).map((r) => idOf(r as never)).at(-1)!;
      for (const cursor of [bobs, name === "fills" ? "no-such-fill" : randomUUID()]) {
        const c = counting();
        expect(await list(c.db, alice, 10, cursor), cursor).toBeUndefined();
        expect(c.sent()).toBe(1);
      }
      // The caller's oldest row: an empty page, not a refusal.
      expect(await list(pool, alice, 10, oldest)).toEqual([]);
    });
  }
});
