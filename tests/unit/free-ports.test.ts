import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { deadAddress } from "../harness/dead-address";
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

  it("a dead address (tests/harness/dead-address.ts) refuses connections and stays out of later freePort() answers", async () => {
    const address = await deadAddress();
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    expect(address).toBe(`127.0.0.1:${port}`);
    expect(port).toBeLessThan(32_768); // below the kernel's ephemeral range: no listen(0) gets it
    expect(isHandedOut(port)).toBe(true);
    const refused = await new Promise<NodeJS.ErrnoException | "connected">((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve("connected")));
      s.once("error", resolve);
    });
    expect(refused === "connected" ? refused : refused.code).toBe("ECONNREFUSED");
    const later = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    expect(later).not.toContain(port);
  });
});
