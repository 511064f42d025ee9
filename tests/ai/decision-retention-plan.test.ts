/**
 * ai-orchestrator's decision retention pass (retire.ts purgeOldDecisions) on real PostgreSQL: what a
 * pass reads is bounded by what is due, not by what it keeps. A live strategy's filled decisions
 * (its position is their sum) and those still settling are kept past the retention; the pass read
 * migration 0480's index from its oldest entry on, so every pass read all of them again, more every
 * day, before reaching the few it could delete. Measured with EXPLAIN ANALYZE on the pass's own
 * statement (in a transaction rolled back): the rows its plan's leaves read, kept and filtered out.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import type { Queryable } from "../../services/src/kit";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { purgeOldDecisions } from "../../services/src/services/ai-orchestrator/retire";
import { OrchestratorStore } from "../../services/src/services/ai-orchestrator/store";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
}, 120_000);
afterAll(async () => {
  await pool?.end();
});

type PlanNode = { "Node Type": string; "Index Name"?: string; "Relation Name"?: string; "Actual Rows": number; "Actual Loops": number; "Rows Removed by Filter"?: number; Plans?: PlanNode[] };
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

/**
 * The pass's statement under EXPLAIN ANALYZE, rolled back: its plan, and the rows its leaves read
 * (kept and filtered out) of ai_decisions (by table or by one of its indexes) and of ai_strategies.
 */
async function explainPass(days: number, batch: number): Promise<{ plan: PlanNode; decisionsRead: number; strategiesRead: number }> {
  const sent: Array<[string, unknown[]]> = [];
  const recording: Queryable = { query: async (text: string, values?: unknown[]) => (sent.push([text, values ?? []]), { rows: [], rowCount: 0 }) } as unknown as Queryable;
  await purgeOldDecisions(recording, days, batch);
  const [[text, values]] = sent;
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const { rows } = await c.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const plan = rows[0]["QUERY PLAN"][0].Plan;
    const read = (of: string) =>
      nodes(plan)
        .filter((n) => !n.Plans?.length && (n["Relation Name"] === of || n["Index Name"]?.startsWith(`${of}_`)))
        .reduce((sum, n) => sum + (n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0)) * n["Actual Loops"], 0);
    return { plan, decisionsRead: read("ai_decisions"), strategiesRead: read("ai_strategies") };
  } finally {
    await c.query("ROLLBACK");
    c.release();
  }
}

/** A new strategy (live); `remove` deletes it as DELETE /strategies/:id does (store.ts), a day ago. */
async function strategy(): Promise<string> {
  const id = randomUUID();
  await pool.query(
    `INSERT INTO ai_strategies (strategy_id, user_id, name, symbols, buy_above, sell_below, order_quantity, max_position, stop_loss, every_seconds, enabled)
     VALUES ($1, $2, 's', '{AAAUSDT}', 0.6, 0.4, 1, 10, 100, 60, true)`,
    [id, randomUUID()],
  );
  return id;
}
async function remove(id: string): Promise<void> {
  const { rows } = await pool.query<{ user_id: string }>(`SELECT user_id FROM ai_strategies WHERE strategy_id = $1`, [id]);
  expect(await new OrchestratorStore(pool as never).deleteStrategy(id, rows[0].user_id)).toBeDefined();
  await pool.query(`UPDATE ai_strategies SET deleted_at = deleted_at - interval '1 day' WHERE strategy_id = $1`, [id]);
}

/** `n` decisions of `strategyId` made `daysAgo` ago: kind "filled" (kept), "settling" (kept), "hold" (due once old). */
async function decisions(strategyId: string, n: number, daysAgo: number, kind: "filled" | "settling" | "hold"): Promise<void> {
  await pool.query(
    `INSERT INTO ai_decisions (decision_id, strategy_id, user_id, symbol, decided_at, trading_state, position_before, action, reason, order_id, order_final_status, order_filled_signed, order_cash_flow, risk)
     SELECT gen_random_uuid(), $1, 'u', 'AAAUSDT', now() - make_interval(days => $3) - i * interval '1 second', 'active', 0,
            CASE WHEN $4 = 'hold' THEN 'hold' ELSE 'buy' END, 'test',
            CASE WHEN $4 = 'hold' THEN NULL ELSE gen_random_uuid() END,
            CASE WHEN $4 = 'filled' THEN 'filled' END, CASE WHEN $4 = 'filled' THEN 1 END, CASE WHEN $4 = 'filled' THEN -100 END,
            CASE WHEN $4 = 'hold' THEN NULL ELSE '{}'::jsonb END
       FROM generate_series(1, $2) i`,
    [strategyId, n, daysAgo, kind],
  );
}

