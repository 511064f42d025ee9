/**
 * portfolio-manager (9001): positions, cash and PnL per user from the fills on `trading.executions`.
 *   GET /                     the caller's portfolio (x-user-id), marked to the last prices in Dragonfly
 *   GET /fills                the caller's applied fills
 * Applying a fill is idempotent: pm_fills has the fill id as primary key and the position/cash
 * update happens in the same transaction as that insert, so a redelivered fill changes nothing.
 * Arithmetic is decimal (trading/portfolio.ts applyFillToPosition), stored as NUMERIC.
 */
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import type { PoolClient } from "pg";
import { defineService, env, requireIdentity, Type } from "../../kit";
import { D, ZERO } from "../../trading/decimal";
import { lastPriceKey, TOPICS, type ExecutionMsg } from "../../trading/events";
import { applyFillToPosition, portfolioView, type Position } from "../../trading/portfolio";
import type { Fill } from "../../trading/types";

export default defineService({
  name: "portfolio-manager",
  config: {
    ...consumerEnv,
    PORTFOLIO_INITIAL_CASH: env.string({ default: "100000", pattern: /^\d+(\.\d+)?$/ }),
    PM_CONSUMER_GROUP: env.string({ default: "portfolio-manager" }),
  },
  async register(ctx) {
    const pg = ctx.datastores.postgres;
    const redis = ctx.datastores.isEnabled("dragonfly") ? ctx.datastores.dragonfly.redis : undefined;
    const initialCash = ctx.config.PORTFOLIO_INITIAL_CASH;

    /** Applies a fill inside `tx`; false (and no change) when its id was already applied. */
    async function applyFill(tx: PoolClient, f: Fill): Promise<boolean> {
      {
        await tx.query("INSERT INTO pm_accounts (user_id, cash) VALUES ($1, $2) ON CONFLICT DO NOTHING", [f.userId, initialCash]);
        const pos = await tx.query<{ quantity: string; avg_price: string; realized_pnl: string; fees: string }>(
          "SELECT quantity::text, avg_price::text, realized_pnl::text, fees::text FROM pm_positions WHERE user_id = $1 AND symbol = $2 FOR UPDATE",
          [f.userId, f.symbol],
        );
        const p = pos.rows[0];
        const r = applyFillToPosition(
          p ? { quantity: D(p.quantity), avgPrice: D(p.avg_price), realizedPnl: D(p.realized_pnl), fees: D(p.fees) } : { quantity: ZERO, avgPrice: ZERO, realizedPnl: ZERO, fees: ZERO },
          f,
        );
        const ins = await tx.query(
          `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, to_timestamp($11::double precision / 1000)) ON CONFLICT (fill_id) DO NOTHING`,
          [f.fillId, f.orderId, f.userId, f.symbol, f.side, f.quantity, f.price, f.fee, r.realizedDelta.toFixed(), r.cashDelta.toFixed(), f.ts],
        );
        if (ins.rowCount === 0) return false; // already applied: the transaction changes nothing
        await tx.query(
          `INSERT INTO pm_positions (user_id, symbol, quantity, avg_price, realized_pnl, fees, updated_at) VALUES ($1,$2,$3,$4,$5,$6, now())
           ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, avg_price = EXCLUDED.avg_price,
             realized_pnl = EXCLUDED.realized_pnl, fees = EXCLUDED.fees, updated_at = now()`,
          [f.userId, f.symbol, r.quantity.toFixed(), r.avgPrice.toFixed(), r.realizedPnl.toFixed(), r.fees.toFixed()],
        );
        await tx.query("UPDATE pm_accounts SET cash = cash + $2 WHERE user_id = $1", [f.userId, r.cashDelta.toFixed()]);
        return true;
      }
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
        if (fills.length) await pg.transaction(async (tx) => {
          for (const m of fills) await applyFill(tx, m.fill);
        });
      },
    });
  },
});
