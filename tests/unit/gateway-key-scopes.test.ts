/**
 * The gateway's API-key rule (services/src/services/api-gateway/key-scopes.ts): reads for read and
 * trade keys, the listed trading writes for trade keys, a session for everything else, and a path
 * spelt so that it matches no listed route (case, extra segments, empty segments) is session-only.
 */
import { describe, expect, it } from "vitest";
import { keyRequirement, scopesMeet } from "../../services/src/services/api-gateway/key-scopes";
import { assertKeyMay } from "../../services/src/services/api-gateway/proxy";
import { HttpError } from "../../services/src/kit";

describe("what an API key may reach", () => {
  it("reads anywhere; trading writes only where listed; money, keys and credentials need a session", () => {
    expect(keyRequirement("payment-service", "GET", "/intents")).toBe("read");
    expect(keyRequirement("billing-service", "HEAD", "/invoices")).toBe("read");
    for (const [service, method, path] of [
      ["order-management", "POST", "/"],
      ["order-management", "POST", ""],
      ["order-management", "POST", "/5e7c2a53-3f0f-4a35-9bd2-7d3f1f7a4e11/cancel"],
      ["order-management", "POST", "/5e7c2a53-3f0f-4a35-9bd2-7d3f1f7a4e11/cancel/"],
      ["risk-analyzer", "POST", "/check"],
      ["ai-orchestrator", "PATCH", "/strategies/abc"],
      ["ai-orchestrator", "POST", "/strategies/abc/evaluate"],
      ["backtesting-engine", "DELETE", "/abc"],
      ["ml-predictor", "POST", "/predict"],
    ] as const)
      expect(keyRequirement(service, method, path), `${method} ${service}${path}`).toBe("trade");
    for (const [service, method, path] of [
      ["payment-service", "POST", "/intents"],
      ["payment-service", "POST", "/intents/abc/refunds"],
      ["payment-service", "POST", "/reconcile"],
      ["billing-service", "POST", "/subscriptions"],
      ["billing-service", "POST", "/subscriptions/abc/plan"],
      ["billing-service", "POST", "/subscriptions/abc/cancel"],
      ["billing-service", "POST", "/subscriptions/abc/payment-method"],
      ["payment-service", "POST", "/payment-methods"],
      ["payment-service", "DELETE", "/payment-methods/pm_abc"],
      ["user-management", "POST", "/api-keys"],
      ["user-management", "DELETE", "/api-keys/abc"],
      ["user-management", "POST", "/password"],
      ["user-management", "POST", "/logout"],
      ["notification-service", "PUT", "/preferences"],
      ["risk-analyzer", "PUT", "/trading-state/users/abc"],
      // Spellings that match no listed route: fail closed.
      ["order-management", "POST", "/abc/CANCEL"],
      ["order-management", "POST", "//cancel"],
      ["order-management", "POST", "/abc/cancel/extra"],
      ["order-management", "PUT", "/"],
      ["risk-analyzer", "POST", "/check/x"],
      ["a-service-added-later", "POST", "/"],
    ] as const)
      expect(keyRequirement(service, method, path), `${method} ${service}${path}`).toBe("session");
  });

  it("trade includes read; no scope meets a session; the refusal is a 403 naming scope", () => {
    expect(scopesMeet(["trade"], "read")).toBe(true);
    expect(scopesMeet(["read"], "read")).toBe(true);
    expect(scopesMeet(["read"], "trade")).toBe(false);
    expect(scopesMeet(["read", "trade"], "session")).toBe(false);
    const refusal = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e instanceof HttpError ? { status: e.statusCode, code: e.code, field: e.field } : e;
      }
      return undefined;
    };
    expect(refusal(() => assertKeyMay(["read", "trade"], "payment-service", "POST", "/intents"))).toEqual({ status: 403, code: "SESSION_REQUIRED", field: "scope" });
    expect(refusal(() => assertKeyMay(["read"], "order-management", "POST", "/"))).toEqual({ status: 403, code: "INSUFFICIENT_SCOPE", field: "scope" });
    expect(refusal(() => assertKeyMay(["trade"], "order-management", "POST", "/"))).toBeUndefined();
  });
});
