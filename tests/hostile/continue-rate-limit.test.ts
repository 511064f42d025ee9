/**
 * `Expect: 100-continue` at the gateway's rate limit, written byte for byte on a socket
 * (tests/helpers/raw-http.ts), the body held back until a 100 would have come: the api-gateway (real
 * Redis for its counters) in front of a kit service in user-management's place. The limit was counted
 * at preHandler, after the body was read, so a client over it got `100 Continue`, uploaded its body,
 * then the 429. Since session 53 it is counted at preParsing, before the body is asked for: the 429
 * comes alone, nothing is forwarded, and each request taken is counted once (the remaining count goes
 * 1, 0, then the refusal).
 */
import { describe, expect, it } from "vitest";
import { rawExchange, rawRequest, type RawAnswer } from "../helpers/raw-http";
import { useRateLimitedGateway } from "../helpers/rate-limited-gateway";

const BODY = JSON.stringify({ email: "nobody@example.com", password: "x" });
/** How long the client waits for the 100 before it sends the body anyway. */
const HOLD_MS = 400;
const LIMIT = 2;
const gw = useRateLimitedGateway(LIMIT);

/** A POST to the anonymous /api/users/login with `Expect: 100-continue`, its body sent HOLD_MS after the head (unless the connection closed first). */
async function expecting(waitMs: number): Promise<RawAnswer & { ms: number }> {
  const head = ["POST /api/users/login HTTP/1.1", "Host: gw", "Content-Type: application/json", `Content-Length: ${BODY.length}`, "Expect: 100-continue"].join("\r\n");
  const t0 = performance.now();
  const a = await rawExchange(gw.url, [[rawRequest(head), HOLD_MS], BODY], waitMs);
  return { ...a, ms: performance.now() - t0 };
}

describe("Expect: 100-continue over the gateway's rate limit", { timeout: 120_000 }, () => {
  it("the requests within the limit get 100 then their answer, each counted once; the one over it gets its 429 alone, its body never asked for nor forwarded", async () => {
    for (let i = 0; i < LIMIT; i++) {
      // Kept alive: read for 2 s, then closed by the client.
      const a = await expecting(2_000);
      expect(a.statuses, `request ${i + 1}: ${a.all.slice(0, 300)}`).toEqual([100, 200]);
      expect(JSON.parse(a.body)).toEqual({ ok: true });
      // Counted once: one fewer left after each (counted twice, the second would have been refused).
      expect(a.headers["x-ratelimit-limit"]).toBe(String(LIMIT));
      expect(a.headers["x-ratelimit-remaining"], `request ${i + 1}`).toBe(String(LIMIT - 1 - i));
    }
    expect(gw.forwarded).toBe(LIMIT);

    const over = await expecting(15_000);
    expect(over.statuses, over.all.slice(0, 300)).toEqual([429]);
    expect(over.all).not.toContain("100 Continue");
    expect(JSON.parse(over.body).error).toMatchObject({ code: "RATE_LIMITED", requestId: expect.any(String) });
    expect(over.headers["content-type"]).toMatch(/^application\/json/);
    expect(over.headers["retry-after"]).toEqual(expect.any(String));
    // Closed by the server (the body it did not ask for is not read), not by the client's 15 s wait.
    expect(over.headers.connection).toBe("close");
    expect(over.ms).toBeLessThan(10_000);
    expect(gw.forwarded).toBe(LIMIT);
  });
});
