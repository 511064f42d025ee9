/**
 * billing-service HTTP routes (behind the gateway at /api/billing):
 *   GET  /plans                            active plans (any signed-in user)
 *   POST /plans                            admin: { id, name, currency, amount, interval, trialDays?, usage? }
 *                                          (amount, usage.blockAmount at most the processor's largest charge: 400)
 *   POST /subscriptions                    { planId, paymentMethod } -> 201 (409 ALREADY_SUBSCRIBED; 409 PLAN_NOT_OFFERED
 *                                          for a plan no longer offered, as a plan change to one)
 *   GET  /subscriptions                    the caller's subscriptions
 *   POST /subscriptions/:id/plan           { planId } prorated change (409 INVOICE_OPEN while an invoice is unpaid)
 *   POST /subscriptions/:id/payment-method { paymentMethod } a saved card of the caller's; retries
 *                                          the invoices waiting for a dunning retry on it now
 *   POST /subscriptions/:id/cancel         { atPeriodEnd? = true }; asked again while set to end at the
 *                                          period's end 200 unchanged, of an ended one 409 SUBSCRIPTION_CANCELED
 *   GET  /invoices                         the caller's invoices with line items
 *   POST /cycle                            admin: run the billing cycle now (renewals, due charges)
 */
import { type App, DisplayText, HttpError, Nullable, requireIdentity, ResponseObject, Type } from "../../kit";
import { CURRENCIES, type Currency, MAX_CHARGE, MoneyError, parseMinor } from "../../business/money";
import { PaymentMethodId } from "../../business/payment-methods";
import type { Billing } from "./billing";
import type { BillingRepo } from "./repo";
import { invoiceView, planView, subscriptionView } from "./views";

