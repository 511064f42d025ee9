/**
 * The gateway's connections to a service, both paths' together (api-gateway upstream-budget.ts): the
 * Fastify path's (upstreams.ts over service-pool.ts) and the fast lane's (fast-lane/upstream-pool.ts), as
 * ../../services/src/services/api-gateway/index.ts joins them (the lane's pool given the Fastify path's
 * `answers`, which carries the budgets), against a real loopback upstream that counts the connections it
 * has open. Until session 60 each pool held up to 128 of its own: 256 to a service sized for 128.
 * - More slow requests on both paths than the budget: the upstream never has more connections than the
 *   budget, the excess waits in its pool's queue (nothing refused) and is answered as connections come free.
 * - One path's idle kept-alive connections do not starve the other: one is closed for it at once.
 * - The gateway closing (closeQueues) or a pool closed: the requests waiting for a connection, either path's, are
 *   refused 503 SHUTTING_DOWN at once, none sent (until session 61 they waited, or failed with a plain Error).
 * - A Fastify-path request whose client went away while it waited for a connection leaves the queue at once:
 *   a live request queued after a crowd of abandoned ones gets the next connection that comes free (until
 *   session 60 the abandoned ones stayed in undici's queue, each aborted only on reaching a connection, which
 *   closed that connection: the live request waited behind them all).
 */
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../../services/src/kit";
import { UpstreamPool } from "../../services/src/services/api-gateway/fast-lane/upstream-pool";
import type { Exchange } from "../../services/src/services/api-gateway/fast-lane/upstream-exchange";
import { ClientGoneError, Upstreams, type ClosingResponse } from "../../services/src/services/api-gateway/upstreams";

let upstream: Server;
let base: string;
/** The upstream's connections whose client has not closed them (a socket leaves at its end or close). */
const open = new Set<Socket>();
/** Connections accepted in all. */
let accepted = 0;
/** The most connections the upstream had open as any request arrived, or at any accept. */
let peak = 0;
/** URLs received, in order. */
const seen: string[] = [];
/** Answers of the requests of /held... waiting (each its URL's answer). */
const held: Array<() => void> = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const url = req.url ?? "/";
    seen.push(url);
    peak = Math.max(peak, open.size);
    if (url.startsWith("/held")) return void held.push(() => res.end(url));
    res.end(url);
  });
  upstream.keepAliveTimeout = 60_000;
  upstream.on("connection", (s: Socket) => {
    accepted++;
    open.add(s);
    peak = Math.max(peak, open.size);
    s.once("end", () => open.delete(s));
    s.once("close", () => open.delete(s));
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

const log = { error: () => undefined } as never;
/** The pools of one test, closed after it (their connections too, so the next test's counts start at 0). */
let closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await expect.poll(() => open.size, { timeout: 5_000 }).toBe(0);
  held.splice(0);
  seen.length = 0;
  peak = 0;
  accepted = 0;
});

/** Both paths to the upstream, as index.ts makes them: one budget of `budget` connections. */
function gatewayPools(budget: number) {
  const fastify = new Upstreams({ connections: budget, keepAliveTimeoutMs: 30_000 });
  const lane = new UpstreamPool({ connections: budget, keepAliveTimeoutMs: 30_000, answers: fastify.answers, log });
  closers.push(() => lane.close(), () => fastify.close());
  return { fastify, lane };
}

/** A GET of `path` on the lane's pool: its answer's status and body. */
function laneGet(lane: UpstreamPool, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const x: Exchange = {
      head: Buffer.from(`GET ${path} HTTP/1.1\r\nhost: upstream\r\n\r\n`),
      head_only: false,
      bodyTimeoutMs: 30_000,
      onAnswer: (a) => resolve({ status: a.statusCode, body: a.body.toString() }),
      onStream: () => reject(new Error("no streamed answer expected")),
      onFailure: (err) => reject(err),
      broken: (err) => reject(err as Error),
      notSent: (e) => reject(e),
    };
    lane.send(new URL(base), x);
  });
}

/** A request of the Fastify path: its status and body. */
async function fastifySend(fastify: Upstreams, method: string, path: string, answering?: ClosingResponse): Promise<{ status: number; body: string }> {
  const a = await fastify.send(base, { method, path, headers: {}, body: method === "POST" ? Buffer.from("{}") : undefined, timeoutMs: 30_000, answering });
  return { status: a.statusCode, body: String(a.body) };
}

/** Answers every held request, again and again, until `done` settles (the queued ones reach the upstream as connections free). */
async function releaseUntil<T>(done: Promise<T>): Promise<T> {
  let over = false;
  void done.finally(() => (over = true)).catch(() => undefined);
  while (!over) {
    for (const answer of held.splice(0)) answer();
    await new Promise((r) => setTimeout(r, 20));
  }
  return done;
}

