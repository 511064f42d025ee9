/**
 * order-management's HTTP routes (behind the gateway at /api/orders/...):
 *   POST   /                    submit; `Idempotency-Key` header: same key + same body -> the same
 *                               order (200), different body -> 409
 *   GET    /                    the caller's orders (newest first), optionally of one status
 *   GET    /:id                 one of them
 *   POST   /:id/cancel          request the cancel of an open order: 202 `pending_cancel` until the
 *                               trading-engine confirms (then `cancelled`, or `filled` if a fill won)
 */
import { randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import { HttpError, notFound, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { enqueue, type OutboxRelay } from "../../trading/infra/outbox";
import type { RiskLimits } from "../../trading/risk";
import { nextStatus, ORDER_STATUSES } from "../../trading/orderState";
import { SYMBOL_RE } from "../../trading/types";
import * as data from "./data";
import { checkOrderRequest, idempotencyKeyOf, idempotencyKeyReused, orderEvent, requestHash, snapshot } from "./domain";
import { countDecision, type OrderMetrics } from "./metrics";
import { PerKeyQueue, submitOrder } from "./submit";

/** A plain decimal: at most 12 integer and 8 fractional digits (the exchange's precision). */
const DECIMAL = "^(0|[1-9]\\d{0,11})(\\.\\d{1,8})?$";

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
const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  status: Type.Optional(Type.Union(ORDER_STATUSES.map((s) => Type.Literal(s)))),
});

// Responses (OpenAPI; unnamed fields are kept). Decimals are strings.
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const OrderOut = ResponseObject({
  orderId: Type.String(),
  clientOrderId: Type.Optional(Type.String()),
  userId: Type.String(),
  symbol: Type.String(),
  side: Type.String(),
  type: Type.String(),
  quantity: Type.String(),
  limitPrice: Type.Optional(Type.String()),
  timeInForce: Type.Optional(Type.String()),
  status: Type.String({ enum: [...ORDER_STATUSES] }),
  filledQuantity: Type.String(),
  avgFillPrice: Nullable(Type.String()),
  fees: Type.String(),
  rejectReason: Nullable(Type.String()),
  rejectMessage: Nullable(Type.String()),
  lastPrice: Nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export interface OrderRouteDeps {
  relay: OutboxRelay;
  limits: RiskLimits;
  metrics: OrderMetrics;
}

export function registerRoutes(app: App, { relay, limits, metrics }: OrderRouteDeps): void {
  const redis = () => (app.datastores.isEnabled("dragonfly") ? app.redis : undefined);
  const perUser = new PerKeyQueue();

  /** The order a repeated Idempotency-Key refers to (409 when the body differs). */
  const priorOrder = async (userId: string, key: string | null, hash: string) => {
    if (!key) return undefined;
    const prior = await data.findByIdempotencyKey(app.pg, userId, key);
    if (prior && prior.request_hash !== hash) throw idempotencyKeyReused();
    return prior;
  };
  // The handler returns the body; it never awaits the reply (a Fastify reply is thenable: awaiting it
  // waits for the response to be sent and lets the handler run on after answering).
  const replayed = (reply: FastifyReply, prior: data.OrderRow) => {
    metrics.submitted.inc({ outcome: "replayed" });
    reply.code(200).header("idempotent-replay", "true");
    return snapshot(prior);
  };

  app.post("/", { schema: { body: OrderBody, response: { 200: OrderOut, 201: OrderOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const b = req.body;
    checkOrderRequest(b);
    const idemKey = idempotencyKeyOf(req.headers["idempotency-key"]);
    const hash = requestHash(b);
    const prior = await priorOrder(who.userId, idemKey, hash);
    if (prior) return replayed(reply, prior);

    let row: data.OrderRow;
    try {
      const submission = { orderId: randomUUID(), userId: who.userId, body: b, idempotencyKey: idemKey, requestHash: hash };
      row = await perUser.run(who.userId, () => submitOrder(app.pg, redis(), limits, submission));
    } catch (err) {
      // Two requests with one Idempotency-Key raced: the loser answers with the winner's order.
      if ((err as { code?: string }).code === "23505" && idemKey) {
        const winner = await priorOrder(who.userId, idemKey, hash);
        if (winner) return replayed(reply, winner);
      }
      throw err;
    }
    relay.notify();
    countDecision(metrics, row);
    reply.code(201);
    return snapshot(row);
  });

  app.get("/", { schema: { querystring: ListQuery, response: { 200: ResponseObject({ orders: Type.Array(OrderOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const rows = await data.listOrders(app.pg, who.userId, req.query.status ?? null, req.query.limit ?? 100);
    return { orders: rows.map(snapshot) };
  });

  app.get("/:id", { schema: { params: OrderId, response: { 200: OrderOut } } }, async (req) => {
    const who = requireIdentity(req);
    const row = await data.findOrder(app.pg, req.params.id);
    if (!row || (row.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
    return snapshot(row);
  });

  app.post("/:id/cancel", { schema: { params: OrderId, response: { 202: OrderOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const row = await app.pg.transaction(async (c) => {
      const cur = await data.findOrder(c, req.params.id, true);
      if (!cur || (cur.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
      if (cur.status === "pending_cancel") return cur; // asked twice: the first request stands
      const next = nextStatus(cur.status, "cancel_request");
      if (next === undefined) throw new HttpError(409, "ORDER_NOT_CANCELLABLE", `order is ${cur.status}`);
      const upd = await data.setStatus(c, cur.order_id, next);
      await enqueue(c, "om_outbox", [orderEvent(upd)]);
      return upd;
    });
    relay.notify();
    reply.code(202);
    return snapshot(row);
  });
}
