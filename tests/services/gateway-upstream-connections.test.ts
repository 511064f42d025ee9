/**
 * A whole gateway (the fast-lane rig: PostgreSQL, Redis, user-management, a stand-in portfolio-manager whose
 * `/held` requests wait until the test releases them, counting the connections it has open) keeps at most
 * its 128 connections to a service on both paths together (api-gateway upstream-budget.ts, index.ts
 * UPSTREAM_CONNECTIONS): five users, each within its share (32: never refused), send 16 slow GETs (the
 * lane's) and 16 slow POSTs (the Fastify path's) each, 160 in all. 128 reach the service, on at most 128
 * connections; the other 32 wait in their paths' queues, nothing refused, and are answered once connections
 * come free. Until session 60 each path's pool held up to 128 of its own: all 160 reached it, on 160 connections.
 * And a POST whose client went away while it waited for one of them leaves the Fastify path's queue at once
 * (api-gateway service-pool.ts): none of 30 such is given a connection when they come free (until session 60
 * each stayed in undici's queue, reached a connection, was aborted there and closed it: 30 of the service's
 * connections closed, the live requests behind them waiting meanwhile).
 */
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { laneAnswer, rig, served, useFastLaneRig } from "../helpers/fast-lane-rig";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";

useFastLaneRig();

const BUDGET = 128;
const USERS = 5;
/** Each user's GETs and POSTs: 32 in all, its share (a quarter of the budget), so none is refused. */
const EACH = 16;
/** Held requests end when the test answers them, never by a timeout of the gateway's. */
const TIMEOUTS = { PROXY_TIMEOUT_MS: "60000", REQUEST_TIMEOUT_MS: "60000" };

const tokens: string[] = [];
const getOf = (token: string, path: string) => ["GET " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`].join("\r\n") + "\r\n\r\n";
const postOf = (token: string, path: string) =>
  ["POST " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`, "Content-Type: application/json", "Content-Length: 2"].join("\r\n") + "\r\n\r\n{}";

/** `request` on a connection of its own: its answer whenever it comes. */
async function sent(gw: string, request: string): Promise<KeptAnswer> {
  const c = await KeepAliveClient.open(gw);
  try {
    c.send(request);
    return await c.next(120_000);
  } finally {
    c.close();
  }
}

/** Requests of the stand-in's `/held` paths carrying `tag`. */
const reached = (tag: string) => rig.upstreamSeen.filter((u) => u.startsWith("/held") && u.includes(tag)).length;

beforeAll(async () => {
  tokens.push(rig.token);
  for (let i = 1; i < USERS; i++) {
    const email = `budget-${i}-${randomBytes(4).toString("hex")}@example.com`;
    const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/api/users/register", { email, password: "a long enough password" })).status).toBe(201);
    tokens.push(((await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string }).accessToken);
  }
}, 60_000);
afterAll(() => rig.releaseHeld());

