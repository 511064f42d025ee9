/**
 * kit client-errors.ts: what Node refuses before routing is answered in the platform's shape naming
 * the part of the request to mend (session 53: a malformed request and the receive timeout's 408
 * named nothing), and CONNECT gets an answer (Node destroyed its connection without one). The codes
 * are llhttp's own, taken from a plain node:http server's clientError for the bytes each case sends;
 * the answers from a kit app (createApp) on loopback, no datastore.
 */
import { createServer } from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, createLogger, type App } from "../../services/src/kit/app";
import { clientErrorAnswer, malformedPart } from "../../services/src/kit/client-errors";

const B = '{"a":1}';
/** [label, bytes, field]: each a request llhttp refuses, and the part its 400 names. */
const MALFORMED: Array<[string, string, string]> = [
  ["Transfer-Encoding twice", `POST / HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n${B}\r\n0\r\n\r\n`, "transfer-encoding"],
  ["Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: g\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"],
  ["Content-Length twice", "POST / HTTP/1.1\r\nHost: g\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "content-length"],
  ["Content-Length not a number", "POST / HTTP/1.1\r\nHost: g\r\nContent-Length: 3x\r\n\r\nabc", "content-length"],
  ["a chunk size that is no hex", "POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "body"],
  ["a negative chunk size", "POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", "body"],
  ["a chunk size past 64 bits", "POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", "body"],
  ["a chunk longer than its size", `POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n${B}\r\n0\r\n\r\n`, "body"],
  ["a bare LF after a chunk size", `POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\n${B}\r\n0\r\n\r\n`, "body"],
  ["CR in a header value", "GET / HTTP/1.1\r\nHost: g\r\nX-A: a\rb\r\n\r\n", "headers"],
  ["NUL in a header value", "GET / HTTP/1.1\r\nHost: g\r\nX-A: a\0b\r\n\r\n", "headers"],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: g\r\nX-A: a\r\n folded\r\n\r\n", "headers"],
  ["a space before the colon", "GET / HTTP/1.1\r\nHost: g\r\nContent-Length : 5\r\n\r\nhello", "headers"],
  ["a lower-case method", "get / HTTP/1.1\r\nHost: g\r\n\r\n", "method"],
  ["a version that is none", "GET / HTTP/1.x\r\nHost: g\r\n\r\n", "version"],
  ["a space in the target", "GET /a b HTTP/1.1\r\nHost: g\r\n\r\n", "version"],
  ["bare LF line ends", "GET / HTTP/1.1\nHost: g\n\n", "version"],
  // Session 56: HTTP/2's connection preface (prior knowledge) and a PRI request that is not one named `headers`.
  ["HTTP/2's connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "version"],
  ["HTTP/2's preface with a frame behind it", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000\u0000\u0000\u0000\u0000", "version"],
  ["PRI as HTTP/1.1", "PRI * HTTP/1.1\r\nHost: g\r\n\r\n", "version"],
];

/** Writes `bytes` to `port` and reads until the server closes (or 5 s). */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const c = net.connect(port, "127.0.0.1", () => c.write(bytes));
    c.on("data", (d) => (got += d.toString("latin1")));
    c.on("error", () => undefined);
    c.on("close", () => resolve(got));
    setTimeout(() => c.destroy(), 5_000).unref();
  });
}
const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));

