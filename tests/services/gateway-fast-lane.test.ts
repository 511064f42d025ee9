/**
 * The gateway's fast lane (services/src/services/api-gateway/fast-lane) answers as its Fastify path
 * does: the same status, header lines in order and body, to the client and to the upstream; a
 * draining gateway's close; a large and a chunked answer; a first request on cold caches warmed and
 * served by the lane, an error left to Fastify (rig: tests/helpers/fast-lane-rig.ts).
 */
import { describe, expect, it } from "vitest";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";
import { answerOf, counted, get, json, laneAnswer, rig, secondAnswer, served, shape, useFastLaneRig, warm } from "../helpers/fast-lane-rig";

useFastLaneRig();

describe("answers through the lane are Fastify's", () => {
  it("the same status, header lines in order and body for GET and HEAD, to the client and to the upstream", async () => {
    const request = get("/api/portfolio/echo?a=1&b=%20", "Accept: text/plain", "Accept: application/json", "Cookie: x=1", "Cookie: y=2", "X-Request-Id: client-1", "X-User-Id: spoofed", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    const viaLane = await laneAnswer(rig.lane, request);
    const viaFastify = await secondAnswer(rig.plain, request);
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
      expect(shape(await secondAnswer(rig.lane, head, true))).toEqual(shape(await secondAnswer(rig.plain, head, true)));
      expect(shape(await secondAnswer(rig.lane, get(path)))).toEqual(shape(await secondAnswer(rig.plain, get(path))));
    }
    // A client's Connection: close: answered with it, and the connection closed after, both ways.
    const closing = get("/api/portfolio/echo?c=1", "Connection: close");
    const [a, b] = [await secondAnswer(rig.lane, closing), await secondAnswer(rig.plain, closing)];
    expect(shape(a)).toEqual(shape(b));
    expect(a.headers.connection).toBe("close");
  });

  it("a draining gateway's answers close their connection, through the lane as through Fastify", async () => {
    const [drainingLane, drainingPlain] = [await rig.gateway({}), await rig.gateway({ GATEWAY_FAST_LANE: "false" })];
    await warm(drainingLane, "/api/portfolio/echo?d=1");
    await laneAnswer(drainingLane, get("/api/portfolio/echo?d=1"));
    await warm(drainingPlain, "/api/portfolio/echo?d=1");
    rig.serviceOf(drainingLane)!.drain();
    rig.serviceOf(drainingPlain)!.drain();
    const before = await served(drainingLane);
    const c = await KeepAliveClient.open(drainingLane);
    c.send(get("/api/portfolio/echo?d=1"));
    const a = await c.next();
    expect(await served(drainingLane)).toBe(before + 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.closed).toBe(true);
    expect(shape(a)).toEqual(shape(await answerOf(drainingPlain, get("/api/portfolio/echo?d=1"))));
    expect(a.lines[1]).toEqual(["connection", "close"]);
  });

  it("an answer to a request begun before the drain closes its connection too, through the lane as through Fastify", async () => {
    const [lane, plain] = [await rig.gateway({}), await rig.gateway({ GATEWAY_FAST_LANE: "false" })];
    await laneAnswer(lane, get("/api/portfolio/echo?d=2"));
    const path = "/api/portfolio/held?drain=2";
    const seen = () => rig.upstreamSeen.filter((u) => u === "/held?drain=2").length;
    // The held URL known to the lane's routing cache first (its first request goes the Fastify way).
    const warming = warm(lane, path);
    await expect.poll(seen).toBe(1);
    rig.releaseHeld();
    await warming;
    const before = await served(lane);
    const [viaLane, viaPlain] = [await KeepAliveClient.open(lane), await KeepAliveClient.open(plain)];
    viaLane.send(get(path));
    viaPlain.send(get(path));
    await expect.poll(seen).toBe(3);
    expect(await served(lane)).toBe(before + 1);
    rig.serviceOf(lane)!.drain();
    rig.serviceOf(plain)!.drain();
    rig.releaseHeld();
    for (const c of [viaLane, viaPlain]) {
      const a = await c.next();
      expect([a.status, a.body, a.headers.connection]).toEqual([200, "held", "close"]);
      await expect.poll(() => c.closed).toBe(true);
    }
  });

  it("a large answer (streamed) and a chunked one arrive whole, as through Fastify", async () => {
    for (const path of ["/api/portfolio/big", "/api/portfolio/chunked"]) {
      const [a, b] = [await secondAnswer(rig.lane, get(path)), await secondAnswer(rig.plain, get(path))];
      expect(shape(a)).toEqual(shape(b));
      expect(a.body).toBe(b.body);
    }
    expect(Buffer.from((await secondAnswer(rig.lane, get("/api/portfolio/big"))).body, "utf8").length).toBeGreaterThan(0);
  });
});


