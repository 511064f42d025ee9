/**
 * order-management's HTTP routes (behind the gateway at /api/orders/...):
 *   POST   /                    submit; `Idempotency-Key` header: same key + same body -> the same
 *                               order (200), different body -> 409; never committed past
 *                               OM_SUBMIT_DEADLINE_MS after the request was read (503 SUBMIT_DEADLINE_PASSED); a deleted
 *                               account's order is refused (403 ACCOUNT_DELETED, nothing stored)
 *   GET    /                    the caller's orders (newest first), optionally of one status and/or
 *                               the one stored under an Idempotency-Key (`?idempotencyKey=`: how
 *                               ai-orchestrator finds an order whose answer it never got, submitted
 *                               under the decision id; unique per user, so exact), in pages
 *                               (?limit=&before=, nextBefore)
 *   GET    /:id                 one of them
 *   POST   /:id/cancel          request the cancel of an open order: 202 `pending_cancel` until the
 *                               trading-engine confirms (then `cancelled`, or `filled` if a fill won)
 */
import { randomUUID } from "node:crypto";
import { HttpError, idempotencyKeyOf, notFound, Nullable, pageOf, requireIdentity, unknownCursor, ResponseObject, Type, type App } from "../../kit";
import { enqueue, type Enqueued, type OutboxRelay } from "../../trading/infra/outbox";
import { nextStatus, ORDER_STATUSES } from "../../trading/orderState";
import type { Decimal } from "../../trading/decimal";
import type { ExecutionRules } from "../../trading/executionRules";
import { checkOrderRequest, OrderBody } from "../../trading/orderRequest";
import * as data from "./data";
import { orderEvent, requestHash, snapshot } from "./domain";
import { countDecision, type OrderMetrics } from "./metrics";
import type { OrderSubmitter } from "./submit";

const OrderId = Type.Object({ id: Type.String({ format: "uuid" }) });
const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  status: Type.Optional(Type.Union(ORDER_STATUSES.map((s) => Type.Literal(s)))),
  // The form the Idempotency-Key header takes (kit/idempotency.ts).
  idempotencyKey: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9._:-]{1,128}$" })),
  // The last order id of the previous page (its nextBefore): one of the caller's orders.
  before: Type.Optional(Type.String({ format: "uuid", description: "the previous page's nextBefore" })),
});

// Responses (OpenAPI; unnamed fields are kept). Decimals are strings.
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

const OrdersOut = ResponseObject({
  orders: Type.Array(OrderOut),
  nextBefore: Nullable(Type.String({ description: "the next page: GET /?before=<this> (with the same status); null on the last page" })),
});

export interface OrderRouteDeps {
  relay: OutboxRelay;
  submitter: OrderSubmitter;
  metrics: OrderMetrics;
  /** OM_SUBMIT_DEADLINE_MS: a submit is committed within this of the request being read, or not at all. */
  submitDeadlineMs: number;
  /** The paper exchange's rules an order's limit price must be on (checkOrderRequest); undefined in live mode. */
  prices?: ExecutionRules<Decimal>;
}

export function registerRoutes(app: App, { relay, submitter, metrics, submitDeadlineMs, prices }: OrderRouteDeps): void {
  // The handler returns the body; it never awaits the reply (a Fastify reply is thenable: awaiting it
  // waits for the response to be sent and lets the handler run on after answering).
  app.post("/", { schema: { body: OrderBody, response: { 200: OrderOut, 201: OrderOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const b = req.body;
    checkOrderRequest(b, prices);
    const idempotencyKey = idempotencyKeyOf(req.headers["idempotency-key"]);
    // A repeated Idempotency-Key answers with the stored order (200), or 409 when the body differs.
    // The deadline counts from when Fastify read the request (elapsedTime: since onRequest), body parsing included,
    // on the monotonic clock (a wall-clock step back would let a COMMIT go past it).
    const deadline = performance.now() - reply.elapsedTime + submitDeadlineMs;
    const { row, replayed } = await submitter.submit({ orderId: randomUUID(), userId: who.userId, body: b, idempotencyKey, requestHash: requestHash(b), deadline });
    if (replayed) {
      metrics.submitted.inc({ outcome: "replayed" });
      reply.code(200).header("idempotent-replay", "true");
      return snapshot(row);
    }
    // The submitter woke the relay when the order's transaction committed.
    countDecision(metrics, row);
    reply.code(201);
    return snapshot(row);
  });

  app.get("/", { schema: { querystring: ListQuery, response: { 200: OrdersOut } } }, async (req) => {
    const who = requireIdentity(req);
    const limit = req.query.limit ?? 100;
    // PostgreSQL answers uuids in lower case: the cursor is compared in that spelling.
    const before = req.query.before?.toLowerCase() ?? null;
    // The caller's own orders only, admins included: another user's Idempotency-Key finds nothing.
    const rows = await data.listOrders(app.pg, who.userId, { status: req.query.status ?? null, idempotencyKey: req.query.idempotencyKey ?? null, before }, limit + 1);
    if (!rows) throw unknownCursor("orders");
    const { page, nextBefore } = pageOf(rows, limit, (last) => last.order_id);
    return { orders: page.map(snapshot), nextBefore };
  });

  app.get("/:id", { schema: { params: OrderId, response: { 200: OrderOut } } }, async (req) => {
    const who = requireIdentity(req);
    const row = await data.findOrder(app.pg, req.params.id);
    if (!row || (row.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
    return snapshot(row);
  });

  app.post("/:id/cancel", { schema: { params: OrderId, response: { 202: OrderOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    let enqueued: Enqueued | undefined;
    const row = await app.pg.transaction(async (c) => {
      const cur = await data.findOrder(c, req.params.id, true);
      if (!cur || (cur.user_id !== who.userId && who.role !== "admin")) throw notFound("order not found");
      if (cur.status === "pending_cancel") return cur; // asked twice: the first request stands
      const next = nextStatus(cur.status, "cancel_request");
      if (next === undefined) throw new HttpError(409, "ORDER_NOT_CANCELLABLE", `order is ${cur.status}`);
      const upd = await data.setStatus(c, cur.order_id, next);
      enqueued = await enqueue(c, "om_outbox", [orderEvent(upd)]);
      return upd;
    });
    if (enqueued !== undefined) relay.notify(enqueued);
    reply.code(202);
    return snapshot(row);
  });
}
