/**
 * portfolio-manager's `GET /fills` lists a trader's fills newest first (found by session 47's hunt):
 * a fill's time is market time (a paper market order's fill carries the last bar's close time), so
 * every market fill between two bars shares one fill_ts, and among those the order was the fill id's,
 * i.e. the random order id's: a buy and the sell after it in the same minute came in either order.
 * Now fills of one time are listed in the reverse of the order portfolio-manager applied them
 * (pm_fills.applied_seq, migration 0467), across pages too, and a page still reads its rows.
 * Real PostgreSQL; the fills applied as the consumer applies them (fills.ts applyFills).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import type { Queryable } from "../../services/src/kit";
import { fillsOf } from "../../services/src/services/portfolio-manager/data";
import { applyFills } from "../../services/src/services/portfolio-manager/fills";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
}, 120_000);
afterAll(async () => pool?.end());

const BAR_CLOSE = Date.parse("2027-03-01T00:00:59.999Z");
const fill = (userId: string, orderId: string, side: "buy" | "sell", ts = BAR_CLOSE): Fill => ({
  fillId: `${orderId}:1`, orderId, userId, symbol: "BTCUSDT", side, quantity: "1", price: "100", fee: "0.1", liquidity: "taker", ts,
});
async function apply(batch: Fill[]) {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    await applyFills(c, batch, "100000");
    await c.query("COMMIT");
  } finally {
    c.release();
  }
}

describe("fills of one time", () => {
  it("are listed in the reverse of the order they were applied, in one batch or several, across pages", async () => {
    const user = randomUUID();
    // Order ids chosen so that the fill ids' order is neither the applied order nor its reverse.
    const [a, b, c, d] = ["a", "b", "c", "d"].map((x) => `${x.repeat(8)}-0000-4000-8000-${randomUUID().slice(-12)}`);
    await apply([fill(user, c, "buy"), fill(user, a, "buy")]);
    await apply([fill(user, d, "sell")]);
    await apply([fill(user, b, "sell", BAR_CLOSE + 60_000), fill(user, `${"e".repeat(8)}-0000-4000-8000-${randomUUID().slice(-12)}`, "buy", BAR_CLOSE - 60_000)]);
    const listed = (await fillsOf(pool, user, 100, null))!.map((f) => f.orderId);
    // b (the next bar), then the bar's fills newest applied first (d, a, c), then e (the bar before).
    expect(listed.slice(0, 4)).toEqual([b, d, a, c]);
    expect(listed).toHaveLength(5);
    for (const limit of [1, 2, 3]) {
      const walked: string[] = [];
      let before: string | null = null;
      for (let i = 0; i < 10; i++) {
        const page: NonNullable<Awaited<ReturnType<typeof fillsOf>>> = (await fillsOf(pool, user, limit + 1, before))!;
        walked.push(...page.slice(0, limit).map((f) => f.orderId));
        if (page.length <= limit) break;
        before = page[limit - 1].fillId;
      }
      expect(walked, `limit ${limit}`).toEqual(listed);
    }
  });
});

describe("a page reads what it answers", () => {
  it("deep in a history of 20,000 fills of one time", async () => {
    const user = randomUUID();
    await pool.query(
      `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
       SELECT 'deep-' || g || '-' || $1, 'o', $1, 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, '2027-03-01T00:00:59.999Z'
         FROM generate_series(1, 20000) AS g`,
      [user],
    );
    await pool.query("ANALYZE pm_fills");
    const cursor = `deep-10000-${user}`;
    const sent: Array<[string, unknown[]]> = [];
    const recording = { query: (text: string, values?: unknown[]) => (sent.push([text, values ?? []]), pool.query(text, values)) } as unknown as Queryable;
    expect(await fillsOf(recording, user, 100, cursor)).toHaveLength(100);
    const [[text, values]] = sent;
    type PlanNode = { "Actual Rows": number; "Actual Loops": number; "Rows Removed by Filter"?: number; Plans?: PlanNode[] };
    const { rows } = await pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const leaves = (n: PlanNode): PlanNode[] => (n.Plans?.length ? n.Plans.flatMap(leaves) : [n]);
    const read = leaves(rows[0]["QUERY PLAN"][0].Plan).reduce((sum, n) => sum + (n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0)) * n["Actual Loops"], 0);
    expect(read).toBeLessThanOrEqual(250);
  });
});
