/**
 * The gateway's per-client share of its connections to a service (api-gateway upstream-shares.ts,
 * session 57's red team): a client past a quarter of them is refused 429 only while the connections
 * left would fall under a quarter; within its share a client is never refused; other services and
 * other clients are counted apart; nothing is kept once a client's requests answered. The fast lane's
 * pool counts by `enter` and `leave` (no promise: its hot path), the Fastify path's by `run`: one rule.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { UpstreamShares } from "../../services/src/services/api-gateway/upstream-shares";

/** An answer (as ./upstreams.ts gives it: its body whole, or a stream) whose body says `text`. */
const answerOf = (text: string) => ({ body: Buffer.from(text) });

/** A request that stays under way until its `answer()`. */
function pending() {
  let answer!: () => void;
  const answered = new Promise<void>((r) => (answer = r));
  return { answer, send: () => answered.then(() => answerOf("")) };
}

describe("each client's share of the gateway's connections to a service", () => {
  it("a client alone takes up to three quarters; past that its requests are 429 TOO_MANY_IN_FLIGHT, and another client's request goes on", async () => {
    const shares = new UpstreamShares(8);
    expect(shares.share).toBe(2);
    const held = Array.from({ length: 6 }, () => pending());
    const running = held.map((p) => shares.run("svc", "crowd", p.send));
    expect(shares.inFlight("svc")).toBe(6);
    const refused = await shares.run("svc", "crowd", async () => answerOf("sent")).then(
      () => undefined,
      (e: { statusCode: number; code: string; headers: Record<string, string>; message: string }) => e,
    );
    expect([refused?.statusCode, refused?.code, refused?.headers["retry-after"]]).toEqual([429, "TOO_MANY_IN_FLIGHT", "1"]);
    expect(refused?.message).toMatch(/nothing was sent/);
    // Another client (within its share) and the same client at another service are not refused.
    const other = pending();
    const others = [shares.run("svc", "other", other.send), shares.run("svc", "other", async () => answerOf("second"))];
    expect(String((await others[1]).body)).toBe("second");
    expect(String((await shares.run("svc2", "crowd", async () => answerOf("elsewhere"))).body)).toBe("elsewhere");
    other.answer();
    await others[0];
    held.forEach((p) => p.answer());
    await Promise.all(running);
    expect(shares.inFlight("svc")).toBe(0);
    expect(shares.clientsUnderWay("svc")).toBe(0);
  });

  it("within its share a client is never refused, however full the service (the pool queues it as before)", async () => {
    const shares = new UpstreamShares(4);
    const held = ["a", "b", "c", "d", "e"].map((c) => ({ c, p: pending() }));
    const running = held.map(({ c, p }) => shares.run("svc", c, p.send));
    expect(shares.inFlight("svc")).toBe(5);
    held.forEach(({ p }) => p.answer());
    await Promise.all(running);
  });

  it("a request that fails still gives its place back", async () => {
    const shares = new UpstreamShares(4);
    await expect(shares.run("svc", "a", async () => Promise.reject(new Error("upstream down")))).rejects.toThrow("upstream down");
    expect(shares.inFlight("svc")).toBe(0);
  });

  it("enter and leave (the fast lane's): the same rule, the same 429, and every place given back", () => {
    const shares = new UpstreamShares(8);
    for (let i = 0; i < 6; i++) expect(shares.enter("svc", "crowd")).toBe(true);
    expect(shares.enter("svc", "crowd")).toBe(false);
    expect(shares.inFlight("svc")).toBe(6);
    const e = shares.refusal("svc", "crowd");
    expect([e.statusCode, e.code, e.headers?.["retry-after"], e.field]).toEqual([429, "TOO_MANY_IN_FLIGHT", "1", undefined]);
    expect(e.message).toMatch(/^6 of this client's requests .* nothing was sent/);
    expect([shares.enter("svc", "other"), shares.enter("svc", "other")]).toEqual([true, true]);
    // Within its share even with the service full past three quarters.
    expect(shares.inFlight("svc")).toBe(8);
    shares.leave("svc", "crowd");
    expect(shares.enter("svc", "crowd")).toBe(false); // 8 under way still: a quarter kept for others
    for (let i = 0; i < 6; i++) shares.leave("svc", i < 5 ? "crowd" : "other");
    shares.leave("svc", "other");
    expect([shares.inFlight("svc"), shares.clientsUnderWay("svc")]).toEqual([0, 0]);
    expect(shares.enter("svc", "crowd")).toBe(true);
  });

  it("a streamed answer keeps its place until its stream closes: read to its end, or destroyed (its client gone)", async () => {
    const shares = new UpstreamShares(4);
    const read = await shares.run("svc", "a", async () => ({ body: Readable.from([Buffer.from("a"), Buffer.from("b")]) }));
    const dropped = await shares.run("svc", "a", async () => ({ body: new Readable({ read() {} }) }));
    expect(shares.inFlight("svc")).toBe(2);
    for await (const _ of read.body) void _;
    await expect.poll(() => shares.inFlight("svc")).toBe(1);
    dropped.body.destroy();
    await expect.poll(() => shares.inFlight("svc")).toBe(0);
    expect(shares.clientsUnderWay("svc")).toBe(0);
  });
});
