/**
 * The gateway's fast lane (services/src/services/api-gateway/fast-lane): real PostgreSQL and Redis,
 * user-management, a stand-in for portfolio-manager (a node:http server: echo, slow, large, chunked),
 * and gateways with the lane (the default) and without (GATEWAY_FAST_LANE=false). What the lane
 * serves is counted in gateway_fast_lane_total{outcome="served"}, which is how these tests know a
 * request went through it: a URL's first request goes the Fastify way (it fills the routing cache),
 * the next ones through the lane.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";
import { rawExchange } from "../helpers/raw-http";
import { PUSHED_WITHIN_MS } from "../helpers/patience";

const srv = useServers("postgres");
const JWT_SECRET = randomBytes(64).toString("hex");
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let fake: Server;
let fakeUrl: string;
let umUrl: string;
let lane: string;
let plain: string;
let limited: string;
let token: string;
let gateway: (more: Record<string, string>) => Promise<string>;
let refresh: string;
const started: Service[] = [];

const big = randomBytes(2 * 1024 * 1024 + 17);

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  fake = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/slow")) return void setTimeout(() => res.end("late"), 4_000);
    if (url.startsWith("/big")) return void res.end(big);
    if (url.startsWith("/empty")) {
      res.statusCode = 204;
      return void res.end();
    }
    if (url.startsWith("/plain")) return void res.end("no content type"); // and HEAD without one
    if (url.startsWith("/chunked")) {
      res.setHeader("content-type", "text/plain");
      res.write("one,");
      setTimeout(() => res.end("two"), 20);
      return;
    }
    res.setHeader("content-type", "application/json");
    res.setHeader("set-cookie", ["a=1", "b=2"]);
    res.setHeader("x-frame-options", "ALLOWALL"); // the gateway's own security headers win
    res.end(JSON.stringify({ method: req.method, url, rawHeaders: req.rawHeaders }));
  });
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
  fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
  const env = (more: Record<string, string>) => ({ env: { DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent", ...more }, defaultMetrics: false });
  const listen = async (s: Service) => {
    started.push(s);
    return s.listen({ port: 0, host: "127.0.0.1" });
  };
  umUrl = await listen(await createService(userManagement, env({ ...srv.postgres.env })));
  const create = (more: Record<string, string>) =>
    createService(apiGateway, env({ SERVICE_USER_MANAGEMENT_URL: umUrl, SERVICE_PORTFOLIO_MANAGER_URL: fakeUrl, RATE_LIMIT_MAX_REQUESTS: "10000", ...more }));
  gateway = async (more) => listen(await create(more));
  lane = await gateway({});
  plain = await gateway({ GATEWAY_FAST_LANE: "false" });
  limited = await gateway({ RATE_LIMIT_MAX_REQUESTS: "100" });
  const email = `lane-${randomBytes(4).toString("hex")}@example.com`;
  const post = (path: string, body: unknown) => fetch(`${lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await post("/api/users/register", { email, password: "a long enough password" });
  const login = (await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string; refreshToken: string };
  ({ accessToken: token, refreshToken: refresh } = login);
}, 120_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.close().catch(() => undefined);
  fake?.closeAllConnections();
  fake?.close();
  await pool?.end();
  await redis?.stop();
});

const served = async (gw: string) => Number(/gateway_fast_lane_total\{[^}]*outcome="served"[^}]*\} (\d+)/.exec(await (await fetch(`${gw}/metrics`)).text())?.[1] ?? 0);
const get = (path: string, ...lines: string[]) => ["GET " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`, ...lines].join("\r\n") + "\r\n\r\n";
const json = (a: KeptAnswer) => JSON.parse(a.body);

/** One request on a connection of its own: its answer. */
async function answerOf(gw: string, request: string, head = false): Promise<KeptAnswer> {
  const c = await KeepAliveClient.open(gw);
  try {
    c.send(request, head);
    return await c.next();
  } finally {
    c.close();
  }
}

/**
 * The same request twice, each on a new connection: the second answer. The first goes the Fastify
 * way (its URL is not in the routing cache yet, or its credentials not in the caches), and its
 * connection stays node:http's; the second starts in the lane, which serves it where there is one.
 */
async function secondAnswer(gw: string, request: string, head = false): Promise<KeptAnswer> {
  await answerOf(gw, request, head);
  return answerOf(gw, request, head);
}

/**
 * The answer of `request` through the lane: asked again (each on a new connection) until the lane
 * served it. A gateway just started serves the Fastify way until its revocation subscription is live.
 */
