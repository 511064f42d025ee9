/**
 * payment-service's per-account share of the charge-lock connections (account-shares.ts, session 56):
 * an account's charges past its share wait for one of its own to end, first come first served, and are
 * 429 CHARGES_IN_PROGRESS when none ended within the wait; other accounts are not held up by it, and
 * an account with nothing holding or waiting is forgotten.
 */
import { describe, expect, it } from "vitest";
import { AccountShares, accountShare } from "../../services/src/services/payment-service/account-shares";

describe("an account's share of the charge-lock connections", () => {
  it("is half of them, at least one", () => {
    expect([1, 2, 3, 4, 5, 50].map(accountShare)).toEqual([1, 1, 1, 2, 2, 25]);
  });

  it("its charges past the share wait for its own, in order; another account's charge takes a place at once", async () => {
    const shares = new AccountShares(2, 60_000, 20);
    await shares.take("alice");
    await shares.take("alice");
    const order: string[] = [];
    const third = shares.take("alice").then(() => order.push("third"));
    const fourth = shares.take("alice").then(() => order.push("fourth"));
    await shares.take("bob");
    expect(order).toEqual([]);
    shares.done("alice");
    await third;
    expect(order).toEqual(["third"]);
    shares.done("alice");
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
    for (let i = 0; i < 2; i++) shares.done("alice");
    shares.done("bob");
    expect(shares.size).toBe(0);
  });

  it("one whose wait runs out is 429 CHARGES_IN_PROGRESS with Retry-After, and leaves no place taken", async () => {
    const shares = new AccountShares(1, 50, 20);
    await shares.take("alice");
    const refused = await shares.take("alice").then(() => undefined, (e: unknown) => e as { statusCode: number; code: string; headers: Record<string, string> });
    expect([refused?.statusCode, refused?.code, refused?.headers["retry-after"]]).toEqual([429, "CHARGES_IN_PROGRESS", "20"]);
    shares.done("alice");
    expect(shares.size).toBe(0);
    await shares.take("alice");
    expect(shares.size).toBe(1);
  });

  it("an account's extra charge never takes the last free place (red team, session 57): a third account's first charge finds it; the extra gets a place once another stays free beside it", async () => {
    const shares = new AccountShares(2, 60_000, 20, 4);
    await shares.take("alice");
    await shares.take("alice");
    await shares.take("bob");
    const order: string[] = [];
    const bobsExtra = shares.take("bob").then(() => order.push("bob's extra"));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    await shares.take("carol");
    // Every place held now (alice 2, bob 1, carol 1): a fourth account's first charge is not held back here (charge-locks answers it).
    await shares.take("dave");
    shares.done("dave");
    expect(order).toEqual([]);
    shares.done("carol");
    await new Promise((r) => setImmediate(r));
    // Carol's place would be the last free one again (alice 2, bob 1): kept.
    expect(order).toEqual([]);
    shares.done("alice");
    await bobsExtra;
    expect(order).toEqual(["bob's extra"]);
    for (const u of ["alice", "bob", "bob"]) shares.done(u);
    expect(shares.size).toBe(0);
  });

  it("an extra whose wait runs out while no place stays free is 429 CHARGES_IN_PROGRESS and holds nothing", async () => {
    const shares = new AccountShares(2, 50, 20, 2);
    await shares.take("alice");
    const refused = await shares.take("alice").then(() => undefined, (e: unknown) => e as { statusCode: number; code: string });
    expect([refused?.statusCode, refused?.code]).toEqual([429, "CHARGES_IN_PROGRESS"]);
    await shares.take("bob");
    shares.done("alice");
    shares.done("bob");
    expect(shares.size).toBe(0);
  });
});
