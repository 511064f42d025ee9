/**
 * The gateway's fast lane (services/src/services/api-gateway/fast-lane) answers as its Fastify path
 * does: the same status, header lines in order and body, to the client and to the upstream; a
 * draining gateway's close; a large and a chunked answer (rig: tests/helpers/fast-lane-rig.ts).
 */
import { describe, expect, it } from "vitest";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";
import { answerOf, get, json, laneAnswer, rig, secondAnswer, served, shape, useFastLaneRig, warm } from "../helpers/fast-lane-rig";

useFastLaneRig();

describe("answers through the lane are Fastify's", () => {
  it("the same status, header lines in order and body for GET and HEAD, to the client and to the upstream", async () => {
    const request = get("/api/portfolio/echo?a=1&b=%20", "Accept: text/plain", "Accept: application/json", "Cookie: x=1", "Cookie: y=2", "X-Request-Id: client-1", "X-User-Id: spoofed", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    const before = await served(rig.lane);
    const viaLane = await secondAnswer(rig.lane, request);
    expect(await served(rig.lane)).toBe(before + 1);
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

  it("a large answer (streamed) and a chunked one arrive whole, as through Fastify", async () => {
    for (const path of ["/api/portfolio/big", "/api/portfolio/chunked"]) {
      const [a, b] = [await secondAnswer(rig.lane, get(path)), await secondAnswer(rig.plain, get(path))];
      expect(shape(a)).toEqual(shape(b));
      expect(a.body).toBe(b.body);
    }
    expect(Buffer.from((await secondAnswer(rig.lane, get("/api/portfolio/big"))).body, "utf8").length).toBeGreaterThan(0);
  });
});

