import { describe, expect, it } from "vitest";
import { freePort, freePortPair, isHandedOut } from "../harness/proc";

describe("free loopback ports for test servers", () => {
  it("counts both ports of a pair as handed out, so no later freePort() returns either", async () => {
    const [p, q] = await freePortPair();
    expect(q).toBe(p + 1);
    expect(isHandedOut(p)).toBe(true);
    expect(isHandedOut(q)).toBe(true);
    const later = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    expect(later).not.toContain(p);
    expect(later).not.toContain(q);
  });

  it("never hands out the same port twice, pairs included", async () => {
    const given: number[] = [];
    for (let i = 0; i < 40; i++) {
      if (i % 4 === 0) given.push(...(await freePortPair()));
      else given.push(await freePort());
    }
    expect(new Set(given).size).toBe(given.length);
  });
});