async function laneAnswer(gw: string, request: string): Promise<KeptAnswer> {
  for (let i = 0; i < 50; i++) {
    const before = await served(gw);
    const a = await answerOf(gw, request);
    if ((await served(gw)) > before) return a;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the lane never served it");
}

/** `paths` known to the gateway (routing cache, credentials): a request of each, answered the Fastify way. */
const warm = async (gw: string, ...paths: string[]) => {
  for (const p of paths) await answerOf(gw, get(p));
};

/** Names in order, values but those that differ by request (its id, the time, the rate-limit count). */
const shape = (a: KeptAnswer) => ({ status: a.status, lines: a.lines.map(([n, v]) => [n, /^(x-request-id|date|x-ratelimit-remaining|x-ratelimit-reset)$/i.test(n) ? "*" : v]) });

describe("answers through the lane are Fastify's", () => {
  it("the same status, header lines in order and body for GET and HEAD, to the client and to the upstream", async () => {
    const request = get("/api/portfolio/echo?a=1&b=%20", "Accept: text/plain", "Accept: application/json", "Cookie: x=1", "Cookie: y=2", "X-Request-Id: client-1", "X-User-Id: spoofed", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    const before = await served(lane);
    const viaLane = await secondAnswer(lane, request);
    expect(await served(lane)).toBe(before + 1);
    const viaFastify = await secondAnswer(plain, request);
    expect(shape(viaLane)).toEqual(shape(viaFastify));
    expect(viaLane.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    // The upstream sees the same request: the same header lines in the same order, the ids aside.
    const upstream = (a: KeptAnswer) => {
      const u = json(a);
      const raw: string[] = u.rawHeaders;
      return { ...u, rawHeaders: raw.map((v, i) => (i % 2 === 1 && raw[i - 1] === "x-request-id" ? "*" : v)) };
    };
    expect(upstream(viaLane)).toEqual(upstream(viaFastify));
    expect(json(viaLane).rawHeaders).toContain(viaLane.headers["x-request-id"]);
    expect(json(viaLane).rawHeaders).not.toContain("spoofed");
    for (const path of ["/api/portfolio/echo", "/api/users/me", "/api/portfolio/empty", "/api/portfolio/plain"]) {
      const head = get(path).replace("GET", "HEAD");
      expect(shape(await secondAnswer(lane, head, true))).toEqual(shape(await secondAnswer(plain, head, true)));
      expect(shape(await secondAnswer(lane, get(path)))).toEqual(shape(await secondAnswer(plain, get(path))));
    }
  });

  it("a large answer (streamed) and a chunked one arrive whole, as through Fastify", async () => {
    for (const path of ["/api/portfolio/big", "/api/portfolio/chunked"]) {
      const [a, b] = [await secondAnswer(lane, get(path)), await secondAnswer(plain, get(path))];
      expect(shape(a)).toEqual(shape(b));
      expect(a.body).toBe(b.body);
    }
    expect(Buffer.from((await secondAnswer(lane, get("/api/portfolio/big"))).body, "utf8").length).toBeGreaterThan(0);
  });
});

describe("hand-over to Fastify", () => {
  it("a fast GET, then a POST with a body, then a GET on one keep-alive connection: each answered, in order", async () => {
    await warm(lane, "/api/users/me");
    const c = await KeepAliveClient.open(lane);
    const before = await served(lane);
    c.send(get("/api/users/me"));
    expect((await c.next()).status).toBe(200);
    expect(await served(lane)).toBe(before + 1);
    const body = JSON.stringify({ email: "nobody@example.com", password: "wrong password here" });
    c.send(`POST /api/users/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect((await c.next()).status).toBe(401);
    c.send(get("/api/users/me"));
    const third = await c.next();
    expect([third.status, json(third).email ?? json(third).user?.email]).toEqual([200, expect.stringContaining("@example.com")]);
    c.close();
  });

  it("pipelined requests, and a request split across TCP writes, are answered in order", async () => {
    // Each URL known to the lane first (its first request fills the routing cache).
    await warm(lane, "/api/users/me", "/api/portfolio/chunked", ...[2, 4, 5].map((p) => `/api/portfolio/echo?p=${p}`));
    const c = await KeepAliveClient.open(lane);
    c.send(get("/api/users/me") + get("/api/portfolio/echo?p=2"), false, false);
    expect([(await c.next()).status, json(await c.next()).url]).toEqual([200, "/echo?p=2"]);
    c.close();
    const d = await KeepAliveClient.open(lane);
    const before = await served(lane);
    d.send(get("/api/portfolio/chunked")); // answered after 20 ms
    await new Promise((r) => setTimeout(r, 5));
    d.send(get("/api/portfolio/echo?p=4")); // while the first is in flight: node:http's, after the lane's answer
    expect([(await d.next()).body, json(await d.next()).url]).toEqual(["one,two", "/echo?p=4"]);
    expect(await served(lane)).toBe(before + 1);
    d.close();
    const e = await KeepAliveClient.open(lane);
    const request = get("/api/portfolio/echo?p=5");
    e.send(request.slice(0, 20));
    await new Promise((r) => setTimeout(r, 50));
    e.send(Buffer.from(request.slice(20)), false);
    expect(json(await e.next()).url).toBe("/echo?p=5");
    e.send(get("/api/portfolio/echo?p=5"));
    expect(json(await e.next()).url).toBe("/echo?p=5");
    e.close();
  });

  it("smuggling shapes (CL+TE, two CLs, obs-fold, bare LF) are never served by the lane", async () => {
    await warm(lane, "/api/users/me");
    const before = await served(lane);
    const me = "GET /api/users/me HTTP/1.1";
    const auth = `Authorization: Bearer ${token}`;
    const shapes = [
      `${me}\r\nHost: gw\r\n${auth}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nX-Folded: a\r\n b\r\n\r\n`,
      `${me}\nHost: gw\n${auth}\n\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ];
    const statuses: number[] = [];
    for (const s of shapes) statuses.push((await rawExchange(lane, [s], 3_000)).status);
    // Node refuses each smuggling shape (400); a GET with a chunked body of nothing is a request like another, answered the Fastify way.
    expect(statuses).toEqual([400, 400, 400, 400, 200]);
    expect(await served(lane)).toBe(before);
  });
});

describe("what the lane answers itself, and what it leaves to Fastify", () => {
  it("an upstream gone is a 502 and a slow one a 504, in the platform's JSON shape, as through Fastify", async () => {
    // The upstream's own timeout shorter than the request's: 504 UPSTREAM_TIMEOUT both ways (when the
    // two are equal, the Fastify path answers whichever of its two timers fires first).
    const short = { REQUEST_TIMEOUT_MS: "3000", PROXY_TIMEOUT_MS: "1000" };
    const [shortLane, shortPlain] = [await gateway(short), await gateway({ ...short, GATEWAY_FAST_LANE: "false" })];
    const slowLane = await laneAnswer(shortLane, get("/api/portfolio/slow"));
    const slowPlain = await secondAnswer(shortPlain, get("/api/portfolio/slow"));
    expect([slowLane.status, json(slowLane).error]).toEqual([504, { code: "UPSTREAM_TIMEOUT", message: "portfolio-manager is unavailable", requestId: slowLane.headers["x-request-id"] }]);
    expect(shape(slowLane)).toEqual(shape(slowPlain));
    // The request's budget the shorter (equal): the gateway's own 504.
    const budget = await laneAnswer(await gateway({ REQUEST_TIMEOUT_MS: "1000", PROXY_TIMEOUT_MS: "1000" }), get("/api/portfolio/slow"));
    expect([budget.status, json(budget).error]).toEqual([504, { code: "GATEWAY_TIMEOUT", message: "No answer within 1000 ms", requestId: budget.headers["x-request-id"] }]);
    // A service down: a gateway whose portfolio-manager listens nowhere (the first request fills the cache).
    const goneUrl = await gateway({ SERVICE_PORTFOLIO_MANAGER_URL: "http://127.0.0.1:9" });
    const down = await laneAnswer(goneUrl, get("/api/portfolio/echo"));
    expect([down.status, json(down).error]).toEqual([502, { code: "UPSTREAM_UNAVAILABLE", message: "portfolio-manager is unavailable", requestId: down.headers["x-request-id"] }]);
    expect(down.headers["content-type"]).toBe("application/json; charset=utf-8");
  });

  it("the rate limit runs out through the lane: Fastify's 429 follows, the remaining count falls by one each request", async () => {
    await warm(limited, "/api/users/me");
    const c = await KeepAliveClient.open(limited);
    const remaining: number[] = [];
    let refused: KeptAnswer | undefined;
    for (let i = 0; i < 110 && !refused; i++) {
      c.send(get("/api/users/me"));
      const a = await c.next();
      if (a.status === 429) refused = a;
      else remaining.push(Number(a.headers["x-ratelimit-remaining"]));
    }
    c.close();
    expect(await served(limited)).toBeGreaterThan(0);
    expect(refused && json(refused).error.code).toBe("RATE_LIMITED");
    // Leases may leave a few tokens unspent, never one counted twice: strictly falling, by one.
    for (let i = 1; i < remaining.length; i++) expect(remaining[i]).toBe(remaining[i - 1] - 1);
  });

  it("a session ended is refused at once, the lane serving until then", async () => {
    await warm(lane, "/api/users/me");
    const c = await KeepAliveClient.open(lane);
    const before = await served(lane);
    c.send(get("/api/users/me"));
    expect((await c.next()).status).toBe(200);
    expect(await served(lane)).toBe(before + 1);
    const out = await fetch(`${lane}/api/users/logout`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ refreshToken: refresh }) });
    expect(out.status).toBe(204);
    const t0 = Date.now();
    let a: KeptAnswer;
    do {
      c.send(get("/api/users/me"));
      a = await c.next();
    } while (a.status === 200 && Date.now() - t0 < PUSHED_WITHIN_MS);
    expect([a.status, json(a).error?.code]).toEqual([401, "CREDENTIALS_REVOKED"]);
    c.close();
  });
});
