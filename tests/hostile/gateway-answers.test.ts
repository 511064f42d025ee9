/**
 * Holes at the gateway's HTTP surface found by session 50's hostile round, written byte for byte on
 * the socket (tests/helpers/raw-http.ts) through the gateway and user-management on real servers,
 * every answer judged by ./oracle.ts:
 * - Authorization and X-Api-Key on one request: the token was used and the key silently ignored
 *   (a proxy or log in front may take the key as the caller). Now a 400 AMBIGUOUS_CREDENTIALS naming
 *   `x-api-key` (api-gateway/authenticate.ts), on an anonymous path too;
 * - the answers written outside Fastify (kit request-framing.ts: Expect's 413 and 417; kit
 *   client-errors.ts: Node's refusals of a malformed request or an oversized header block) went out
 *   without the gateway's security headers (HSTS, nosniff, frame, referrer) and without a request
 *   id. Now they carry both, as every Fastify answer does (kit raw-answers.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CANONICAL_UUID } from "../../services/src/kit/app";
import { SECURITY_HEADERS } from "../../services/src/services/api-gateway/security-headers";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { newKeyHolder, portsOf, rawExchange, rawMe, rawRequest, type RawAnswer } from "../helpers/raw-http";
import { rawJudged } from "./oracle";

const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const PASSWORD = "correct horse battery staple";
let p: Platform;
let internalPorts: number[];
let token: string;
let apiKey: string;
const failures: string[] = [];

const sent = (label: string, url: string, parts: Parameters<typeof rawExchange>[1]) => rawJudged(label, url, parts, { failures, internalPorts });
const json = (a: RawAnswer) => JSON.parse(a.body);
const refused = (a: RawAnswer, status: number, field: string, label: string) => expect([a.statuses, json(a).error.field], `${label}: ${a.all.slice(0, 300)}`).toEqual([[status], field]);
const request = rawRequest;
const me = rawMe;
const creds = JSON.stringify({ email: "nobody@example.com", password: "x" });
const login = (...lines: string[]) => ["POST /api/users/login HTTP/1.1", "Host: gw", "Content-Type: application/json", ...lines, "Connection: close"].join("\r\n");

beforeAll(async () => {
  p = await startPlatform(srv.env, {}, { only: ["api-gateway", "user-management"] });
  internalPorts = portsOf([srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL]);
  ({ token, apiKey } = await newKeyHolder(p.gatewayUrl, "answers", PASSWORD));
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

describe("credentials", () => {
  it("Authorization and X-Api-Key together are a 400 naming x-api-key, whichever is valid, on an anonymous path too; each alone is taken", async () => {
    const both: Array<[string, string[]]> = [
      ["both valid", [`Authorization: Bearer ${token}`, `X-Api-Key: ${apiKey}`]],
      ["key first", [`x-api-key: ${apiKey}`, `authorization: Bearer ${token}`]],
      ["bad token, valid key", ["Authorization: Bearer a.b.c", `X-Api-Key: ${apiKey}`]],
      ["valid token, garbage key", [`Authorization: Bearer ${token}`, "X-Api-Key: atk_garbage"]],
    ];
    // Twice each: the first may be decided on the slow path, the second from the caches (Authenticator.cached).
    for (const [label, lines] of [...both, ...both]) {
      const a = await sent(label, p.gatewayUrl, [me(...lines)]);
      refused(a, 400, "x-api-key", label);
      expect(json(a).error.code).toBe("AMBIGUOUS_CREDENTIALS");
    }
    refused(await sent("both on login", p.gatewayUrl, [request(login(`Authorization: Bearer ${token}`, `X-Api-Key: ${apiKey}`, `Content-Length: ${creds.length}`), creds)]), 400, "x-api-key", "both on login");
    expect(json(await sent("token alone", p.gatewayUrl, [me(`Authorization: Bearer ${token}`)])).authMethod).toBe("jwt");
    expect(json(await sent("key alone", p.gatewayUrl, [me(`X-Api-Key: ${apiKey}`)])).authMethod).toBe("api-key");
    expect(failures).toEqual([]);
  });
});

describe("answers written outside Fastify", () => {
  it("Expect's 413 and 417 and Node's refusals carry the gateway's security headers and a request id of their own, in the header and the body, as its other answers do", async () => {
    const answers: Array<[string, RawAnswer]> = [
      ["Expect 413", await sent("expect 413", p.gatewayUrl, [request(login("Expect: 100-continue", "Content-Length: 1000000000"))])],
      ["Expect 417", await sent("expect 417", p.gatewayUrl, [request(login("Expect: 200-ok", `Content-Length: ${creds.length}`), creds)])],
      ["two Content-Lengths", await sent("two CLs", p.gatewayUrl, [request(login("Content-Length: 2", "Content-Length: 2"), "{}")])],
      ["headers too large", await sent("431", p.gatewayUrl, [request(login(`X-Big: ${"a".repeat(20_000)}`, "Content-Length: 2"), "{}")])],
      ["a Fastify answer", await sent("401", p.gatewayUrl, [request(login(`Content-Length: ${creds.length}`), creds)])],
    ];
    expect(answers.map(([label, a]) => [label, a.status])).toEqual([["Expect 413", 413], ["Expect 417", 417], ["two Content-Lengths", 400], ["headers too large", 431], ["a Fastify answer", 401]]);
    const ids = new Set<string>();
    for (const [label, a] of answers) {
      const security = Object.fromEntries(Object.keys(SECURITY_HEADERS).map((h) => [h, a.headers[h]]));
      const id = a.headers["x-request-id"];
      expect({ label, security, id, bodyId: json(a).error.requestId }, a.all.slice(0, 400)).toEqual({ label, security: SECURITY_HEADERS, id: expect.stringMatching(CANONICAL_UUID), bodyId: id });
      ids.add(id);
    }
    expect(ids.size).toBe(answers.length);
    // At the gateway a client's x-request-id is never the request's id (kit ownRequestIds), here too.
    const withId = (path: string) => request(login("Expect: 200-ok", "X-Request-Id: client-id", `Content-Length: ${creds.length}`).replace("/api/users/login", path), creds);
    const atGateway = await sent("417 with a client id", p.gatewayUrl, [withId("/api/users/login")]);
    expect(atGateway.headers["x-request-id"]).toMatch(CANONICAL_UUID);
    // A service behind the gateway takes the id it is sent (the gateway's), and sends no security headers of its own.
    const behind = await sent("417 behind", p.urls.get("user-management")!, [withId("/login")]);
    expect([behind.status, behind.headers["x-request-id"], json(behind).error.requestId, behind.headers["strict-transport-security"]]).toEqual([417, "client-id", "client-id", undefined]);
    expect(failures).toEqual([]);
  });
});
