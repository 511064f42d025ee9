/**
 * The api-gateway (in process, real Redis) in front of an upstream replica that is closing: a stand-in
 * in user-management's place (route `users`, `/login` anonymous) answering as the kit's closing
 * answer does (kit closing-answers.ts: 503 SHUTTING_DOWN in the platform's shape, `retry-after: 1`,
 * its connection closed) the first request of each path, and 200 to the next. Before session 53 the
 * gateway forwarded that 503 to every method. Now (api-gateway/upstreams.ts sendPastClosing) a GET or
 * HEAD is sent once more, a moment later, on a new connection, when the request's deadline leaves time
 * for it; a POST, PUT, PATCH or DELETE never is (its 503 forwarded, the upstream asked once).
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { CLOSING_RESEND_MIN_LEFT_MS, CLOSING_RESEND_WAIT_MS } from "../../services/src/services/api-gateway/upstreams";
import { listen } from "../helpers/http-stand-ins";

const srv = useServers("redis");
const REQUEST_TIMEOUT_MS = 3_000;
let upstream: Server;
let gw: Service<any>;
let gwUrl: string;
/** Every request the stand-in received: method, path, and the connection it came on. */
const seen: Array<{ method: string; url: string; connection: number }> = [];
/** Paths answered 503 SHUTTING_DOWN once already (each path's first request is). */
const closedOnce = new Set<string>();
/** How long the stand-in waits before its closing answer, per path (the deadline case). */
const slowClose = new Map<string, number>();

beforeAll(async () => {
  const sockets = new WeakMap<object, number>();
  let connections = 0;
  upstream = createServer((req, res) => {
    req.resume();
    if (!sockets.has(req.socket)) sockets.set(req.socket, ++connections);
    const key = `${req.method} ${req.url}`;
    seen.push({ method: req.method!, url: req.url!, connection: sockets.get(req.socket)! });
    const everyTime = req.url!.includes("always");
    if (everyTime || !closedOnce.has(key)) {
      closedOnce.add(key);
      const body = JSON.stringify({ error: { code: "SHUTTING_DOWN", message: "This service instance is shutting down: the request was not started; retry", requestId: String(req.headers["x-request-id"]) } });
      const answer = () => res.writeHead(503, { "content-type": "application/json; charset=utf-8", "retry-after": "1", connection: "close", "content-length": Buffer.byteLength(body) }).end(req.method === "HEAD" ? undefined : body);
      return void setTimeout(answer, slowClose.get(req.url!) ?? 0);
    }
    const ok = JSON.stringify({ ok: true, method: req.method });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(ok) }).end(req.method === "HEAD" ? undefined : ok);
  });
  const upstreamUrl = await listen(upstream);
  gw = await createService(apiGateway, {
    env: { ...srv.env, JWT_SECRET: "s".repeat(64), LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: upstreamUrl, REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), PROXY_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), RATE_LIMIT_MAX_REQUESTS: "10000" },
    defaultMetrics: false,
  });
  gwUrl = await gw.listen({ port: 0, host: "127.0.0.1" });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  upstream?.closeAllConnections();
  upstream?.close();
});

const to = (path: string) => seen.filter((s) => s.url === path);

describe("the gateway in front of an upstream replica that is closing", { timeout: 120_000 }, () => {
  it("a GET answered 503 SHUTTING_DOWN is sent once more on a new connection and answered 200", async () => {
    const path = "/login?case=get";
    const t0 = performance.now();
    const r = await fetch(`${gwUrl}/api/users${path}`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, method: "GET" });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(CLOSING_RESEND_WAIT_MS - 5);
    const [first, second] = to(path);
    expect(to(path)).toHaveLength(2);
    expect(second.connection).not.toBe(first.connection);
  });

  it("a HEAD the same (its 503 has no body: told by its closed connection and retry-after)", async () => {
    const path = "/login?case=head";
    const r = await fetch(`${gwUrl}/api/users${path}`, { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(to(path).map((s) => s.method)).toEqual(["HEAD", "HEAD"]);
  });

  it("sent once more only once: a second 503 SHUTTING_DOWN is forwarded, with retry-after", async () => {
    const path = "/login?case=always";
    const r = await fetch(`${gwUrl}/api/users${path}`);
    expect(r.status).toBe(503);
    expect((await r.json()).error.code).toBe("SHUTTING_DOWN");
    expect(r.headers.get("retry-after")).toBe("1");
    expect(to(path)).toHaveLength(2);
  });

  it("never a POST, PUT, PATCH or DELETE: the 503 SHUTTING_DOWN forwarded, the upstream asked once", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const path = `/login?case=${method.toLowerCase()}`;
      const r = await fetch(`${gwUrl}/api/users${path}`, { method, headers: { "content-type": "application/json" }, body: "{}" });
      expect(r.status, method).toBe(503);
      expect((await r.json()).error.code, method).toBe("SHUTTING_DOWN");
      expect(to(path), method).toHaveLength(1);
    }
  });

  it("not past the request's deadline: a closing answer that came late is forwarded, not sent again", async () => {
    const path = "/login?case=late";
    // Answered with less than the wait and CLOSING_RESEND_MIN_LEFT_MS left of REQUEST_TIMEOUT_MS (at
    // most, whatever the machine's load: the request reached the stand-in after its deadline began).
    slowClose.set(path, REQUEST_TIMEOUT_MS - CLOSING_RESEND_MIN_LEFT_MS);
    const r = await fetch(`${gwUrl}/api/users${path}`);
    const body = await r.json();
    // The 503 forwarded; on a loaded machine the request's own 504 may come first. Never a second try.
    if (r.status === 503) expect(body.error.code).toBe("SHUTTING_DOWN");
    else expect(r.status).toBe(504);
    expect(to(path)).toHaveLength(1);
  });
});