const MAX = 1_000_000_000_000;
const PlanBody = Type.Object(
  {
    id: Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" }),
    name: DisplayText({ maxLength: 100 }),
    currency: Type.Union(Object.keys(CURRENCIES).map((c) => Type.Literal(c))),
    amount: Type.Integer({ minimum: 0, maximum: MAX }),
    interval: Type.Union([Type.Literal("month"), Type.Literal("year")]),
    trialDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 365 })),
    usage: Type.Optional(
      Type.Object(
        {
          metric: Type.Literal("api_requests"),
          included: Type.Integer({ minimum: 0, maximum: MAX }),
          blockSize: Type.Integer({ minimum: 1, maximum: MAX }),
          blockAmount: Type.Integer({ minimum: 0, maximum: MAX }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const PlanId = Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" });
const IdParams = Type.Object({ id: Type.String({ format: "uuid" }) });

function minor(v: number, field: string): bigint {
  try {
    return parseMinor(v, field);
  } catch (err) {
    if (err instanceof MoneyError) throw new HttpError(400, "VALIDATION_ERROR", err.message, field);
    throw err;
  }
}

/** A price the card processor can charge (MAX_CHARGE of the currency): above it, every charge of the plan was refused. */
function chargeable(v: bigint, field: string, currency: Currency): bigint {
  if (v > MAX_CHARGE[currency]) throw new HttpError(400, "VALIDATION_ERROR", `${field} must be <= ${MAX_CHARGE[currency]} (the card processor's largest charge in ${currency}, in its smallest unit)`, field);
  return v;
}

// Responses (OpenAPI; unnamed fields are kept). Amounts are integers in minor units.
const PlanOut = ResponseObject({ id: Type.String(), name: Type.String() }, { description: "A plan: currency, amount, interval, trial days, usage pricing" });
const SubscriptionOut = ResponseObject({ id: Type.String(), userId: Type.String() }, {
  description:
    "A subscription: plan, status (incomplete, trialing, active, past_due, unpaid, canceled, or paused while billing is paused: pausedAt, its owner's account disabled at its period's end; not renewed until it is enabled), period, trial, cancellation, payment method",
});
const InvoiceOut = ResponseObject(
  {
    id: Type.String(),
    subscriptionId: Type.String(),
    // Nullable's union takes no description: it goes on the string.
    chargeHeldAt: Nullable(
      Type.String({
        format: "date-time",
        description: "Its charge held for review since (the card processor answered another amount or currency): not charged again until the payment's outcome; null when not held",
      }),
    ),
  },
  { description: "An invoice with its lines, total and payment status" },
);

export function registerRoutes(app: App, deps: { billing: Billing; repo: BillingRepo }) {
  const { billing, repo } = deps;

  app.get("/plans", { schema: { response: { 200: ResponseObject({ plans: Type.Array(PlanOut) }) } } }, async (req) => {
    requireIdentity(req);
    return { plans: (await repo.plans()).map(planView) };
  });

  app.post("/plans", { schema: { body: PlanBody, response: { 201: PlanOut } } }, async (req, reply) => {
    requireIdentity(req, "admin");
    const b = req.body;
    const plan = {
      id: b.id,
      name: b.name,
      currency: b.currency as Currency,
      amount: chargeable(minor(b.amount, "amount"), "amount", b.currency as Currency),
      interval: b.interval,
      trialDays: b.trialDays ?? 0,
      usage: b.usage ? { metric: b.usage.metric, included: minor(b.usage.included, "usage.included"), blockSize: minor(b.usage.blockSize, "usage.blockSize"), blockAmount: chargeable(minor(b.usage.blockAmount, "usage.blockAmount"), "usage.blockAmount", b.currency as Currency) } : null,
    };
    if (!(await repo.createPlan(plan))) throw new HttpError(409, "PLAN_EXISTS", `plan ${b.id} already exists (plans are immutable: create a new one)`, "id");
    return reply.code(201).send(planView(plan));
  });

  app.post(
    "/subscriptions",
    { schema: { body: Type.Object({ planId: PlanId, paymentMethod: PaymentMethodId }, { additionalProperties: false }), response: { 201: SubscriptionOut } } },
    async (req, reply) => {
      const who = requireIdentity(req);
      return reply.code(201).send(subscriptionView(await billing.subscribe(who.userId, req.body.planId, req.body.paymentMethod)));
    },
  );

  app.get("/subscriptions", { schema: { response: { 200: ResponseObject({ subscriptions: Type.Array(SubscriptionOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    return { subscriptions: (await repo.subscriptionsOf(who.userId)).map(subscriptionView) };
  });

  app.post("/subscriptions/:id/plan", { schema: { params: IdParams, body: Type.Object({ planId: PlanId }, { additionalProperties: false }), response: { 200: SubscriptionOut } } }, async (req) => {
    const who = requireIdentity(req);
    return subscriptionView(await billing.changePlan(who.userId, req.params.id, req.body.planId));
  });

  app.post(
    "/subscriptions/:id/payment-method",
    { schema: { params: IdParams, body: Type.Object({ paymentMethod: PaymentMethodId }, { additionalProperties: false }), response: { 200: SubscriptionOut } } },
    async (req) => {
      const who = requireIdentity(req);
      return subscriptionView(await billing.changePaymentMethod(who.userId, req.params.id, req.body.paymentMethod));
    },
  );

  app.post("/subscriptions/:id/cancel", { schema: { params: IdParams, body: Type.Optional(Type.Object({ atPeriodEnd: Type.Optional(Type.Boolean()) }, { additionalProperties: false })), response: { 200: SubscriptionOut } } }, async (req) => {
    const who = requireIdentity(req);
    return subscriptionView(await billing.cancel(who.userId, req.params.id, req.body?.atPeriodEnd ?? true));
  });

  app.get("/invoices", { schema: { querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }), response: { 200: ResponseObject({ invoices: Type.Array(InvoiceOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const invoices = await repo.invoicesOf(who.userId, req.query.limit);
    const lines = await repo.lines(invoices.map((i) => i.invoice_id));
    return { invoices: invoices.map((i) => invoiceView(i, lines.filter((l) => l.invoice_id === i.invoice_id))) };
  });

  app.post("/cycle", { schema: { response: { 200: ResponseObject({ renewed: Type.Number(), charged: Type.Number() }) } } }, async (req) => {
    requireIdentity(req, "admin");
    return billing.runCycle();
  });
}
