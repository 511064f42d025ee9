/**
 * Rate limits, lockouts, timeouts and windows in the services' environment (session 39): each has a
 * range, and a value beyond it stops the service at start with a ConfigError naming the variable.
 * Before, a million requests per window (no limit), a lockout of a year, or a timeout past Node's
 * longest timer (setTimeout fires after 1 ms beyond 2^31-1 ms: every proxied request a 504) started.
 * The start-up path is createService's: the environment is judged before any datastore is reached.
 */
import { describe, expect, it } from "vitest";
import { commonEnv, createService, datastoreEnv, loadConfig, MAX_TIMER_MS, type ConfigSchema, type TSchema } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { findService } from "../../services/src/catalog";

/** [service, variable, value, the problem the start must name]. */
const absurd: [string, string, string, string][] = [
  ["api-gateway", "RATE_LIMIT_MAX_REQUESTS", "100000000", "must be <= 1000000"],
  ["api-gateway", "RATE_LIMIT_MAX_REQUESTS", "0", "must be >= 1"],
  ["api-gateway", "RATE_LIMIT_MAX_REQUESTS", "-5", "must be >= 1"],
  ["api-gateway", "RATE_LIMIT_MAX_REQUESTS", "2.5", "must be an integer"],
  ["api-gateway", "RATE_LIMIT_WINDOW_MS", "100", "must be >= 1000"],
  ["api-gateway", "RATE_LIMIT_WINDOW_MS", "86400000", "must be <= 3600000"],
  ["api-gateway", "RATE_LIMIT_IP_MAX_REQUESTS", "1000000000", "must be <= 4000000"],
  ["api-gateway", "API_KEY_MAX_FAILURES", "1000000", "must be <= 1000"],
  ["api-gateway", "API_KEY_FAILURE_WINDOW_MS", "31536000000", "must be <= 86400000"],
  ["api-gateway", "PROXY_TIMEOUT_MS", "3000000000", "must be <= 600000"],
  ["api-gateway", "REQUEST_TIMEOUT_MS", "3000000000", "must be <= 600000"],
  ["api-gateway", "CLIENT_SEND_TIMEOUT_MS", "3000000000", "must be <= 600000"],
  ["api-gateway", "CLIENT_SEND_TIMEOUT_MS", "100", "must be >= 1000"],
  ["api-gateway", "HEALTH_TIMEOUT_MS", "3600000", "must be <= 60000"],
  ["api-gateway", "ACCESS_TOKEN_MAX_AGE_S", "31536000", "must be <= 86400"],
  ["api-gateway", "USER_STATE_LOCAL_TTL_MS", "86400000", "must be <= 300000"],
  ["user-management", "LOGIN_LOCKOUT_WINDOW_MS", "31536000000", "must be <= 86400000"],
  ["notification-service", "NOTIFY_RATE_LIMIT_MAX", "1000000", "must be <= 10000"],
  ["notification-service", "NOTIFY_RATE_LIMIT_WINDOW_MS", "1000000000000", "must be <= 2592000000"],
  ["notification-service", "NOTIFY_HTTP_TIMEOUT_MS", "3000000000", "must be <= 120000"],
  ["notification-service", "NOTIFY_BACKOFF_MAX_MS", "31536000000", "must be <= 86400000"],
  ["notification-service", "NOTIFY_LEASE_MS", "86400000", "must be <= 3600000"],
  ["order-management", "RISK_MAX_ORDERS_PER_WINDOW", "1000000000", "must be <= 100000"],
  ["order-management", "RISK_RATE_WINDOW_MS", "1", "must be >= 100"],
  ["risk-analyzer", "RISK_RATE_WINDOW_MS", "31536000000", "must be <= 3600000"],
  ["order-management", "RISK_MAX_OPEN_ORDERS", "1000000", "must be <= 100000"],
  ["risk-analyzer", "RISK_MAX_OPEN_ORDERS", "0", "must be >= 1"],
  ["order-management", "KAFKA_SESSION_TIMEOUT_MS", "3600000", "must be <= 300000"],
  ["database-service", "MIGRATE_LOCK_TIMEOUT_MS", "3000000000", "must be <= 3600000"],
  ["compliance-monitor", "COMPLIANCE_REPLAY_WINDOW_MS", "31536000000", "must be <= 86400000"],
  ["compliance-monitor", "COMPLIANCE_WASH_WINDOW_MS", "31536000000", "must be <= 86400000"],
  ["compliance-monitor", "COMPLIANCE_POSITION_FILL_RETENTION_DAYS", "100000", "must be <= 36500"],
  ["payment-service", "PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS", "100000", "must be <= 36500"],
  ["payment-service", "PAYMENT_REFUND_RECHECK_DAYS", "365", "must be <= 180"],
  ["payment-service", "PAYMENT_REFUND_RECHECK_DAYS", "-1", "must be >= 0"],
  ["payment-service", "PAYMENT_REFUND_RECHECK_EVERY_MINUTES", "1", "must be >= 5"],
  ["payment-service", "PAYMENT_REFUND_RECHECK_EVERY_MINUTES", "100000", "must be <= 10080"],
  ["payment-service", "PAYMENT_NEVER_REACHED_RECHECK_DAYS", "0", "must be >= 1"],
  ["payment-service", "PAYMENT_NEVER_REACHED_RECHECK_DAYS", "365", "must be <= 180"],
  // Resolved refund issues: the kit's RECORD_RETENTION_DAYS bounds (5 to 100 years).
  ["payment-service", "PAYMENT_REFUND_ISSUE_RETENTION_DAYS", "30", "must be >= 1825"],
  ["payment-service", "PAYMENT_REFUND_ISSUE_RETENTION_DAYS", "100000", "must be <= 36500"],
  ["billing-service", "BILLING_PROCESSED_EVENT_RETENTION_DAYS", "100000", "must be <= 36500"],
  ["billing-service", "BILLING_CHARGE_HOLD_OVERDUE_DAYS", "0", "must be >= 1"],
  ["billing-service", "BILLING_CHARGE_HOLD_OVERDUE_DAYS", "1000", "must be <= 365"],
  ["central-hub", "SHUTDOWN_TIMEOUT_MS", "3000000000", "must be <= 600000"],
  // No range of its own: the kit's bound on every *_MS (an interval past it spun every millisecond).
  ["data-bridge", "CH_FLUSH_MS", "3000000000", `must be <= ${MAX_TIMER_MS} (Node's longest timer)`],
  ["payment-service", "PAYMENT_CHARGE_LOCK_CONNECTIONS", "0", "must be >= 1"],
  ["payment-service", "PAYMENT_CHARGE_LOCK_CONNECTIONS", "51", "must be <= 50"],
  ["payment-service", "PAYMENT_CHARGE_LOCK_WAIT_MS", "0", "must be >= 100"],
  ["payment-service", "PAYMENT_CHARGE_LOCK_WAIT_MS", "600000", "must be <= 60000"],
  ["payment-service", "PAYMENT_CHARGE_LOCK_HOLD_MS", "999", "must be >= 1000"],
  ["payment-service", "PAYMENT_CHARGE_LOCK_HOLD_MS", "86400000", "must be <= 3600000"],
  ["payment-service", "PAYMENT_OUTBOX_INTERVAL_MS", "3000000000", `must be <= ${MAX_TIMER_MS} (Node's longest timer)`],
  ["notification-service", "NOTIFY_WORKER_INTERVAL_MS", "3000000000", `must be <= ${MAX_TIMER_MS} (Node's longest timer)`],
];

