/**
 * What the gateway's fast lane leaves to Fastify, connection and all, and what it answers itself
 * (rig: tests/helpers/fast-lane-rig.ts): a hand-over mid-connection, pipelined and split requests,
 * smuggling shapes never served by the lane, a silent connection's 408, 502 and 504 in the platform's shape, an upstream
 * restarting (sent again once, then 502 with retry-after), the rate limit running out (Fastify's
 * 429), a session ended refused at once.
 */
import { createServer } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";
import { answerOf, get, json, laneAnswer, rig, secondAnswer, served, shape, useFastLaneRig, warm } from "../helpers/fast-lane-rig";
import { rawExchange } from "../helpers/raw-http";
import { PUSHED_WITHIN_MS } from "../helpers/patience";

useFastLaneRig();

/** A keep-alive connection whose first request, GET /api/users/me, the lane served (counted once). */
async function laneServedConnection(): Promise<KeepAliveClient> {
  await warm(rig.lane, "/api/users/me");
  const c = await KeepAliveClient.open(rig.lane);
  const before = await served(rig.lane);
  c.send(get("/api/users/me"));
  expect((await c.next()).status).toBe(200);
  expect(await served(rig.lane)).toBe(before + 1);
  return c;
}

describe("tokens on one kept-alive connection", () => {
  it("two users' tokens taking turns on one connection (a proxy's pooled connection): each answer is its own user's, lane-served, and a token turned bad is refused", async () => {
    // (The lane keeps the last token a connection sent and its claims: authenticate.ts TokenMemo.)
    const email = `lane-other-${Date.now()}@example.com`;
    const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/api/users/register", { email, password: "a long enough password" })).status).toBe(201);
    const other = ((await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string }).accessToken;
    const userOf = (body: { id?: string; email?: string; user?: { id: string; email: string } }) => body.user ?? (body as { id: string; email: string });
    const mine = userOf(await (await fetch(`${rig.lane}/api/users/me`, { headers: { authorization: `Bearer ${rig.token}` } })).json());
    const c = await laneServedConnection();
    const before = await served(rig.lane);
    const as = (token: string) => ["GET /api/users/me HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`].join("\r\n") + "\r\n\r\n";
    const seen: string[] = [];
    for (const token of [other, rig.token, other, rig.token]) {
      c.send(as(token));
      const a = await c.next();
      expect(a.status).toBe(200);
      seen.push(userOf(json(a)).email);
    }
    expect(seen).toEqual([email, expect.any(String), email, expect.any(String)]);
    expect(seen[1]).not.toBe(email);
    expect(await served(rig.lane)).toBe(before + 4);
    // The same token with a character of its signature changed, right after the good one: not the memo's. (Not the
    // last character: of a 43-character HMAC-SHA256 signature its two low bits are padding, ignored when decoded.)
    const at = rig.token.length - 10;
    const forged = rig.token.slice(0, at) + (rig.token[at] === "A" ? "B" : "A") + rig.token.slice(at + 1);
    c.send(as(forged));
    expect((await c.next()).status).toBe(401);
    c.send(as(rig.token));
    const again = await c.next();
    expect([again.status, userOf(json(again)).id]).toEqual([200, mine.id]);
    c.close();
  });
});

describe("hand-over to Fastify", () => {
  it("a fast GET, then a POST with a body, then a GET on one keep-alive connection: each answered, in order", async () => {
    const c = await laneServedConnection();
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
    await warm(rig.lane, "/api/users/me", ...[2, 4, 5].map((p) => `/api/portfolio/echo?p=${p}`));
    const c = await KeepAliveClient.open(rig.lane);
    c.send(get("/api/users/me") + get("/api/portfolio/echo?p=2"), false, false);
    expect([(await c.next()).status, json(await c.next()).url]).toEqual([200, "/echo?p=2"]);
    c.close();
    const d = await KeepAliveClient.open(rig.lane);
    const before = await served(rig.lane);
    d.send(get("/api/portfolio/held?p=3")); // answered when released
    await expect.poll(() => served(rig.lane)).toBe(before + 1); // the lane's (a timed gap let a loaded loop read both at once)
    d.send(get("/api/portfolio/echo?p=4")); // while the first is in flight: node:http's, after the lane's answer
    await new Promise((r) => setTimeout(r, 100)); // (the gateway runs in this process: its reads come before this timer)
    rig.releaseHeld();
    expect([(await d.next()).body, json(await d.next()).url]).toEqual(["held", "/echo?p=4"]);
    expect(await served(rig.lane)).toBe(before + 1);
    d.close();
    const e = await KeepAliveClient.open(rig.lane);
    const request = get("/api/portfolio/echo?p=5");
    e.send(request.slice(0, 20));
    await new Promise((r) => setTimeout(r, 50));
    e.send(Buffer.from(request.slice(20)), false);
    expect(json(await e.next()).url).toBe("/echo?p=5");
    e.send(get("/api/portfolio/echo?p=5"));
    expect(json(await e.next()).url).toBe("/echo?p=5");
    e.close();
  });

  it("a client that ends its side (FIN) while its request is in flight gets nothing more, pipelined requests included, and no access line is written: as node:http", async () => {
    const [laneLogs, plainLogs]: Array<Array<Record<string, unknown>>> = [[], []];
    const [lane, plain] = [await rig.gateway({}, laneLogs), await rig.gateway({ GATEWAY_FAST_LANE: "false" }, plainLogs)];
    await laneAnswer(lane, get("/api/portfolio/echo?fin=0"));
    /** What the client reads: GET /held, then (once the upstream has it) its FIN, after one more request when `pipelined`. */
    const halfClosed = async (gw: string, via: string, pipelined: boolean) => {
      const url = `/held?fin=${via}&pipelined=${pipelined}`;
      const socket = connect(Number(new URL(gw).port), "127.0.0.1");
      let read = "";
      socket.on("data", (d: Buffer) => (read += d.toString("latin1")));
      const closed = new Promise((r) => socket.on("close", r));
      socket.write(get(`/api/portfolio${url}`));
      await expect.poll(() => rig.upstreamSeen.includes(url)).toBe(true);
      if (pipelined) socket.end(get(`/api/portfolio/echo?fin=${via}`));
      else socket.end();
      await new Promise((r) => setTimeout(r, 100)); // (the gateways run in this process: the FIN is read before this timer)
      rig.releaseHeld();
      await closed;
      return read;
    };
    const servedBefore = await served(lane);
    for (const pipelined of [false, true]) {
      expect(await halfClosed(lane, "lane", pipelined), `pipelined: ${pipelined}`).toBe(await halfClosed(plain, "plain", pipelined));
    }
    expect(await served(lane)).toBe(servedBefore + 2);
    // Each gateway answers its next request, whose access line follows any the cut ones would have had.
    for (const gw of [lane, plain]) expect((await answerOf(gw, get("/api/portfolio/echo?fin=after"))).status).toBe(200);
    await expect.poll(() => laneLogs.filter((l) => l.msg === "request completed" && l.url === "/api/portfolio/echo").length).toBeGreaterThanOrEqual(2);
    const heldLines = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.url === "/api/portfolio/held");
    expect(heldLines(laneLogs)).toEqual(heldLines(plainLogs));
    expect(heldLines(laneLogs)).toEqual([]);
  });

  it("a connection that sends nothing within the receive timeout gets node:http's 408 and is closed, in the lane as without it", async () => {
    const short = { REQUEST_RECEIVE_TIMEOUT_MS: "500" };
    const silent = async (gw: string) => {
      const { port } = new URL(gw);
      const socket = connect(Number(port), "127.0.0.1");
      let text = "";
      socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
      await new Promise((r) => socket.on("close", r));
      const [head, body] = text.split("\r\n\r\n");
      return { status: head.split("\r\n")[0], names: head.split("\r\n").slice(1).map((l) => l.split(":")[0]), error: JSON.parse(body).error };
    };
    const [viaLane, viaNode] = [await silent(await rig.gateway(short)), await silent(await rig.gateway({ ...short, GATEWAY_FAST_LANE: "false" }))];
    expect(viaLane.status).toBe("HTTP/1.1 408 Request Timeout");
    expect(viaLane.error).toMatchObject({ code: "REQUEST_TIMEOUT" });
    expect({ ...viaLane, error: { ...viaLane.error, requestId: "*" } }).toEqual({ ...viaNode, error: { ...viaNode.error, requestId: "*" } });
  });

  it("smuggling shapes (CL+TE, two CLs, obs-fold, bare LF) are never served by the lane", async () => {
    await warm(rig.lane, "/api/users/me");
    const before = await served(rig.lane);
    const me = "GET /api/users/me HTTP/1.1";
    const auth = `Authorization: Bearer ${rig.token}`;
    const shapes = [
      `${me}\r\nHost: gw\r\n${auth}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nX-Folded: a\r\n b\r\n\r\n`,
      `${me}\nHost: gw\n${auth}\n\n`,
      `${me}\r\nHost: gw\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ];
    const statuses: number[] = [];
    for (const s of shapes) statuses.push((await rawExchange(rig.lane, [s], 3_000)).status);
    // Node refuses each smuggling shape (400); a GET with a chunked body of nothing is a request like another, answered the Fastify way.
    expect(statuses).toEqual([400, 400, 400, 400, 200]);
    expect(await served(rig.lane)).toBe(before);
  });
});

describe("what the lane answers itself, and what it leaves to Fastify", () => {
  it("an upstream gone is a 502 and a slow one a 504, in the platform's JSON shape, as through Fastify", async () => {
    // The upstream's own timeout shorter than the request's: 504 UPSTREAM_TIMEOUT both ways (when the
    // two are equal, the Fastify path answers whichever of its two timers fires first).
    const short = { REQUEST_TIMEOUT_MS: "3000", PROXY_TIMEOUT_MS: "1000" };
    const [shortLane, shortPlain] = [await rig.gateway(short), await rig.gateway({ ...short, GATEWAY_FAST_LANE: "false" })];
    const slowLane = await laneAnswer(shortLane, get("/api/portfolio/slow"));
    const slowPlain = await secondAnswer(shortPlain, get("/api/portfolio/slow"));
    expect([slowLane.status, json(slowLane).error]).toEqual([504, { code: "UPSTREAM_TIMEOUT", message: "the service at /api/portfolio/ is unavailable", requestId: slowLane.headers["x-request-id"] }]);
    expect(shape(slowLane)).toEqual(shape(slowPlain));
    // The request's budget the shorter (equal): the gateway's own 504.
    const budget = await laneAnswer(await rig.gateway({ REQUEST_TIMEOUT_MS: "1000", PROXY_TIMEOUT_MS: "1000" }), get("/api/portfolio/slow"));
    expect([budget.status, json(budget).error]).toEqual([504, { code: "GATEWAY_TIMEOUT", message: "No answer within 1000 ms", requestId: budget.headers["x-request-id"] }]);
    // A service down: a gateway whose portfolio-manager listens nowhere (the first request fills the cache).
    const goneUrl = await rig.gateway({ SERVICE_PORTFOLIO_MANAGER_URL: "http://127.0.0.1:9" });
    const down = await laneAnswer(goneUrl, get("/api/portfolio/echo"));
    expect([down.status, json(down).error]).toEqual([502, { code: "UPSTREAM_UNAVAILABLE", message: "the service at /api/portfolio/ is unavailable", requestId: down.headers["x-request-id"] }]);
    expect(down.headers["content-type"]).toBe("application/json; charset=utf-8");
  });

  it("an upstream restarting: a closed connection is sent again once; refused after an answer, 502 with retry-after, as through Fastify", async () => {
    // The stand-in upstream: closes the first request of each URL asking `reset` unanswered (a
    // connection dropped under it), answers everything else; then stops, as a deploy's restart does.
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      const url = req.url ?? "/";
      seen.push(url);
      if (url.includes("reset") && seen.filter((u) => u === url).length === 1) return void req.socket.destroy();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ url }));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const env = { SERVICE_PORTFOLIO_MANAGER_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` };
    const [lane, plain] = [await rig.gateway(env), await rig.gateway({ ...env, GATEWAY_FAST_LANE: "false" })];
    try {
      expect((await laneAnswer(lane, get("/api/portfolio/up"))).status).toBe(200);
      expect((await secondAnswer(plain, get("/api/portfolio/up"))).status).toBe(200);
      const before = await served(lane);
      const again = await answerOf(lane, get("/api/portfolio/reset?lane=1"));
      expect([again.status, json(again).url, await served(lane)]).toEqual([200, "/reset?lane=1", before + 1]);
      expect(seen.filter((u) => u === "/reset?lane=1")).toHaveLength(2);
      upstream.close();
      upstream.closeAllConnections();
      const restarting = await answerOf(lane, get("/api/portfolio/up"));
      expect(await served(lane)).toBe(before + 2);
      expect([restarting.status, restarting.headers["retry-after"], json(restarting).error]).toEqual([
        502,
        "1",
        { code: "UPSTREAM_UNAVAILABLE", message: "the service at /api/portfolio/ is restarting; retry", requestId: restarting.headers["x-request-id"] },
      ]);
      expect(shape(restarting)).toEqual(shape(await answerOf(plain, get("/api/portfolio/up"))));
    } finally {
      upstream.close();
      upstream.closeAllConnections();
    }
  });

  it("an upstream's own 503 SHUTTING_DOWN to a GET or HEAD is sent once more, through the lane as through Fastify (upstreams.ts sendPastClosing's rule)", async () => {
    // The stand-in: the kit's closing answer (503 SHUTTING_DOWN, retry-after, its connection closed) to
    // the first request of each method and URL and to every one asking `always`; 200 to the rest.
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      const key = `${req.method} ${req.url}`;
      seen.push(key);
      if (req.url!.includes("always") || seen.filter((k) => k === key).length === 1) {
        const body = JSON.stringify({ error: { code: "SHUTTING_DOWN", message: "This service instance is shutting down: the request was not started; retry", requestId: String(req.headers["x-request-id"]) } });
        return void res.writeHead(503, { "content-type": "application/json; charset=utf-8", "retry-after": "1", connection: "close", "content-length": Buffer.byteLength(body) }).end(req.method === "HEAD" ? undefined : body);
      }
      const ok = JSON.stringify({ ok: true, method: req.method });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(ok) }).end(req.method === "HEAD" ? undefined : ok);
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const env = { SERVICE_PORTFOLIO_MANAGER_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` };
    const [lane, plain] = [await rig.gateway(env), await rig.gateway({ ...env, GATEWAY_FAST_LANE: "false" })];
    const askedTwice = (key: string) => expect(seen.filter((k) => k === key), key).toHaveLength(2);
    try {
      await laneAnswer(lane, get("/api/portfolio/up"));
      await secondAnswer(plain, get("/api/portfolio/up"));
      for (const [method, path] of [["GET", "/resend"], ["HEAD", "/resend"], ["GET", "/always"]] as const) {
        const request = (via: string) => get(`/api/portfolio${path}?via=${via}`).replace(/^GET/, method);
        const before = await served(lane);
        const [viaLane, viaFastify] = [await answerOf(lane, request("lane"), method === "HEAD"), await answerOf(plain, request("plain"), method === "HEAD")];
        expect(await served(lane), `${method} ${path}`).toBe(before + 1);
        askedTwice(`${method} ${path}?via=lane`);
        askedTwice(`${method} ${path}?via=plain`);
        expect(viaLane.status, `${method} ${path}`).toBe(path === "/always" ? 503 : 200);
        expect(shape(viaLane)).toEqual(shape(viaFastify));
        if (method === "GET") expect({ ...json(viaLane), error: json(viaLane).error && { ...json(viaLane).error, requestId: "*" } }).toEqual({ ...json(viaFastify), error: json(viaFastify).error && { ...json(viaFastify).error, requestId: "*" } });
      }
    } finally {
      upstream.close();
      upstream.closeAllConnections();
    }
  });

  it("a client gone mid-way through a streamed answer: the upstream's connection is closed, through the lane as through Fastify", async () => {
    for (const [gw, via] of [[rig.lane, "lane"], [rig.plain, "plain"]]) {
      const url = `/endless?via=${via}`;
      const socket = connect(Number(new URL(gw).port), "127.0.0.1");
      let read = 0;
      socket.on("data", (d: Buffer) => {
        read += d.length;
        if (read > 2 << 20) socket.pause(); // past the gateway's 1 MiB buffer: streamed; then the client reads no more
      });
      socket.on("error", () => undefined);
      socket.write(get(`/api/portfolio${url}`));
      await expect.poll(() => read, { message: via }).toBeGreaterThan(2 << 20);
      socket.destroy();
      await expect.poll(() => rig.upstreamClosed.includes(url), { message: via }).toBe(true);
    }
  });

  it("the rate limit runs out through the lane: Fastify's 429 follows, the remaining count falls by one each request", async () => {
    await warm(rig.limited, "/api/users/me");
    const c = await KeepAliveClient.open(rig.limited);
    const remaining: number[] = [];
    let refused: KeptAnswer | undefined;
    for (let i = 0; i < 110 && !refused; i++) {
      c.send(get("/api/users/me"));
      const a = await c.next();
      if (a.status === 429) refused = a;
      else remaining.push(Number(a.headers["x-ratelimit-remaining"]));
    }
    c.close();
    expect(await served(rig.limited)).toBeGreaterThan(0);
    expect(refused && json(refused).error.code).toBe("RATE_LIMITED");
    // Leases may leave a few tokens unspent, never one counted twice: strictly falling, by one.
    for (let i = 1; i < remaining.length; i++) expect(remaining[i]).toBe(remaining[i - 1] - 1);
  });

  it("a session ended is refused at once, the lane serving until then", async () => {
    const c = await laneServedConnection();
    const out = await fetch(`${rig.lane}/api/users/logout`, { method: "POST", headers: { authorization: `Bearer ${rig.token}`, "content-type": "application/json" }, body: JSON.stringify({ refreshToken: rig.refresh }) });
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
