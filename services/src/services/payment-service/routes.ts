/**
 * payment-service HTTP routes (behind the gateway at /api/payments):
 *   POST /intents                 { amount, currency, paymentMethod, description?, reference? } + Idempotency-Key (required);
 *                                 paymentMethod: one of the caller's saved methods (payment-method-routes.ts)
 *                                 201 new, 200 replay (`idempotent-replay: true`), 409 key reused with another body / in progress
 *   GET  /intents                 the caller's payments          GET /intents/:id   one (owner or admin)
 *                                 (each with its refunds: status as the processor reports it, refund-repo.ts refundView)
 *   POST /intents/:id/refunds     { amount?, reason? } + Idempotency-Key, admin: the payment, and `refund` (this key's)
 *   GET  /ledger                  derived balances and per-currency totals (0 when the ledger balances), admin
 *   POST /reconcile               one reconciliation pass now (open intents, pending refunds, recently succeeded ones,
 *                                 deleted accounts' processor customers: `customersDeleted`), admin
 *   GET  /refund-issues           refunds an operator has to look at (refund-issues.ts), admin; ?status=open (default) | all
 *   POST /refund-issues/:id/resolve  { note } admin: closes an open issue (who, how signed in, the note recorded);
 *                                 404 NOT_FOUND, 409 ISSUE_RESOLVED (resolved already)
 *   POST /refund-issues/:id/settle   { note } admin: settles a mismatch issue's pending refund from the processor's
 *                                 record (refund-issue-settle.ts): booked at its amount/currency or released; the
 *                                 issue closed as by resolve; a refund booked here is reversed when the processor has it
 *                                 failed; 409 PROCESSOR_PENDING, ISSUE_RESOLVED, ISSUE_NOT_SETTLEABLE, REFUND_BOOKED...
 *   POST /webhooks/processor      the processor's signed events (anonymous through the gateway; raw body kept):
 *                                 200 { outcome: applied | duplicate | ignored | stale (a refund's older state) |
 *                                 exceeds_payment (a refund past what is left of the payment: not booked, an issue) |
 *                                 mismatch (our refund in another amount or currency: not applied, an issue) }
 *   POST /internal/intents        { userId, ... } + Idempotency-Key: billing-service charges invoices (never proxied)
 *   POST /internal/intents/:id/refunds  { amount?, reason? } + Idempotency-Key: billing-service refunds a
 *                                 payment for an invoice it no longer collects (never proxied)
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { type App, DisplayText, HttpError, idempotencyKeyOf, notFound, requireIdentity, ResponseObject, Type, UserIdSchema } from "../../kit";
import { INVOICE_REFERENCE_PREFIX } from "../../business/events";
import { CURRENCIES, type Currency, MAX_CHARGE, MIN_CHARGE, MoneyError, parseMinor } from "../../business/money";
import { PaymentMethodId } from "../../business/payment-methods";
import type { IntentOrigin, IntentRequest } from "./domain/intents";
import type { Payments } from "./payments";
import type { RefundIssues } from "./refund-issues";
import type { RefundIssueSettler } from "./refund-issue-settle";
import type { RefundReconciler } from "./refund-reconciler";
import type { RefundRepo } from "./refund-repo";
import type { DeletedCustomers } from "./deleted-customers";
import { type CardProcessor, WebhookPayloadError, WebhookSignatureError } from "./processor";
import { type IntentRow, intentView, type PaymentRepo } from "./repo";

const Currency = Type.Union(Object.keys(CURRENCIES).map((c) => Type.Literal(c)));
const IntentFields = {
  amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 }),
  currency: Currency,
  // A method saved to the payer (payment-method-routes.ts); anything else is 404 PAYMENT_METHOD_NOT_FOUND.
  paymentMethod: PaymentMethodId,
  // Read on receipts and in the processor's dashboard: display text (kit display-text.ts).
  description: Type.Optional(DisplayText({ maxLength: 500 })),
  reference: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9._:-]{1,128}$" })),
};
const IntentBody = Type.Object(IntentFields, { additionalProperties: false });
const InternalIntentBody = Type.Object({ ...IntentFields, userId: UserIdSchema }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ format: "uuid" }) });
const RefundBody = Type.Object({ amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 })), reason: Type.Optional(DisplayText({ maxLength: 500 })) }, { additionalProperties: false });

function idempotencyKey(req: FastifyRequest): string {
  const k = idempotencyKeyOf(req.headers["idempotency-key"]);
  if (k === null) throw new HttpError(400, "VALIDATION_ERROR", "the Idempotency-Key header is required", "idempotency-key");
  return k;
}

/**
 * A charge the card processor can make: between its smallest and largest charge in the currency
 * (MIN_CHARGE, MAX_CHARGE in business/money.ts, in the currency's smallest unit). Outside them the
 * processor refuses it every time: the request was stored as a failed payment (201, status failed,
 * the SDK's error class for its failure code) instead of a 400 naming amount, or, past a processor
 * that took it, charged beyond what the platform can ever collect by card.
 */
