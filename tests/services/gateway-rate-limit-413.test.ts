/**
 * The gateway's rate limit and the body limit (session 54's decision; README, beside continue-rate-limit): the limit
 * is counted at preParsing (since session 53), before the body is read, so a request refused while its
 * body is read, the 413 of a body over BODY_LIMIT_BYTES, has taken its token. It keeps it: the limit is
 * what bounds a flood of oversized bodies, each of which the gateway reads up to the limit (a chunked
 * one) or answers and closes (one whose Content-Length says it is over); refunded, a client could send
 * them without end. The api-gateway (real Redis for its counters) in front of a kit service in
 * user-management's place, which must receive none of them.
 */
import { describe, expect, it } from "vitest";
import { useRateLimitedGateway } from "../helpers/rate-limited-gateway";

const LIMIT = 3;
const BODY_LIMIT_BYTES = 1_024;
const gw = useRateLimitedGateway(LIMIT, { BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) });

const oversized = JSON.stringify({ email: "nobody@example.com", password: "x".repeat(2 * BODY_LIMIT_BYTES) });

/** POST /api/users/login (anonymous: counted by the client's address) with `body`, sized (Content-Length) or chunked. */
async function login(body: string, framing: "sized" | "chunked") {
  const bytes = new TextEncoder().encode(body);
  const init: RequestInit & { duplex?: "half" } =
    framing === "sized"
      ? { body: bytes }
      : {
          body: new ReadableStream({
            start(c) {
              // In pieces, so the gateway finds it over the limit while reading it.
              for (let i = 0; i < bytes.length; i += 512) c.enqueue(bytes.slice(i, i + 512));
              c.close();
            },
          }),
          duplex: "half",
        };
  const r = await fetch(`${gw.url}/api/users/login`, { method: "POST", headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(60_000), ...init });
  const text = await r.text();
  return { status: r.status, body: JSON.parse(text), remaining: r.headers.get("x-ratelimit-remaining") };
}

describe("a body refused over the limit (413) takes its rate-limit token", { timeout: 120_000 }, () => {
  it("LIMIT oversized bodies, sized or chunked, each a 413 naming body and one token; the next request, however small, a 429; none forwarded", async () => {
    const framings = ["sized", "chunked", "sized"] as const;
    for (const [i, framing] of framings.entries()) {
      const r = await login(oversized, framing);
      expect(r.status, `request ${i + 1} (${framing}): ${JSON.stringify(r.body)}`).toBe(413);
      expect(r.body.error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", field: "body" });
      // Counted before the body was read: one fewer left after each.
      expect(r.remaining, `request ${i + 1}`).toBe(String(LIMIT - 1 - i));
    }
    const small = await login(JSON.stringify({ email: "nobody@example.com", password: "x" }), "sized");
    expect(small.status, JSON.stringify(small.body)).toBe(429);
    expect(small.body.error).toMatchObject({ code: "RATE_LIMITED" });
    expect(gw.forwarded).toBe(0);
  });
});