describe("the decision retention pass reads what is due", () => {
  it("a live strategy's 3,000 old filled and 1,000 settling decisions, kept, are not read again, nor 40 deleted strategies whose decisions are not due; the 3 due ones and a deleted strategy's 2 are", async () => {
    const live = await strategy();
    await decisions(live, 3_000, 30, "filled");
    await decisions(live, 1_000, 29, "settling");
    await decisions(live, 3, 20, "hold");
    await decisions(live, 500, 1, "hold");
    // Deleted strategies: 40 whose decisions are all within the retention (not read: they had been probed at every pass), one with 2 due.
    for (let i = 0; i < 40; i++) {
      const kept = await strategy();
      await decisions(kept, 1, 1, "filled");
      await remove(kept);
    }
    const gone = await strategy();
    await decisions(gone, 2, 20, "filled");
    await remove(gone);
    // Other users' strategies: a table of a size the planner reads by key (42 rows it scans whole, cheaper).
    await pool.query(
      `INSERT INTO ai_strategies (strategy_id, user_id, name, symbols, buy_above, sell_below, order_quantity, max_position, stop_loss, every_seconds, enabled)
       SELECT gen_random_uuid(), gen_random_uuid(), 's', '{AAAUSDT}', 0.6, 0.4, 1, 10, 100, 60, false FROM generate_series(1, 3000)`,
    );
    await pool.query("ANALYZE ai_decisions");
    await pool.query("ANALYZE ai_strategies");

    const { plan, decisionsRead, strategiesRead } = await explainPass(10, 5_000);
    expect(JSON.stringify(plan)).toContain("ai_decisions_settled_nothing");
    expect(JSON.stringify(plan)).toContain("ai_strategies_deleted_oldest_decision");
    expect(nodes(plan).filter((n) => n["Node Type"] === "Seq Scan").map((n) => JSON.stringify(n).slice(0, 200))).toEqual([]);
    // The 5 due rows, each read three times (as a candidate, by key to lock it, by key to delete it), and the
    // deleted strategy's 2 once more for its new bound; its index entry and its row (the bound's update).
    expect(decisionsRead).toBeLessThanOrEqual(17);
    expect(strategiesRead).toBeLessThanOrEqual(2);

    expect(await purgeOldDecisions(pool, 10, 5_000)).toBe(5);
    const left = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ai_decisions WHERE strategy_id = $1`, [live]);
    expect(Number(left.rows[0].n)).toBe(4_500);
    expect((await pool.query(`SELECT 1 FROM ai_decisions WHERE strategy_id = $1`, [gone])).rows).toEqual([]);
    // Nothing left, deleted over an hour ago: no bound, never read again (purgeDeletedStrategies takes it).
    expect((await pool.query(`SELECT oldest_decision_at FROM ai_strategies WHERE strategy_id = $1`, [gone])).rows).toEqual([{ oldest_decision_at: null }]);
    // Nothing due: the next pass reads nothing (once the deleted rows' index entries are vacuumed).
    await pool.query("VACUUM ai_decisions");
    const idle = await explainPass(10, 5_000);
    expect(idle.decisionsRead).toBe(0);
    expect(idle.strategiesRead).toBe(0);
    expect(await purgeOldDecisions(pool, 10, 5_000)).toBe(0);
  }, 120_000);

  it("a deleted strategy's bound: its oldest decision, or within an hour of the delete the delete less a minute (a decision an evaluation in flight records then); a pass that deletes some leaves the oldest left", async () => {
    const s = await strategy();
    await decisions(s, 3, 20, "filled");
    await decisions(s, 2, 5, "filled");
    await remove(s);
    const bound = async () => (await pool.query<{ b: Date | null }>(`SELECT oldest_decision_at AS b FROM ai_strategies WHERE strategy_id = $1`, [s])).rows[0].b;
    const oldest = async () => (await pool.query<{ m: Date }>(`SELECT min(decided_at) AS m FROM ai_decisions WHERE strategy_id = $1`, [s])).rows[0].m;
    expect(await bound()).toEqual(await oldest());
    // The pass at 10 days deletes the 3 due ones (with the other strategies' due ones, if any are left) and keeps the 2 of 5 days ago.
    await purgeOldDecisions(pool, 10, 5_000);
    expect(await bound()).toEqual(await oldest());
    expect(Date.now() - (await bound())!.getTime()).toBeLessThan(6 * 86_400_000);
    // Deleted just now, without a decision: the delete less a minute (not due for years), not NULL.
    const empty = await strategy();
    const { rows } = await pool.query<{ user_id: string }>(`SELECT user_id FROM ai_strategies WHERE strategy_id = $1`, [empty]);
    await new OrchestratorStore(pool as never).deleteStrategy(empty, rows[0].user_id);
    const r = await pool.query<{ lag: number }>(`SELECT extract(epoch FROM deleted_at - oldest_decision_at) AS lag FROM ai_strategies WHERE strategy_id = $1`, [empty]);
    expect(Number(r.rows[0].lag)).toBe(60);
  }, 60_000);
});
