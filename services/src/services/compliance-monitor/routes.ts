/**
 * compliance-monitor's HTTP routes (behind the gateway at /api/compliance/...):
 *   GET /alerts         all alerts in full (admin: compliance officers), optionally of one user
 *   GET /alerts/mine    the caller's alerts, without what tripped them (trading/complianceAlertView.ts)
 */
import { requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { traderAlert } from "../../trading/complianceAlertView";
import { listAlerts } from "./data";

const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 }));
const AlertsOut = ResponseObject({ alerts: Type.Array(ResponseObject({}, { description: "alertId, rule, userId, symbol, orderId, severity, message, evidence, ts, raisedAt" })) });
const MineOut = ResponseObject({ alerts: Type.Array(ResponseObject({}, { description: "alertId, rule, summary, symbol, orderId, severity, ts, raisedAt" })) });
const AlertQuery = { schema: { querystring: Type.Object({ limit: Limit, userId: Type.Optional(UserIdSchema) }), response: { 200: AlertsOut } } };
// The caller's own: another user's id is refused (400 naming userId), not silently answered with the
// caller's alerts as if they were that user's.
const MineQuery = { schema: { querystring: Type.Object({ limit: Limit }, { additionalProperties: false }), response: { 200: MineOut } } };

export function registerRoutes(app: App): void {
  app.get("/alerts", AlertQuery, async (req) => {
    requireIdentity(req, "admin");
    return { alerts: await listAlerts(app.pg, req.query.userId ?? null, req.query.limit ?? 100) };
  });
  app.get("/alerts/mine", MineQuery, async (req) => ({ alerts: (await listAlerts(app.pg, requireIdentity(req).userId, req.query.limit ?? 100)).map(traderAlert) }));
}
