/**
 * What a service answers while it closes (kit closing-answers.ts), as a real process after SIGTERM:
 * the api-gateway (its security headers are on every answer) with a drain of SHUTDOWN_DRAIN_MS. A
 * request in flight when the close begins (its header block half sent before SIGTERM, the rest once
 * the service stopped listening) is answered 503 SHUTTING_DOWN in the platform's shape: a JSON error
 * body with its request id (also in `x-request-id`), `retry-after`, the security headers, the
 * connection closed. Before session 51, Fastify's own answer went out: `{"error":"Service
 * Unavailable","message":"Service Unavailable","statusCode":503}` with none of these. The process
 * then exits 0.
 *
 * Behind the gateway (both in process, a relay between them holding the request's rest until the
 * service's close began): the caller gets the service's 503 SHUTTING_DOWN with the request's id (the
 * gateway's, in the header, the body and both access lines; the caller's x-request-id kept as
 * `clientRequestId` and forwarded as `x-client-request-id`), and neither access line is an error: a
 * drain answer is counted (`http_request_duration_seconds`, status 503) but logged at warn with a
 * `reason` (kit closing-answers.ts markDrainAnswer; before session 51, at error like a failure).
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createService, defineService, type Service } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { SECURITY_HEADERS } from "../../services/src/services/api-gateway/security-headers";
import { freePort } from "../harness/proc";
import { useServers } from "../harness/shared";
import { parseAnswers } from "../helpers/raw-http";
import { watchServiceWarnings } from "../harness/child-warnings";

const srv = useServers("postgres", "redis");

const main = join(__dirname, "..", "..", "services", "src", "main.ts");
const clean = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" };

/** Whether a new connection to `port` is refused (the server stopped listening: Fastify's close began). */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", () => resolve(true));
  });