describe("one gateway's connections to a service, both paths together", () => {
  it(`${USERS} users' ${USERS * EACH * 2} slow requests, half GETs (the lane), half POSTs (Fastify): ${BUDGET} reach the service on at most ${BUDGET} connections, the rest wait and are answered in turn`, async () => {
    const gw = await rig.gateway(TIMEOUTS);
    const tag = randomBytes(3).toString("hex");
    const heldGet = `/api/portfolio/held?get=${tag}`;
    // Every cache the lane needs warm: each user's credentials and lease, the GETs' URL (reached once, answered).
    for (const t of tokens) await laneAnswer(gw, getOf(t, `/api/portfolio/echo?warm=${tag}`));
    const warm = sent(gw, getOf(tokens[0], heldGet));
    await expect.poll(() => reached(tag)).toBe(1);
    rig.releaseHeld();
    expect((await warm).status).toBe(200);
    await expect.poll(() => rig.upstreamConnections.open).toBeLessThanOrEqual(BUDGET);
    rig.upstreamConnections.peak = rig.upstreamConnections.open;
    const servedBefore = await served(gw);

    const crowd: Array<Promise<KeptAnswer>> = [];
    for (let i = 0; i < EACH; i++) {
      for (const t of tokens) {
        crowd.push(sent(gw, getOf(t, heldGet)));
        crowd.push(sent(gw, postOf(t, `/api/portfolio/held?post=${tag}`)));
      }
    }
    // The budget's worth reach the service; the rest wait (no answer yet, none refused).
    await expect.poll(() => reached(tag) - 1, { timeout: 60_000, interval: 100 }).toBe(BUDGET);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(reached(tag) - 1).toBe(BUDGET);
    expect(rig.upstreamConnections.peak).toBeLessThanOrEqual(BUDGET);
    // Both paths carried some of them: GETs through the lane, POSTs through Fastify.
    const seen = rig.upstreamSeen.filter((u) => u.includes(tag)).slice(1);
    expect(seen.some((u) => u.includes("get="))).toBe(true);
    expect(seen.some((u) => u.includes("post="))).toBe(true);

    let over = false;
    const all = Promise.all(crowd).finally(() => (over = true));
    while (!over) {
      rig.releaseHeld();
      await new Promise((r) => setTimeout(r, 50));
    }
    const answers = await all;
    expect(answers.map((a) => a.status)).toEqual(Array(USERS * EACH * 2).fill(200));
    expect(reached(tag) - 1).toBe(USERS * EACH * 2);
    expect(rig.upstreamConnections.peak).toBeLessThanOrEqual(BUDGET);
    // Every GET was the lane's.
    expect((await served(gw)) - servedBefore).toBe(USERS * EACH);
  }, 180_000);

  it("30 POSTs whose clients left while they waited for a connection are not given one: a live POST behind them is answered, no connection closed or made anew", async () => {
    const gw = await rig.gateway(TIMEOUTS);
    const tag = randomBytes(3).toString("hex");
    for (const t of tokens) await laneAnswer(gw, getOf(t, `/api/portfolio/echo?warm=${tag}`));
    // Four users' 32 slow POSTs each: the whole budget.
    const fill: Array<Promise<KeptAnswer>> = [];
    for (const t of tokens.slice(0, 4)) for (let i = 0; i < 32; i++) fill.push(sent(gw, postOf(t, `/api/portfolio/held?fill=${tag}`)));
    await expect.poll(() => reached(tag), { timeout: 60_000, interval: 100 }).toBe(BUDGET);
    const acceptedBefore = rig.upstreamConnections.accepted;
    // The fifth user's 30 POSTs wait for a connection (within its share: not refused), then their clients leave.
    const { hostname, port } = new URL(gw);
    const leaving = await Promise.all(
      Array.from({ length: 30 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
        const s = connect(Number(port), hostname, () => (s.write(postOf(tokens[4], `/api/portfolio/dead?${tag}`)), resolve(s)));
        s.on("error", () => undefined);
      })),
    );
    await new Promise((r) => setTimeout(r, 500));
    for (const s of leaving) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const live = sent(gw, postOf(tokens[4], `/api/portfolio/echo?live=${tag}`));
    await new Promise((r) => setTimeout(r, 200));
    const openBefore = rig.upstreamConnections.open;
    let over = false;
    const all = Promise.all([live, ...fill]).finally(() => (over = true));
    while (!over) {
      rig.releaseHeld();
      await new Promise((r) => setTimeout(r, 50));
    }
    const [liveAnswer, ...filled] = await all;
    expect([liveAnswer.status, JSON.parse(liveAnswer.body).url]).toEqual([200, `/echo?live=${tag}`]);
    expect(filled.map((a) => a.status)).toEqual(Array(BUDGET).fill(200));
    // None of the abandoned reached the service, nor took a connection and closed it on the way: every one
    // of the budget's connections is still open (kept alive), and none was made anew.
    expect(rig.upstreamSeen.filter((u) => u.startsWith("/dead") && u.includes(tag))).toEqual([]);
    expect([rig.upstreamConnections.open, rig.upstreamConnections.accepted - acceptedBefore]).toEqual([openBefore, 0]);
  }, 180_000);
});
