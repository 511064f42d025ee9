/**
 * `Expect: 100-continue` on a request the service refuses on its headers alone, written byte for
 * byte on a socket (tests/helpers/raw-http.ts), the body held back until a 100 would have come: the
 * api-gateway (the entry point: 16 KiB of headers, 100 of them) and a kit service behind it (32 KiB,
 * 200), both real servers on loopback ports. Before session 52, Node wrote `100 Continue` as the
 * request arrived (the kit's checkContinue judged only the body's length), then the refusal: more
 * headers than taken (431 TOO_MANY_HEADERS), a Host sent twice (400), an unknown route (404), the
 * gateway's 401 for a caller without credentials; the client was told to send a body that was then
 * refused. Now the 100 is written when the body is first read (kit request-framing.ts
 * continueOnRead): a refusal comes alone, in the platform's JSON naming the field, and closes its
 * connection. A header block over the size limit never reached the 100 (Node's parser refuses it
 * first: kit client-errors.ts answers 431 HEADERS_TOO_LARGE). A request taken gets 100, then its answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, defineService, type Service } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { SECURITY_HEADERS } from "../../services/src/services/api-gateway/security-headers";
import { useServers } from "../harness/shared";
import { rawExchange, rawRequest, type RawAnswer } from "../helpers/raw-http";

const srv = useServers("postgres", "redis");
const BODY = JSON.stringify({ email: "nobody@example.com", password: "x" });
/** How long the client waits for the 100 before it sends the body anyway. */
const HOLD_MS = 400;
const started: Service<any>[] = [];
let gw: string;
let svc: string;

beforeAll(async () => {
  const env = { ...srv.env, JWT_SECRET: "s".repeat(64), LOG_LEVEL: "silent" };
  // In user-management's place in the catalog (route `users`, `/login` anonymous): a kit service.
  const upstream = await createService(defineService({ name: "user-management", register: async (ctx) => void ctx.app.post("/login", { config: { takesAnyBody: true } }, async () => ({ ok: true })) }), { env, defaultMetrics: false });
  started.push(upstream);
  svc = await upstream.listen({ port: 0, host: "127.0.0.1" });
  const gateway = await createService(apiGateway, { env: { ...env, SERVICE_USER_MANAGEMENT_URL: svc }, defaultMetrics: false });
  started.push(gateway);
  gw = await gateway.listen({ port: 0, host: "127.0.0.1" });
}, 120_000);

afterAll(async () => {
  for (const s of started) await s.close().catch(() => undefined);
});

/** A POST with `Expect: 100-continue` and `lines`, its body sent HOLD_MS after the head (unless the connection closed first). */
async function expecting(url: string, path: string, lines: string[] = [], waitMs = 15_000): Promise<RawAnswer & { ms: number }> {
  const head = [`POST ${path} HTTP/1.1`, "Host: gw", "Content-Type: application/json", `Content-Length: ${BODY.length}`, "Expect: 100-continue", ...lines].join("\r\n");
  const t0 = performance.now();
  const a = await rawExchange(url, [[rawRequest(head), HOLD_MS], BODY], waitMs);
  return { ...a, ms: performance.now() - t0 };
}

/** Refused alone (no 100), in the platform's JSON naming `field`, the connection closed by the server. */
function refusedAlone(a: RawAnswer & { ms: number }, status: number, code: string, field: string | undefined, label: string): void {
  expect(a.statuses, `${label}: ${a.all.slice(0, 300)}`).toEqual([status]);
  const body = JSON.parse(a.body);
  expect(body.error, label).toMatchObject({ code, requestId: expect.any(String) });
  expect(body.error.field, label).toBe(field);
  expect(a.headers["content-type"], label).toMatch(/^application\/json/);
  expect(a.headers.connection, label).toBe("close");
  // Closed by the server, not by the client's 15 s wait.
  expect(a.ms, label).toBeLessThan(10_000);
}

const many = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: v`);

describe("Expect: 100-continue on a request refused on its headers", { timeout: 120_000 }, () => {
  it("the gateway answers its refusal alone, with its security headers: too many or too large headers, a Host twice, no credentials, no such route", async () => {
    const cases: Array<[string, string, string[], number, string, string | undefined]> = [
      ["header block over 16 KiB", "/api/users/login", [`X-Big: ${"a".repeat(20_000)}`], 431, "HEADERS_TOO_LARGE", "headers"],
      ["150 headers", "/api/users/login", many(150), 431, "TOO_MANY_HEADERS", "headers"],
      ["Host twice", "/api/users/login", ["Host: other"], 400, "BAD_REQUEST", "host"],
      ["no credentials", "/api/orders/", [], 401, "UNAUTHORIZED", undefined],
      ["a bad token", "/api/orders/", ["Authorization: Bearer a.b.c"], 401, "INVALID_TOKEN", undefined],
      ["no such service", "/api/nope/x", [], 404, "NOT_FOUND", undefined],
      ["an internal path", "/api/users/internal/x", [], 404, "NOT_FOUND", undefined],
      ["outside /api", "/nope", [], 404, "NOT_FOUND", undefined],
    ];
    for (const [label, path, lines, status, code, field] of cases) {
      const a = await expecting(gw, path, lines);
      refusedAlone(a, status, code, field, label);
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(a.headers[name], `${label}: ${name}`).toBe(value);
    }
  });

  it("a service behind it answers its refusal alone: too many or too large headers, a Host twice, a body encoding, no such route", async () => {
    const cases: Array<[string, string, string[], number, string, string | undefined]> = [
      ["header block over 32 KiB", "/login", [`X-Big: ${"a".repeat(40_000)}`], 431, "HEADERS_TOO_LARGE", "headers"],
      ["250 headers", "/login", many(250), 431, "TOO_MANY_HEADERS", "headers"],
      ["Host twice", "/login", ["Host: other"], 400, "BAD_REQUEST", "host"],
      ["gzip", "/login", ["Content-Encoding: gzip"], 415, "UNSUPPORTED_MEDIA_TYPE", "content-encoding"],
      ["no such route", "/nope", [], 404, "NOT_FOUND", undefined],
    ];
    for (const [label, path, lines, status, code, field] of cases) refusedAlone(await expecting(svc, path, lines), status, code, field, label);
  });

  it("a request taken gets 100 Continue, then its answer, through the gateway and at the service, on a connection kept alive", async () => {
    for (const [label, url, path] of [["gateway", gw, "/api/users/login"], ["service", svc, "/login"]]) {
      // Kept alive: read for 2 s, then closed by the client.
      const a = await expecting(url, path, [], 2_000);
      expect(a.statuses, `${label}: ${a.all.slice(0, 300)}`).toEqual([100, 200]);
      expect(JSON.parse(a.body), label).toEqual({ ok: true });
      expect(a.headers.connection, label).toBe("keep-alive");
      // The 100 came before the body was sent: the answer did not wait for the client's HOLD_MS alone.
      expect(a.all.indexOf("100 Continue"), label).toBe(9);
    }
  });
});
