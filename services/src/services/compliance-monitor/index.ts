/**
 * compliance-monitor (8014): surveillance of orders and fills.
 * Consumes `trading.orders` and `trading.executions`, records every event once in the append-only
 * audit trail (cm_audit; a trigger forbids UPDATE/DELETE/TRUNCATE), runs the rules of
 * trading/compliance.ts (restricted symbols, position limits, wash trades, spoofing, layering,
 * excessive cancel ratio), stores alerts (cm_alerts, append-only) and publishes them on
 * `compliance.alerts` (at-least-once; deterministic alert ids for consumers to dedupe).
 * On start the rule state is rebuilt by replaying the recent audit trail, so a restart does not
 * forget an open wash-trade window.
 *
 * Layers: routes.ts (HTTP: GET /alerts, /alerts/mine), domain.ts (event forms, no I/O), data.ts (SQL).
 */
import { defineService, envList, Type } from "../../kit";
import { ComplianceMonitor, DEFAULT_COMPLIANCE, type ComplianceAlert } from "../../trading/compliance";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { SYMBOL_RE } from "../../trading/types";
import * as data from "./data";
import { auditSubject, fromOrderMsg, possibleAlertIds, type Audited } from "./domain";
import { registerRoutes } from "./routes";

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
    const { app, config: c } = ctx;
    const monitor = new ComplianceMonitor({
      restrictedSymbols: c.COMPLIANCE_RESTRICTED_SYMBOLS ?? [],
      positionLimit: c.COMPLIANCE_POSITION_LIMIT,
      washWindowMs: c.COMPLIANCE_WASH_WINDOW_MS,
      washPriceToleranceBps: c.COMPLIANCE_WASH_PRICE_TOLERANCE_BPS,
      spoofMinNotional: c.COMPLIANCE_SPOOF_MIN_NOTIONAL,
    });
    const run = (a: Audited): ComplianceAlert[] => (a.source === "order" ? monitor.onOrder(a.ev) : monitor.onFill(a.fill));

    // Rebuild rule state from the recent audit trail (alerts already raised are in cm_alerts).
    const past = await data.recentAudit(app.pg, c.COMPLIANCE_REPLAY_WINDOW_MS);
    for (const a of past) run(a);
    ctx.log.info({ replayed: past.length }, "compliance state rebuilt from the audit trail");

    const publish = (alerts: ComplianceAlert[]) =>
      app.kafka.send(TOPICS.complianceAlerts, alerts.map((al) => ({ key: al.userId, value: JSON.stringify(al), headers: { "event-id": al.alertId } })));

    /**
     * Audit row and alerts are written in one transaction, then the alerts are published. A
     * redelivered event (audit row already there) is not evaluated again, but its stored alerts are
     * published again: a crash between commit and publish cannot lose an alert (at-least-once,
     * deterministic alert ids).
     */
    async function handle(eventId: string, topic: string, a: Audited): Promise<void> {
      const alerts = await app.pg.transaction(async (tx) => {
        if (!(await data.recordAudit(tx, eventId, topic, auditSubject(a), a))) return data.alertsById(tx, possibleAlertIds(eventId));
        const raised = run(a);
        for (const al of raised) await data.insertAlert(tx, al);
        if (raised.length) ctx.log.warn({ alerts: raised.map((x) => ({ rule: x.rule, userId: x.userId, symbol: x.symbol })) }, "compliance alerts raised");
        return raised;
      });
      if (alerts.length) await publish(alerts);
    }

    registerRoutes(app);

    // Batches through the shared consumer: a message that is not JSON or breaks its topic's schema is
    // set aside in consumer_dead_letters instead of failing (and being retried) forever. Each event
    // is still its own transaction; a batch replayed after a failure is deduped by the audit row.
    await consumeBatches(ctx, {
      groupId: c.CM_CONSUMER_GROUP,
      topics: [TOPICS.orders, TOPICS.executions],
      handle: async (msgs) => {
        for (const message of msgs) {
          const v = JSON.parse(message.value);
          if (message.topic === TOPICS.orders) {
            const ev = fromOrderMsg(v as OrderEventMsg);
            if (ev) await handle(ev.eventId, message.topic, { source: "order", ev });
          } else {
            const m = v as ExecutionMsg;
            if (m.type === "fill") await handle(m.eventId, message.topic, { source: "fill", fill: m.fill });
          }
        }
      },
    });
  },
});
