/**
 * Session 51: start checks services make in register (a lease against the slowest send, keys that
 * come together, an age against the in-flight bound of a request) that no test exercised: each stops
 * createService with a ConfigError naming the variables. The datastores' addresses answer nothing:
 * the checks come before any is reached. (The other register-time checks have theirs:
 * NOTIFY_LEASE_MS without SMTP tests/business/notification-service, SMTP_PORT and NOTIFY_WEBHOOK_PORTS
 * notification-failure-texts, COMPLIANCE_STATE_IDLE_MS compliance-monitor, the retention floors
 * dedupe-retention and compliance-retention, PAPER_* trading/domain, RISK_MIN_ORDER_NOTIONAL unit
 * risk-floor-and-cap, TRADING_MODE=live's keys unit service-env-refusals.)
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createService, type ServiceModule } from "../../services/src/kit";
import notificationService from "../../services/src/services/notification-service";
import { SMTP_SEND_BOUND_MS } from "../../services/src/services/notification-service/channels";
import paymentService from "../../services/src/services/payment-service";
import { inFlightBoundMs } from "../../services/src/services/payment-service/domain/refund-settlement";
import { MAX_NETWORK_RETRIES, MAX_RETRY_DELAY_MS } from "../../services/src/services/payment-service/processor";

const UNREACHABLE = { POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/db", DRAGONFLY_URL: "redis://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "silent" };

/** The problems of the ConfigError a start with `env` stops with; another error's name, or "started". */
async function startProblems(mod: ServiceModule<any>, env: Record<string, string>): Promise<string[]> {
  return createService(mod, { env: { ...UNREACHABLE, ...env }, defaultMetrics: false }).then(
    async (s) => (await s.close(), ["started"]),
    (e: Error) => (e instanceof ConfigError ? e.problems : [`not a ConfigError: ${e.name}`]),
  );
}

describe("notification-service: NOTIFY_LEASE_MS against the slowest send", () => {
  it("with e-mail on, counts the SMTP clocks (40 s) as well as NOTIFY_HTTP_TIMEOUT_MS, naming both", async () => {
    expect(SMTP_SEND_BOUND_MS).toBe(40_000);
    const smtp = { SMTP_HOST: "smtp.example.com", NOTIFY_HTTP_TIMEOUT_MS: "5000" };
    expect(await startProblems(notificationService, { ...smtp, NOTIFY_LEASE_MS: "49999" })).toEqual([
      "NOTIFY_LEASE_MS (49999) must be at least 10000 ms above the slowest send (40000 ms: NOTIFY_HTTP_TIMEOUT_MS, the SMTP timeouts)",
    ]);
    // (A start the check lets through goes on to the datastores, which answer nothing here for 30 s:
    // the lease taken is tests/business/notification-service's, over real servers.)
    // The HTTP timeout is the slowest when it is longer than the SMTP clocks.
    expect(await startProblems(notificationService, { SMTP_HOST: "smtp.example.com", NOTIFY_HTTP_TIMEOUT_MS: "120000", NOTIFY_LEASE_MS: "120000" })).toEqual([
      "NOTIFY_LEASE_MS (120000) must be at least 10000 ms above the slowest send (120000 ms: NOTIFY_HTTP_TIMEOUT_MS, the SMTP timeouts)",
    ]);
  });
});

describe("payment-service", () => {
  it("refuses one of PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET without the other, naming both and printing neither", async () => {
    const key = `key-${"1".repeat(20)}`;
    const secret = `secret-${"2".repeat(20)}`;
    for (const env of [{ PAYMENT_PROCESSOR_API_KEY: key }, { PAYMENT_WEBHOOK_SECRET: secret }] as Record<string, string>[]) {
      const problems = await startProblems(paymentService, env);
      expect(problems, Object.keys(env)[0]).toEqual(["PAYMENT_PROCESSOR_API_KEY and PAYMENT_WEBHOOK_SECRET must be set together"]);
    }
  });

  it("refuses PAYMENT_REFUND_RECONCILE_AGE_MS at or under the in-flight bound of one processor request (PAYMENT_PROCESSOR_TIMEOUT_MS's attempts and retry sleeps, a minute's grace)", async () => {
    const bound = inFlightBoundMs({ timeoutMs: 1_000, maxNetworkRetries: MAX_NETWORK_RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS, processorGraceMs: 60_000 });
    expect(await startProblems(paymentService, { PAYMENT_PROCESSOR_TIMEOUT_MS: "1000", PAYMENT_REFUND_RECONCILE_AGE_MS: String(bound) })).toEqual([
      `PAYMENT_REFUND_RECONCILE_AGE_MS must be over ${bound} (every attempt of one processor request at PAYMENT_PROCESSOR_TIMEOUT_MS, with the SDK's retry sleeps and a minute's grace)`,
    ]);
  });

  it("refuses PAYMENT_CHARGE_LOCK_HOLD_MS at or under every attempt of one processor request (PAYMENT_PROCESSOR_TIMEOUT_MS's attempts and retry sleeps), naming both", async () => {
    // A charge's account lock ended by its connection's timeouts during the call would let a deletion commit while the card is charged.
    const budget = inFlightBoundMs({ timeoutMs: 20_000, maxNetworkRetries: MAX_NETWORK_RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS, processorGraceMs: 0 });
    expect(budget).toBe(70_000);
    expect(await startProblems(paymentService, { PAYMENT_PROCESSOR_TIMEOUT_MS: "20000", PAYMENT_CHARGE_LOCK_HOLD_MS: "70000" })).toEqual([
      "PAYMENT_CHARGE_LOCK_HOLD_MS (70000) must be over 70000: every attempt of one processor request at PAYMENT_PROCESSOR_TIMEOUT_MS (20000) with the SDK's retry sleeps; a charge's account lock ended sooner lets a deletion commit while its card is charged",
    ]);
  });

  // Session 56: at or over the lock pool's own bound (the making's), the pool's timeout ended a charge's wait first.
  it("refuses PAYMENT_CHARGE_LOCK_WAIT_MS at or over POSTGRES_CONNECT_TIMEOUT_MS, naming both", async () => {
    for (const [wait, connect] of [["2000", "2000"], ["5000", "3000"]])
      expect(await startProblems(paymentService, { PAYMENT_CHARGE_LOCK_WAIT_MS: wait, POSTGRES_CONNECT_TIMEOUT_MS: connect })).toEqual([
        `PAYMENT_CHARGE_LOCK_WAIT_MS (${wait}) must be below POSTGRES_CONNECT_TIMEOUT_MS (${connect}): a charge's wait for a lock connection runs inside the pool's bound on making one; at or over it a charge meeting connections still being made answers a datastore outage, not 503 CHARGE_LOCKS_BUSY`,
      ]);
  });
});
