/**
 * The fast lane's request side answers as the Fastify path (GATEWAY_FAST_LANE=false) does: what the
 * kit refuses before the proxy route's handler (NUL or an unpaired surrogate in the query or path:
 * its preValidation) and what Fastify's router does not take to the proxy route (a `\` after /api)
 * are the Fastify path's answers, not forwarded; a request then the client's FIN is answered as node:http
 * does (rig: tests/helpers/fast-lane-rig.ts).
 */
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import type { KeptAnswer } from "../helpers/keep-alive-client";
import { answerOf, get, json, laneAnswer, rig, secondAnswer, served, shape, useFastLaneRig } from "../helpers/fast-lane-rig";

useFastLaneRig();

/** The answer's status and error (code, message, field), the request id aside. */
const outcome = (a: KeptAnswer) => {
  const body = a.status >= 400 ? json(a).error : undefined;
  return { status: a.status, code: body?.code, message: body?.message, field: body?.field };
};

/**
 * Each path asked twice of both gateways (the first warms the lane's caches): the same answers and
 * the same URLs upstream; `refused`: none served by the lane, none reaching the upstream.
 */
async function sameAsFastify(paths: string[], refused = true): Promise<Array<ReturnType<typeof outcome>>> {
  await laneAnswer(rig.lane, get("/api/portfolio/echo?live=1"));
  const out = [];
  for (const path of paths) {
    const before = await served(rig.lane);
    const seen = rig.upstreamSeen.length;
    const viaLane = await secondAnswer(rig.lane, get(path));
    const fromLane = rig.upstreamSeen.slice(seen);
    const viaFastify = await secondAnswer(rig.plain, get(path));
    expect({ path, ...shape(viaLane) }).toEqual({ path, ...shape(viaFastify) });
    expect({ path, ...outcome(viaLane) }).toEqual({ path, ...outcome(viaFastify) });
    expect({ path, upstream: fromLane }).toEqual({ path, upstream: rig.upstreamSeen.slice(seen + fromLane.length) });
    if (refused) expect({ path, served: await served(rig.lane), upstream: fromLane }).toEqual({ path, served: before, upstream: [] });
    out.push(outcome(viaLane));
  }
  return out;
}

describe("the lane hands over what the kit refuses before the proxy's handler", () => {
  it("NUL or an unpaired surrogate in the query or the path: the kit's 400, not forwarded", async () => {
    const [nul, surrogate, inPath, inKey] = await sameAsFastify(["/api/portfolio/echo?q=%00", "/api/portfolio/echo?a=1&q=%ED%A0%80", "/api/portfolio/echo%00x", "/api/portfolio/echo?%00=1"]);
    expect(nul).toEqual({ status: 400, code: "VALIDATION_ERROR", message: "Invalid querystring: q contains a NUL character or an unpaired surrogate", field: "q" });
    expect(surrogate.status).toBe(400); // (not UTF-8: the proxy's own 400, both ways)
    expect(inPath.status).toBe(400);
    expect(inKey.status).toBe(400);
  });
});

describe("the lane serves only what Fastify's router takes to the proxy route", () => {
  it("a backslash after /api: Fastify's 404, not /echo forwarded", async () => {
    const [backslash] = await sameAsFastify(["/api\\portfolio/echo"]);
    expect(backslash).toEqual({ status: 404, code: "NOT_FOUND", message: "Route GET /api\\portfolio/echo not found", field: undefined });
  });

  it("other URLs the router and the proxy's URL parse read differently: the Fastify path's answers", async () => {
    await sameAsFastify(["/api%2Fportfolio/echo", "/api//portfolio/echo", "/API/portfolio/echo", "/api/docs/openapi.json?x", "/api/health?x=1"]);
    // (Both take these to the proxy route, which forwards what the URL parse makes of them.)
    await sameAsFastify(["/api/portfolio\\echo", "/api/./portfolio/echo", "/api/portfolio/echo#frag", "/api/portfolio/echo;x=1", "/api/health/../portfolio/echo"], false);
  });

  it("an ordinary URL is still the lane's", async () => {
    const before = await served(rig.lane);
    const a = await laneAnswer(rig.lane, get("/api/portfolio/echo?q=ok%20"));
    expect(a.status).toBe(200);
    expect(await served(rig.lane)).toBeGreaterThan(before);
  });
});

/** Everything a connection sends back to `request` written with a half-close (FIN) after it, until the gateway closes (at most `waitMs`). */
function halfClosed(gw: string, request: string, waitMs = 5_000): Promise<{ text: string; closed: boolean }> {
  const { port } = new URL(gw);
  return new Promise((resolve) => {
    let text = "";
    const s = connect(Number(port), "127.0.0.1", () => s.end(request));
    const limit = setTimeout(() => s.destroy(), waitMs);
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("error", () => undefined);
    s.on("end", () => {
      clearTimeout(limit);
      resolve({ text, closed: true });
      s.destroy();
    });
    s.on("close", () => {
      clearTimeout(limit);
      resolve({ text, closed: false });
    });
  });
}