describe("a request declined only because a cache is cold", () => {
  /** A user of its own (register and login through the Fastify path): a token, user state and rate-limit key no gateway holds yet. */
  async function newUserToken(): Promise<string> {
    const email = `cold-${Math.random().toString(16).slice(2)}@example.com`;
    const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/api/users/register", { email, password: "a long enough password" })).status).toBe(201);
    return ((await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string }).accessToken;
  }
  const getAs = (token: string, path: string) => get(path).replace(`Bearer ${rig.token}`, `Bearer ${token}`);

  it("is warmed (route, credentials, rate-limit lease) and served by the lane, its connection kept, each token counted once", async () => {
    const gw = await rig.gateway({});
    // Until its revocation subscription is live the gateway decides no credentials from its caches: waited for.
    await laneAnswer(gw, get("/api/portfolio/echo?w=0"));
    const token = await newUserToken();
    const [servedBefore, warmedBefore, handedBefore] = [await served(gw), await counted(gw, "warmed"), await counted(gw, "handed_over")];
    const c = await KeepAliveClient.open(gw);
    c.send(getAs(token, "/api/portfolio/echo?cold=1")); // a URL, a token, a user and a rate-limit key the gateway has not seen
    const first = await c.next();
    expect(first.status).toBe(200);
    expect(await served(gw)).toBe(servedBefore + 1);
    expect(await counted(gw, "handed_over")).toBe(handedBefore);
    expect(await counted(gw, "warmed", "route")).toBeGreaterThanOrEqual(1);
    expect(await counted(gw, "warmed", "credentials")).toBeGreaterThanOrEqual(1);
    expect(await counted(gw, "warmed")).toBeGreaterThanOrEqual(warmedBefore + 3); // its route, its credentials, its user's lease
    // The connection stays the lane's; the user's count falls by one a request from the first on.
    c.send(getAs(token, "/api/portfolio/echo?cold=1"));
    const second = await c.next();
    expect(await served(gw)).toBe(servedBefore + 2);
    expect(Number(second.headers["x-ratelimit-remaining"])).toBe(Number(first.headers["x-ratelimit-remaining"]) - 1);
    expect(shape(first)).toEqual(shape(await answerOf(rig.plain, getAs(token, "/api/portfolio/echo?cold=1"))));
    c.close();
  });

  it("warmed to an error (a route that is not one, refused credentials): the connection is Fastify's, which answers it", async () => {
    const gw = await rig.gateway({});
    await laneAnswer(gw, get("/api/portfolio/echo?w=1"));
    const handed = await counted(gw, "handed_over");
    const servedBefore = await served(gw);
    const nowhere = await answerOf(gw, get("/api/nowhere/x"));
    expect([nowhere.status, json(nowhere).error.code]).toEqual([404, "NOT_FOUND"]);
    const forged = await answerOf(gw, get("/api/portfolio/echo?forged=1").replace(rig.token, `${rig.token.slice(0, -4)}AAAA`));
    expect([forged.status, json(forged).error.code]).toEqual([401, "INVALID_TOKEN"]);
    expect(await counted(gw, "handed_over", "route")).toBeGreaterThanOrEqual(1);
    expect(await counted(gw, "handed_over", "credentials")).toBeGreaterThanOrEqual(1);
    expect(await counted(gw, "handed_over")).toBe(handed + 2);
    expect(await served(gw)).toBe(servedBefore);
  });

  it("a token padded or in base64's +/ is the same 401 both ways, saying it is not base64url; a wrong scheme still names the scheme (session 64)", async () => {
    const gw = await rig.gateway({});
    await laneAnswer(gw, get("/api/portfolio/echo?b64=1"));
    const spelt = (token: string) => get("/api/portfolio/echo?b64=1").replace(`Bearer ${rig.token}`, token);
    const cases: Array<[string, string, RegExp]> = [
      ["padded", `Bearer ${rig.token}=`, /not base64url \(RFC 7515/],
      ["+ and /", `bearer ${rig.token.slice(0, -2)}+/`, /not base64url \(RFC 7515/],
      ["a character of neither", `Bearer ${rig.token}~`, /not base64url \(RFC 7515/],
      ["two segments", `Bearer ${rig.token.split(".").slice(0, 2).join(".")}`, /must be 'Bearer <access token>'/],
      ["a second scheme", `Bearer ${rig.token}=, Basic dXNlcjpwYXNz`, /must be 'Bearer <access token>'/],
      ["a tab after the scheme", `Bearer\t${rig.token}=`, /must be 'Bearer <access token>'/],
    ];
    for (const [label, authorization, message] of cases) {
      const [viaLane, viaPlain] = [await answerOf(gw, spelt(authorization)), await answerOf(rig.plain, spelt(authorization))];
      expect(shape(viaLane), label).toEqual(shape(viaPlain));
      expect([viaLane.status, json(viaLane).error.code], label).toEqual([401, "INVALID_TOKEN"]);
      expect(json(viaLane).error.message, label).toMatch(message);
      expect(json(viaPlain).error.message, label).toBe(json(viaLane).error.message);
    }
  });

  it("a client gone while its caches are warmed: nothing answered, the lane serving the next", async () => {
    const gw = await rig.gateway({});
    await laneAnswer(gw, get("/api/portfolio/echo?w=2"));
    const token = await newUserToken();
    const c = await KeepAliveClient.open(gw);
    c.send(getAs(token, "/api/portfolio/echo?gone=1"));
    c.close();
    const again = await laneAnswer(gw, getAs(token, "/api/portfolio/echo?gone=1"));
    expect(again.status).toBe(200);
  });
});
