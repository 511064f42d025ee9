/**
 * The rig of the gateway's fast-lane tests (tests/services/gateway-fast-lane*.test.ts): real
 * PostgreSQL and Redis, user-management, a stand-in for portfolio-manager (a node:http server: echo,
 * slow, large, chunked, 204, no content type), and gateways with the lane (the default) and without
 * (GATEWAY_FAST_LANE=false). What the lane serves is counted in gateway_fast_lane_total{outcome="served"},
 * which is how the tests know a request went through it: a first request on cold caches (its URL's
 * routing, its credentials, its rate-limit lease) is warmed and served by the lane; one the lane
 * hands over (a POST, an error) leaves its connection Fastify's, the next ones, on new connections,
 * start in the lane again.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import { afterAll, beforeAll } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";
import { KeepAliveClient, type KeptAnswer } from "./keep-alive-client";

const JWT_SECRET = randomBytes(64).toString("hex");
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let fake: Server;
let fakeUrl: string;
let umUrl: string;
const started: Service[] = [];

const big = randomBytes(2 * 1024 * 1024 + 17);

/** The gateways and the user the tests use, set by useFastLaneRig's beforeAll. */
export const rig = {
  /** A gateway with the lane (the default), one without (GATEWAY_FAST_LANE=false), one with a limit of 100. */
  lane: "",
  plain: "",
  limited: "",
  /** A user's access and refresh tokens. */
  token: "",
  refresh: "",
  /** Another gateway (its environment's additions; `logs`: its log lines, parsed, at info), its URL. */
  gateway: (async () => "") as (more: Record<string, string>, logs?: Array<Record<string, unknown>>) => Promise<string>,
  /** The URLs the stand-in upstream received, in order. */
  upstreamSeen: [] as string[],
  /** The URLs of `/endless...` whose upstream connection closed (the stand-in writes until then). */
  upstreamClosed: [] as string[],
  /** The stand-in's connections open now (a connection leaves at its end or close), the most it had open at once, and all it accepted. */
  upstreamConnections: { open: 0, peak: 0, accepted: 0 },
  /** Answers the stand-in's requests of `/held...` (each waits for this). */
  releaseHeld: () => undefined as void,
  serviceOf: ((_url: string) => undefined) as (url: string) => Service | undefined,
};

