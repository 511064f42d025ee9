/**
 * Each client's share of the gateway's connections to a service, on GETs (api-gateway upstream-shares.ts):
 * the fast lane's own pool (GATEWAY_FAST_LANE=true) and the Fastify path's (false), over real servers (the
 * fast-lane rig: PostgreSQL, Redis, user-management, a stand-in portfolio-manager whose `/held` requests
 * wait until the test releases them). One user's crowd of 130 slow GETs: 96 reach the upstream (all but a
 * quarter of the 128 connections), the others are answered 429 TOO_MANY_IN_FLIGHT with Retry-After 1 at
 * once and never reach it; another user's GET is answered meanwhile; once the crowd is answered its share
 * is free again. Until session 58 the lane's pool had no share: the crowd held all 128 of its connections
 * and the other user's GET waited behind it (until PROXY_TIMEOUT_MS cut the crowd's requests). A place is
 * given back however a request ends: answered, timed out, its client gone (the lane), and a streamed
 * answer's (past the 1 MiB the gateway buffers) only at its end, on both paths: until session 58 at its
 * head, so one user's stalled downloads held every connection (a stand-in upstream that stops mid-answer).
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUFFER_LIMIT_BYTES } from "../../services/src/services/api-gateway/upstreams";
import { get, laneAnswer, rig, served, shape, useFastLaneRig } from "../helpers/fast-lane-rig";
import { KeepAliveClient, type KeptAnswer } from "../helpers/keep-alive-client";
import { rawUpstream } from "../helpers/raw-upstream";

useFastLaneRig();

const CROWD = 130;
/** What one client may hold of the 128 connections: all but the quarter kept for the others. */
const HELD = 96;
/** Held requests end when the test answers them, never by a timeout of the gateway's. */
const TIMEOUTS = { PROXY_TIMEOUT_MS: "60000", REQUEST_TIMEOUT_MS: "60000" };

/** `request` on a connection of its own: its answer whenever it comes (within `waitMs`). */
async function sent(gw: string, request: string, waitMs = 120_000): Promise<KeptAnswer> {
  const c = await KeepAliveClient.open(gw);
  try {
    c.send(request);
    return await c.next(waitMs);
  } finally {
    c.close();
  }
}

/** `request` on a socket of its own, its answer read as it comes: the status once its head is in, and the socket (to close). */
function headOf(gw: string, request: string): Promise<{ status: number; socket: Socket; head: { text: string; bodyBytes: number } }> {
  const { hostname, port } = new URL(gw);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let read = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      read = Buffer.concat([read, d]);
      const end = read.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.removeListener("data", onData);
      const text = read.toString("latin1", 0, end + 4);
      resolve({ status: Number(text.split(" ")[1]), socket, head: { text, bodyBytes: read.length - end - 4 } });
    };
    socket.on("data", onData);
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed before an answer's head: ${read.toString("latin1", 0, 200)}`)));
  });
}

/** `request` on a socket of its own, its answer read to its end (Content-Length): its status and body's length. */
function readWhole(gw: string, request: string): Promise<[number, number]> {
  return headOf(gw, request).then(
    ({ status, socket, head }) =>
      new Promise((resolve, reject) => {
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head.text)?.[1]);
        let got = head.bodyBytes;
        const done = () => got >= length && (socket.destroy(), resolve([status, got]));
        socket.on("data", (d: Buffer) => ((got += d.length), done()));
        socket.on("close", () => reject(new Error(`closed after ${got} of ${length} bytes`)));
        done();
      }),
  );
}

/** Requests of `url` (path and query) the stand-in upstream received. */
const reached = (url: string) => rig.upstreamSeen.filter((u) => u === url).length;

/** Another user's GET of `path`. */
let otherGet: (path: string) => string;

