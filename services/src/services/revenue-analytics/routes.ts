/**
 * revenue-analytics HTTP (admin only: platform revenue is not a trader's business).
 *   GET /?asOf=<ISO>&periodDays=30   per currency: MRR, ARR, paying customers, ARPU, churn over the
 *                                    period ending at asOf, LTV, cash collected / refunded / net
 */
import { HttpError, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { toJson } from "../../business/money";
import { cashBetween, customerMrrAt } from "./data";
import { revenueMetrics, type RevenueMetrics } from "./domain";

const DAY = 86_400_000;

const json = (m: RevenueMetrics) => ({
  currency: m.currency,
  mrr: toJson(m.mrr),
  arr: toJson(m.arr),
  payingCustomers: m.payingCustomers,
  arpu: toJson(m.arpu),
  customersAtStart: m.customersAtStart,
  churnedCustomers: m.churnedCustomers,
  newCustomers: m.newCustomers,
  churnRate: m.churnRate,
  ltv: m.ltv === null ? null : toJson(m.ltv),
  collected: toJson(m.collected),
  refunded: toJson(m.refunded),
  netRevenue: toJson(m.netRevenue),
});

/** GET / (OpenAPI; unnamed fields are kept). Money as `toJson` gives it; counts and rates as numbers. */
const RevenueOut = ResponseObject({
  asOf: Type.String(),
  from: Type.String(),
  periodDays: Type.Number(),
  currencies: Type.Array(ResponseObject({ currency: Type.String() }, { description: "mrr, arr, payingCustomers, arpu, churn, ltv, collected, refunded, netRevenue" })),
});

export function registerRoutes(app: App): void {
  app.get(
    "/",
    {
      schema: {
        querystring: Type.Object(
          {
            asOf: Type.Optional(Type.String({ format: "date-time" })),
            periodDays: Type.Integer({ minimum: 1, maximum: 3660, default: 30 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: RevenueOut },
      },
    },
    async (req) => {
      requireIdentity(req, "admin");
      const asOf = req.query.asOf ? new Date(req.query.asOf) : new Date();
      const from = new Date(asOf.getTime() - req.query.periodDays * DAY);
      if (Number.isNaN(from.getTime())) throw new HttpError(400, "VALIDATION_ERROR", "asOf is out of range", "asOf");
      const [atStart, atEnd, cash] = await Promise.all([customerMrrAt(app.pg, from), customerMrrAt(app.pg, asOf), cashBetween(app.pg, from, asOf)]);
      const currencies = [...new Set([...atStart.keys(), ...atEnd.keys(), ...cash.keys()])].sort();
      const metrics = currencies.map((c) => revenueMetrics(c, atStart.get(c) ?? new Map(), atEnd.get(c) ?? new Map(), cash.get(c) ?? { collected: 0n, refunded: 0n }));
      return { asOf: asOf.toISOString(), from: from.toISOString(), periodDays: req.query.periodDays, currencies: metrics.map(json) };
    },
  );
}