function chargeable(amount: bigint, currency: Currency): bigint {
  if (amount < MIN_CHARGE[currency]) throw new HttpError(400, "VALIDATION_ERROR", `amount must be >= ${MIN_CHARGE[currency]} (the card processor's smallest charge in ${currency}, in its smallest unit)`, "amount");
  if (amount > MAX_CHARGE[currency]) throw new HttpError(400, "VALIDATION_ERROR", `amount must be <= ${MAX_CHARGE[currency]} (the card processor's largest charge in ${currency}, in its smallest unit)`, "amount");
  return amount;
}

function toRequest(b: { amount: number; currency: string; paymentMethod: string; description?: string; reference?: string }): IntentRequest {
  let amount: bigint;
  try {
    amount = parseMinor(b.amount, "amount", 1n);
  } catch (err) {
    if (err instanceof MoneyError) throw new HttpError(400, "VALIDATION_ERROR", err.message, err.field);
    throw err;
  }
  const currency = b.currency as Currency;
  return { amount: chargeable(amount, currency), currency, paymentMethod: b.paymentMethod, description: b.description ?? null, reference: b.reference ?? null };
}

// Responses (OpenAPI; unnamed fields are kept). Amounts are integers in minor units.
const IntentOut = ResponseObject({ id: Type.String(), userId: Type.String(), status: Type.String() }, { description: "A payment intent: amount, currency, refunded total, processor reference, timestamps, and its refunds (id, amount, status pending/succeeded/failed, processorStatus, failureCode); the refund routes add `refund`, the one their Idempotency-Key made" });
const LedgerOut = ResponseObject({ accounts: Type.Array(ResponseObject({ account: Type.String(), currency: Type.String(), balance: Type.Number() })), totals: Type.Record(Type.String(), Type.Number()) });
const ReconcileOut = ResponseObject({
  checked: Type.Number(),
  actions: Type.Array(ResponseObject({ kind: Type.String(), intentId: Type.String() })),
  refunds: Type.Array(ResponseObject({ refundId: Type.String(), intentId: Type.String(), outcome: Type.String() }), { description: "pending refunds looked up at the processor: succeeded, failed, never_reached_processor, wait, mismatch (another amount or currency there: left pending, an issue), superseded (settled or sent again elsewhere meanwhile), error" }),
  rechecked: Type.Array(ResponseObject({ refundId: Type.String(), intentId: Type.String(), outcome: Type.String() }), { description: "recently succeeded refunds looked up again: reversed (failed there since), unchanged, not_found, mismatch (another amount or currency there: not applied, an issue), superseded, error" }),
  customersDeleted: Type.Number({ description: "processor customers of deleted accounts deleted at the processor by this pass (deleted-customers.ts)" }),
});
const IssuesQuery = Type.Object({ status: Type.Union([Type.Literal("open"), Type.Literal("all")], { default: "open" }), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) });
const IssueOut = ResponseObject({ id: Type.String(), kind: Type.String(), intentId: Type.String(), amount: Type.Number(), seen: Type.Number() });
// (the note: read by operators, in the order it was typed, never forging a line: the kit's DisplayText)
const ResolveBody = Type.Object({ note: DisplayText({ minLength: 3, maxLength: 1_000, description: "why it is closed: what the operator found or did" }) }, { additionalProperties: false });
const IssuesOut = ResponseObject({
  issues: Type.Array(IssueOut, {
    description: "newest first: kind exceeds_payment (reported succeeded, does not fit into what is left of the payment: not booked), not_found (succeeded here, not listed at the processor), amount_mismatch or currency_mismatch (the processor's record of our refund is of another amount or currency: not applied), charge_mismatch (the processor answered our charge with another amount or currency than asked: not booked, the payment left open; processorIntentId its PaymentIntent), refundId (null: made at the processor, not recorded), processorRefundId, processorStatus, processorAmount and processorCurrency (the mismatch kinds: the processor's), firstSeenAt, lastSeenAt, seen, resolvedAt, resolvedBy / resolvedAuthMethod / resolutionNote (closed by an operator; null: resolved by the service), settledStatus (the processor's final status an operator's settle applied: succeeded, failed, canceled; null otherwise)",
  }),
});
const WebhookOut = ResponseObject({ received: Type.Boolean(), outcome: Type.String() });

