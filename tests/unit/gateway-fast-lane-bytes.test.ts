/**
 * The shortcuts session 57 took on the gateway fast lane's hot path (README "Gateway speed") give
 * what the longer way gave: the read's head end found without Buffer.indexOf, an answer's headers to
 * send on in one pass over its raw lines, the log time made once per millisecond, and prom-client
 * counts added when the counter is read.
 */
import pino from "../../services/node_modules/pino";
import { Counter, Registry } from "../../services/node_modules/prom-client";
import { describe, expect, it } from "vitest";
import { isoTimeOncePerMs } from "../../services/src/kit/app";
import { CounterTally } from "../../services/src/services/api-gateway/counter-tally";
import { answerHeadersOf, headersOf, headLines, headLinesInObjectOrder, type AnswerHead } from "../../services/src/services/api-gateway/fast-lane/answer";
import { SECURITY_HEADERS } from "../../services/src/services/api-gateway/security-headers";
import { headEndsRead } from "../../services/src/services/api-gateway/fast-lane/llhttp";
import { answerHeaders } from "../../services/src/services/api-gateway/upstream-headers";

describe("headEndsRead", () => {
  it("is indexOf(CRLF CRLF) === length - 4 for heads, pipelined pairs, bodies, bare LFs and short reads", () => {
    const head = "GET /api/users/me HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x.y.z\r\n\r\n";
    const reads = [
      "",
      "\r\n\r",
      "\r\n\r\n",
      "x\r\n\r\n",
      head,
      head + head,
      head + "G",
      head.slice(0, -1),
      head.replace(/\r\n/g, "\n"),
      "GET / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n\r\n\r\n",
      "\r\n\r\n\r\n",
      "a\rb\nc\r\n\rd\r\n\r\n",
    ];
    for (const text of reads) {
      const d = Buffer.from(text, "latin1");
      expect(headEndsRead(d), JSON.stringify(text)).toBe(d.length >= 4 && d.indexOf("\r\n\r\n") === d.length - 4);
    }
  });
});

describe("answerHeadersOf", () => {
  it("is answerHeaders(headersOf(raw)) for a plain answer, repeats, hop-by-hop, security and object-member names, streamed or not", () => {
    const raws: string[][] = [
      ["Content-Type", "application/json", "Content-Length", "12", "X-Request-Id", "r-1", "Date", "Sun, 06 Dec 2026 22:00:00 GMT", "Connection", "keep-alive", "Keep-Alive", "timeout=5"],
      ["Set-Cookie", "a=1", "set-cookie", "b=2", "SET-COOKIE", "c=3", "Vary", "Accept", "vary", "Origin"],
      ["Transfer-Encoding", "chunked", "Trailer", "X-T", "Upgrade", "h2c", "Host", "x", "Strict-Transport-Security", "max-age=0", "X-Frame-Options", "ALLOWALL"],
      ["constructor", "c", "toString", "t", "hasOwnProperty", "h", "123", "n", "5", "m", "Content-Length", "3"],
      ["__proto__", "p", "__Proto__", "q", "Content-Type", "text/plain"],
      [],
    ];
    for (const raw of raws)
      for (const streamed of [false, true]) {
        const oneStep = answerHeadersOf(raw, streamed);
        const twoSteps = answerHeaders(headersOf(raw), streamed);
        expect(oneStep, JSON.stringify(raw)).toEqual(twoSteps);
        // (the same key order: the answer's header lines follow it)
        expect(Object.keys(oneStep)).toEqual(Object.keys(twoSteps));
        expect(Object.getPrototypeOf(oneStep) === Object.prototype).toBe(Object.getPrototypeOf(twoSteps) === Object.prototype);
      }
  });
});

describe("headLines", () => {
  it("writes the lines headLinesInObjectOrder writes, in its order: overrides in place, repeats, draining, closing, a Date given", () => {
    const owns: Record<string, string | string[]>[] = [
      {},
      { "content-type": "application/json", "content-length": "12" },
      { "x-request-id": "upstream-id", "content-type": "text/plain", "content-length": "3", date: "Sun, 06 Dec 2026 22:00:00 GMT" },
      { "set-cookie": ["a=1", "b=2"], vary: "Accept", "x-ratelimit-remaining": "7", "retry-after": "1" },
      { connection: "close", "x-request-id": ["a", "b"], "x-ratelimit-limit": "1", "x-ratelimit-reset": "2" },
      { "x-frame-options": "SAMEORIGIN", "x-other": "o" },
      { "1": "one", "0": "zero", "x-request-id": "r" },
      { "9a": "digit first", "content-type": "text/plain" },
    ];
    for (const draining of [false, true])
      for (const close of [false, true])
        for (const own of owns) {
          const a: AnswerHead = { status: 200, requestId: "id-1", security: SECURITY_HEADERS, rateLimit: { limit: 10, remaining: 4, reset: 3 }, close, draining, keepAliveTimeoutMs: 72_000 };
          const written = headLines(a, { ...own });
          expect(written.replace(/^Date: .*\r\n/m, "Date: *\r\n"), JSON.stringify({ own, draining, close })).toBe(headLinesInObjectOrder(a, { ...own }).replace(/^Date: .*\r\n/m, "Date: *\r\n"));
        }
  });
});

describe("isoTimeOncePerMs", () => {
  it("writes pino's isoTime field, of this millisecond", () => {
    const before = Date.now();
    const field = isoTimeOncePerMs();
    const after = Date.now();
    expect(field).toMatch(/^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
    expect(field.length).toBe(pino.stdTimeFunctions.isoTime().length);
    const at = Date.parse(JSON.parse(`{${field.slice(1)}}`).time);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
    // The same millisecond, the same text; the next one, its own.
    const now = Date.now();
    while (Date.now() === now);
    const later = isoTimeOncePerMs();
    expect(Date.parse(JSON.parse(`{${later.slice(1)}}`).time)).toBeGreaterThan(now);
  });
});

describe("CounterTally", () => {
  it("adds what it counted when the counter is read, once, by name and code", async () => {
    const registry = new Registry();
    const tally = new CounterTally<"upstream" | "status_code">((upstream, status) => ({ upstream, status_code: String(status) }));
    const counter: Counter<"upstream" | "status_code"> = new Counter({ name: "t_total", help: "t", labelNames: ["upstream", "status_code"], registers: [registry], collect: () => tally.addTo(counter) });
    for (let i = 0; i < 3; i++) tally.add("user-management", 200);
    tally.add("user-management", 503);
    tally.add("portfolio", 200);
    counter.inc({ upstream: "portfolio", status_code: "200" });
    const values = async () => Object.fromEntries((await counter.get()).values.map((v) => [`${v.labels.upstream} ${v.labels.status_code}`, v.value]));
    expect(await values()).toEqual({ "user-management 200": 3, "user-management 503": 1, "portfolio 200": 2 });
    expect(await values()).toEqual({ "user-management 200": 3, "user-management 503": 1, "portfolio 200": 2 });
    tally.add("user-management", 200);
    expect(await registry.metrics()).toContain('t_total{upstream="user-management",status_code="200"} 4');
  });
});
