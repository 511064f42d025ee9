import { describe, expect, it } from "vitest";
import { InvalidationCounts } from "../../services/src/services/api-gateway/user-states";

describe("the gateway's invalidation counts", () => {
  it("a load is kept only if no invalidation of its user and no start-over came in between", () => {
    const c = new InvalidationCounts(10);
    const a = c.mark("a");
    const b = c.mark("b");
    c.bump("a");
    expect(c.unchanged(a, "a")).toBe(false);
    expect(c.unchanged(b, "b")).toBe(true);
    const a2 = c.mark("a");
    c.startOver(); // a reconnect: anything in flight may have missed a message
    expect(c.unchanged(a2, "a")).toBe(false);
  });

  it("stays bounded: past its maximum of users it starts over, and no load in flight is kept", () => {
    const c = new InvalidationCounts(1_000);
    const early = c.mark("someone");
    for (let i = 0; i < 25_000; i++) c.bump(`user-${i}`);
    expect(c.size).toBeLessThanOrEqual(1_000);
    expect(c.unchanged(early, "someone")).toBe(false);
    // Repeated changes of known users do not start over.
    const c2 = new InvalidationCounts(3);
    for (const id of ["a", "b", "c"]) c2.bump(id);
    const m = c2.mark("x");
    for (let i = 0; i < 100; i++) c2.bump("b");
    expect(c2.unchanged(m, "x")).toBe(true);
  });
});
