/**
 * The whole-request bound (REQUEST_TIMEOUT_MS) with the gateway's fast lane: one budget from the
 * request's read, its warm-ups and all, and one authentication. A token whose user's state the
 * gateway cannot read (a stand-in user-management holding every request: its read ends at its own
 * 5 s bound, AUTH_UNAVAILABLE) is answered by both paths alike, after one read. Until session 55 the
 * lane's credentials warm-up ended in that error, then handed the request to Fastify, which read the
 * state again under a budget of its own: the answer twice as late as without the lane, after two reads.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService, jwtKey, signAccessToken } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { useHoldingStandIn } from "../helpers/http-stand-ins";
import { http } from "../trading/e2e-helpers";

const srv = useServers("redis");
const JWT_SECRET = randomBytes(64).toString("hex");
/** Longer than the user-state read's own 5 s bound: its AUTH_UNAVAILABLE comes first, on either path. */
const REQUEST_TIMEOUT_MS = 8_000;
/** The stand-in user-management: its requests, held unanswered, with their paths. */
const standIn = useHoldingStandIn();
const held = standIn.held;

/** A first request with a new user's token to a gateway (`lane`: GATEWAY_FAST_LANE): its answer, how long it took, the state reads it cost. */
async function unreadableUser(lane: string) {
  const env = { ...srv.env, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: standIn.url, GATEWAY_FAST_LANE: lane, REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), PROXY_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) };
  const gw = await createService(apiGateway, { env, defaultMetrics: false });
  try {
    const url = await gw.listen({ port: 0, host: "127.0.0.1" });
    const userId = randomUUID();
    const token = await signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader" }, 900);
    const t0 = performance.now();
    const r = await http("GET", `${url}/api/orders/`, { token });
    const tookMs = performance.now() - t0;
    const reads = held.filter((h) => h.url === `/internal/users/${userId}/state`).length;
    return { status: r.status, code: r.body.error?.code, message: r.body.error?.message, retryAfter: r.headers.get("retry-after"), reads, tookMs };
  } finally {
    await gw.close();
  }
}

describe("the fast lane keeps the gateway's whole-request bound", { timeout: 60_000 }, () => {
  it("a credentials warm-up ending in an error: the Fastify path's answer, after one read, within REQUEST_TIMEOUT_MS", async () => {
    const [viaLane, viaFastify] = [await unreadableUser("true"), await unreadableUser("false")];
    const { tookMs: laneMs, ...lane } = viaLane;
    const { tookMs: _plainMs, ...plain } = viaFastify;
    expect(lane).toEqual(plain);
    expect(lane).toMatchObject({ status: 503, code: "AUTH_UNAVAILABLE", reads: 1 });
    // (Before: two 5 s reads, one after the other, so never under 10 s: past the bound.)
    expect(laneMs).toBeLessThan(REQUEST_TIMEOUT_MS);
  });
});