/** A node:http response's closing, stood in: `close()` is its client going away. */
class Response extends EventEmitter implements ClosingResponse {
  closed = false;
  close(): void {
    this.closed = true;
    this.emit("close");
  }
}

describe("one connection budget per service for the gateway's two paths", () => {
  it("more slow requests on both paths than the budget: the upstream never has more connections open; the rest wait and are answered in turn", async () => {
    const BUDGET = 8;
    const { fastify, lane } = gatewayPools(BUDGET);
    const lanes: Array<Promise<{ status: number; body: string }>> = [];
    const writes: Array<Promise<{ status: number; body: string }>> = [];
    for (let i = 0; i < 12; i++) {
      lanes.push(laneGet(lane, `/held?lane=${i}`));
      writes.push(fastifySend(fastify, "POST", `/held?post=${i}`));
    }
    // The budget's worth reach the upstream; the others wait in their pools' queues (not refused, not sent).
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    await new Promise((r) => setTimeout(r, 300));
    expect([held.length, seen.length, open.size]).toEqual([BUDGET, BUDGET, BUDGET]);
    // Both paths got connections, the first asked of each (requests asked in turn, one of each path).
    expect(seen.filter((u) => u.includes("lane=")).length).toBe(BUDGET / 2);

    const all = await releaseUntil(Promise.all([...lanes, ...writes]));
    expect(all.map((a) => a.status)).toEqual(Array(24).fill(200));
    expect(all.map((a) => a.body).sort()).toEqual([...Array.from({ length: 12 }, (_, i) => `/held?lane=${i}`), ...Array.from({ length: 12 }, (_, i) => `/held?post=${i}`)].sort());
    expect(seen).toHaveLength(24);
    expect(peak).toBeLessThanOrEqual(BUDGET);
  }, 60_000);

  it("the lane's idle connections holding the whole budget: a Fastify-path request gets one closed for it at once", async () => {
    const BUDGET = 4;
    const { fastify, lane } = gatewayPools(BUDGET);
    const burst = Array.from({ length: BUDGET }, (_, i) => laneGet(lane, `/held?burst=${i}`));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    await releaseUntil(Promise.all(burst));
    expect(open.size).toBe(BUDGET); // kept alive, idle
    const started = Date.now();
    expect(await fastifySend(fastify, "POST", "/write")).toEqual({ status: 200, body: "/write" });
    // At once: not after the lane's 30 s keep-alive.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(peak).toBeLessThanOrEqual(BUDGET);
    expect(accepted).toBe(BUDGET + 1);
  }, 60_000);

  it("the Fastify path's idle connections holding the whole budget: a lane GET gets one closed for it at once", async () => {
    const BUDGET = 4;
    const { fastify, lane } = gatewayPools(BUDGET);
    const burst = Array.from({ length: BUDGET }, (_, i) => fastifySend(fastify, "GET", `/held?burst=${i}`));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    await releaseUntil(Promise.all(burst));
    expect(open.size).toBe(BUDGET);
    const started = Date.now();
    expect(await laneGet(lane, "/read")).toEqual({ status: 200, body: "/read" });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(peak).toBeLessThanOrEqual(BUDGET);
    expect(accepted).toBe(BUDGET + 1);
  }, 60_000);
});

describe("a Fastify-path request whose client went away while it waited for a connection", () => {
  it("leaves the queue at once: a live request queued behind 30 abandoned ones goes out on the first connection that comes free", async () => {
    const BUDGET = 2;
    const { fastify } = gatewayPools(BUDGET);
    const busy = Array.from({ length: BUDGET }, (_, i) => fastifySend(fastify, "GET", `/held?busy=${i}`));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    // Thirty requests queued behind the full pool, their clients gone: each rejected at once (ClientGoneError).
    const responses = Array.from({ length: 30 }, () => new Response());
    const dead = responses.map((r, i) => fastifySend(fastify, "POST", `/dead?${i}`, r).then(() => "answered", (e: unknown) => (e instanceof ClientGoneError ? "gone" : String(e))));
    await new Promise((r) => setTimeout(r, 50));
    for (const r of responses) r.close();
    expect(await Promise.all(dead)).toEqual(Array(30).fill("gone"));
    const live = fastifySend(fastify, "GET", "/live", new Response());
    await new Promise((r) => setTimeout(r, 50));
    // One connection comes free: the live request is the next the upstream sees, on that same connection
    // (none of the abandoned ones was given it, aborted on it and its connection closed).
    held.shift()!();
    expect(await live).toEqual({ status: 200, body: "/live" });
    expect(seen.slice(BUDGET)).toEqual(["/live"]);
    expect(accepted).toBe(BUDGET);
    await releaseUntil(Promise.all(busy));
  }, 60_000);
});