beforeAll(async () => {
  const email = `shares-${randomBytes(4).toString("hex")}@example.com`;
  const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  expect((await post("/api/users/register", { email, password: "a long enough password" })).status).toBe(201);
  const { accessToken } = (await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string };
  otherGet = (path) => ["GET " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${accessToken}`].join("\r\n") + "\r\n\r\n";
}, 60_000);

/**
 * Every cache of `gw` warm (the lane live, both users' credentials and leases, the crowd's URL): with the
 * lane on it then serves each request of the test itself. The crowd's URL was reached once after.
 */
async function warmed(gw: string, lane: string, crowdUrl: string, otherUrl: string): Promise<void> {
  if (lane === "true") await laneAnswer(gw, otherGet(`/api/portfolio${otherUrl}`));
  else await sent(gw, otherGet(`/api/portfolio${otherUrl}`));
  const warm = sent(gw, get(`/api/portfolio${crowdUrl}`));
  await expect.poll(() => reached(crowdUrl)).toBe(1);
  rig.releaseHeld();
  // (Answered, or cut by a short PROXY_TIMEOUT_MS on a loaded machine: the caches are warm either way.)
  expect([200, 504]).toContain((await warm).status);
}

/** `n` GETs of `request`, each on a connection of its own: the connections (to close) and their answers (undefined: none came). */
async function crowdOf(gw: string, request: string, n: number) {
  const clients = await Promise.all(Array.from({ length: n }, () => KeepAliveClient.open(gw)));
  const answers = clients.map((c) => (c.send(request), c.next(120_000).catch(() => undefined)));
  return { clients, answers };
}

/** A 429 of each run, by GATEWAY_FAST_LANE: the lane's and the Fastify path's compared at the end. */
const refusals: Record<string, KeptAnswer> = {};

describe("one user's crowd of slow GETs takes at most its share of the gateway's connections to a service", () => {
  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: past its share the crowd is 429 TOO_MANY_IN_FLIGHT, nothing sent; another user's GET is answered; the share is free again once the crowd is answered`, async () => {
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, ...TIMEOUTS });
      const tag = randomBytes(3).toString("hex");
      const crowdUrl = `/held?crowd=${tag}`;
      const crowdGet = get(`/api/portfolio${crowdUrl}`);
      const otherUrl = `/echo?other=${tag}`;
      await warmed(gw, lane, crowdUrl, otherUrl);
      const servedBefore = await served(gw);

      const answers: KeptAnswer[] = [];
      const crowd = Array.from({ length: CROWD }, () => sent(gw, crowdGet).then((a) => (answers.push(a), a)));
      // The crowd's share sent, the rest refused at once.
      await expect.poll(() => [reached(crowdUrl) - 1, answers.length], { timeout: 60_000, interval: 100 }).toEqual([HELD, CROWD - HELD]);
      const refused = answers.slice();
      for (const a of refused) {
        expect.soft([a.status, JSON.parse(a.body).error?.code, a.headers["retry-after"]], a.body).toEqual([429, "TOO_MANY_IN_FLIGHT", "1"]);
        expect.soft(JSON.parse(a.body).error?.message).toMatch(/nothing was sent/);
      }
      refusals[lane] = refused[0];

      // Another user's GET to the same service meanwhile: answered (the connections kept for others).
      const other = await Promise.race([sent(gw, otherGet(`/api/portfolio${otherUrl}`)), new Promise<"none">((r) => setTimeout(r, 20_000, "none"))]);
      expect(other === "none" ? "no answer within 20 s" : [other.status, JSON.parse(other.body).url]).toEqual([200, otherUrl]);
      // None of the refused reached the upstream (nor any of the crowd twice).
      expect(reached(crowdUrl) - 1).toBe(HELD);
      // With the lane on, every one of them was the lane's (its pool's share, not the Fastify path's).
      if (lane === "true") expect((await served(gw)) - servedBefore).toBe(CROWD + 1);

      rig.releaseHeld();
      const crowdAnswers = await Promise.all(crowd);
      expect(crowdAnswers.filter((a) => a.status === 200 && a.body === "held")).toHaveLength(HELD);

      // Its share given back: more than a quarter again (33) all sent, none refused.
      const again = Array.from({ length: 33 }, () => sent(gw, crowdGet));
      await expect.poll(() => reached(crowdUrl) - 1, { timeout: 60_000, interval: 100 }).toBe(HELD + 33);
      rig.releaseHeld();
      expect((await Promise.all(again)).map((a) => a.status)).toEqual(Array(33).fill(200));
    }, 180_000);
  }

  it("the lane's 429 is the Fastify path's, header for header", () => {
    expect(refusals.true && refusals.false).toBeDefined();
    const body = (a: KeptAnswer) => ({ ...JSON.parse(a.body).error, requestId: "<id>" });
    expect(shape(refusals.true)).toEqual(shape(refusals.false));
    expect(body(refusals.true)).toEqual(body(refusals.false));
  });

  // A request's place comes back however it ends: a client gone before its answer closes the upstream's
  // connection, on both paths (./fast-lane/exchange.ts clientGone; ./upstreams.ts `answering`). Until session 59
  // the Fastify path kept such a request, its connection and its place until the upstream answered or
  // PROXY_TIMEOUT_MS cut it.
  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: the crowd's clients gone before their answers give their places back`, async () => {
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, ...TIMEOUTS });
      const tag = randomBytes(3).toString("hex");
      const crowdUrl = `/held?gone=${tag}`;
      const crowdGet = get(`/api/portfolio${crowdUrl}`);
      await warmed(gw, lane, crowdUrl, `/echo?gone=${tag}`);
      const crowd = await crowdOf(gw, crowdGet, HELD);
      await expect.poll(() => reached(crowdUrl) - 1, { timeout: 60_000, interval: 100 }).toBe(HELD);
      expect((await sent(gw, crowdGet)).status).toBe(429);
      for (const c of crowd.clients) c.close();
      expect(await Promise.all(crowd.answers)).toEqual(Array(HELD).fill(undefined));
      // Once the gateway has seen the closes: a GET of the crowd's is sent again (it was reached, no answer).
      await expect
        .poll(
          async () => {
            const before = reached(crowdUrl);
            const a = await sent(gw, crowdGet, 3_000).catch(() => undefined);
            return a === undefined && reached(crowdUrl) > before;
          },
          { timeout: 60_000, interval: 200 },
        )
        .toBe(true);
      // Every place back (the probes' own given back as their clients left): all but one of a whole share sent.
      const start = reached(crowdUrl);
      const again = await crowdOf(gw, crowdGet, HELD - 1);
      await expect.poll(() => reached(crowdUrl) - start, { timeout: 60_000, interval: 100 }).toBe(HELD - 1);
      rig.releaseHeld();
      expect((await Promise.all(again.answers)).map((a) => a?.status)).toEqual(Array(HELD - 1).fill(200));
    }, 180_000);
  }

  // Session 59: one count per client for both paths (./index.ts gives both one UpstreamShares). Until then each
  // path counted its own: a user holding its whole share of the lane's connections sent 96 more through Fastify's.
  it("GATEWAY_FAST_LANE=true: a user holding its share in GETs the lane serves is refused a POST (the Fastify path's) too; another user's POST is answered", async () => {
    const gw = await rig.gateway({ GATEWAY_FAST_LANE: "true", ...TIMEOUTS });
    const tag = randomBytes(3).toString("hex");
    const crowdUrl = `/held?both=${tag}`;
    await warmed(gw, "true", crowdUrl, `/echo?both=${tag}`);
    const servedBefore = await served(gw);
    const crowd = await crowdOf(gw, get(`/api/portfolio${crowdUrl}`), HELD);
    await expect.poll(() => reached(crowdUrl) - 1, { timeout: 60_000, interval: 100 }).toBe(HELD);
    expect((await served(gw)) - servedBefore).toBe(HELD); // (every one of them the lane's)
    const postUrl = `/held?both-post=${tag}`;
    const post = (auth: string) => [`POST /api/portfolio${postUrl} HTTP/1.1`, "Host: gw", auth, "Content-Type: application/json", "Content-Length: 2"].join("\r\n") + "\r\n\r\n{}";
    const refused = await sent(gw, post(`Authorization: Bearer ${rig.token}`), 20_000);
    expect([refused.status, JSON.parse(refused.body).error?.code]).toEqual([429, "TOO_MANY_IN_FLIGHT"]);
    expect(reached(postUrl)).toBe(0);
    // Another user's POST: within its share, sent (and held like the crowd's).
    const otherAuth = otherGet("/").split("\r\n").find((l) => l.startsWith("Authorization:"))!;
    const other = sent(gw, post(otherAuth));
    await expect.poll(() => reached(postUrl), { timeout: 20_000, interval: 100 }).toBe(1);
    rig.releaseHeld();
    expect((await other).status).toBe(200);
    expect((await Promise.all(crowd.answers)).map((a) => a?.status)).toEqual(Array(HELD).fill(200));
    crowd.clients.forEach((c) => c.close());
  }, 180_000);

  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: the crowd's requests that timed out (504) give their places back`, async () => {
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, PROXY_TIMEOUT_MS: "3000", REQUEST_TIMEOUT_MS: "60000" });
      const tag = randomBytes(3).toString("hex");
      const crowdUrl = `/held?timeout=${tag}`;
      const crowdGet = get(`/api/portfolio${crowdUrl}`);
      await warmed(gw, lane, crowdUrl, `/echo?timeout=${tag}`);
      const crowd = await crowdOf(gw, crowdGet, HELD);
      const codes = (await Promise.all(crowd.answers)).map((a) => [a?.status, a && JSON.parse(a.body).error?.code]);
      expect(codes).toEqual(Array(HELD).fill([504, "UPSTREAM_TIMEOUT"]));
      crowd.clients.forEach((c) => c.close());
      const start = reached(crowdUrl);
      const again = await crowdOf(gw, crowdGet, HELD);
      await expect.poll(() => reached(crowdUrl) - start, { timeout: 60_000, interval: 100 }).toBe(HELD);
      rig.releaseHeld();
      expect((await Promise.all(again.answers)).map((a) => a?.status)).toEqual(Array(HELD).fill(200));
    }, 180_000);
  }
});

