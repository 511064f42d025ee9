/**
 * The api-gateway (a real process) in front of an upstream that restarts (a real process stopped
 * with SIGTERM and started again on its port, as a deploy does), in user-management's place (route
 * `users`, `/login` anonymous). Before session 52 every request meeting the restart was a 502
 * UPSTREAM_UNAVAILABLE logged at error, as an outage is. Now (api-gateway/upstreams.ts):
 * - an upstream that never answered (nothing listens) is an outage: 502, its access line an error;
 * - one that answered within RESTART_WINDOW_MS and now refuses connections is taken for restarting:
 *   the request is sent once more on a new connection (nothing was sent), then 502 with
 *   `retry-after: 1`, its access line at warn with a reason, not an error; once it is back, 200;
 * - a kept-alive connection the upstream closes as it is reused: a GET is sent again on a new
 *   connection and answered; a POST is not sent twice (502 at warn).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../harness/proc";
import { useServers } from "../harness/shared";
import { startServiceProcess, type ServiceProcess } from "../helpers/service-process";

const srv = useServers("redis");

/** The stand-in upstream: answers every request, except one asking `reset` on a connection already used (closed unanswered). */
const UPSTREAM = `
const http = require("node:http");
const used = new WeakMap();
http.createServer((req, res) => {
  const n = (used.get(req.socket) ?? 0) + 1;
  used.set(req.socket, n);
  req.resume();
  req.on("end", () => {
    console.log(JSON.stringify({ method: req.method, url: req.url, onConnection: n }));
    if (req.url.includes("reset") && n > 1) return req.socket.destroy();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
  });
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => process.exit(0));
`;

interface Upstream {
  child: ChildProcess;
  /** The requests it received, in order. */
  seen: () => Array<{ method: string; url: string; onConnection: number }>;
}

async function startUpstream(port: number): Promise<Upstream> {
  const child = spawn(process.execPath, ["-e", UPSTREAM], { env: { PORT: String(port) }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", () => out.includes("listening") && resolve());
    child.on("exit", (c) => reject(new Error(`the upstream exited with ${c}`)));
  });
  const seen = () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  return { child, seen };
}

async function stopUpstream(u: Upstream): Promise<void> {
  const exited = new Promise((r) => u.child.once("exit", r));
  u.child.kill("SIGTERM");
  await exited;
}


let upPort: number;
let gw: ServiceProcess;
let upstream: Upstream | undefined;

beforeAll(async () => {
  upPort = await freePort();
  gw = await startServiceProcess("api-gateway", { ...srv.env, JWT_SECRET: "s".repeat(64), LOG_LEVEL: "info", SERVICE_USER_MANAGEMENT_URL: `http://127.0.0.1:${upPort}` });
}, 120_000);

afterAll(async () => {
  upstream?.child.kill("SIGKILL");
  gw?.child.kill("SIGKILL");
});

/** A request through the gateway, with its access line (pino levels: 40 warn, 50 error). */
async function through(method: string, path: string) {
  const r = await fetch(`${gw.url}${path}`, { method, headers: method === "POST" ? { "content-type": "application/json" } : {}, body: method === "POST" ? "{}" : undefined });
  const body = await r.json();
  const id = r.headers.get("x-request-id");
  let line: Record<string, any> | undefined;
  for (let i = 0; i < 100 && !line; i++) {
    line = gw.lines().find((l) => l.msg === "request completed" && l.requestId === id);
    if (!line) await new Promise((res) => setTimeout(res, 20));
  }
  return { status: r.status, body, retryAfter: r.headers.get("retry-after"), line: line! };
}

describe("the gateway in front of an upstream that restarts", { timeout: 300_000 }, () => {
  it("never answered: an outage, 502 logged at error; answered, then restarting: 502 with retry-after at warn, with a reason; back: 200", async () => {
    const down = await through("GET", "/api/users/login");
    expect(down.status).toBe(502);
    expect(down.body.error.code).toBe("UPSTREAM_UNAVAILABLE");
    expect(down.retryAfter).toBeNull();
    expect(down.line).toMatchObject({ level: 50, statusCode: 502 });

    upstream = await startUpstream(upPort);
    expect((await through("GET", "/api/users/login")).status).toBe(200);
    await stopUpstream(upstream);
    for (const method of ["GET", "POST"]) {
      const r = await through(method, "/api/users/login");
      expect(r.status, method).toBe(502);
      expect(r.body.error).toMatchObject({ code: "UPSTREAM_UNAVAILABLE", message: "the service at /api/users/ is restarting; retry" });
      expect(r.retryAfter).toBe("1");
      expect(r.line, method).toMatchObject({ level: 40, statusCode: 502, reason: expect.stringMatching(/^user-management restarting: its connection refused/) });
    }
    upstream = await startUpstream(upPort);
    expect((await through("GET", "/api/users/login")).status).toBe(200);
    const errors = gw.lines().filter((l) => l.level >= 50);
    expect(errors.map((l) => l.msg), "the error line is the outage's alone").toEqual(["request completed"]);
  });

  it("a kept-alive connection closed as it is reused: a GET is sent again on a new connection and answered, a POST is not sent twice (502 at warn)", async () => {
    upstream ??= await startUpstream(upPort);
    // A first request leaves a kept-alive connection in the gateway's pool; the next is sent on it and the upstream closes it.
    expect((await through("GET", "/api/users/login?warm=1")).status).toBe(200);
    const get = await through("GET", "/api/users/login?reset=get");
    expect(get.status).toBe(200);
    // Received on the kept-alive connection (its second request or later), closed; then on a new one (its first), answered.
    const [reused, fresh] = upstream.seen().filter((s) => s.url === "/login?reset=get").map((s) => s.onConnection);
    expect(reused).toBeGreaterThan(1);
    expect(fresh).toBe(1);

    expect((await through("GET", "/api/users/login?warm=2")).status).toBe(200);
    const post = await through("POST", "/api/users/login?reset=post");
    expect(post.status).toBe(502);
    expect(post.retryAfter).toBe("1");
    expect(post.line).toMatchObject({ level: 40, statusCode: 502, reason: expect.stringMatching(/^user-management restarting: its connection closed before an answer/) });
    expect(upstream.seen().filter((s) => s.url === "/login?reset=post").map((s) => s.onConnection)).toEqual([expect.toSatisfy((n: number) => n > 1)]);
  });
});
