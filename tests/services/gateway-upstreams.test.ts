/**
 * The gateway's upstream client (services/src/services/api-gateway/upstreams.ts) against real
 * Node HTTP servers: hop-by-hop and dropped headers are not forwarded, a small answer comes back
 * as one Buffer and a large one as a stream with every byte, a request body is forwarded byte for
 * byte, a GET on a reset connection is sent once more (a POST is not), refused and silent upstreams
 * are UpstreamErrors (timed out or not).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerHeaders, forwardedHeaders } from "../../services/src/services/api-gateway/upstream-headers";
import { BUFFER_LIMIT_BYTES, UpstreamError, Upstreams } from "../../services/src/services/api-gateway/upstreams";

const big = randomBytes(3 * BUFFER_LIMIT_BYTES);
let server: Server;
let base: string;
let resets = 0;
const upstreams = new Upstreams({ connections: 4, keepAliveTimeoutMs: 5_000 });

function handle(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const url = req.url ?? "/";
    if (url.startsWith("/big")) {
      res.setHeader("content-type", "application/octet-stream");
      res.end(big);
    } else if (url.startsWith("/reset-once") && resets++ === 0) {
      req.socket.destroy();
    } else if (url.startsWith("/silent")) {
      // never answers
    } else {
      res.setHeader("content-type", "application/json");
      res.setHeader("set-cookie", ["a=1", "b=2"]);
      res.end(JSON.stringify({ method: req.method, url, headers: req.headers, body: Buffer.concat(chunks).toString("base64") }));
    }
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await upstreams.close();
  server.closeAllConnections();
  server.close();
});

const json = (body: Buffer | Readable) => JSON.parse((body as Buffer).toString("utf8"));

describe("forwardedHeaders / answerHeaders", () => {
  it("drop hop-by-hop headers, those the Connection header names, and the given ones", () => {
    const out = forwardedHeaders(
      { connection: "keep-alive, X-Secret", "x-secret": "s", "keep-alive": "timeout=5", "transfer-encoding": "chunked", host: "gw", "content-length": "3", authorization: "Bearer t", accept: "application/json", "x-user-id": "spoofed" },
      new Set(["authorization", "x-user-id"]),
    );
    expect(out).toEqual({ accept: "application/json" });
    expect(answerHeaders({ "content-length": "10", connection: "close", "content-type": "text/plain" }, false)).toEqual({ "content-type": "text/plain" });
    expect(answerHeaders({ "content-length": "10", "transfer-encoding": "chunked" }, true)).toEqual({ "content-length": "10" });
    // The gateway's own security headers are not taken from an upstream (no second copy, no weaker value).
    expect(answerHeaders({ "x-frame-options": "ALLOWALL", "strict-transport-security": "max-age=0", "content-type": "text/plain" }, false)).toEqual({ "content-type": "text/plain" });
  });
});

describe("Upstreams.send", () => {
  it("forwards method, path, query, headers and the body byte for byte; a small answer is one Buffer", async () => {
    const body = Buffer.from([0, 1, 2, 255, 0x7b]);
    const a = await upstreams.send(base, { method: "POST", path: "/echo?q=a%20b", headers: { "content-type": "application/octet-stream", "x-request-id": "r1" }, body, timeoutMs: 5_000 });
    expect(a.statusCode).toBe(200);
    expect(Buffer.isBuffer(a.body)).toBe(true);
    const echo = json(a.body);
    expect(echo).toMatchObject({ method: "POST", url: "/echo?q=a%20b", body: body.toString("base64") });
    expect(echo.headers["x-request-id"]).toBe("r1");
    expect(a.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
  });

  it("streams an answer larger than the buffer limit, every byte", async () => {
    const a = await upstreams.send(base, { method: "GET", path: "/big", headers: {}, timeoutMs: 10_000 });
    expect(a.body).toBeInstanceOf(Readable);
    const chunks: Buffer[] = [];
    for await (const c of a.body as Readable) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
  });

  it("sends a GET once more when the connection is reset before any answer", async () => {
    const a = await upstreams.send(base, { method: "GET", path: "/reset-once", headers: {}, timeoutMs: 5_000 });
    expect(a.statusCode).toBe(200);
    expect(resets).toBe(2);
  });

  it("does not send a POST twice: a reset is an UpstreamError", async () => {
    resets = 0;
    const e = await upstreams.send(base, { method: "POST", path: "/reset-once", headers: {}, body: Buffer.from("{}"), timeoutMs: 5_000 }).catch((x) => x);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.timedOut).toBe(false);
    expect(e.failure).toBe("closed");
    expect(resets).toBe(1);
  });

  it("a silent upstream times out, a refused one is unreachable", async () => {
    const t = await upstreams.send(base, { method: "GET", path: "/silent", headers: {}, timeoutMs: 200 }).catch((x) => x);
    expect(t).toBeInstanceOf(UpstreamError);
    expect(t.timedOut).toBe(true);
    const r = await upstreams.send("http://127.0.0.1:1", { method: "GET", path: "/", headers: {}, timeoutMs: 2_000 }).catch((x) => x);
    expect(r).toBeInstanceOf(UpstreamError);
    expect(r.timedOut).toBe(false);
    // Refused (sent once more, refused again); never answered from there, so no restart: an outage (api-gateway/proxy.ts).
    expect(r).toMatchObject({ failure: "refused", restarting: false });
  });
});