describe("a streamed answer (past the 1 MiB the gateway buffers) holds its connection, and its place in the share, until it ends", () => {
  // Until session 58 both paths gave a place back at the answer's head: one user's downloads stalled
  // mid-answer (an upstream slow to send, or a client slow to read) held every connection to a service.
  /** GET /stalled: the first answered whole, then each a head and a part past BUFFER_LIMIT_BYTES, the rest never sent; /whole: twice that, all sent. */
  let stalled = { asked: 0, closed: 0 };
  let silent = { asked: 0, closed: 0 };
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  const part = Buffer.alloc(BUFFER_LIMIT_BYTES + 1, 120);
  beforeAll(async () => {
    up = await rawUpstream({
      stalled: (s) => {
        if (stalled.asked++ === 0) return void s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nwhole");
        s.once("close", () => stalled.closed++);
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${2 * part.length}\r\n\r\n`);
        s.write(part);
      },
      // Never answered: counts its requests and their connections' closes.
      silent: (s) => {
        silent.asked++;
        s.once("close", () => silent.closed++);
      },
      whole: (s) => s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${2 * part.length}\r\n\r\n`), part, part])),
    });
  });
  afterAll(() => up?.server.close());

  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: one user's stalled downloads past its share are 429, another user's GET is answered; the places come back as the downloads' clients leave`, async () => {
      stalled = { asked: 0, closed: 0 };
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, ...TIMEOUTS, SERVICE_PORTFOLIO_MANAGER_URL: up.url });
      const tag = randomBytes(3).toString("hex");
      const crowdGet = get(`/api/portfolio/stalled?${tag}`);
      const other = otherGet(`/api/portfolio/other-${tag}`);
      if (lane === "true") await Promise.all([laneAnswer(gw, other), laneAnswer(gw, get(`/api/portfolio/crowd-${tag}`))]);
      expect((await sent(gw, crowdGet)).body).toBe("whole"); // (its URL's route warm)
      const servedBefore = await served(gw);

      const heads: Array<{ status: number; socket: Socket }> = [];
      for (let i = 0; i < CROWD; i++) void headOf(gw, crowdGet).then((h) => heads.push(h));
      const statuses = () => [heads.filter((h) => h.status === 200).length, heads.filter((h) => h.status === 429).length];
      await expect.poll(statuses, { timeout: 60_000, interval: 100 }).toEqual([HELD, CROWD - HELD]);
      expect(stalled.asked - 1).toBe(HELD);
      const answer = await Promise.race([sent(gw, other), new Promise<"none">((r) => setTimeout(r, 20_000, "none"))]);
      expect(answer === "none" ? "no answer within 20 s" : [answer.status, answer.body]).toEqual([200, `other-${tag}`]);
      if (lane === "true") expect((await served(gw)) - servedBefore).toBe(CROWD + 1);

      // The downloads' clients leave: their upstream connections are closed, and a whole share is the crowd's again.
      for (const h of heads) h.socket.destroy();
      await expect.poll(() => stalled.closed, { timeout: 60_000, interval: 100 }).toBe(HELD);
      // Downloads read to their end give their places back too: 40 (past a quarter), then the whole share again.
      const whole = await Promise.all(Array.from({ length: 40 }, () => readWhole(gw, get(`/api/portfolio/whole?${tag}`))));
      expect(whole).toEqual(Array(40).fill([200, 2 * part.length]));
      const again: Array<{ status: number; socket: Socket }> = [];
      for (let i = 0; i < HELD; i++) void headOf(gw, crowdGet).then((h) => again.push(h));
      await expect.poll(() => again.map((h) => h.status).filter((s) => s === 200).length, { timeout: 60_000, interval: 100 }).toBe(HELD);
      expect(again.filter((h) => h.status !== 200)).toEqual([]);
      for (const h of again) h.socket.destroy();
      await expect.poll(() => stalled.closed, { timeout: 60_000, interval: 100 }).toBe(2 * HELD);
    }, 180_000);
  }

  // Found the same session: the lane's stream had no bound on an upstream falling silent mid-answer (undici's
  // bodyTimeout cuts it on the Fastify path): its connection, and now its client's place, were held for good.
  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: a download whose upstream falls silent mid-answer is cut after PROXY_TIMEOUT_MS, its upstream connection closed`, async () => {
      stalled = { asked: 0, closed: 0 };
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, PROXY_TIMEOUT_MS: "3000", REQUEST_TIMEOUT_MS: "60000", SERVICE_PORTFOLIO_MANAGER_URL: up.url });
      const tag = randomBytes(3).toString("hex");
      const stalledGet = get(`/api/portfolio/stalled?cut-${tag}`);
      if (lane === "true") await laneAnswer(gw, get(`/api/portfolio/cut-${tag}`));
      expect((await sent(gw, stalledGet)).body).toBe("whole"); // (its URL's route warm)
      const servedBefore = await served(gw);
      const downloads = await Promise.all([headOf(gw, stalledGet), headOf(gw, stalledGet)]);
      expect(downloads.map((d) => d.status)).toEqual([200, 200]);
      if (lane === "true") expect((await served(gw)) - servedBefore).toBe(2);
      // Each cut short of its length: the client's connection closed, and the upstream's.
      await expect.poll(() => downloads.map((d) => d.socket.destroyed), { timeout: 60_000, interval: 100 }).toEqual([true, true]);
      await expect.poll(() => stalled.closed, { timeout: 60_000, interval: 100 }).toBe(2);
    }, 180_000);
  }

  // Session 59: the Fastify path ends the upstream request when its client goes away (./upstreams.ts `answering`:
  // undici's request aborted); until then it waited for the upstream's answer or PROXY_TIMEOUT_MS (60 s here).
  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: a client gone while its upstream has not answered closes the upstream's connection at once`, async () => {
      silent = { asked: 0, closed: 0 };
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, ...TIMEOUTS, SERVICE_PORTFOLIO_MANAGER_URL: up.url });
      const tag = randomBytes(3).toString("hex");
      expect((await sent(gw, get(`/api/portfolio/warm-${tag}`))).status).toBe(200);
      const { hostname, port } = new URL(gw);
      const client = connect(Number(port), hostname, () => client.write(get(`/api/portfolio/silent?${tag}`)));
      client.on("error", () => undefined);
      await expect.poll(() => silent.asked, { timeout: 20_000, interval: 50 }).toBe(1);
      const goneAt = Date.now();
      client.destroy();
      await expect.poll(() => silent.closed, { timeout: 20_000, interval: 50 }).toBe(1);
      expect(Date.now() - goneAt).toBeLessThan(5_000);
    }, 60_000);
  }
});