let app: App;
let port = 0;
let slowRuns = 0;
beforeAll(async () => {
  app = createApp({ log: createLogger("client-errors-test", "silent"), bodyLimit: 1_000, trustProxy: undefined, jsonMaxDepth: 10, receiveTimeoutMs: 1_000 });
  app.post("/", async () => ({ ok: true }));
  // A request still being handled when the next one on its connection arrives.
  app.get("/slow", async () => {
    slowRuns++;
    await new Promise((r) => setTimeout(r, 200));
    return { slow: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await app.close();
});

describe("kit client-errors", () => {
  it("llhttp's code and reason for each malformed request map to the part it names", async () => {
    const plain = createServer((_req, res) => res.end());
    const seen: Array<{ code?: string; reason?: string }> = [];
    plain.on("clientError", (err: NodeJS.ErrnoException & { reason?: string }, socket) => {
      seen.push({ code: err.code, reason: err.reason });
      socket.destroy();
    });
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    const plainPort = (plain.address() as net.AddressInfo).port;
    try {
      for (const [label, bytes, field] of MALFORMED) {
        seen.length = 0;
        await exchange(plainPort, bytes);
        expect(seen.length, label).toBe(1);
        expect([malformedPart(seen[0].code, seen[0].reason), clientErrorAnswer(seen[0]).status], `${label}: ${JSON.stringify(seen[0])}`).toEqual([field, 400]);
      }
    } finally {
      plain.close();
    }
    // The receive timeout: the headers' when no request was taken yet, the body's once one was.
    expect([clientErrorAnswer({ code: "ERR_HTTP_REQUEST_TIMEOUT" }).field, clientErrorAnswer({ code: "ERR_HTTP_REQUEST_TIMEOUT" }, true).field]).toEqual(["headers", "body"]);
  });

  it("a kit app answers each in the platform's JSON naming that part, and the receive timeout naming headers or body", async () => {
    for (const [label, bytes, field] of MALFORMED) {
      const a = await exchange(port, bytes);
      expect([a.slice(0, 12), bodyOf(a).error.code, bodyOf(a).error.field], `${label}: ${a.slice(0, 200)}`).toEqual(["HTTP/1.1 400", "BAD_REQUEST", field]);
    }
    const slowHeaders = await exchange(port, "POST / HTTP/1.1\r\nHost: g\r\n");
    expect([slowHeaders.slice(0, 12), bodyOf(slowHeaders).error.field]).toEqual(["HTTP/1.1 408", "headers"]);
    const slowBody = await exchange(port, "POST / HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    expect([slowBody.slice(0, 12), bodyOf(slowBody).error.field]).toEqual(["HTTP/1.1 408", "body"]);
  });

  it("a request line of a version llhttp takes but no HTTP/1.x (2.0, none: 0.9) is a 400 naming version, its route not run (session 56: served as HTTP/1.1)", async () => {
    const before = slowRuns;
    for (const bytes of ["GET /slow HTTP/2.0\r\nHost: g\r\nConnection: close\r\n\r\n", "GET /slow\r\n\r\n", "GET /nowhere HTTP/2.0\r\nHost: g\r\nConnection: close\r\n\r\n"]) {
      const a = await exchange(port, bytes);
      expect([a.slice(0, 12), bodyOf(a).error.code, bodyOf(a).error.field], `${JSON.stringify(bytes)}: ${a.slice(0, 200)}`).toEqual(["HTTP/1.1 400", "BAD_REQUEST", "version"]);
    }
    expect(slowRuns).toBe(before);
    const ok = await exchange(port, "GET /slow HTTP/1.0\r\n\r\n");
    expect(ok.slice(0, 12)).toBe("HTTP/1.1 200");
  });

  it("CONNECT is a 405 naming method in the platform's shape, its connection closed (Node closed it with no answer)", async () => {
    const a = await exchange(port, "CONNECT g:443 HTTP/1.1\r\nHost: g:443\r\n\r\n");
    expect(a.slice(0, 12)).toBe("HTTP/1.1 405");
    expect(bodyOf(a).error).toMatchObject({ code: "METHOD_NOT_ALLOWED", field: "method", requestId: expect.any(String) });
    expect(a).toMatch(/\r\nconnection: close\r\n/);
  });

  it("a CONNECT pipelined behind a request being handled leaves that request its answer, then the connection closes (session 55: the 405 replaced it)", async () => {
    const before = slowRuns;
    const a = await exchange(port, `GET /slow HTTP/1.1\r\nHost: g\r\n\r\nCONNECT g:443 HTTP/1.1\r\nHost: g:443\r\n\r\n`);
    expect(slowRuns - before, a).toBe(1);
    expect([a.slice(0, 12), bodyOf(a)], a).toEqual(["HTTP/1.1 200", { slow: true }]);
    expect(a).toMatch(/\r\nconnection: close\r\n/i);
    expect(a).not.toContain("405");
    // After an answered request on a kept-alive connection: the CONNECT's own 405.
    const after = await new Promise<string>((resolve) => {
      let got = "";
      const c = net.connect(port, "127.0.0.1", () => c.write("GET /slow HTTP/1.1\r\nHost: g\r\n\r\n"));
      c.on("data", (d) => {
        const first = !got;
        got += d.toString("latin1");
        if (first) c.write("CONNECT g:443 HTTP/1.1\r\nHost: g:443\r\n\r\n");
      });
      c.on("error", () => undefined);
      c.on("close", () => resolve(got));
      setTimeout(() => c.destroy(), 5_000).unref();
    });
    expect([...after.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(["200", "405"]);
  });
});
