/**
 * The gateway's fast lane takes an upstream's answer as the Fastify path (GATEWAY_FAST_LANE=false)
 * does: session 54's differences found by the red team (tests/hostile/session-54.test.ts) on the
 * lane's upstream side, each case sent to a lane gateway and a plain one over a stand-in upstream
 * written byte for byte (tests/helpers/raw-upstream.ts), the answers compared.
 */
import { createServer } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerOf, get, laneAnswer, rig, served, shape, useFastLaneRig } from "../helpers/fast-lane-rig";
import type { KeptAnswer } from "../helpers/keep-alive-client";
import { resetAfterReading } from "../helpers/raw-http";
import { rawUpstream } from "../helpers/raw-upstream";

useFastLaneRig();

const ok = (s: Socket, body: string) => s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

const answers: Record<string, (s: Socket, before: number) => void> = {
  // Answered a moment later: two at once leave two kept-alive connections in the gateway's pool.
  slowish: (s) => setTimeout(() => ok(s, "slowish"), 300),
  // An upstream that closes every connection that already carried a request (a keep-alive race lost).
  dropreused: (s, before) => (before > 0 ? s.destroy() : ok(s, "fresh")),
  trailers: (s) => s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Trailer: injected\r\nSet-Cookie: session=evil\r\n\r\n"),
  closeheader: (s) => s.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end"),
  closeonly: (s) => s.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"),
  http10: (s) => s.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold"),
  nul: (s) => s.write("HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
  early: (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"early":1}'),
  continue: (s) => s.end("HTTP/1.1 100 Continue\r\n\r\n"),
  switching: (s) => s.end("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nraw bytes"),
  nocontent: (s) => s.write("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
};

let up: Awaited<ReturnType<typeof rawUpstream>>;
const gws = { lane: "", plain: "" };

beforeAll(async () => {
  up = await rawUpstream(answers);
  const env = { SERVICE_PORTFOLIO_MANAGER_URL: up.url, PROXY_TIMEOUT_MS: "3000" };
  gws.lane = await rig.gateway(env);
  gws.plain = await rig.gateway({ ...env, GATEWAY_FAST_LANE: "false" });
  await laneAnswer(gws.lane, get("/api/portfolio/live"));
}, 60_000);

afterAll(() => up?.server.close());

/** An answer with what differs by request (id, date, rate-limit count) masked, and its body. */
const compared = (a: KeptAnswer) => ({ ...shape(a), body: a.body.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<id>") });

/** `path`'s answer from the lane (sent twice: the first warms its caches; the second served by the lane) and from the plain gateway. */
async function both(path: string): Promise<{ lane: KeptAnswer; plain: KeptAnswer; served: number }> {
  await answerOf(gws.lane, get(path)).catch(() => undefined);
  const before = await served(gws.lane);
  const lane = await answerOf(gws.lane, get(path));
  const count = (await served(gws.lane)) - before;
  return { lane, plain: await answerOf(gws.plain, get(path)), served: count };
}

describe("the fast lane takes an upstream's answer as the Fastify path", () => {
  it("sends a GET whose reused connection the upstream closed once more on a new connection", async () => {
    // The lane only: the Fastify path's undici Pool resends on its first free client, a new connection
    // when that is the one that failed (h1 saw that), another reused one when not (closed too here: 502).
    const gw = gws.lane;
    await answerOf(gw, get("/api/portfolio/dropreused")).catch(() => undefined); // its route and credentials warmed
    await Promise.all([answerOf(gw, get("/api/portfolio/slowish")), answerOf(gw, get("/api/portfolio/slowish"))]);
    const before = await served(gw);
    const a = await answerOf(gw, get("/api/portfolio/dropreused"));
    expect((await served(gw)) - before).toBe(1);
    expect([a.status, a.body]).toEqual([200, "fresh"]);
  }, 60_000);

  it("drops an answer's trailers: the next answer on the pooled upstream connection is its own", async () => {
    for (const gw of [gws.lane, gws.plain]) {
      await answerOf(gw, get("/api/portfolio/after-trailers"));
      const a = await answerOf(gw, get("/api/portfolio/trailers"));
      expect([a.status, a.body]).toEqual([200, "hi"]);
      const next = await answerOf(gw, get("/api/portfolio/after-trailers"));
      expect(next.body).toBe("after-trailers");
      expect(next.headers["x-trailer"]).toBeUndefined();
      expect(next.lines.filter(([n, v]) => /^set-cookie$/i.test(n) && v.includes("evil"))).toEqual([]);
    }
    const c = await both("/api/portfolio/trailers");
    expect(c.served).toBe(1);
    expect(compared(c.lane)).toEqual(compared(c.plain));
  }, 60_000);

  it.each(["closeheader", "closeonly", "http10"])("reads an answer delimited by its connection's close (%s)", async (name) => {
    const c = await both(`/api/portfolio/${name}`);
    expect(c.served).toBe(1);
    expect(c.plain.status).toBe(200);
    expect(compared(c.lane)).toEqual(compared(c.plain));
  }, 60_000);

  it.each(["nul", "early", "continue", "switching", "nocontent"])("answers an unusual head as the Fastify path (%s)", async (name) => {
    const c = await both(`/api/portfolio/${name}`);
    expect(c.served).toBe(1);
    expect(compared(c.lane)).toEqual(compared(c.plain));
  }, 60_000);

  it("takes an upstream that stops right after an answer through Fastify for restarting, as the Fastify path", async () => {
    // One record of the upstream's last answer for both ways (../upstreams.ts UpstreamAnswerTimes): a POST is Fastify's.
    const upstream = createServer((_req, res) => res.end("{}"));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const env = { SERVICE_PORTFOLIO_MANAGER_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}` };
    const lane = await rig.gateway(env);
    const plain = await rig.gateway({ ...env, GATEWAY_FAST_LANE: "false" });
    await laneAnswer(lane, get("/api/users/me")); // the lane live (another upstream)
    const post = `POST /api/portfolio/stops HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${rig.token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
    for (const gw of [lane, plain]) expect((await answerOf(gw, post)).status).toBe(200);
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    const before = await served(lane);
    const a = { lane: await answerOf(lane, get("/api/portfolio/stops")), plain: await answerOf(plain, get("/api/portfolio/stops")) };
    expect((await served(lane)) - before).toBe(1);
    expect(a.plain.body).toContain("is restarting; retry");
    expect(compared(a.lane)).toEqual(compared(a.plain));
  }, 60_000);

  it("holds no more upstream connections than the Fastify path after clients reset mid-stream (4 MiB answers)", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 120);
    const upstream = createServer((_req, res) => res.end(big));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const env = { SERVICE_PORTFOLIO_MANAGER_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}` };
    const held: Record<string, number> = {};
    try {
      for (const [name, gw] of [["lane", await rig.gateway(env)], ["plain", await rig.gateway({ ...env, GATEWAY_FAST_LANE: "false" })]] as const) {
        if (name === "lane") await laneAnswer(gw, get("/api/portfolio/big"));
        const before = await served(gw);
        for (let i = 0; i < 5; i++) {
          // A client that reads about 100 KB of the answer, then resets its connection.
          await resetAfterReading(gw, get("/api/portfolio/big"), 100 * 1024);
        }
        if (name === "lane") expect((await served(gw)) - before).toBe(5);
        await new Promise((r) => setTimeout(r, 3_000));
        held[name] = await new Promise<number>((r) => upstream.getConnections((_e, c) => r(c)));
        upstream.closeAllConnections(); // the next gateway's count its own
      }
      expect(held.lane).toBeLessThanOrEqual(held.plain);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  }, 90_000);
});