/** `request` on a socket of its own that reads its answer's head, then nothing more (paused for good): the status, and the socket (to destroy). */
function stalledDownload(gw: string, request: string): Promise<{ status: number; socket: Socket }> {
  const { hostname, port } = new URL(gw);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let read = "";
    const onData = (d: Buffer) => {
      read += d.toString("latin1", 0, Math.min(d.length, 4096));
      const end = read.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.pause();
      socket.removeListener("data", onData);
      resolve({ status: Number(read.split(" ")[1]), socket });
    };
    socket.on("data", onData);
    socket.on("error", () => undefined);
    socket.on("close", () => reject(new Error(`closed before an answer's head: ${read.slice(0, 200)}`)));
  });
}

describe("a client that takes none of a streamed answer for CLIENT_SEND_TIMEOUT_MS is cut, its place in the share given back", () => {
  // Session 59: a client that stopped reading (its socket full: the kernel's buffers, then the gateway's) held its
  // upstream connection and its place with no bound. The stand-in's /endless writes until its connection closes.
  for (const lane of ["true", "false"] as const) {
    it(`GATEWAY_FAST_LANE=${lane}: a user's stalled downloads and held GETs fill its share (429); the downloads cut after CLIENT_SEND_TIMEOUT_MS, their upstream connections closed, their places are taken again`, async () => {
      const logs: Array<Record<string, unknown>> = [];
      const gw = await rig.gateway({ GATEWAY_FAST_LANE: lane, ...TIMEOUTS, CLIENT_SEND_TIMEOUT_MS: "2000" }, logs);
      const tag = randomBytes(3).toString("hex");
      const heldUrl = `/held?stall=${tag}`;
      const heldGet = get(`/api/portfolio${heldUrl}`);
      await warmed(gw, lane, heldUrl, `/echo?stall=${tag}`);
      const STALLED = 6;
      const held = await crowdOf(gw, heldGet, HELD - STALLED);
      await expect.poll(() => reached(heldUrl) - 1, { timeout: 60_000, interval: 100 }).toBe(HELD - STALLED);
      const endlessUrl = `/endless?stall=${tag}`;
      const downloads = await Promise.all(Array.from({ length: STALLED }, () => stalledDownload(gw, get(`/api/portfolio${endlessUrl}`))));
      expect(downloads.map((d) => d.status)).toEqual(Array(STALLED).fill(200));
      // The share full (96 of this user's under way): refused, nothing sent.
      expect((await sent(gw, heldGet, 20_000)).status).toBe(429);
      // Each download cut once its socket stayed full for 2 s: its upstream connection closed.
      await expect.poll(() => rig.upstreamClosed.filter((u) => u === endlessUrl).length, { timeout: 60_000, interval: 100 }).toBe(STALLED);
      // Their places free again: as many held GETs sent, none refused.
      const again = await crowdOf(gw, heldGet, STALLED);
      await expect.poll(() => reached(heldUrl) - 1, { timeout: 60_000, interval: 100 }).toBe(HELD);
      rig.releaseHeld();
      expect((await Promise.all([...held.answers, ...again.answers])).map((a) => a?.status)).toEqual(Array(HELD).fill(200));
      [...held.clients, ...again.clients].forEach((c) => c.close());
      downloads.forEach((d) => d.socket.destroy());
      // Said in the log, at warn, the same line on both paths.
      const said = logs.filter((l) => l.msg === "client took none of the streamed answer in time: connection closed");
      expect(said.map((l) => [l.level, l.upstream, l.sendTimeoutMs])).toEqual(Array(STALLED).fill([40, "portfolio-manager", 2000]));
    }, 180_000);
  }
});