/** A new session's access token (a new user, logged in): credentials no gateway has cached. */
async function freshToken(): Promise<string> {
  const email = `half-${Math.random().toString(36).slice(2)}@example.com`;
  const post = (path: string, body: unknown) => fetch(`${rig.plain}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await post("/api/users/register", { email, password: "a long enough password" });
  return ((await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string }).accessToken;
}

describe("a request then the client's FIN, as node:http: the connection closed, nothing answered", () => {
  it("a request the lane would serve, one whose credentials it warms first (nothing answered), one without Host (node:http's 400)", async () => {
    await laneAnswer(rig.lane, get("/api/portfolio/echo?half=1"));
    for (const gw of [rig.lane, rig.plain]) await answerOf(gw, get("/api/portfolio/echo?half=1"));
    const cases: Array<[string, () => Promise<string>]> = [
      ["served", async () => get("/api/portfolio/echo?half=1")],
      // (A token the gateway refuses is not among these: whether its 401 goes out before node:http reads
      // the FIN depends on how quickly it is refused, on either path: the Fastify path answers a repeated
      // refused token 401 after a FIN too, from its cache.)
      ["credentials warmed", async () => get("/api/portfolio/echo?half=2").replace(rig.token, await freshToken())],
      ["no Host", async () => get("/api/portfolio/echo?half=3").replace("Host: gw\r\n", "")],
    ];
    // (Ids and dates aside: node:http answers a request without Host 400 before it sees the FIN, both ways.)
    const same = (a: { text: string; closed: boolean }) => ({ ...a, text: a.text.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "*").replace(/Date: [^\r]*/, "*") });
    const answers = [];
    for (const [name, request] of cases) {
      const [viaLane, viaFastify] = [await halfClosed(rig.lane, await request()), await halfClosed(rig.plain, await request())];
      expect({ name, ...same(viaLane) }).toEqual({ name, ...same(viaFastify) });
      answers.push(viaLane);
    }
    expect(answers.map((a) => a.closed)).toEqual([true, true, true]);
    expect(answers.map((a) => a.text.slice(0, 24))).toEqual(["", "", "HTTP/1.1 400 Bad Request"]);
  });
});

/** Everything `gw` sends on one connection to a held request, then `more` once the upstream has it; the held answer released after `settleMs`. */
async function behindHeld(gw: string, path: string, more: Buffer, settleMs = 300): Promise<string> {
  const { port } = new URL(gw);
  const seen = rig.upstreamSeen.length;
  let text = "";
  const s = connect(Number(port), "127.0.0.1", () => s.write(get(path)));
  s.on("data", (d: Buffer) => (text += d.toString("latin1")));
  s.on("error", () => undefined);
  const closed = new Promise((r) => s.on("close", r));
  while (rig.upstreamSeen.length === seen) await new Promise((r) => setTimeout(r, 10));
  s.write(more);
  await new Promise((r) => setTimeout(r, settleMs)); // (the gateway reads them while the answer is held)
  rig.releaseHeld();
  const limit = setTimeout(() => s.destroy(), 5_000);
  await closed;
  clearTimeout(limit);
  return text;
}

describe("bytes a client sends while the lane's answer is out", () => {
  it("a request llhttp refuses, behind one being handled: that one's answer with Connection: close, no 400, the close", async () => {
    const path = "/api/portfolio/held?p=17";
    const release = setInterval(() => rig.releaseHeld(), 20);
    try {
      await laneAnswer(rig.lane, get(path));
      await answerOf(rig.plain, get(path));
    } finally {
      clearInterval(release);
    }
    const tls = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]);
    const before = await served(rig.lane);
    const [viaLane, viaFastify] = [await behindHeld(rig.lane, path, tls), await behindHeld(rig.plain, path, tls)];
    expect(await served(rig.lane)).toBe(before + 1);
    const statuses = (t: string) => [...t.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses(viaLane)).toEqual(statuses(viaFastify));
    expect(statuses(viaLane)).toEqual(["200"]);
    expect(/\r\nConnection: close\r\n/.test(viaLane)).toBe(true);
    expect(/\r\nConnection: close\r\n/.test(viaFastify)).toBe(true);
  });
});

/**
 * An endless streamed answer from `gw` (its head and some of its body read), then `more` on the same
 * connection: whether the gateway closes the connection within 15 s, and the statuses of the answer
 * heads read (the body is all "x": a head is the text "HTTP/1.1 ").
 */
async function behindStreamed(gw: string, path: string, more: Buffer): Promise<{ closed: boolean; statuses: string[] }> {
  const { port } = new URL(gw);
  const statuses: string[] = [];
  let received = 0;
  let tail = ""; // (a head may straddle two reads)
  const s = connect(Number(port), "127.0.0.1", () => s.write(get(path)));
  let sent = false;
  const closed = new Promise<boolean>((r) => {
    s.on("close", () => r(true));
    setTimeout(r, 15_000, false);
  });
  s.on("data", (d: Buffer) => {
    const text = tail + d.toString("latin1");
    for (const m of text.matchAll(/HTTP\/1\.1 (\d{3})/g)) if (m.index! >= tail.length - 11) statuses.push(m[1]);
    tail = text.slice(-16);
    received += d.length;
    // Once the answer is well under way (its head and 64 KiB of its body in): the gateway is streaming it.
    if (!sent && received > 64 * 1024) {
      sent = true;
      s.write(more);
    }
  });
  s.on("error", () => undefined);
  const wasClosed = await closed;
  s.destroy();
  return { closed: wasClosed, statuses };
}

describe("bytes a client sends once the lane's answer has begun", () => {
  it("a request llhttp refuses, behind a streamed answer under way: the connection closed, no 400 (node:http's and the kit's rule)", async () => {
    await laneAnswer(rig.lane, get("/api/portfolio/echo?streamed=1")); // (the credentials and the lease warm)
    const tls = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]);
    const before = await served(rig.lane);
    const viaLane = await behindStreamed(rig.lane, "/api/portfolio/endless?refused=1", tls);
    const viaFastify = await behindStreamed(rig.plain, "/api/portfolio/endless?refused=2", tls);
    expect(await served(rig.lane)).toBe(before + 1);
    // Before session 55 the lane held them until its answer ended (never, here), then handed them to node:http: its 400.
    expect(viaLane).toEqual(viaFastify);
    expect(viaLane).toEqual({ closed: true, statuses: ["200"] });
  });
});
