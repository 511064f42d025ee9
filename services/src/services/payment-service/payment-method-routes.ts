/**
 * payment-service's saved payment methods (behind the gateway at /api/payments; a user session
 * only, api-gateway/key-scopes.ts):
 *   POST   /payment-methods                 { paymentMethod: "pm_..." } -> 201 saved, 200 already yours,
 *                                           422 PAYMENT_METHOD_REFUSED (unknown, someone else's, used up),
 *                                           409 PAYMENT_METHODS_LIMIT (PAYMENT_MAX_METHODS_PER_USER saved already)
 *   GET    /payment-methods                 the caller's saved methods
 *   DELETE /payment-methods/:paymentMethod  204; 404 unless it is a saved method of the caller's
 *   GET    /internal/payment-methods/:paymentMethod?userId=  200 if saved to that user, else 404
 *                                           (billing-service before a subscription; never proxied)
 */
import { HttpError, NoContent, requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { PaymentMethodId } from "../../business/payment-methods";
import { paymentMethodView } from "./payment-method-data";
import type { PaymentMethods } from "./payment-methods";

const Params = Type.Object({ paymentMethod: PaymentMethodId });
const PaymentMethodOut = ResponseObject({ paymentMethod: Type.String() }, { description: "A saved payment method: token, card brand and last 4 digits, when saved" });

export function registerPaymentMethodRoutes(app: App, methods: PaymentMethods): void {
  app.post(
    "/payment-methods",
    { schema: { body: Type.Object({ paymentMethod: PaymentMethodId }, { additionalProperties: false }), response: { 200: PaymentMethodOut, 201: PaymentMethodOut } } },
    async (req, reply) => {
      const who = requireIdentity(req);
      const { row, created } = await methods.save(who.userId, req.body.paymentMethod);
      return reply.code(created ? 201 : 200).send(paymentMethodView(row));
    },
  );

  app.get("/payment-methods", { schema: { response: { 200: ResponseObject({ paymentMethods: Type.Array(PaymentMethodOut) }) } } }, async (req) => {
    const who = requireIdentity(req);
    return { paymentMethods: (await methods.list(who.userId)).map(paymentMethodView) };
  });

  app.delete("/payment-methods/:paymentMethod", { schema: { params: Params, response: { 204: NoContent } } }, async (req, reply) => {
    const who = requireIdentity(req);
    await methods.remove(who.userId, req.params.paymentMethod);
    return reply.code(204).send();
  });

  app.get("/internal/payment-methods/:paymentMethod", { schema: { params: Params, querystring: Type.Object({ userId: UserIdSchema }) } }, async (req) => {
    if (!(await methods.isSaved(req.query.userId, req.params.paymentMethod))) throw new HttpError(404, "PAYMENT_METHOD_NOT_FOUND", "not a saved payment method of this user", "paymentMethod");
    return { saved: true };
  });
}
