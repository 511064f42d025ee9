/**
 * A deleted account's processor customer is deleted within its claim (payment-service
 * deleted-customers.ts): the call gets what is left of its time, `asked + callMs - now`, and its
 * attempts are cut at that deadline (processor-deadline.ts). Both were measured on the wall clock
 * (Date.now()), so a step of it (NTP, a VM resumed) cut the call to nothing or stretched it past the
 * claim's lease, where another pass sends the same delete beside it. Session 58: the in-process time is
 * the monotonic clock's (performance.now()); the lease stays on the database's clock (stored, read by
 * every replica). Here the wall clock is stepped an hour either way during the claim: the time left
 * is the call's own.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { DeletedCustomers } from "../../services/src/services/payment-service/deleted-customers";
import { DeadlineHttpClient, withinDeadline } from "../../services/src/services/payment-service/processor-deadline";

const HOUR = 3_600_000;
const silent = { warn: () => undefined, info: () => undefined } as never;
afterEach(() => vi.restoreAllMocks());

/** The time left the processor's delete is given when the wall clock steps `stepMs` while the claim is recorded. */
async function leftGiven(stepMs: number): Promise<number | "not sent"> {
  let given: number | "not sent" = "not sent";
  const data = {
    recordForDeletion: async () => {
      const wall = Date.now();
      vi.spyOn(Date, "now").mockImplementation(() => wall + stepMs);
    },
    customerDeletedAtProcessor: async () => true,
    releaseDeleteClaim: async () => undefined,
  };
  const processor = {
    requestBoundMs: 30_000,
    deleteCustomer: async (_id: string, leftMs: number) => void (given = leftMs),
    isClientError: () => false,
  };
  await new DeletedCustomers(data as never, processor as never, silent, { callMs: 30_000, leaseMs: 90_000 }).recordAndRemove("u", "cus_1");
  return given;
}

describe("a deleted account's customer delete: its time is the monotonic clock's", () => {
  it.each([
    ["forward", HOUR],
    ["back", -HOUR],
  ])("the wall clock stepped an hour %s during the claim: the delete is sent with its own time left, no more", async (_dir, step) => {
    const left = await leftGiven(step);
    expect(left).not.toBe("not sent"); // before, forward: left < 0, refused unsent
    expect(left).toBeLessThanOrEqual(30_000); // before, back: an hour and 30 s, past the claim's 90 s lease
    expect(left).toBeGreaterThan(0);
  });

  it("a processor call's attempt is not refused as past its deadline when the wall clock steps forward", async () => {
    const attempt = withinDeadline(30_000, async () => {
      vi.spyOn(Date, "now").mockImplementation(() => performance.timeOrigin + performance.now() + HOUR);
      // Port 1 on loopback: nothing listens, the attempt is made and refused (before: DEADLINE_PASSED, never sent).
      return new DeadlineHttpClient().makeRequest("127.0.0.1", "1", "/v1/customers/cus_1", "DELETE", {}, "", "http", 5_000);
    });
    const e = await attempt.then(() => undefined, (err: { code?: string; message?: string }) => err);
    expect(e?.code).not.toBe("DEADLINE_PASSED");
  });
});
