/**
 * The pre-trade check's daily PnL against a real PostgreSQL: pm_daily_pnl, kept by a trigger on
 * pm_fills, always equals the sum of each user's fills of each UTC day (several statements, several
 * days, a duplicate fill refused by the key); the check reads today's total from it and refuses an
 * order once the day's loss reaches the limit; yesterday's loss does not count.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { contextOf, riskFacts } from "../../services/src/trading/infra/riskContext";
import { checkOrder, DEFAULT_LIMITS } from "../../services/src/trading/risk";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const [alice, bob] = [`pnl-a-${randomUUID()}`, `pnl-b-${randomUUID()}`];
const DAY_MS = 86_400_000;

/** Inserts fills in one statement, as portfolio-manager does; a fill id seen before is left out. */
async function insertFills(fills: { user: string; pnl: string; fee: string; at: Date }[]): Promise<void> {
  await pool.query(
    `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
     SELECT f, f, u, 'BTCUSDT', 'sell', 1, 100, fe, rp, 0, ts FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::timestamptz[]) AS x(f, u, fe, rp, ts)
     ON CONFLICT (fill_id) DO NOTHING`,
    [fills.map((f, i) => `${f.user}:${f.at.getTime()}:${i}:${f.pnl}`), fills.map((f) => f.user), fills.map((f) => f.fee), fills.map((f) => f.pnl), fills.map((f) => f.at)],
  );
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
}, 300_000);

afterAll(async () => {
  await pool?.end();
});

describe("daily PnL of the pre-trade check", () => {
  it("keeps each user's day total equal to the sum of the day's fills, and the check refuses orders past the day's loss limit", async () => {
    // Today in UTC as the database sees it (the check's day), and yesterday.
    const today = new Date((await pool.query<{ t: Date }>("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t")).rows[0].t);
    const at = (msAfterMidnight: number) => new Date(today.getTime() + msAfterMidnight);
    await insertFills([
      { user: alice, pnl: "-400.25", fee: "0.75", at: at(-1) }, // yesterday, the last millisecond
      { user: alice, pnl: "-300", fee: "1", at: at(0) }, // today, the first millisecond
      { user: bob, pnl: "50", fee: "0.5", at: at(1000) },
    ]);
    await insertFills([
      { user: alice, pnl: "100.5", fee: "0.5", at: at(2000) },
      { user: alice, pnl: "-9000", fee: "0", at: at(-DAY_MS * 3) },
    ]);
    // A fill recorded twice (a redelivery): the key refuses the second, the total moves once.
    const again = { user: bob, pnl: "-20", fee: "0", at: at(3000) };
    await insertFills([again]);
    await insertFills([again]);

    const drift = await pool.query(
      `SELECT f.user_id, f.day, f.net, d.net AS kept FROM
         (SELECT user_id, (fill_ts AT TIME ZONE 'UTC')::date AS day, sum(realized_pnl - fee) AS net FROM pm_fills WHERE user_id = ANY($1) GROUP BY 1, 2) f
         FULL JOIN (SELECT * FROM pm_daily_pnl WHERE user_id = ANY($1)) d USING (user_id, day)
        WHERE f.net IS DISTINCT FROM d.net`,
      [[alice, bob]],
    );
    expect(drift.rows).toEqual([]);
    expect(Number((await pool.query("SELECT count(*) AS n FROM pm_daily_pnl WHERE user_id = ANY($1)", [[alice, bob]])).rows[0].n)).toBe(4);

    // The check's facts: today's fills only.
    const a = await riskFacts(pool, alice, "BTCUSDT", 1000, 200);
    const b = await riskFacts(pool, bob, "BTCUSDT", 1000, 200);
    expect(Number(a.dailyPnl)).toBe(-300 - 1 + 100.5 - 0.5);
    expect(Number(b.dailyPnl)).toBe(50 - 0.5 - 20);
    expect((await riskFacts(pool, `pnl-nobody-${randomUUID()}`, "BTCUSDT", 1000, 200)).dailyPnl).toBe("0");

    const limits = { ...DEFAULT_LIMITS, dailyLossLimit: "200" };
    const order = { side: "buy" as const, type: "market" as const, quantity: "0.1" };
    const market = { lastPrice: "100", tradingState: "active" as const };
    expect(checkOrder(order, contextOf(a, market, Date.now()), limits)).toMatchObject({ ok: false, reason: "DAILY_LOSS_LIMIT_REACHED" });
    expect(checkOrder(order, contextOf(b, market, Date.now()), limits)).toMatchObject({ ok: true });
  }, 120_000);
});
