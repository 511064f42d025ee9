/**
 * order-management's HTTP routes (behind the gateway at /api/orders/...):
 *   POST   /                    submit; `Idempotency-Key` header: same key + same body -> the same
 *                               order (200), different body -> 409
 *   GET    /                    the caller's orders (newest first)
 *   GET    /:id                 one of them
 *   POST   /:id/cancel          cancel an open order
 */
import { randomUUID } from "node:crypto";
import type { Counter } from "prom-client";
import { HttpError, notFound, requireIdentity, Type, type App } from "../../kit";
import { enqueue, type OutboxRelay } from "../../trading/infra/outbox";
import { preTradeCheck } from "../../trading/infra/riskContext";
import type { RiskLimits } from "../../trading/risk";
import { canTransition, transition } from "../../trading/orderState";
import { SYMBOL_RE } from "../../trading/types";
import * as data from "./data";
import { checkOrderRequest, idempotencyKeyOf, idempotencyKeyReused, orderEvent, requestHash, snapshot } from "./domain";

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
const OrderId = Type.Object({ id: Type.String({ format: "uuid" }) });

export interface OrderRouteDeps {
  relay: OutboxRelay;
  limits: RiskLimits;
  submitted: Counter<string>;
}

export function registerRoutes(app: App, { relay, limits, submitted }: OrderRouteDeps): void {
  const redis = () => (app.datastores.isEnabled("dragonfly") ? app.redis : undefined);

  app.post("/", { schema: { body: OrderBody } }, async (req, reply) => {
    const who = requireIdentity(req);
    const b = req.body;
    checkOrderRequest(b);
    const idemKey = idempotencyKeyOf(req.headers["idempotency-key"]);
    const hash = requestHash(b);

    const replay = async () => {
      if (!idemKey) return undefined;
      const prior = await data.findByIdempotencyKey(app.pg, who.userId, idemKey);
      if (!prior) return undefined;
      if (prior.request_hash !== hash) throw idempotencyKeyReused();
      submitted.inc({ outcome: "replayed" });
      return reply.code(200).header("idempotent-replay", "true").send(snapshot(prior));
    };
    const replayed = await replay();
    if (replayed) return replayed;

    const orderId = randomUUID();
    const { decision, context } = await preTradeCheck(app.pg.pool, redis(), { userId: who.userId, ...b, limitPrice: b.limitPrice }, limits);
    const status = transition("new", decision.ok ? "accepted" : "rejected");
    let row: data.OrderRow;
    try {
      // One INSERT with the decided status; the `new` event is the same row as it was before the
      // decision, so both state changes are published (in order) from this one transaction.
      row = await app.pg.transaction(async (c) => {
        const created = await data.insertOrder(c, {
          orderId, userId: who.userId, clientOrderId: b.clientOrderId ?? orderId, idempotencyKey: idemKey, requestHash: hash,
          symbol: b.symbol, side: b.side, type: b.type, timeInForce: b.timeInForce ?? "GTC", quantity: b.quantity, limitPrice: b.limitPrice ?? null,
          status, rejectReason: decision.ok ? null : decision.reason, rejectMessage: decision.ok ? null : decision.message, lastPrice: context.lastPrice ?? null,
        });
        await enqueue(c, "om_outbox", [orderEvent({ ...created, status: "new", reject_reason: null, reject_message: null }), orderEvent(created)]);
        return created;
      });
    } catch (err) {
      // Two requests with one Idempotency-Key raced: the loser answers with the winner's order.
      if ((err as { code?: string }).code === "23505" && idemKey) {
        const r = await replay();
        if (r) return r;
      }
      throw err;
    }
    relay.notify();
    submitted.inc({ outcome: status });
    return reply.code(201).send(snapshot(row));
  });

  app.get("/", { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })), status: Type.Optional(Type.String()) }) } }, async (req) => {
    const who = requireIdentity(req);
    const rows = await data.listOrders(app.pg, who.userId, req.query.status ?? null, req.query.limit ?? 100);
    return { orders: rows.map(snapshot) };
  });

  app.get("/:id", { schema: { params: OrderId } }, async (req) => {
    const who = requireIdentity(req);
    const row = await data.findOrder(app.pg, req.params.id);
    if (!row || (row.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
    return snapshot(row);
  });

  app.post("/:id/cancel", { schema: { params: OrderId } }, async (req) => {
    const who = requireIdentity(req);
    const row = await app.pg.transaction(async (c) => {
      const cur = await data.findOrder(c, req.params.id, true);
      if (!cur || (cur.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
      if (!canTransition(cur.status, "cancelled")) throw new HttpError(409, "ORDER_NOT_CANCELLABLE", `order is ${cur.status}`);
      const upd = await data.setCancelled(c, cur.order_id);
      await enqueue(c, "om_outbox", [orderEvent(upd)]);
      return upd;
    });
    relay.notify();
    return snapshot(row);
  });
}
