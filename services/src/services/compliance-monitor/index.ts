/**
 * compliance-monitor (8014): surveillance of orders and fills.
 * Consumes `trading.orders` and `trading.executions`, records every event once in the append-only
 * audit trail (cm_audit; triggers forbid UPDATE/TRUNCATE, and DELETE but of rows past the retention
 * by the sweep: migration 0424, COMPLIANCE_AUDIT_RETENTION_DAYS), runs the rules of
 * trading/compliance.ts (restricted symbols, position limits, wash trades, spoofing, layering,
 * excessive cancel ratio), stores alerts (cm_alerts, append-only) and publishes them on
 * `compliance.alerts` (at-least-once; deterministic alert ids for consumers to dedupe).
 * Positions (POSITION_LIMIT) are not kept in memory: cm_positions holds them, moved once per fill id
 * by a trigger on cm_audit in the transaction that records the fill (migration 0199), so neither a
 * restart nor a redelivery changes them. The windowed state (wash trades, spoofing, layering, cancel
 * ratio) is in memory: an event changes it only once its transaction committed, and its entries are
 * keyed by event id. On start it is rebuilt by replaying the last COMPLIANCE_REPLAY_WINDOW_MS of the
 * audit trail, so a restart does not forget an open wash-trade window. It is bounded: every
 * COMPLIANCE_STATE_SWEEP_MS the users with no event for COMPLIANCE_STATE_IDLE_MS (what a restart
 * would forget of them too) are dropped, and at most COMPLIANCE_MAX_TRACKED_USERS are held (state.ts).
 * cm_position_fills rows go after COMPLIANCE_POSITION_FILL_RETENTION_DAYS, no fewer than the longest a
 * fill can come back (domain.ts positionFillRetentionFloorDays); positions stay (a running total).
 *
 * Layers: routes.ts (HTTP: GET /alerts, /alerts/mine), domain.ts (event forms, no I/O), data.ts (SQL).
 */
import { ConfigError, defineService, envList, PeriodicDelete, RECORD_RETENTION_DAYS, Type, userPartitionKey } from "../../kit";
import { ComplianceMonitor, DEFAULT_COMPLIANCE, type ComplianceAlert, type Evaluation } from "../../trading/compliance";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { consumeBatches, consumerEnv } from "../../trading/infra/kafka";
import { SYMBOL_RE } from "../../trading/types";
import * as data from "./data";
import { declaredLifetime } from "../../migrations/kafka";
import { auditSubject, fromOrderMsg, positionFillRetentionFloorDays, possibleAlertIds, type Audited } from "./domain";
import { registerRoutes } from "./routes";
import { sweepStateEvery } from "./state";

// trading.executions' retention and segment roll as the platform declares them.
const EXECUTIONS_TOPIC = declaredLifetime(TOPICS.executions, "cm_position_fills");

