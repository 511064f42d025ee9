/**
 * portfolio-manager (9001): positions, cash and PnL per user from the fills on `trading.executions`.
 *   GET /                     the caller's portfolio (x-user-id), marked to the last prices in Dragonfly
 *   GET /fills                the caller's applied fills
 * Applying a fill is idempotent: pm_fills has the fill id as primary key and the position/cash
 * update happens in the same transaction as that insert, so a redelivered fill changes nothing.
 * Fills are applied a Kafka batch at a time (one transaction, set-based statements).
 * Arithmetic is decimal (trading/portfolio.ts applyFillToPosition), stored as NUMERIC.
 */
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import type { PoolClient } from "pg";
import { defineService, requireIdentity, Type } from "../../kit";
import { D, ZERO } from "../../trading/decimal";
import { lastPriceKey, TOPICS, type ExecutionMsg } from "../../trading/events";
import { applyFillToPosition, portfolioView, type Position } from "../../trading/portfolio";
import type { Fill } from "../../trading/types";

export default defineService({
  name: "portfolio-manager",
  config: {
    ...consumerEnv,
    PORTFOLIO_INITIAL_CASH: Type.String({ default: "100000", pattern: "^\\d+(\\.\\d+)?$" }),
    PM_CONSUMER_GROUP: Type.String({ default: "portfolio-manager" }),
  },
  async register(ctx) {
    const pg = ctx.datastores.postgres;
    const redis = ctx.datastores.isEnabled("dragonfly") ? ctx.datastores.dragonfly.redis : undefined;
    const initialCash = ctx.config.PORTFOLIO_INITIAL_CASH;

    /**
     * Applies a batch of fills in one transaction. Position rows are created if missing, then locked
     * in a fixed order (so concurrent replicas serialise per user/symbol without deadlocks), fills
     * already recorded are skipped (checked after the lock, so a concurrent duplicate is seen), the
     * rest are applied in order with decimal arithmetic and written with set-based statements.
     */
    async function applyFills(tx: PoolClient, batch: Fill[]): Promise<number> {
      const uniq = [...new Map(batch.map((f) => [f.fillId, f])).values()];
      if (uniq.length === 0) return 0;
      const keys = [...new Map(uniq.map((f) => [`${f.userId}|${f.symbol}`, [f.userId, f.symbol] as const])).values()].sort((a, b) =>
        a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1,
      );
      const users = [...new Set(keys.map((k) => k[0]))].sort();
      await tx.query("INSERT INTO pm_accounts (user_id, cash) SELECT u, $2::numeric FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING", [users, initialCash]);
      await tx.query("INSERT INTO pm_positions (user_id, symbol) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING", [keys.map((k) => k[0]), keys.map((k) => k[1])]);
      const locked = await tx.query<{ user_id: string; symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string }>(
        `SELECT p.user_id, p.symbol, p.quantity::text, p.avg_price::text, p.realized_pnl::text, p.fees::text
           FROM pm_positions p JOIN unnest($1::text[], $2::text[]) AS k(u, s) ON p.user_id = k.u AND p.symbol = k.s
          ORDER BY p.user_id, p.symbol FOR UPDATE OF p`,
        [keys.map((k) => k[0]), keys.map((k) => k[1])],
      );
      const done = new Set((await tx.query<{ fill_id: string }>("SELECT fill_id FROM pm_fills WHERE fill_id = ANY($1::text[])", [uniq.map((f) => f.fillId)])).rows.map((r) => r.fill_id));
      const pos = new Map(locked.rows.map((r) => [`${r.user_id}|${r.symbol}`, { quantity: D(r.quantity), avgPrice: D(r.avg_price), realizedPnl: D(r.realized_pnl), fees: D(r.fees) }]));
      const cash = new Map<string, ReturnType<typeof D>>();
      const rows: (string | number)[][] = [];
      for (const f of uniq) {
        if (done.has(f.fillId)) continue; // already applied: idempotent
        const k = `${f.userId}|${f.symbol}`;
        const r = applyFillToPosition(pos.get(k)!, f);
        pos.set(k, { quantity: r.quantity, avgPrice: r.avgPrice, realizedPnl: r.realizedPnl, fees: r.fees });
        cash.set(f.userId, (cash.get(f.userId) ?? ZERO).plus(r.cashDelta));
        rows.push([f.fillId, f.orderId, f.userId, f.symbol, f.side, f.quantity, f.price, f.fee, r.realizedDelta.toFixed(), r.cashDelta.toFixed(), f.ts]);
      }
      if (rows.length === 0) return 0;
      const col = (i: number) => rows.map((r) => r[i]);
      await tx.query(
        `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
         SELECT f, o, u, s, sd, q, p, fe, rp, cd, to_timestamp(ts::double precision / 1000)
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::bigint[])
             AS x(f, o, u, s, sd, q, p, fe, rp, cd, ts)`,
        Array.from({ length: 11 }, (_, i) => col(i)),
      );
      const touched = keys.filter(([u, s]) => rows.some((r) => r[2] === u && r[3] === s));
      await tx.query(
        `UPDATE pm_positions p SET quantity = x.q, avg_price = x.a, realized_pnl = x.r, fees = x.f, updated_at = now()
           FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[]) AS x(u, s, q, a, r, f)
          WHERE p.user_id = x.u AND p.symbol = x.s`,
        [
          touched.map((k) => k[0]),
          touched.map((k) => k[1]),
          ...(["quantity", "avgPrice", "realizedPnl", "fees"] as const).map((field) => touched.map((k) => pos.get(`${k[0]}|${k[1]}`)![field].toFixed())),
        ],
      );
      const cu = [...cash.keys()].sort();
      await tx.query("UPDATE pm_accounts a SET cash = a.cash + x.d FROM unnest($1::text[], $2::numeric[]) AS x(u, d) WHERE a.user_id = x.u", [cu, cu.map((u) => cash.get(u)!.toFixed())]);
      return rows.length;
    }

    ctx.app.get("/", async (req) => {
      const who = requireIdentity(req);
      const acct = await pg.query<{ cash: string }>("SELECT cash::text FROM pm_accounts WHERE user_id = $1", [who.userId]);
      const rows = await pg.query<{ symbol: string; quantity: string; avg_price: string; realized_pnl: string; fees: string }>(
        "SELECT symbol, quantity::text, avg_price::text, realized_pnl::text, fees::text FROM pm_positions WHERE user_id = $1",
        [who.userId],
      );
      const positions: Position[] = rows.rows.map((r) => ({ symbol: r.symbol, quantity: D(r.quantity), avgPrice: D(r.avg_price), realizedPnl: D(r.realized_pnl), fees: D(r.fees) }));
      const marks: Record<string, string | undefined> = {};
      if (redis && positions.length) {
        try {
          const vals = await redis.mget(...positions.map((p) => lastPriceKey(p.symbol)));
          positions.forEach((p, i) => (marks[p.symbol] = vals[i] ?? undefined));
        } catch (err) {
          ctx.log.warn({ err: { message: (err as Error).message } }, "last prices unavailable; positions shown at cost");
        }
      }
      return portfolioView(who.userId, D(acct.rows[0]?.cash ?? initialCash), positions, marks);
    });

    ctx.app.get("/fills", { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }) } }, async (req) => {
      const who = requireIdentity(req);
      const { rows } = await pg.query(
        `SELECT fill_id AS "fillId", order_id AS "orderId", symbol, side, quantity::text, price::text, fee::text, realized_pnl::text AS "realizedPnl", fill_ts AS "ts"
           FROM pm_fills WHERE user_id = $1 ORDER BY fill_ts DESC, fill_id LIMIT $2`,
        [who.userId, req.query.limit ?? 200],
      );
      return { fills: rows };
    });

    // One transaction per fetched batch of fills.
    await consumeBatches(ctx, {
      groupId: ctx.config.PM_CONSUMER_GROUP,
      topics: [TOPICS.executions],
      handle: async (msgs) => {
        const fills = msgs.map((m) => JSON.parse(m.value) as ExecutionMsg).filter((m): m is Extract<ExecutionMsg, { type: "fill" }> => m.type === "fill");
        if (fills.length) await pg.transaction((tx) => applyFills(tx, fills.map((m) => m.fill)));
      },
    });
  },
});