// Spawns tsx (a cold TypeScript compile of the service): the timeout only guards against a hang.
describe("a closing service's answers", { timeout: 300_000 }, () => {
  it("a request in flight when the close begins gets 503 SHUTTING_DOWN in the platform's shape, with retry-after and the security headers", async () => {
    // `node --import tsx`: one process, so SIGTERM reaches the service itself (kit.test.ts says why).
    const child = spawn(process.execPath, ["--import=tsx", main, "api-gateway"], {
      env: { ...clean, DRAGONFLY_URL: "redis://127.0.0.1:1", JWT_SECRET: "s".repeat(64), PORT: String(await freePort()), HOST: "127.0.0.1", SHUTDOWN_DRAIN_MS: "1000", REQUEST_RECEIVE_TIMEOUT_MS: "60000" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    watchServiceWarnings("api-gateway", child.stderr);
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", () => out.includes("api-gateway listening") && resolve());
        child.on("exit", (c) => reject(new Error(`exited early with ${c}: ${out}`)));
      });
      const port = Number(/"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out)![1]);
      // The request's line and first header before SIGTERM: the connection is busy, not idle, when the close begins.
      const socket = net.connect(port, "127.0.0.1");
      await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      let answered = "";
      socket.on("data", (d: Buffer) => (answered += d.toString("latin1")));
      const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      socket.write("GET /api/users/me HTTP/1.1\r\nHost: gateway.test\r\n");
      child.kill("SIGTERM");
      // SHUTDOWN_DRAIN_MS served on, then the close: the server stops listening.
      const t0 = Date.now();
      while (!(await refused(port))) {
        expect(Date.now() - t0, "the close begins after the drain").toBeLessThan(60_000);
        await new Promise((r) => setTimeout(r, 50));
      }
      socket.write("Accept: application/json\r\n\r\n");
      await ended;
      const a = parseAnswers(answered);
      expect(a.statuses, answered).toEqual([503]);
      expect(a.headers["content-type"]).toMatch(/^application\/json/);
      const body = JSON.parse(a.body);
      expect(body).toEqual({ error: { code: "SHUTTING_DOWN", message: expect.stringMatching(/shutting down/), requestId: expect.any(String) } });
      expect(a.headers["x-request-id"]).toBe(body.error.requestId);
      expect(a.headers["retry-after"]).toBe("1");
      expect(a.headers.connection).toBe("close");
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(a.headers[name], name).toBe(value);
      expect(await exited).toBe(0);
      expect(out).toContain("shut down cleanly");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

/** Log lines of a service, parsed. */
function logSink(): { stream: PassThrough; lines: Array<Record<string, any>> } {
  const stream = new PassThrough();
  const lines: Array<Record<string, any>> = [];
  stream.on("data", (d) => lines.push(...String(d).split("\n").filter(Boolean).map((l) => JSON.parse(l))));
  return { stream, lines };
}

/**
 * A TCP relay to `port` that forwards a request's line and first header at once (the service's
 * connection is busy, not idle, so its close keeps it) and the rest on `release()`.
 */
async function holdingRelay(port: number): Promise<{ port: number; release: () => void; close: () => void }> {
  let released = false;
  const held: Array<() => void> = [];
  const server = net.createServer((client) => {
    const up = net.connect(port, "127.0.0.1");
    up.pipe(client);
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
    let head = Buffer.alloc(0);
    let headSent = false;
    client.on("data", (d: Buffer) => {
      if (released) return void up.write(d);
      if (headSent) return void held.push(() => up.write(d));
      head = Buffer.concat([head, d]);
      const firstHeaderEnd = head.indexOf("\r\n", head.indexOf("\r\n") + 2);
      if (firstHeaderEnd < 0) return;
      headSent = true;
      up.write(head.subarray(0, firstHeaderEnd + 2));
      const rest = head.subarray(firstHeaderEnd + 2);
      held.push(() => up.write(rest));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    release: () => {
      released = true;
      for (const w of held.splice(0)) w();
    },
    close: () => server.close(),
  };
}

describe("a closing service behind the gateway", { timeout: 120_000 }, () => {
  it("its 503 SHUTTING_DOWN reaches the caller with the request's id, counted, and logged at warn with a reason by both, not as an error", async () => {
    const env = { ...srv.env, JWT_SECRET: "s".repeat(64), LOG_LEVEL: "info" };
    const upLog = logSink();
    const gwLog = logSink();
    const started: Service<any>[] = [];
    let relay: Awaited<ReturnType<typeof holdingRelay>> | undefined;
    try {
      // In user-management's place in the catalog (route `users`, `/login` anonymous): a kit service and its closing answer.
      const upstream = await createService(defineService({ name: "user-management", register: async (ctx) => void ctx.app.post("/login", async () => ({ ok: true })) }), { env, logStream: upLog.stream, defaultMetrics: false });
      const upPort = Number(new URL(await upstream.listen({ port: 0, host: "127.0.0.1" })).port);
      relay = await holdingRelay(upPort);
      const gateway = await createService(apiGateway, { env: { ...env, SERVICE_USER_MANAGEMENT_URL: `http://127.0.0.1:${relay.port}` }, logStream: gwLog.stream, defaultMetrics: false });
      started.push(gateway);
      const gw = await gateway.listen({ port: 0, host: "127.0.0.1" });

      const answer = fetch(`${gw}/api/users/login`, { method: "POST", headers: { "content-type": "application/json", "x-request-id": "caller-chosen-id.42" }, body: "{}" });
      // The request's head reached the service: its close begins (as after SIGTERM and the drain), and it stops listening.
      await new Promise((r) => setTimeout(r, 300));
      const closed = upstream.close();
      const t0 = Date.now();
      while (!(await refused(upPort))) {
        expect(Date.now() - t0, "the service's close begins").toBeLessThan(30_000);
        await new Promise((r) => setTimeout(r, 20));
      }
      relay.release();
      const a = await answer;
      const body = await a.json();
      expect(a.status).toBe(503);
      expect(body).toEqual({ error: { code: "SHUTTING_DOWN", message: expect.stringMatching(/shutting down/), requestId: expect.any(String) } });
      const id = body.error.requestId;
      expect(a.headers.get("x-request-id")).toBe(id);
      expect(a.headers.get("retry-after")).toBe("1");
      await closed;

      const lineOf = (lines: Array<Record<string, any>>) => lines.find((l) => l.msg === "request completed" && l.requestId === id);
      const upLine = lineOf(upLog.lines);
      const gwLine = lineOf(gwLog.lines);
      // pino levels: 40 warn, 50 error.
      expect(upLine, JSON.stringify(upLog.lines.slice(-5))).toMatchObject({ level: 40, statusCode: 503, url: "/login", reason: expect.stringMatching(/^shutting down/) });
      expect(gwLine, JSON.stringify(gwLog.lines.slice(-5))).toMatchObject({ level: 40, statusCode: 503, url: "/api/users/login", clientRequestId: "caller-chosen-id.42", reason: "user-management shutting down (its answer forwarded)" });
      expect([...upLog.lines, ...gwLog.lines].filter((l) => l.level >= 50), "no error line").toEqual([]);
      // Counted: the gateway's request metrics hold the 503.
      const metrics = await (await fetch(`${gw}/metrics`)).text();
      expect(metrics).toMatch(/http_request_duration_seconds_count\{[^}]*status_code="503"[^}]*\} 1/);
    } finally {
      for (const s of started) await s.close().catch(() => undefined);
      relay?.close();
    }
  });
});