export default defineService({
  name: "compliance-monitor",
  config: {
    ...consumerEnv,
    COMPLIANCE_RESTRICTED_SYMBOLS: Type.Optional(envList(Type.String({ pattern: SYMBOL_RE.source }))),
    COMPLIANCE_POSITION_LIMIT: Type.String({ default: DEFAULT_COMPLIANCE.positionLimit, pattern: "^\\d+(\\.\\d+)?$" }),
    COMPLIANCE_WASH_WINDOW_MS: Type.Integer({ default: DEFAULT_COMPLIANCE.washWindowMs, minimum: 1, maximum: 86_400_000 }),
    COMPLIANCE_WASH_PRICE_TOLERANCE_BPS: Type.String({ default: DEFAULT_COMPLIANCE.washPriceToleranceBps }),
    COMPLIANCE_SPOOF_MIN_NOTIONAL: Type.String({ default: DEFAULT_COMPLIANCE.spoofMinNotional }),
    COMPLIANCE_CANCEL_RATIO_WINDOW_MS: Type.Integer({ default: DEFAULT_COMPLIANCE.cancelRatioWindowMs, minimum: 1, maximum: 86_400_000 }),
    COMPLIANCE_REPLAY_WINDOW_MS: Type.Integer({ default: 3_600_000, minimum: 0, maximum: 86_400_000 }),
    // The replay's hour by default: a user idle that long is held as a restart would hold them.
    COMPLIANCE_STATE_IDLE_MS: Type.Integer({ default: DEFAULT_COMPLIANCE.stateIdleMs, minimum: 1, maximum: 604_800_000 }),
    COMPLIANCE_STATE_SWEEP_MS: Type.Integer({ default: 60_000, minimum: 10, maximum: 3_600_000 }),
    // About 1.4 KB a user with a fill and an order in its windows (measured): 50,000 take ~70 MB of a small replica's 256 MiB.
    COMPLIANCE_MAX_TRACKED_USERS: Type.Integer({ default: DEFAULT_COMPLIANCE.maxTrackedUsers, minimum: 1, maximum: 10_000_000 }),
    CM_CONSUMER_GROUP: Type.String({ default: "compliance-monitor" }),
    // Compliance records are kept for years, not days: order records and surveillance alerts must be
    // producible to a regulator for 5 years under MiFID II (6 under SEC 17a-4), hence a default of 7
    // and a floor of 5 (the kit's RECORD_RETENTION_DAYS), which the tables' triggers enforce too (migration 0424).
    COMPLIANCE_AUDIT_RETENTION_DAYS: Type.Integer({ ...RECORD_RETENTION_DAYS }),
    COMPLIANCE_ALERT_RETENTION_DAYS: Type.Integer({ ...RECORD_RETENTION_DAYS }),
    // How long a fill's cm_position_fills row (which makes it move the position once) is kept: at least
    // the longest a fill can come back (domain.ts positionFillRetentionFloorDays, 33 days by default).
    COMPLIANCE_POSITION_FILL_RETENTION_DAYS: Type.Integer({ default: 90, minimum: 1, maximum: 36_500 }),
  },
  async register(ctx) {
    const { app, config: c } = ctx;
    const windowMs = Math.max(c.COMPLIANCE_WASH_WINDOW_MS, c.COMPLIANCE_CANCEL_RATIO_WINDOW_MS, DEFAULT_COMPLIANCE.spoofCancelWithinMs);
    if (c.COMPLIANCE_STATE_IDLE_MS < windowMs)
      throw new ConfigError("compliance-monitor", [`COMPLIANCE_STATE_IDLE_MS (${c.COMPLIANCE_STATE_IDLE_MS}) must be at least the longest rule window (${windowMs} ms): an idle user's open window would be forgotten`]);
    const fillFloorDays = positionFillRetentionFloorDays(EXECUTIONS_TOPIC, c.COMPLIANCE_REPLAY_WINDOW_MS);
    if (c.COMPLIANCE_POSITION_FILL_RETENTION_DAYS < fillFloorDays)
      throw new ConfigError("compliance-monitor", [
        `COMPLIANCE_POSITION_FILL_RETENTION_DAYS (${c.COMPLIANCE_POSITION_FILL_RETENTION_DAYS}) must be at least ${fillFloorDays}: ${TOPICS.executions}' retention, its segments' roll, COMPLIANCE_REPLAY_WINDOW_MS and a day's margin; a fill delivered again after its row was deleted would move the position twice`,
      ]);
    const monitor = new ComplianceMonitor({
      restrictedSymbols: c.COMPLIANCE_RESTRICTED_SYMBOLS ?? [],
      positionLimit: c.COMPLIANCE_POSITION_LIMIT,
      washWindowMs: c.COMPLIANCE_WASH_WINDOW_MS,
      washPriceToleranceBps: c.COMPLIANCE_WASH_PRICE_TOLERANCE_BPS,
      spoofMinNotional: c.COMPLIANCE_SPOOF_MIN_NOTIONAL,
      cancelRatioWindowMs: c.COMPLIANCE_CANCEL_RATIO_WINDOW_MS,
      stateIdleMs: c.COMPLIANCE_STATE_IDLE_MS,
      maxTrackedUsers: c.COMPLIANCE_MAX_TRACKED_USERS,
    });
    // positionAfter: the fill's position from cm_positions (null in a replay: the rule is not evaluated).
    const evaluate = (a: Audited, positionAfter: string | null): Evaluation =>
      a.source === "order" ? monitor.evaluateOrder(a.ev) : monitor.evaluateFill(a.fill, { positionAfter });

    // Rebuild the windowed rule state from the recent audit trail (alerts already raised are in cm_alerts).
    const past = await data.recentAudit(app.pg, c.COMPLIANCE_REPLAY_WINDOW_MS);
    for (const a of past) evaluate(a, null).commit();
    ctx.log.info({ replayed: past.length }, "compliance state rebuilt from the audit trail");
    sweepStateEvery(ctx, monitor, c.COMPLIANCE_STATE_SWEEP_MS);

    const publish = (alerts: ComplianceAlert[]) =>
      app.kafka.send(TOPICS.complianceAlerts, alerts.map((al) => ({ key: userPartitionKey(al.userId), value: JSON.stringify(al), headers: { "event-id": al.alertId } })));

    /**
     * Audit row, position and alerts are written in one transaction, then the alerts are published. A
     * redelivered event (audit row already there) is not evaluated again, but its stored alerts are
     * published again: a crash between commit and publish cannot lose an alert (at-least-once,
     * deterministic alert ids). The rule state takes the event only after COMMIT: an attempt rolled
     * back (a failed alert insert or COMMIT; the batch is then redelivered or retried message by
     * message) leaves memory as it was, so the event is counted once when it is evaluated again.
     */
    async function handle(eventId: string, topic: string, a: Audited): Promise<void> {
      const outcome = await app.pg.transaction(async (tx): Promise<{ alerts: ComplianceAlert[]; evaluation?: Evaluation }> => {
        if (!(await data.recordAudit(tx, eventId, topic, auditSubject(a), a))) return { alerts: await data.alertsById(tx, possibleAlertIds(eventId)) };
        let position: string | null = null;
        if (a.source === "fill") {
          const p = await data.positionAfterFill(tx, a.fill.fillId, eventId);
          if (!p) throw new Error(`no cm_positions row for fill ${a.fill.fillId}: is migration 0199_cm_positions applied?`);
          // The same fill recorded earlier under another event id: it was evaluated then.
          if (!p.applied) return { alerts: [] };
          position = p.quantity;
        }
        const evaluation = evaluate(a, position);
        for (const al of evaluation.alerts) await data.insertAlert(tx, al);
        return { alerts: evaluation.alerts, evaluation };
      });
      outcome.evaluation?.commit();
      const raised = outcome.evaluation?.alerts ?? [];
      if (raised.length) ctx.log.warn({ alerts: raised.map((x) => ({ rule: x.rule, userId: x.userId, symbol: x.symbol })) }, "compliance alerts raised");
      if (outcome.alerts.length) await publish(outcome.alerts);
    }

    registerRoutes(app);

    // The trail past its retention, 5,000 rows a pass (the kit's PeriodicDelete: a batch a minute, a
    // second apart through a backlog), so a sweep never holds long locks on the tables the consumer writes.
    for (const [table, days] of [["cm_audit", c.COMPLIANCE_AUDIT_RETENTION_DAYS], ["cm_alerts", c.COMPLIANCE_ALERT_RETENTION_DAYS]] as const) {
      const expired = new PeriodicDelete(`${table} rows past the retention`, () => data.deleteExpired(app.pg, table, days, 5_000), ctx.log);
      expired.start();
      ctx.onClose(() => expired.stop());
    }
    const fillsExpired = new PeriodicDelete("cm_position_fills rows past the retention", () => data.deletePositionFillsPastRetention(app.pg, c.COMPLIANCE_POSITION_FILL_RETENTION_DAYS, 5_000), ctx.log);
    fillsExpired.start();
    ctx.onClose(() => fillsExpired.stop());

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
