/** When a pending refund may be settled (payment-service domain/refund-settlement.ts): pure. */
import { describe, expect, it } from "vitest";
import { inFlightBoundMs, settleRefund } from "../../services/src/services/payment-service/domain/refund-settlement";

describe("settling a pending refund from the processor's record", () => {
  const bound = inFlightBoundMs({ timeoutMs: 20_000, maxNetworkRetries: 2, maxRetryDelayMs: 5_000, processorGraceMs: 60_000 });
  it("bounds one request's life by its attempts, the SDK's sleeps and the processor's grace", () => expect(bound).toBe(130_000));
  it("takes the processor's outcome when it has the refund", () => {
    expect(settleRefund({ id: "re_1", status: "succeeded" }, 0, bound)).toEqual({ kind: "succeeded", processorRefundId: "re_1" });
    expect(settleRefund({ id: "re_1", status: "failed" }, 0, bound)).toEqual({ kind: "failed", processorRefundId: "re_1", failureCode: "processor_failed" });
    expect(settleRefund({ id: "re_1", status: "canceled" }, 0, bound)).toMatchObject({ kind: "failed" });
    expect(settleRefund({ id: "re_1", status: "pending" }, 10 * bound, bound)).toEqual({ kind: "wait", reason: "processor_pending" });
    expect(settleRefund({ id: "re_1", status: "requires_action" }, 10 * bound, bound)).toEqual({ kind: "wait", reason: "processor_pending" });
  });
  it("fails one the processor never saw only once no request for it can still reach the processor", () => {
    expect(settleRefund(undefined, bound, bound)).toEqual({ kind: "wait", reason: "may_be_in_flight" });
    expect(settleRefund(undefined, bound + 1, bound)).toEqual({ kind: "never_reached_processor" });
  });
});
