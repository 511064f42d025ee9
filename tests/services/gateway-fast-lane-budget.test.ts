/**
 * The whole-request bound (REQUEST_TIMEOUT_MS) with the gateway's fast lane: one budget from the
 * request's read, its warm-ups and all, and one authentication. A token whose user's state the
 * gateway cannot read (a stand-in user-management holding every request: its read ends at its own
 * 5 s bound, AUTH_UNAVAILABLE) is answered by both paths alike, after one read. Until session 55 the
 * lane's credentials warm-up ended in that error, then handed the request to Fastify, which read the
 * state again under a budget of its own: the answer twice as late as without the lane, after two reads.
 * A warm-up that takes the request's whole budget (REQUEST_TIMEOUT_MS under the read's 5 s bound)
 * hands over a request already expired: answered at once as the path without the lane answers a
 * request whose budget runs out while it authenticates (504 GATEWAY_TIMEOUT), with no second read
 * (until session 56, one more under a 1 ms budget).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Redis } from "../harness";
import { useServers } from "../harness/shared";
import { PATIENCE_MS } from "../helpers/patience";
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

/** A gateway (`lane`: GATEWAY_FAST_LANE) whose requests have `timeoutMs` each, user-management the holding stand-in. */
async function gatewayWith(lane: string, timeoutMs: number) {
  const env = { ...srv.env, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: standIn.url, GATEWAY_FAST_LANE: lane, REQUEST_TIMEOUT_MS: String(timeoutMs), PROXY_TIMEOUT_MS: String(timeoutMs) };
  return createService(apiGateway, { env, defaultMetrics: false });
}

/** A first request with a new user's token to `url`: its answer, how long it took, the state reads it cost. */
async function newUserRequest(url: string) {
  const userId = randomUUID();
  const token = await signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader" }, 900);
  const t0 = performance.now();
  const r = await http("GET", `${url}/api/orders/`, { token });
  const tookMs = performance.now() - t0;
  const reads = () => held.filter((h) => h.url === `/internal/users/${userId}/state`).length;
  return { status: r.status, code: r.body.error?.code, message: r.body.error?.message, retryAfter: r.headers.get("retry-after"), reads, tookMs, userId };
}

/** A first request with a new user's token to a gateway (`lane`: GATEWAY_FAST_LANE): its answer, how long it took, the state reads it cost. */
async function unreadableUser(lane: string) {
  const gw = await gatewayWith(lane, REQUEST_TIMEOUT_MS);
  try {
    const { reads, userId: _id, ...answer } = await newUserRequest(await gw.listen({ port: 0, host: "127.0.0.1" }));
    return { ...answer, reads: reads() };
  } finally {
    await gw.close();
  }
}

/** Under the user-state read's 5 s bound: the request's budget runs out first, while its state is read. */
const SHORT_TIMEOUT_MS = 1_000;

/**
 * A request whose credentials warm-up (or, without the lane, authentication) outlasts its budget: its
 * answer, its reads at the stand-in, and its user-state lookups in Dragonfly (each read of a user's
 * state begins with an MGET of its keys: seen by MONITOR even when the read to user-management that
 * would follow is given 1 ms, cut before it is sent). Counted once a second user's lookup and read
 * are seen: one the first request still made would have come before them.
 */
async function budgetSpentAuthenticating(lane: string) {
  // Monitoring from before the gateway connects (ioredis reads a command echoed while MONITOR's own
  // answer is awaited as that answer); no ready check (its INFO, the same).
  const client = new Redis(srv.redis.url, { enableReadyCheck: false });
  const monitor = await client.monitor();
  client.disconnect();
  const lookups: string[] = [];
  monitor.on("monitor", (_time: string, args: string[]) => {
    if (String(args[0]).toLowerCase() === "mget") lookups.push(args.slice(1).join(" "));
  });
  const gw = await gatewayWith(lane, SHORT_TIMEOUT_MS);
  try {
    const lookupsOf = (userId: string) => lookups.filter((keys) => keys.includes(userId)).length;
    const url = await gw.listen({ port: 0, host: "127.0.0.1" });
    const { tookMs: _ms, reads, userId, ...answer } = await newUserRequest(url);
    const later = await newUserRequest(url);
    await expect.poll(() => later.reads() > 0 && lookupsOf(later.userId) > 0, { timeout: PATIENCE_MS }).toBe(true);
    return { ...answer, reads: reads(), lookups: lookupsOf(userId) };
  } finally {
    monitor.disconnect();
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

  it("a request whose budget the lane's warm-up spent: the path without the lane's 504, at once, no second read", async () => {
    const [lane, plain] = [await budgetSpentAuthenticating("true"), await budgetSpentAuthenticating("false")];
    expect(lane).toEqual(plain);
    expect(lane).toMatchObject({ status: 504, code: "GATEWAY_TIMEOUT", message: `No answer within ${SHORT_TIMEOUT_MS} ms`, reads: 1, lookups: 1 });
  });
});
