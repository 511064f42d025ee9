/**
 * One request, one id, across the gateway's fast lane's hand-over (session 56). The lane gives a
 * request its id when it reads it (its warm-ups' calls carry it); a request it hands to Fastify
 * (here: a new user's token whose state user-management cannot give, so the credentials warm-up
 * ends in AUTH_UNAVAILABLE) keeps that id there (kit app.ts carryRequestId): the lane's lines, the
 * user-state read, Fastify's access line, the answer's x-request-id and its body name the same one.
 * Before, Fastify gave it a new id, and the warm-up's read and the lane's work could not be tied to
 * the answer. The gateway is a real process (its log lines read from its stdout), with the lane on
 * and off; a client's own x-request-id is still never taken as the request's id.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { jwtKey, signAccessToken } from "../../services/src/kit";
import { listen } from "../helpers/http-stand-ins";
import { PATIENCE_MS } from "../helpers/patience";
import { startServiceProcess, type ServiceProcess } from "../helpers/service-process";

const srv = useServers("redis");
const JWT_SECRET = randomBytes(64).toString("hex");

/** The stand-in user-management: every call refused with a 500 (no user state to be had), recorded with the x-request-id it came with. */
const calls: Array<{ url: string; requestId: string | undefined }> = [];
let standIn: Server;
let standInUrl = "";
const gateways: ServiceProcess[] = [];

beforeAll(async () => {
  standIn = createServer((req, res) => {
    req.resume();
    calls.push({ url: req.url ?? "", requestId: req.headers["x-request-id"] as string | undefined });
    res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "INTERNAL_ERROR", message: "stand-in" } }));
  });
  standInUrl = await listen(standIn);
});

afterAll(async () => {
  for (const gw of gateways) gw.child.kill("SIGKILL");
  standIn?.close();
});

async function gateway(lane: "true" | "false"): Promise<ServiceProcess> {
  const gw = await startServiceProcess("api-gateway", { ...srv.env, JWT_SECRET, LOG_LEVEL: "debug", SERVICE_USER_MANAGEMENT_URL: standInUrl, GATEWAY_FAST_LANE: lane });
  gateways.push(gw);
  return gw;
}

/** The log lines of `gw` naming `requestId`, once its access line for it is written. */
async function linesOf(gw: ServiceProcess, requestId: string): Promise<Array<Record<string, any>>> {
  const until = Date.now() + PATIENCE_MS;
  while (Date.now() < until) {
    const lines = gw.lines().filter((l) => l.requestId === requestId);
    if (lines.some((l) => l.msg === "request completed")) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no access line for ${requestId} within ${PATIENCE_MS} ms`);
}

/** A first request with a new user's token (and a client x-request-id of its own): its answer's ids and the user-state reads it cost. */
async function unreadableUser(gw: ServiceProcess) {
  const userId = randomUUID();
  const token = await signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader" }, 900);
  const clientId = `client-${randomUUID()}`;
  const r = await fetch(`${gw.url}/api/orders/`, { headers: { authorization: `Bearer ${token}`, "x-request-id": clientId } });
  const body = (await r.json()) as { error: { code: string; requestId: string } };
  const reads = calls.filter((c) => c.url === `/internal/users/${userId}/state`);
  return { status: r.status, code: body.error.code, headerId: r.headers.get("x-request-id"), bodyId: body.error.requestId, reads, clientId };
}

describe("a request keeps one id across the fast lane's hand-over", { timeout: 120_000 }, () => {
  it("lane on: the warm-up's read, the lane's lines, Fastify's access line and the answer name the id the lane gave", async () => {
    const gw = await gateway("true");
    const a = await unreadableUser(gw);
    expect(a).toMatchObject({ status: 503, code: "AUTH_UNAVAILABLE" });
    const id = a.headerId!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.bodyId).toBe(id);
    // One read, the lane's warm-up's (Fastify takes its answer: no second one), with the request's id.
    expect(a.reads).toEqual([{ url: expect.any(String), requestId: id }]);
    const lines = await linesOf(gw, id);
    const messages = lines.map((l) => l.msg);
    expect(messages).toContain("fast lane warming a cold cache");
    expect(lines.find((l) => l.msg === "fast lane handed the request over")).toMatchObject({ reason: "credentials", method: "GET", url: "/api/orders/" });
    expect(lines.find((l) => l.msg === "request completed")).toMatchObject({ statusCode: 503, clientRequestId: a.clientId });
    // The client's own id is kept apart, never the request's.
    expect(id).not.toBe(a.clientId);
    expect(gw.lines().filter((l) => l.requestId === a.clientId)).toEqual([]);
  });

  it("lane off: the same request, one id in the read, the access line and the answer (no lane lines)", async () => {
    const gw = await gateway("false");
    const a = await unreadableUser(gw);
    expect(a).toMatchObject({ status: 503, code: "AUTH_UNAVAILABLE" });
    const id = a.headerId!;
    expect(a.bodyId).toBe(id);
    expect(a.reads).toEqual([{ url: expect.any(String), requestId: id }]);
    const lines = await linesOf(gw, id);
    expect(lines.filter((l) => String(l.msg).startsWith("fast lane"))).toEqual([]);
    expect(lines.find((l) => l.msg === "request completed")).toMatchObject({ statusCode: 503, clientRequestId: a.clientId });
    expect(id).not.toBe(a.clientId);
  });
});
