/**
 * What a service answers while it closes (kit closing-answers.ts), as a real process after SIGTERM:
 * the api-gateway (its security headers are on every answer) with a drain of SHUTDOWN_DRAIN_MS. A
 * request in flight when the close begins (its header block half sent before SIGTERM, the rest once
 * the service stopped listening) is answered 503 SHUTTING_DOWN in the platform's shape: a JSON error
 * body with its request id (also in `x-request-id`), `retry-after`, the security headers, the
 * connection closed. Before session 51, Fastify's own answer went out: `{"error":"Service
 * Unavailable","message":"Service Unavailable","statusCode":503}` with none of these. The process
 * then exits 0.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SECURITY_HEADERS } from "../../services/src/services/api-gateway/security-headers";
import { parseAnswers } from "../helpers/raw-http";

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
      env: { ...clean, DRAGONFLY_URL: "redis://127.0.0.1:1", JWT_SECRET: "s".repeat(64), PORT: "0", HOST: "127.0.0.1", SHUTDOWN_DRAIN_MS: "1000", REQUEST_RECEIVE_TIMEOUT_MS: "60000" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
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
