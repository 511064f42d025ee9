/**
 * compliance-monitor (8014): surveillance of orders and fills.
 * Consumes `trading.orders` and `trading.executions`, records every event once in the append-only
 * audit trail (cm_audit; a trigger forbids UPDATE/DELETE/TRUNCATE), runs the rules of
 * trading/compliance.ts (restricted symbols, position limits, wash trades, spoofing, layering,
 * excessive cancel ratio), stores alerts (cm_alerts, append-only) and publishes them on
 * `compliance.alerts` (at-least-once; deterministic alert ids for consumers to dedupe).
 * On start the rule state is rebuilt by replaying the recent audit trail, so a restart does not
 * forget an open wash-trade window.
 *   GET /alerts         all alerts (admin)      GET /alerts/mine   the caller's alerts
 */
import { consumerConfig, consumerEnv } from "../../trading/infra/kafka";
import { defineService, requireIdentity, Type, envList } from "../../kit";
import { ComplianceMonitor, DEFAULT_COMPLIANCE, type ComplianceAlert, type OrderEvent } from "../../trading/compliance";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { SYMBOL_RE, type Fill } from "../../trading/types";

type Audited = { source: "order"; ev: OrderEvent } | { source: "fill"; fill: Fill };

function fromOrderMsg(m: OrderEventMsg): OrderEvent | undefined {
  const kind = ({ "order.accepted": "placed", "order.cancelled": "cancelled", "order.filled": "filled", "order.rejected": "rejected", "order.expired": "expired" } as const)[
    m.type as "order.accepted"
  ];
  if (!kind) return undefined;
  const o = m.order;
  return { eventId: m.eventId, kind, orderId: o.orderId, userId: o.userId, symbol: o.symbol, side: o.side, type: o.type, quantity: o.quantity, limitPrice: o.limitPrice, lastPrice: o.lastPrice ?? undefined, ts: m.ts };
}

