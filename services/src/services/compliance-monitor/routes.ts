/**
 * compliance-monitor's HTTP routes (behind the gateway at /api/compliance/...):
 *   GET /alerts         all alerts (admin), optionally of one user
 *   GET /alerts/mine    the caller's alerts
 */
import { requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { listAlerts } from "./data";

const AlertQuery = { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), userId: Type.Optional(UserIdSchema) }),
    response: { 200: ResponseObject({ alerts: Type.Array(ResponseObject({}, { description: "alertId, rule, userId, symbol, severity, message, evidence, ts, raisedAt" })) }) },
  },
};

export function registerRoutes(app: App): void {
  app.get("/alerts", AlertQuery, async (req) => {
    requireIdentity(req, "admin");
    return { alerts: await listAlerts(app.pg, req.query.userId ?? null, req.query.limit ?? 100) };
  });
  app.get("/alerts/mine", AlertQuery, async (req) => ({ alerts: await listAlerts(app.pg, requireIdentity(req).userId, req.query.limit ?? 100) }));
}