const moduleOf = async (name: string) => registry[name]();

describe("rate limits, lockouts and timeouts from the environment (session 39)", () => {
  it("refuses each beyond its range at start, naming the variable and the bound", async () => {
    for (const [service, name, value, problem] of absurd) {
      const mod = await moduleOf(service);
      await expect(createService(mod, { env: { LOG_LEVEL: "silent", [name]: value }, defaultMetrics: false }), `${service} ${name}=${value}`).rejects.toThrow(
        `${name} ${problem} (got "${value}")`,
      );
    }
  });

  it("takes the defaults and the bounds themselves", async () => {
    const withinBounds: [string, string, string][] = [
      ["api-gateway", "RATE_LIMIT_MAX_REQUESTS", "1000000"],
      ["api-gateway", "RATE_LIMIT_WINDOW_MS", "3600000"],
      ["api-gateway", "REQUEST_TIMEOUT_MS", "600000"],
      ["user-management", "LOGIN_LOCKOUT_WINDOW_MS", "86400000"],
      ["notification-service", "NOTIFY_RATE_LIMIT_WINDOW_MS", "2592000000"],
      ["order-management", "RISK_MAX_ORDERS_PER_WINDOW", "100000"],
      ["order-management", "RISK_MAX_OPEN_ORDERS", "100000"],
      ["risk-analyzer", "RISK_MAX_OPEN_ORDERS", "1"],
      ["data-bridge", "CH_FLUSH_MS", String(MAX_TIMER_MS)],
    ];
    for (const [service, name, value] of [...withinBounds, ...absurd.map(([s, n]) => [s, n, ""] as [string, string, string])]) {
      const mod = await moduleOf(service);
      const own = { ...commonEnv(findService(service)!), ...(mod.config ?? {}) };
      let problems = "";
      try {
        loadConfig(service, own, value === "" ? {} : { [name]: value });
      } catch (e) {
        problems = (e as Error).message;
      }
      expect(problems, `${service} ${name}=${value || "default"}`).not.toContain(`${name} `);
    }
  });

  it("every rate limit, lockout, timeout and window a service reads has a range of its own", async () => {
    const limitLike = /RATE_LIMIT|TIMEOUT|LOCKOUT|WINDOW|MAX_FAILURES/;
    const schemas: [string, ConfigSchema][] = [["datastores", Object.assign({}, ...Object.values(datastoreEnv))]];
    for (const [service, load] of Object.entries(registry)) schemas.push([service, { ...commonEnv(findService(service)!), ...((await load()).config ?? {}) }]);
    const unbounded = schemas.flatMap(([service, schema]) =>
      Object.entries(schema)
        .filter(([name, s]: [string, TSchema]) => limitLike.test(name) && (s.type === "integer" || s.type === "number") && s.maximum === undefined)
        .map(([name]) => `${service} ${name}`),
    );
    expect(unbounded).toEqual([]);
  });
});