describe("a lane request whose client went away while it waited for a connection", () => {
  it("leaves the queue and its place in the budget's line at once: a connection freed by the Fastify path is the Fastify path's next request's, no connection opened for nobody", async () => {
    const BUDGET = 2;
    const { fastify, lane } = gatewayPools(BUDGET);
    const busy = Array.from({ length: BUDGET }, (_, i) => fastifySend(fastify, "GET", `/held?busy=${i}`));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    // Thirty lane GETs queued behind the full budget, then given up (their clients gone: LaneExchange.clientGone abandons).
    const outcomes: string[] = [];
    const dead = Array.from({ length: 30 }, (_, i) =>
      lane.send(new URL(base), {
        head: Buffer.from(`GET /dead?${i} HTTP/1.1\r\nhost: upstream\r\n\r\n`),
        head_only: false,
        bodyTimeoutMs: 30_000,
        onAnswer: () => outcomes.push("answered"),
        onStream: () => outcomes.push("streamed"),
        onFailure: () => outcomes.push("failed"),
        broken: () => outcomes.push("broken"),
        notSent: () => outcomes.push("not sent"),
      }),
    );
    for (const sent of dead) sent.abandon();
    // A Fastify-path write queued after them: the next connection to come free is its.
    const write = fastifySend(fastify, "POST", "/write");
    await new Promise((r) => setTimeout(r, 50));
    held.shift()!();
    expect(await write).toEqual({ status: 200, body: "/write" });
    // On the connection that came free (before: closed for the abandoned lane requests, a new one opened for
    // the first of them, passed on to the next, and the write got yet another).
    expect(accepted).toBe(BUDGET);
    expect(seen.slice(BUDGET)).toEqual(["/write"]);
    await releaseUntil(Promise.all(busy));
    expect(outcomes).toEqual([]);
    expect(accepted).toBe(BUDGET);
  }, 60_000);
});

/** How a request ended: "answered", or its refusal's status, code and Retry-After (an HttpError), or its error's message. */
const outcomeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "answered",
    (e: unknown) => (e instanceof HttpError ? `${e.statusCode} ${e.code} retry-after ${e.headers?.["retry-after"]}` : String(e)),
  );
const REFUSED = "503 SHUTTING_DOWN retry-after 1";

describe("the gateway closing with requests waiting for a connection (upstream-budget.ts closeQueues, budgeted-pool.ts)", () => {
  it("every request waiting on either path is refused 503 SHUTTING_DOWN, none sent; one asked after with no slot free is refused at once; the requests on connections are served, their connections kept", async () => {
    const BUDGET = 2;
    const { fastify, lane } = gatewayPools(BUDGET);
    const busy = [fastifySend(fastify, "GET", "/held?busy=0"), laneGet(lane, "/held?busy=1")];
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    const waiting = [outcomeOf(fastifySend(fastify, "POST", "/queued?0")), outcomeOf(laneGet(lane, "/queued?1")), outcomeOf(fastifySend(fastify, "GET", "/queued?2"))];
    await new Promise((r) => setTimeout(r, 50));
    fastify.answers.budgets.closeQueues();
    expect(await Promise.all(waiting)).toEqual([REFUSED, REFUSED, REFUSED]);
    // Asked once the queues are closed, no slot free: refused at once, not queued.
    expect(await Promise.all([outcomeOf(laneGet(lane, "/late?0")), outcomeOf(fastifySend(fastify, "POST", "/late?1"))])).toEqual([REFUSED, REFUSED]);
    // The requests on connections are answered; their connections kept (nothing waits for them), and the next request takes one.
    expect((await releaseUntil(Promise.all(busy))).map((a) => a.status)).toEqual([200, 200]);
    expect(await fastifySend(fastify, "GET", "/after")).toEqual({ status: 200, body: "/after" });
    expect(seen.filter((u) => u.startsWith("/queued") || u.startsWith("/late"))).toEqual([]);
    expect(accepted).toBe(BUDGET);
  }, 60_000);

  it("a pool closed with requests queued refuses them the same way (until session 61: a plain Error on the Fastify path, a 500; the lane's dropped unanswered)", async () => {
    const BUDGET = 2;
    const { fastify, lane } = gatewayPools(BUDGET);
    const busy = Array.from({ length: BUDGET }, (_, i) => fastifySend(fastify, "POST", `/held?busy=${i}`));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(BUDGET);
    const waiting = [outcomeOf(fastifySend(fastify, "POST", "/queued?0")), outcomeOf(laneGet(lane, "/queued?1"))];
    await new Promise((r) => setTimeout(r, 50));
    lane.close();
    const closed = fastify.close();
    expect(await Promise.all(waiting)).toEqual([REFUSED, REFUSED]);
    // The requests on the closed pool's connections are served to their end, their connections then closed.
    expect((await releaseUntil(Promise.all(busy))).map((a) => a.status)).toEqual([200, 200]);
    await closed;
    await expect.poll(() => open.size, { timeout: 5_000 }).toBe(0);
    expect(seen.filter((u) => u.startsWith("/queued"))).toEqual([]);
  }, 60_000);
});
