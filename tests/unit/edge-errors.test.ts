/**
 * Nginx's own refusals at the dev edge answer in the platform's error shape (JSON naming what was
 * refused), not Nginx's HTML pages (session 50: two Authorization headers got "<html>...400 Bad
 * Request...nginx"). The real nginx with the generated configuration; the gateway behind it is a
 * port nothing listens on, so a request Nginx forwards gets its 502.
 */
import * as https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeLoopbackPort, startEdgeNginx, type EdgeNginx } from "../helpers/edge-nginx";

let edge: EdgeNginx;
beforeAll(async () => {
  edge = await startEdgeNginx(await freeLoopbackPort());
}, 60_000);
afterAll(() => edge?.stop());

/** One request over TLS with raw headers (Host first: Node adds none to raw headers): its status, content type, body and HSTS header. */
function send(path: string, o: { method?: string; headers?: [string, string][]; body?: Buffer } = {}) {
  return new Promise<{ status: number; type: string; body: string; hsts: string | undefined }>((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: edge.httpsPort, path, method: o.method ?? "GET", rejectUnauthorized: false, headers: [["host", "localhost"], ...(o.headers ?? [])].flat() as unknown as Record<string, string> }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body, hsts: res.headers["strict-transport-security"] as string | undefined }));
    });
    req.on("error", reject);
    req.end(o.body);
  });
}

describe("the edge's own refusals", () => {
  it.each([
    ["two Authorization headers", "/api/users/me", { headers: [["authorization", "Bearer a"], ["authorization", "Bearer b"]] as [string, string][] }, 400, "BAD_REQUEST", "headers"],
    ["a header over the header buffers", "/api/users/me", { headers: [["x-big", "a".repeat(40_000)]] as [string, string][] }, 431, "HEADERS_TOO_LARGE", "headers"],
    ["a URL over the header buffers", `/api/users/${"a".repeat(40_000)}`, {}, 414, "URI_TOO_LONG", "url"],
    // Raw headers carry no framing of their own: the length is given.
    ["a body over 1 MiB", "/api/orders", { method: "POST", headers: [["content-type", "application/json"], ["content-length", "1100000"]] as [string, string][], body: Buffer.alloc(1_100_000, 0x20) }, 413, "PAYLOAD_TOO_LARGE", "body"],
    // One Authorization header is forwarded (here to the unreachable gateway): the 400 above is for the second.
    ["one Authorization header, the gateway unreachable", "/api/users/me", { headers: [["authorization", "Bearer a"]] as [string, string][] }, 502, "UPSTREAM_UNAVAILABLE", undefined],
  ])("%s", async (_name, path, o, status, code, field) => {
    const r = await send(path, o);
    expect([r.status, r.type]).toEqual([status, "application/json"]);
    expect(JSON.parse(r.body)).toEqual({ error: { code, message: expect.any(String), ...(field ? { field } : {}) } });
    expect(r.body).not.toMatch(/nginx|<html/i);
    expect(r.hsts).toBe("max-age=63072000");
  });
});
