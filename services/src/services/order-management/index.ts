/**
 * order-management (9002): the order lifecycle in PostgreSQL.
 *   POST   /                    submit (x-user-id from the gateway); `Idempotency-Key` header:
 *                               same key + same body -> the same order (200), different body -> 409
 *   GET    /                    the caller's orders (newest first)
 *   GET    /:id                 one of them
 *   POST   /:id/cancel          cancel an open order
 * Each order gets the pre-trade risk check (shared module, in-process: see trading/infra/riskContext.ts)
 * before acceptance; a breach stores the order as `rejected` with the named reason. Every state
 * change goes to `trading.orders` through the transactional outbox (om_outbox). Fills and exchange
 * outcomes are consumed from `trading.executions` (deduped by fill id / event id).
 */
import { createHash, randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import { Counter } from "prom-client";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { defineService, env, HttpError, notFound, requireIdentity, Type } from "../../kit";
import { D, str } from "../../trading/decimal";
import { TOPICS, type ExecutionMsg, type OrderEventMsg, type OrderSnapshot } from "../../trading/events";
import { enqueue, OutboxRelay } from "../../trading/infra/outbox";
import { preTradeCheck, riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { canTransition, transition, type OrderStatus } from "../../trading/orderState";
import { SYMBOL_RE } from "../../trading/types";

const DECIMAL = "^(0|[1-9]\\d{0,17})(\\.\\d{1,18})?$";

const OrderBody = Type.Object(
  {
    symbol: Type.String({ pattern: SYMBOL_RE.source }),
    side: Type.Union([Type.Literal("buy"), Type.Literal("sell")]),
    type: Type.Union([Type.Literal("market"), Type.Literal("limit")]),
    quantity: Type.String({ pattern: DECIMAL }),
    limitPrice: Type.Optional(Type.String({ pattern: DECIMAL })),
    timeInForce: Type.Optional(Type.Union([Type.Literal("GTC"), Type.Literal("IOC")])),
    clientOrderId: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9._:-]{1,36}$" })),
  },
  { additionalProperties: false },
);

interface OrderRow {
  order_id: string;
  user_id: string;
  client_order_id: string;
  idempotency_key: string | null;
  request_hash: string;
  symbol: string;
  side: "buy" | "sell";
  type: "market" | "limit";
  time_in_force: "GTC" | "IOC";
  quantity: string;
  limit_price: string | null;
  status: OrderStatus;
  filled_quantity: string;
  avg_fill_price: string | null;
  fees: string;
  reject_reason: string | null;
  reject_message: string | null;
  last_price: string | null;
  created_at: Date;
  updated_at: Date;
}

export function snapshot(r: OrderRow): OrderSnapshot {
  return {
    orderId: r.order_id,
    clientOrderId: r.client_order_id,
    userId: r.user_id,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    quantity: str(r.quantity),
    limitPrice: r.limit_price === null ? undefined : str(r.limit_price),
    timeInForce: r.time_in_force,
    status: r.status,
    filledQuantity: str(r.filled_quantity),
    avgFillPrice: r.avg_fill_price === null ? null : str(D(r.avg_fill_price).toDecimalPlaces(8)),
    fees: str(r.fees),
    rejectReason: r.reject_reason,
    rejectMessage: r.reject_message,
    lastPrice: r.last_price === null ? null : str(r.last_price),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

function orderEvent(row: OrderRow, suffix = ""): { eventId: string; topic: string; key: string; payload: Record<string, unknown> } {
  const eventId = `${row.order_id}:${row.status}${suffix}`;
  const msg: OrderEventMsg = { eventId, type: `order.${row.status}`, order: snapshot(row), ts: Date.now() };
  return { eventId, topic: TOPICS.orders, key: row.order_id, payload: msg as unknown as Record<string, unknown> };
}

export default defineService({
  name: "order-management",
  config: {
    ...consumerEnv,
    ...riskEnv,
    OM_OUTBOX_INTERVAL_MS: env.int({ default: 200, min: 10 }),
    OM_CONSUMER_GROUP: env.string({ default: "order-management" }),
  },
  async register(ctx) {
    const pg = ctx.datastores.postgres;
    const redis = ctx.datastores.isEnabled("dragonfly") ? ctx.datastores.dragonfly.redis : undefined;
    const kafka = ctx.datastores.kafka;
    const limits = riskLimitsFrom(ctx.config);
    const relay = new OutboxRelay(pg.pool, "om_outbox", kafka, ctx.log, { intervalMs: ctx.config.OM_OUTBOX_INTERVAL_MS });
    const submitted = new Counter({ name: "om_orders_submitted_total", help: "orders submitted by outcome", labelNames: ["outcome"], registers: [ctx.metrics.registry] });

    const byId = async (client: { query: PoolClient["query"] }, orderId: string, forUpdate = false) =>
      (await (client as PoolClient).query<OrderRow>(`SELECT * FROM om_orders WHERE order_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [orderId])).rows[0];

    ctx.app.post("/", { schema: { body: OrderBody } }, async (req, reply) => {
      const who = requireIdentity(req);
      const b = req.body;
      if (b.type === "limit" && !b.limitPrice) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is required for limit orders", "limitPrice");
      if (b.type === "market" && b.limitPrice) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is only allowed on limit orders", "limitPrice");
      if (D(b.quantity).lte(0)) throw new HttpError(400, "VALIDATION_ERROR", "quantity must be positive", "quantity");
      const keyHeader = req.headers["idempotency-key"];
      const idemKey = typeof keyHeader === "string" && keyHeader.length > 0 ? keyHeader : null;
      if (idemKey && !/^[A-Za-z0-9._:-]{1,128}$/.test(idemKey)) throw new HttpError(400, "VALIDATION_ERROR", "invalid Idempotency-Key", "idempotency-key");
      const canonical = { symbol: b.symbol, side: b.side, type: b.type, quantity: str(b.quantity), limitPrice: b.limitPrice ? str(b.limitPrice) : null, timeInForce: b.timeInForce ?? "GTC", clientOrderId: b.clientOrderId ?? null };
      const hash = createHash("sha256").update(JSON.stringify(canonical)).digest("hex");

      const replay = async () => {
        const { rows } = await pg.query<OrderRow>("SELECT * FROM om_orders WHERE user_id = $1 AND idempotency_key = $2", [who.userId, idemKey]);
        if (!rows[0]) return undefined;
        if (rows[0].request_hash !== hash) throw new HttpError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request body");
        submitted.inc({ outcome: "replayed" });
        return reply.code(200).header("idempotent-replay", "true").send(snapshot(rows[0]));
      };
      if (idemKey) {
        const r = await replay();
        if (r) return r;
      }

      const orderId = randomUUID();
      const { decision, context } = await preTradeCheck(pg.pool, redis, { userId: who.userId, ...b, limitPrice: b.limitPrice }, limits);
      const status = transition("new", decision.ok ? "accepted" : "rejected");
      let row: OrderRow;
      try {
        // One INSERT with the decided status; the `new` event is the same row as it was before the
        // decision, so both state changes are published (in order) from this one transaction.
        row = await pg.transaction(async (c) => {
          const ins = await c.query<OrderRow>(
            `INSERT INTO om_orders (order_id, user_id, client_order_id, idempotency_key, request_hash, symbol, side, type, time_in_force,
                                    quantity, limit_price, status, reject_reason, reject_message, last_price)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING *`,
            [orderId, who.userId, b.clientOrderId ?? orderId, idemKey, hash, b.symbol, b.side, b.type, b.timeInForce ?? "GTC", b.quantity, b.limitPrice ?? null,
              status, decision.ok ? null : decision.reason, decision.ok ? null : decision.message, context.lastPrice ?? null],
          );
          const created = ins.rows[0];
          await enqueue(c, "om_outbox", [orderEvent({ ...created, status: "new", reject_reason: null, reject_message: null }), orderEvent(created)]);
          return created;
        });
      } catch (err) {
        if ((err as { code?: string; constraint?: string }).code === "23505" && idemKey) {
          const r = await replay();
          if (r) return r;
        }
        throw err;
      }
      relay.notify();
      submitted.inc({ outcome: status });
      return reply.code(201).send(snapshot(row));
    });

    ctx.app.get("/", { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })), status: Type.Optional(Type.String()) }) } }, async (req) => {
      const who = requireIdentity(req);
      const { rows } = await pg.query<OrderRow>(
        `SELECT * FROM om_orders WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT $3`,
        [who.userId, req.query.status ?? null, req.query.limit ?? 100],
      );
      return { orders: rows.map(snapshot) };
    });

    ctx.app.get("/:id", { schema: { params: Type.Object({ id: Type.String({ format: "uuid" }) }) } }, async (req) => {
      const who = requireIdentity(req);
      const row = await byId(pg.pool as unknown as PoolClient, req.params.id);
      if (!row || (row.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
      return snapshot(row);
    });

    ctx.app.post("/:id/cancel", { schema: { params: Type.Object({ id: Type.String({ format: "uuid" }) }) } }, async (req) => {
      const who = requireIdentity(req);
      const row = await pg.transaction(async (c) => {
        const cur = await byId(c, req.params.id, true);
        if (!cur || (cur.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
        if (!canTransition(cur.status, "cancelled")) throw new HttpError(409, "ORDER_NOT_CANCELLABLE", `order is ${cur.status}`);
        const upd = await c.query<OrderRow>(`UPDATE om_orders SET status = 'cancelled', updated_at = now() WHERE order_id = $1 RETURNING *`, [cur.order_id]);
        await enqueue(c, "om_outbox", [orderEvent(upd.rows[0])]);
        return upd.rows[0];
      });
      relay.notify();
      return snapshot(row);
    });

    /** Applies one execution message; idempotent (fill id primary key; transitions guarded). */
    async function onExecution(c: PoolClient, msg: ExecutionMsg): Promise<boolean> {
      let changed = false;
      {
        if (msg.type === "fill") {
          const f = msg.fill;
          const cur = await byId(c, f.orderId, true);
          if (!cur) {
            ctx.log.warn({ fillId: f.fillId, orderId: f.orderId }, "fill for an unknown order ignored");
            return false;
          }
          const ins = await c.query(`INSERT INTO om_order_fills (fill_id, order_id, quantity, price, fee) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, [f.fillId, f.orderId, f.quantity, f.price, f.fee]);
          if (ins.rowCount === 0) return false; // duplicate delivery
          const filled = D(cur.filled_quantity).plus(f.quantity);
          const avg = D(cur.avg_fill_price ?? 0).mul(cur.filled_quantity).plus(D(f.quantity).mul(f.price)).div(filled);
          const next: OrderStatus = filled.gte(cur.quantity) ? "filled" : "partially_filled";
          const status = canTransition(cur.status, next) ? next : cur.status;
          if (status !== next) ctx.log.warn({ orderId: cur.order_id, from: cur.status, to: next, fillId: f.fillId }, "fill for an order in a state that does not allow it; quantities recorded, status kept");
          const upd = await c.query<OrderRow>(
            `UPDATE om_orders SET filled_quantity = $2, avg_fill_price = $3, fees = fees + $4, status = $5, updated_at = now() WHERE order_id = $1 RETURNING *`,
            [cur.order_id, str(filled), avg.toFixed(), f.fee, status],
          );
          if (status === next) await enqueue(c, "om_outbox", [orderEvent(upd.rows[0], next === "partially_filled" ? `:${f.fillId}` : "")]);
          changed = true;
        } else {
          const cur = await byId(c, msg.orderId, true);
          if (!cur) return false;
          const next: OrderStatus = msg.type === "order.expired" ? "expired" : "rejected";
          if (!canTransition(cur.status, next)) return false; // already terminal (or duplicate)
          const upd = await c.query<OrderRow>(
            `UPDATE om_orders SET status = $2, reject_reason = coalesce(reject_reason, $3), updated_at = now() WHERE order_id = $1 RETURNING *`,
            [cur.order_id, next, msg.reason],
          );
          await enqueue(c, "om_outbox", [orderEvent(upd.rows[0])]);
          changed = true;
        }
      }
      return changed;
    }

    relay.start();
    ctx.onClose(() => relay.stop());
    // One transaction per fetched batch of executions.
    await consumeBatches(ctx, {
      groupId: ctx.config.OM_CONSUMER_GROUP,
      topics: [TOPICS.executions],
      handle: async (msgs) => {
        const changed = await pg.transaction(async (c) => {
          let any = false;
          for (const m of msgs) any = (await onExecution(c, JSON.parse(m.value) as ExecutionMsg)) || any;
          return any;
        });
        if (changed) relay.notify();
      },
    });
  },
});