describe("TRUST_PROXY wider than the edge proxy (session 42)", () => {
  it("stops any service at start, naming the variable: the stack config's bound (IPv4 /16, IPv6 /48) holds however the service is started", async () => {
    // Before: a service started by hand or by another deployer with TRUST_PROXY=10.0.0.0/8 trusted
    // X-Forwarded-For from a whole /8 (only the stack config refused it).
    for (const [service, value] of [["api-gateway", "10.0.0.0/8"], ["api-gateway", "fd00::/32"], ["api-gateway", "uniquelocal"], ["user-management", "172.16.0.0/12"]]) {
      const mod = await moduleOf(service);
      await expect(createService(mod, { env: { LOG_LEVEL: "silent", TRUST_PROXY: value }, defaultMetrics: false }), `${service} ${value}`).rejects.toThrow(
        `TRUST_PROXY has entries wider than the edge proxy (at most /16 for IPv4, /48 for IPv6) "${value}"`,
      );
    }
  });

  it("stops any service at start on a global IPv6 entry without TRUST_PROXY_GLOBAL_IPV6 (session 51), naming both; with it, the entry is judged no further", async () => {
    const mod = await moduleOf("api-gateway");
    const start = (env: Record<string, string>) => createService(mod, { env: { LOG_LEVEL: "silent", ...env }, defaultMetrics: false });
    await expect(start({ TRUST_PROXY: "10.244.0.0/16, 2600:1f14:abc::/56" })).rejects.toThrow(/TRUST_PROXY has global IPv6 entries "2600:1f14:abc::\/56": .*set TRUST_PROXY_GLOBAL_IPV6=true/);
    // With the opt-in the start goes on to the next problem: the datastores and JWT_SECRET this test leaves unset.
    const opted = await start({ TRUST_PROXY: "10.244.0.0/16, 2600:1f14:abc::/56", TRUST_PROXY_GLOBAL_IPV6: "true" }).then(() => undefined, (e: Error) => e.message);
    expect(opted).toMatch(/JWT_SECRET is required/);
    expect(opted).not.toMatch(/TRUST_PROXY/);
  });
});
