/**
 * A whole gateway (the fast-lane rig: PostgreSQL, Redis, user-management, a stand-in portfolio-manager whose
 * `/held` requests wait until the test releases them) closed while requests wait for a connection to a
 * service: four users' 32 slow POSTs each hold its whole budget (128, api-gateway index.ts
 * UPSTREAM_CONNECTIONS), a fifth user's POSTs (the Fastify path's queue, api-gateway service-pool.ts) and GETs
 * (the lane's, fast-lane/upstream-pool.ts) wait behind them. PEER_CLOSE_GRACE_MS into the close every one of
 * those is answered 503 SHUTTING_DOWN with `retry-after: 1` in the platform's error shape (api-gateway
 * upstream-budget.ts closeQueues), none of them sent to the service; the requests on the service's
 * connections are answered as it answers them. Until session 61 the waiting ones held the close until a
 * connection came free (a pool closed with requests queued failed the Fastify path's with a plain Error, a
 * 500, and dropped the lane's unanswered).
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { PEER_CLOSE_GRACE_MS } from "../../services/src/kit";
import { laneAnswer, rig, served, useFastLaneRig } from "../helpers/fast-lane-rig";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";

useFastLaneRig();

const BUDGET = 128;
/** Held requests end when the test answers them, never by a timeout of the gateway's. */
const TIMEOUTS = { PROXY_TIMEOUT_MS: "60000", REQUEST_TIMEOUT_MS: "60000" };
/** The fifth user's requests of each path waiting for a connection. */
const QUEUED = 6;

const tokens: string[] = [];
const getOf = (token: string, path: string) => ["GET " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`].join("\r\n") + "\r\n\r\n";
const postOf = (token: string, path: string) =>
  ["POST " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`, "Content-Type: application/json", "Content-Length: 2"].join("\r\n") + "\r\n\r\n{}";

/** `request` on a connection of its own: its answer and when it came (performance.now()), or why none came. */
async function sent(gw: string, request: string): Promise<{ a?: KeptAnswer; at: number; error?: string }> {
  const c = await KeepAliveClient.open(gw);
  try {
    c.send(request);
    return { a: await c.next(60_000), at: performance.now() };
  } catch (e) {
    return { at: performance.now(), error: (e as Error).message };
  } finally {
    c.close();
  }
}

/** Requests of the stand-in's paths carrying `tag`. */
const reached = (tag: string) => rig.upstreamSeen.filter((u) => u.includes(tag));

beforeAll(async () => {
  tokens.push(rig.token);
  for (let i = 1; i < 5; i++) {
    const email = `closing-queues-${i}-${randomBytes(4).toString("hex")}@example.com`;
    const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/api/users/register", { email, password: "a long enough password" })).status).toBe(201);
    tokens.push(((await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string }).accessToken);
  }
}, 60_000);

describe("the gateway closed while requests wait for a connection to a service", () => {
  it(`its budget held by ${BUDGET} slow POSTs: ${QUEUED} POSTs and ${QUEUED} lane GETs waiting get 503 SHUTTING_DOWN a grace into the close, none sent; the held ones are answered`, async () => {
    const gw = await rig.gateway(TIMEOUTS);
    const tag = randomBytes(3).toString("hex");
    const queuedGet = `/api/portfolio/held?get=${tag}`;
    // The lane's caches warm for the fifth user's GET (its credentials, lease, and the URL's routing: reached once, answered).
    for (const t of tokens) await laneAnswer(gw, getOf(t, `/api/portfolio/echo?warm=${tag}`));
    const warm = sent(gw, getOf(tokens[4], queuedGet));
    await expect.poll(() => reached(`get=${tag}`).length).toBe(1);
    rig.releaseHeld();
    expect((await warm).a?.status).toBe(200);

    // Four users' 32 slow POSTs each (each user's share): the whole budget on the service.
    const fill = tokens.slice(0, 4).flatMap((t) => Array.from({ length: 32 }, () => sent(gw, postOf(t, `/api/portfolio/held?fill=${tag}`))));
    await expect.poll(() => reached(`fill=${tag}`).length, { timeout: 60_000, interval: 100 }).toBe(BUDGET);
    // The fifth user's requests wait in their paths' queues (within its share: not refused).
    const servedBefore = await served(gw);
    const queued = [
      ...Array.from({ length: QUEUED }, () => sent(gw, postOf(tokens[4], `/api/portfolio/held?post=${tag}`))),
      ...Array.from({ length: QUEUED }, () => sent(gw, getOf(tokens[4], queuedGet))),
    ];
    await expect.poll(() => served(gw), { timeout: 10_000 }).toBe(servedBefore + QUEUED); // the GETs are the lane's
    await new Promise((r) => setTimeout(r, 500));
    expect(reached(`post=${tag}`).length + reached(`get=${tag}`).length).toBe(1); // (the warm-up's)

    const t0 = performance.now();
    const closed = rig.serviceOf(gw)!.close();
    const answers = await Promise.all(queued);
    for (const { a, at, error } of answers) {
      expect(error).toBeUndefined();
      expect(a!.status, a!.body).toBe(503);
      expect(JSON.parse(a!.body).error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringContaining("was not sent"), requestId: expect.any(String) });
      expect(a!.headers["retry-after"]).toBe("1");
      // The grace, then at once: not held until a connection comes free.
      expect(at - t0).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
      expect(at - t0).toBeLessThan(PEER_CLOSE_GRACE_MS + 3_000);
    }
    // None of them reached the service; the held ones are answered as the service answers them, and the close ends.
    expect(reached(`post=${tag}`)).toEqual([]);
    expect(reached(`get=${tag}`)).toHaveLength(1);
    let over = false;
    const filled = Promise.all(fill).finally(() => (over = true));
    while (!over) {
      rig.releaseHeld();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await filled).map((f) => f.a?.status)).toEqual(Array(BUDGET).fill(200));
    await closed;
  }, 180_000);
});