export default defineService({
  name: "compliance-monitor",
  config: {
    ...consumerEnv,
    COMPLIANCE_RESTRICTED_SYMBOLS: Type.Optional(envList(Type.String({ pattern: SYMBOL_RE.source }))),
    COMPLIANCE_POSITION_LIMIT: Type.String({ default: DEFAULT_COMPLIANCE.positionLimit, pattern: "^\\d+(\\.\\d+)?$" }),
    COMPLIANCE_WASH_WINDOW_MS: Type.Integer({ default: DEFAULT_COMPLIANCE.washWindowMs, minimum: 1 }),
    COMPLIANCE_WASH_PRICE_TOLERANCE_BPS: Type.String({ default: DEFAULT_COMPLIANCE.washPriceToleranceBps }),
    COMPLIANCE_SPOOF_MIN_NOTIONAL: Type.String({ default: DEFAULT_COMPLIANCE.spoofMinNotional }),
    COMPLIANCE_REPLAY_WINDOW_MS: Type.Integer({ default: 3_600_000, minimum: 0 }),
    CM_CONSUMER_GROUP: Type.String({ default: "compliance-monitor" }),
  },
  async register(ctx) {
    const c = ctx.config;
    const pg = ctx.datastores.postgres;
    const kafka = ctx.datastores.kafka;
    const monitor = new ComplianceMonitor({
      restrictedSymbols: c.COMPLIANCE_RESTRICTED_SYMBOLS ?? [],
      positionLimit: c.COMPLIANCE_POSITION_LIMIT,
      washWindowMs: c.COMPLIANCE_WASH_WINDOW_MS,
      washPriceToleranceBps: c.COMPLIANCE_WASH_PRICE_TOLERANCE_BPS,
      spoofMinNotional: c.COMPLIANCE_SPOOF_MIN_NOTIONAL,
    });
    const run = (a: Audited): ComplianceAlert[] => (a.source === "order" ? monitor.onOrder(a.ev) : monitor.onFill(a.fill));

    // Rebuild rule state from the recent audit trail (alerts already raised are in cm_alerts).
    const past = await pg.query<{ payload: Audited }>("SELECT payload FROM cm_audit WHERE recorded_at > now() - make_interval(secs => $1::double precision / 1000) ORDER BY id", [c.COMPLIANCE_REPLAY_WINDOW_MS]);
    for (const r of past.rows) run(r.payload);
    ctx.log.info({ replayed: past.rowCount }, "compliance state rebuilt from the audit trail");

    const RULES = ["RESTRICTED_SYMBOL", "POSITION_LIMIT", "WASH_TRADE", "SPOOFING", "LAYERING", "EXCESSIVE_CANCEL_RATIO"];
    const publish = (alerts: ComplianceAlert[]) =>
      kafka.send(TOPICS.complianceAlerts, alerts.map((al) => ({ key: al.userId, value: JSON.stringify(al), headers: { "event-id": al.alertId } })));

    /**
     * Audit row and alerts are written in one transaction, then the alerts are published. A
     * redelivered event (audit row already there) is not evaluated again, but its stored alerts are
     * published again: a crash between commit and publish cannot lose an alert (at-least-once,
     * deterministic alert ids).
     */
    async function handle(eventId: string, topic: string, a: Audited): Promise<void> {
      const userId = a.source === "order" ? a.ev.userId : a.fill.userId;
      const symbol = a.source === "order" ? a.ev.symbol : a.fill.symbol;
      const kind = a.source === "order" ? a.ev.kind : "fill";
      const alerts = await pg.transaction(async (tx) => {
        const ins = await tx.query("INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (event_id) DO NOTHING", [
          eventId,
          topic,
          kind,
          userId,
          symbol,
          JSON.stringify(a),
        ]);
        if (ins.rowCount === 0) {
          const again = await tx.query<{ alert_id: string; rule: string; user_id: string; symbol: string; severity: string; message: string; evidence: string[]; ts: string }>(
            `SELECT alert_id, rule, user_id, symbol, severity, message, evidence, (extract(epoch FROM event_ts) * 1000)::bigint::text AS ts FROM cm_alerts WHERE alert_id = ANY($1::text[])`,
            [RULES.map((r) => `${r}:${eventId}`)],
          );
          return again.rows.map((r): ComplianceAlert => ({ alertId: r.alert_id, rule: r.rule as ComplianceAlert["rule"], userId: r.user_id, symbol: r.symbol, severity: r.severity as ComplianceAlert["severity"], message: r.message, evidence: r.evidence, ts: Number(r.ts) }));
        }
        const raised = run(a);
        for (const al of raised)
          await tx.query(
            "INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts) VALUES ($1,$2,$3,$4,$5,$6,$7, to_timestamp($8::double precision / 1000)) ON CONFLICT DO NOTHING",
            [al.alertId, al.rule, al.userId, al.symbol, al.severity, al.message, JSON.stringify(al.evidence), al.ts],
          );
        if (raised.length) ctx.log.warn({ alerts: raised.map((x) => ({ rule: x.rule, userId: x.userId, symbol: x.symbol })) }, "compliance alerts raised");
        return raised;
      });
      if (alerts.length) await publish(alerts);
    }

    const listAlerts = async (userId: string | null, limit: number) =>
      (
        await pg.query(
          `SELECT alert_id AS "alertId", rule, user_id AS "userId", symbol, severity, message, evidence, event_ts AS "ts", raised_at AS "raisedAt"
             FROM cm_alerts WHERE ($1::text IS NULL OR user_id = $1) ORDER BY raised_at DESC LIMIT $2`,
          [userId, limit],
        )
      ).rows;
    const Q = { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), userId: Type.Optional(Type.String()) }) } };
    ctx.app.get("/alerts", Q, async (req) => {
      requireIdentity(req, "admin");
      return { alerts: await listAlerts(req.query.userId ?? null, req.query.limit ?? 100) };
    });
    ctx.app.get("/alerts/mine", Q, async (req) => ({ alerts: await listAlerts(requireIdentity(req).userId, req.query.limit ?? 100) }));

    await kafka.consume({
      groupId: c.CM_CONSUMER_GROUP,
      topics: [TOPICS.orders, TOPICS.executions],
      fromBeginning: true,
      config: consumerConfig(ctx.config),
      eachMessage: async ({ topic, message }) => {
        if (!message.value) return;
        const v = JSON.parse(message.value.toString());
        if (topic === TOPICS.orders) {
          const ev = fromOrderMsg(v as OrderEventMsg);
          if (ev) await handle(ev.eventId, topic, { source: "order", ev });
        } else {
          const m = v as ExecutionMsg;
          if (m.type === "fill") await handle(m.eventId, topic, { source: "fill", fill: m.fill });
        }
      },
    });
  },
});