export function registerRoutes(app: App, deps: { payments: Payments; refunds: RefundReconciler | undefined; customers: DeletedCustomers | undefined; repo: PaymentRepo; refundRepo: RefundRepo; issues: RefundIssues; settler: RefundIssueSettler; processor: CardProcessor | undefined; onWebhook: (outcome: string) => void }) {
  const { payments, repo } = deps;
  const withRefunds = async (row: IntentRow) => intentView(row, await deps.refundRepo.ofIntents([row.intent_id]));

  const charge = async (origin: IntentOrigin, userId: string, key: string, body: IntentRequest, reply: FastifyReply) => {
    const { row, replay } = await payments.charge(origin, userId, key, body);
    if (replay) reply.header("idempotent-replay", "true");
    return reply.code(replay ? 200 : 201).send(intentView(row));
  };

  app.post("/intents", { schema: { body: IntentBody, response: { 200: IntentOut, 201: IntentOut } } }, async (req, reply) => {
    const who = requireIdentity(req);
    if (req.body.reference?.toLowerCase().startsWith(INVOICE_REFERENCE_PREFIX)) {
      throw new HttpError(400, "VALIDATION_ERROR", `references starting with '${INVOICE_REFERENCE_PREFIX}' are reserved for invoice charges, which billing makes`, "reference");
    }
    return charge("client", who.userId, idempotencyKey(req), toRequest(req.body), reply);
  });

  // Its keys are apart from the clients' (IntentOrigin): a user who sends billing's next key
  // (`invoice-<id>-<n>`) to /intents takes nothing from billing.
  app.post("/internal/intents", { schema: { body: InternalIntentBody } }, async (req, reply) => charge("internal", req.body.userId, idempotencyKey(req), toRequest(req.body), reply));

  app.get("/intents", { schema: { querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }), response: { 200: ResponseObject({ intents: Type.Array(IntentOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const rows = await repo.listForUser(who.userId, req.query.limit);
    const refunds = await deps.refundRepo.ofIntents(rows.map((r) => r.intent_id));
    return { intents: rows.map((r) => intentView(r, refunds)) };
  });

  app.get("/intents/:id", { schema: { params: IdParams, response: { 200: IntentOut } } }, async (req) => {
    const who = requireIdentity(req);
    const row = await repo.byId(req.params.id);
    if (!row || (row.user_id !== who.userId && who.role !== "admin")) throw notFound("payment not found");
    return withRefunds(row);
  });

  // The payment with its refunds, and `refund`: the one this Idempotency-Key made (its status may be
  // `pending`: the money has not gone back yet; billing-service waits for payment.refunded).
  const refund = async (req: FastifyRequest, p: { id: string }, b: { amount?: number; reason?: string }) => {
    const { intent, refundId } = await payments.refund(p.id, idempotencyKey(req), b.amount === undefined ? undefined : parseMinor(b.amount, "amount", 1n), b.reason ?? null);
    const refunds = await deps.refundRepo.ofIntents([intent.intent_id]);
    return { ...intentView(intent, refunds), refund: refunds.get(intent.intent_id)?.find((r) => r.id === refundId) };
  };
  app.post("/intents/:id/refunds", { schema: { params: IdParams, body: RefundBody, response: { 200: IntentOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return refund(req, req.params, req.body);
  });
  // billing-service gives back a payment for an invoice it no longer collects (voided meanwhile).
  app.post("/internal/intents/:id/refunds", { schema: { params: IdParams, body: RefundBody, response: { 200: IntentOut } } }, async (req) => refund(req, req.params, req.body));

  app.get("/ledger", { schema: { querystring: Type.Object({ account: Type.Optional(Type.String({ pattern: "^[a-z]+:[A-Za-z0-9._:@-]{0,128}$" })) }), response: { 200: LedgerOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return repo.balances(req.query.account);
  });

  app.get("/refund-issues", { schema: { querystring: IssuesQuery, response: { 200: IssuesOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return { issues: await deps.issues.list({ all: req.query.status === "all", limit: req.query.limit }) };
  });

  app.post("/refund-issues/:id/resolve", { schema: { params: IdParams, body: ResolveBody, response: { 200: IssueOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    const closed = await deps.issues.close(req.params.id, who, req.body.note);
    if (closed === "not_found") throw notFound("refund issue not found");
    if (closed === "resolved") throw new HttpError(409, "ISSUE_RESOLVED", "this refund issue is resolved already (GET /refund-issues?status=all shows by whom)", "id");
    return closed;
  });

  app.post("/refund-issues/:id/settle", { schema: { params: IdParams, body: ResolveBody, response: { 200: IssueOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    return deps.settler.settle(req.params.id, who, req.body.note);
  });

  app.post("/reconcile", { schema: { response: { 200: ReconcileOut } } }, async (req) => {
    requireIdentity(req, "admin");
    const actions = await payments.reconcile();
    const refunds = (await deps.refunds?.sweep()) ?? [];
    const rechecked = (await deps.refunds?.recheck()) ?? [];
    const customersDeleted = (await deps.customers?.sweep()) ?? 0;
    return {
      refunds,
      rechecked,
      customersDeleted,
      checked: actions.length,
      actions: actions.map((a) => ({ kind: a.kind, intentId: a.intentId, ...(a.kind === "settle" ? { to: a.to, processorIntentId: a.remote.id } : {}), ...(a.kind === "mismatch" ? { reason: a.reason } : {}) })),
    };
  });

  // The signature covers the exact bytes: this scope keeps the JSON body as a string.
  app.register(async (scope) => {
    // (the kit's guarded JSON parser is replaced in this scope only: the route verifies and parses itself;
    // Fastify's text/plain parser goes too, else a signed body sent as text/plain reached the route as a
    // string and was taken: every other media type is Fastify's 415)
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => done(null, body));
    scope.post("/webhooks/processor", { schema: { response: { 200: WebhookOut } }, config: { takesAnyBody: true } }, async (req, reply) => {
      if (!deps.processor) throw new HttpError(404, "PROCESSOR_NOT_CONFIGURED", "the card processor is not configured on this deployment");
      if (typeof req.body !== "string") throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "webhooks must be application/json");
      const sig = req.headers["stripe-signature"];
      let ev;
      try {
        ev = deps.processor.parseWebhook(req.body, typeof sig === "string" ? sig : undefined);
      } catch (err) {
        if (err instanceof WebhookSignatureError) {
          deps.onWebhook("rejected");
          throw new HttpError(400, "INVALID_SIGNATURE", `webhook rejected: ${err.message}`, "stripe-signature");
        }
        if (err instanceof WebhookPayloadError) {
          deps.onWebhook("rejected");
          throw new HttpError(400, "VALIDATION_ERROR", `webhook rejected: ${err.message}`, "body");
        }
        throw err;
      }
      const outcome = await payments.applyWebhook(ev);
      deps.onWebhook(outcome);
      return reply.code(200).send({ received: true, outcome });
    });
  });
}
