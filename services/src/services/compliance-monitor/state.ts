/**
 * compliance-monitor's in-memory rule state kept bounded: a sweep every `intervalMs` drops the users
 * with no event for COMPLIANCE_STATE_IDLE_MS (ComplianceMonitor.prune), and the monitor itself holds
 * at most COMPLIANCE_MAX_TRACKED_USERS (a newcomer beyond drops the least recently active user). Before,
 * every user who ever traded stayed until a restart: many accounts trading once each grew it without
 * bound. Metrics: `compliance_state_users` (held now), `compliance_state_users_forgotten_total{reason}`
 * (`idle`, `cap`: an active user dropped at the cap, whose windows start again at their next event).
 */
import { Counter, Gauge } from "prom-client";
import type { ServiceContext } from "../../kit";
import type { ComplianceMonitor } from "../../trading/compliance";

export function sweepStateEvery(ctx: Pick<ServiceContext, "log" | "metrics" | "onClose">, monitor: ComplianceMonitor, intervalMs: number): void {
  const registers = [ctx.metrics.registry];
  new Gauge({ name: "compliance_state_users", help: "Users whose rule state compliance-monitor holds in memory", registers, collect() { this.set(monitor.trackedUsers); } });
  const reported = { idle: 0, atCap: 0 };
  const forgotten = new Counter({
    name: "compliance_state_users_forgotten_total",
    help: "Users whose rule state compliance-monitor dropped: idle (no event for COMPLIANCE_STATE_IDLE_MS), or cap (active, at COMPLIANCE_MAX_TRACKED_USERS)",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      this.inc({ reason: "idle" }, monitor.forgotten.idle - reported.idle);
      this.inc({ reason: "cap" }, monitor.forgotten.atCap - reported.atCap);
      Object.assign(reported, monitor.forgotten);
    },
  });
  forgotten.inc({ reason: "idle" }, 0);
  forgotten.inc({ reason: "cap" }, 0);
  let atCapLogged = 0;
  const timer = setInterval(() => {
    monitor.prune();
    if (monitor.forgotten.atCap > atCapLogged) {
      ctx.log.warn({ dropped: monitor.forgotten.atCap - atCapLogged, held: monitor.trackedUsers }, "compliance state at COMPLIANCE_MAX_TRACKED_USERS: the least recently active users' windows were dropped");
      atCapLogged = monitor.forgotten.atCap;
    }
  }, intervalMs).unref();
  ctx.onClose(() => clearInterval(timer));
}