/** Starts the rig for the test file (its servers, beforeAll, afterAll). */
export function useFastLaneRig(): void {
const srv = useServers("postgres");
beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  const held: Array<() => void> = [];
  rig.releaseHeld = () => {
    for (const answer of held.splice(0)) answer();
  };
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  fake = createServer((req, res) => {
    const url = req.url ?? "/";
    rig.upstreamSeen.push(url);
    if (url.startsWith("/slow")) return void setTimeout(() => res.end("late"), 4_000);
    if (url.startsWith("/held")) return void held.push(() => res.end("held"));
    if (url.startsWith("/endless")) {
      // An answer without end, written as fast as it is taken: only its connection's close stops it.
      req.socket.once("close", () => rig.upstreamClosed.push(url));
      const chunk = Buffer.alloc(64 * 1024, 120);
      const more = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", more);
      return more();
    }
    if (url.startsWith("/big")) return void res.end(big);
    if (url.startsWith("/empty")) {
      res.statusCode = 204;
      return void res.end();
    }
    if (url.startsWith("/plain")) return void res.end("no content type"); // and HEAD without one
    if (url.startsWith("/chunked")) {
      res.setHeader("content-type", "text/plain");
      res.write("one,");
      setTimeout(() => res.end("two"), 20);
      return;
    }
    res.setHeader("content-type", "application/json");
    res.setHeader("set-cookie", ["a=1", "b=2"]);
    res.setHeader("x-frame-options", "ALLOWALL"); // the gateway's own security headers win
    res.end(JSON.stringify({ method: req.method, url, rawHeaders: req.rawHeaders }));
  });
  fake.on("connection", (s) => {
    const counts = rig.upstreamConnections;
    counts.accepted++;
    counts.peak = Math.max(counts.peak, ++counts.open);
    let left = false;
    const leave = () => void (left || ((left = true), counts.open--));
    s.once("end", leave);
    s.once("close", leave);
  });
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
  fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
  const env = (more: Record<string, string>, logs?: Array<Record<string, unknown>>) => ({
    env: { DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: logs ? "info" : "silent", ...more },
    defaultMetrics: false,
    ...(logs ? { logStream: new Writable({ write: (chunk, _enc, done) => (logs.push(...String(chunk).split("\n").filter(Boolean).map((l) => JSON.parse(l))), done()) }) } : {}),
  });
  const listen = async (s: Service) => {
    started.push(s);
    return s.listen({ port: 0, host: "127.0.0.1" });
  };
  umUrl = await listen(await createService(userManagement, env({ ...srv.postgres.env })));
  const create = (more: Record<string, string>, logs?: Array<Record<string, unknown>>) =>
    createService(apiGateway, env({ SERVICE_USER_MANAGEMENT_URL: umUrl, SERVICE_PORTFOLIO_MANAGER_URL: fakeUrl, RATE_LIMIT_MAX_REQUESTS: "10000", ...more }, logs));
  const urls = new Map<string, Service>();
  // The lane is on by default (the gateway's config): every gateway here has it unless told.
  rig.gateway = async (more, logs) => {
    const s = await create(more, logs);
    const url = await listen(s);
    urls.set(url, s);
    return url;
  };
  rig.serviceOf = (url) => urls.get(url);
  rig.lane = await rig.gateway({});
  rig.plain = await rig.gateway({ GATEWAY_FAST_LANE: "false" });
  rig.limited = await rig.gateway({ RATE_LIMIT_MAX_REQUESTS: "100" });
  const email = `lane-${randomBytes(4).toString("hex")}@example.com`;
  const post = (path: string, body: unknown) => fetch(`${rig.lane}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await post("/api/users/register", { email, password: "a long enough password" });
  const login = (await (await post("/api/users/login", { email, password: "a long enough password" })).json()) as { accessToken: string; refreshToken: string };
  rig.token = login.accessToken;
  rig.refresh = login.refreshToken;
}, 120_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.close().catch(() => undefined);
  fake?.closeAllConnections();
  fake?.close();
  await pool?.end();
  await redis?.stop();
});
}

export const served = (gw: string) => counted(gw, "served");

/** gateway_fast_lane_total of `outcome` (served, warmed, handed_over), of one `reason` or summed over all. */
export async function counted(gw: string, outcome: string, reason?: string): Promise<number> {
  const text = await (await fetch(`${gw}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^gateway_fast_lane_total\{([^}]*)\} (\d+)$/gm)) {
    if (m[1].includes(`outcome="${outcome}"`) && (reason === undefined || m[1].includes(`reason="${reason}"`))) n += Number(m[2]);
  }
  return n;
}
export const get = (path: string, ...lines: string[]) => ["GET " + path + " HTTP/1.1", "Host: gw", `Authorization: Bearer ${rig.token}`, ...lines].join("\r\n") + "\r\n\r\n";
export const json = (a: KeptAnswer) => JSON.parse(a.body);

/** One request on a connection of its own: its answer. */
export async function answerOf(gw: string, request: string, head = false): Promise<KeptAnswer> {
  const c = await KeepAliveClient.open(gw);
  try {
    c.send(request, head);
    return await c.next();
  } finally {
    c.close();
  }
}

/**
 * The same request twice, each on a new connection: the second answer, when every cache the lane
 * needs is filled by the first (a gateway just started serves the Fastify way until its revocation
 * subscription is live: laneAnswer waits for the lane).
 */
export async function secondAnswer(gw: string, request: string, head = false): Promise<KeptAnswer> {
  await answerOf(gw, request, head);
  return answerOf(gw, request, head);
}

/**
 * The answer of `request` through the lane: asked again (each on a new connection) until the lane
 * served it. A gateway just started serves the Fastify way until its revocation subscription is live.
 */
export async function laneAnswer(gw: string, request: string): Promise<KeptAnswer> {
  for (let i = 0; i < 50; i++) {
    const before = await served(gw);
    const a = await answerOf(gw, request);
    if ((await served(gw)) > before) return a;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the lane never served it");
}

/** `paths` known to the gateway (routing cache, credentials): a request of each, answered the Fastify way. */
export const warm = async (gw: string, ...paths: string[]) => {
  for (const p of paths) await answerOf(gw, get(p));
};

/** Names in order, values but those that differ by request (its id, the time, the rate-limit count). */
export const shape = (a: KeptAnswer) => ({ status: a.status, lines: a.lines.map(([n, v]) => [n, /^(x-request-id|date|x-ratelimit-remaining|x-ratelimit-reset)$/i.test(n) ? "*" : v]) });

