/**
 * Gateway overhead benchmark: `npx tsx bench/gateway.ts`
 *
 * Starts PostgreSQL + Redis (tests/harness), user-management and api-gateway on loopback (each
 * its own process via `tsx services/src/main.ts <name>`, like production containers, logging at
 * info, the production level, to /dev/null), registers
 * and logs in a user, then uses autocannon (in this process) to measure
 *   1. direct:  GET user-management /me with trusted identity headers (what the gateway sends)
 *   2. gateway: GET api-gateway /api/users/me with the Bearer token (JWT verify, Redis rate limit
 *      with a high limit, proxy to the same upstream)
 *   3. floor:   the same through bench/lib/bare-proxy.ts (node:http + undici, nothing else): the
 *      least any Node proxy costs here, so the gateway's figures can be read against it
 *   4. nginx:   the same through Nginx (bench/lib/nginx-proxy.ts, when /usr/sbin/nginx exists): the
 *      floor of a proxy that is not Node, no authentication, no rate limit
 *   5. nginx + auth: the same Nginx asking a bare node:http authoriser (bench/lib/bare-auth.ts) by
 *      auth_request for every request, uncached, and sending the identity it answers: the floor of
 *      a design where Nginx proxies and Node only decides who passes
 *   6. nginx + gateway authoriser: the same Nginx asking bench/lib/gateway-authoriser.ts, the
 *      gateway's own decision (route, cached authentication, per-IP cap, per-user rate limit,
 *      scopes: the gateway's code) on a bare node:http listener, for /api/users/me with the Bearer
 *      token: that design's floor with the real decision in it (no access line, usage event or metrics)
 * and prints throughput and latency percentiles, and each process's CPU time per request, user +
 * system (from /proc, so it holds on a loaded machine too; the bench process is autocannon). Each target first gets an unmeasured warm-up of
 * BENCH_WARMUP_S (default 3) so the measured runs see JIT-compiled code, not the compiler. Then
 * BENCH_ROUNDS (default 3) rounds each measure the targets in turn; the summary gives the median
 * and range over the rounds, each share of direct taken against the direct run of its own round
 * (one run alone swung 50-71 % on a quiet machine, 2026-12-01).
 * Env: BENCH_DURATION_S (default 10), BENCH_CONNECTIONS (default 32), BENCH_WARMUP_S, BENCH_ROUNDS;
 * BENCH_GATEWAY_ENV, a JSON object added to the gateway's environment, to measure one setting's cost
 * (e.g. '{"LOG_LEVEL":"warn"}': no access line; '{"GATEWAY_FAST_LANE":"false"}': no fast lane);
 * BENCH_TARGETS, the target keys to measure besides direct (e.g. "gateway,raw"; default all), and
 * "gatewayOff" (never by default): a second gateway, the same environment with GATEWAY_FAST_LANE
 * inverted (the lane on by default: the gateway without it), measured in the same rounds (the fast lane on and off compared under the same load);
 * "gatewayBase" with BENCH_BASELINE_DIR=<another checkout>: that checkout's gateway, the same environment, in the same rounds
 * (a change against its baseline under the same load), with the gateway's CPU per request over it round by round;
 * BENCH_BASE_ENV, a JSON object added to that baseline gateway's environment only (BENCH_BASELINE_DIR=. and a setting
 * there: one setting against none, the same code, in the same rounds); BENCH_GATEWAY_NODE_ARGS, node options for the
 * gateway alone (V8's flags NODE_OPTIONS refuses: e.g. "--single-threaded-gc" against a baseline without).
 */
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { join } from "node:path";
import autocannon from "autocannon";
import { runPostgresMigrations } from "../services/src/migrations";
import { freePort, startPostgres, startRedis, pg } from "../tests/harness";
import { nginxAvailable, startNginxProxy, type NginxProxy } from "./lib/nginx-proxy";
import { cpuTimes, startServiceProcess, stopServiceProcess, type ServiceProcess } from "./lib/service-process";
import { median } from "./lib/stats";

const duration = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const warmup = Number(process.env.BENCH_WARMUP_S ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

interface Measured {
  result: autocannon.Result;
  /** CPU time per request of each process (µs), user and system. */
  cpu: Record<string, { user: number; sys: number }>;
}

/** Every PostgreSQL migration, as the platform runs them (user-management's tables have several). */
async function migrate(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  await runPostgresMigrations(pool);
  await pool.end();
}

function run(title: string, url: string, headers: Record<string, string>, seconds = duration): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ title, url, headers, connections, duration: seconds, pipelining: 1 }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const children: ServiceProcess[] = [];
const pids: Record<string, number> = {};

/** A bench helper process (bench/lib/<script>.ts) on a free port, its environment plus PORT. */
async function startBenchProcess(name: string, script: string, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "lib", `${script}.ts`)], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push({ name, url: `http://127.0.0.1:${port}`, pid: child.pid!, child });
  pids[name] = child.pid!;
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    child.stdout!.once("data", () => resolve());
  });
  return `http://127.0.0.1:${port}`;
}

/** The api-gateway of another checkout (`dir`: its services/src/main.ts), as startServiceProcess starts one. */
async function startBaselineGateway(dir: string, env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join(dir, "services", "src", "main.ts"), "api-gateway"], {
    env: { ...process.env, LOG_LEVEL: "info", ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`the baseline gateway exited with ${child.exitCode}`);
    if (await fetch(`${url}/health`).then((r) => r.ok, () => false)) return { name: "api-gateway-base", url, pid: child.pid!, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  throw new Error("the baseline gateway did not become healthy");
}

async function startService(name: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<string> {
  // At the production log level (info: one access line per request), the lines discarded.
  const p = await startServiceProcess(name, env, { logs: "discard", nodeArgs });
  children.push(p);
  pids[name] = p.pid;
  return p.url;
}

async function main() {
  let nginx: NginxProxy | undefined;
  let nginxAuth: NginxProxy | undefined;
  let nginxGw: NginxProxy | undefined;
  const postgres = await startPostgres();
  const redis = await startRedis({ persistent: false });
  const JWT_SECRET = randomBytes(64).toString("hex");
  try {
    await migrate(postgres.url);
    const env = { POSTGRES_URL: postgres.url, DRAGONFLY_URL: redis.url, JWT_SECRET };
    const umUrl = await startService("user-management", env);
    const gwEnv: Record<string, string> = {
      DRAGONFLY_URL: redis.url,
      JWT_SECRET,
      SERVICE_USER_MANAGEMENT_URL: umUrl,
      // The most the gateway takes (1,000,000 in its shortest window but ten): 100,000 a second, far above the bench.
      RATE_LIMIT_MAX_REQUESTS: "1000000",
      RATE_LIMIT_WINDOW_MS: "10000",
      ...(JSON.parse(process.env.BENCH_GATEWAY_ENV ?? "{}") as Record<string, string>),
    };
    const gwUrl = await startService("api-gateway", gwEnv, (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean));
    // "gatewayOff" in BENCH_TARGETS: a second gateway with the fast lane the other way (GATEWAY_FAST_LANE's default is true:
    // without the variable, "gatewayOff" is the gateway without the lane).
    const laneOn = gwEnv.GATEWAY_FAST_LANE !== "false";
    let gwOffUrl: string | undefined;
    if (process.env.BENCH_TARGETS?.split(",").some((k) => k.trim() === "gatewayOff")) {
      const p = await startServiceProcess("api-gateway", { ...gwEnv, GATEWAY_FAST_LANE: laneOn ? "false" : "true" }, { logs: "discard" });
      children.push(p);
      pids["api-gateway-2"] = p.pid;
      gwOffUrl = p.url;
    }

    // BENCH_BASELINE_DIR=<another checkout> with "gatewayBase" in BENCH_TARGETS: its gateway, the same environment,
    // measured in the same rounds (a change against its baseline under the same load: a shared host's load swings
    // more between two runs than most changes move the figure).
    let gwBaseUrl: string | undefined;
    const baselineDir = process.env.BENCH_BASELINE_DIR;
    if (baselineDir && process.env.BENCH_TARGETS?.split(",").some((k) => k.trim() === "gatewayBase")) {
      const p = await startBaselineGateway(baselineDir, { ...gwEnv, ...(JSON.parse(process.env.BENCH_BASE_ENV ?? "{}") as Record<string, string>) });
      children.push(p);
      pids["api-gateway-base"] = p.pid;
      gwBaseUrl = p.url;
    }

    const email = `bench-${randomBytes(4).toString("hex")}@example.com`;
    const password = "benchmark password 1";
    const post = (path: string, body: unknown) =>
      fetch(`${gwUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
    const reg = await post("/api/users/register", { email, password });
    const login = await post("/api/users/login", { email, password });
    const token: string = login.accessToken;
    if (!token) throw new Error(`login through the gateway failed: ${JSON.stringify(login)} (register: ${JSON.stringify(reg)})`);
    const check = await fetch(`${gwUrl}/api/users/me`, { headers: { authorization: `Bearer ${token}` } });
    if (check.status !== 200) throw new Error(`gateway /me answered ${check.status}: ${await check.text()}`);

    const { loadavg, cpus } = await import("node:os");
    console.log(
      `node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${connections} connections, ` +
        `${rounds} round(s) of ${duration} s per target after ${warmup} s of warm-up each, loopback`,
    );
    const measure = async (title: string, url: string, headers: Record<string, string>): Promise<Measured> => {
      const all = { ...pids, autocannon: process.pid };
      const before = Object.fromEntries(Object.entries(all).map(([n, pid]) => [n, cpuTimes(pid)]));
      const result = await run(title, url, headers);
      const perRequest = (s: number) => Math.round((s / result.requests.total) * 1e6);
      const cpu = Object.fromEntries(
        Object.entries(all).map(([n, pid]) => {
          const { user, sys } = cpuTimes(pid);
          return [n, { user: perRequest(user - before[n].user), sys: perRequest(sys - before[n].sys) }];
        }),
      );
      return { result, cpu };
    };
    const identity = { "x-user-id": reg.user.id, "x-user-role": "trader", "x-auth-method": "jwt" };
    const bareUrl = await startBenchProcess("bare-proxy", "bare-proxy", { UPSTREAM_URL: umUrl, UPSTREAM_PATH: "/me", IDENTITY: JSON.stringify(identity) });
    const rawUrl = await startBenchProcess("raw-proxy", "raw-proxy", { UPSTREAM_URL: umUrl, UPSTREAM_PATH: "/me", IDENTITY: JSON.stringify(identity) });
    if (nginxAvailable()) {
      nginx = await startNginxProxy(umUrl, "/me", identity);
      // The worker does the proxying; the master only waits on it.
      pids.nginx = nginx.pids[1] ?? nginx.pids[0];
      const authUrl = await startBenchProcess("bare-auth", "bare-auth", { IDENTITY: JSON.stringify(identity) });
      nginxAuth = await startNginxProxy(umUrl, "/me", identity, authUrl);
      pids["nginx-auth"] = nginxAuth.pids[1] ?? nginxAuth.pids[0];
      const gwAuthUrl = await startBenchProcess("gateway-authoriser", "gateway-authoriser", {
        DRAGONFLY_URL: redis.url,
        JWT_SECRET,
        SERVICE_USER_MANAGEMENT_URL: umUrl,
        RATE_LIMIT_MAX_REQUESTS: "1000000",
        RATE_LIMIT_WINDOW_MS: "10000",
      });
      nginxGw = await startNginxProxy(umUrl, "/", identity, gwAuthUrl, "/api/users/");
      pids["nginx-gw"] = nginxGw.pids[1] ?? nginxGw.pids[0];
      const viaAuthoriser = await fetch(`${nginxGw.url}/api/users/me`, { headers: { authorization: `Bearer ${token}` } });
      if (viaAuthoriser.status !== 200) throw new Error(`nginx + gateway authoriser /api/users/me answered ${viaAuthoriser.status}: ${await viaAuthoriser.text()}`);
    }
    const allTargets: { key: string; title: string; url: string; headers: Record<string, string>; proxy?: string; authoriser?: string }[] = [
      { key: "direct", title: "direct: user-management GET /me", url: `${umUrl}/me`, headers: identity },
      { key: "gateway", title: "gateway: GET /api/users/me (JWT, rate limit, proxy)", url: `${gwUrl}/api/users/me`, headers: { authorization: `Bearer ${token}` }, proxy: "api-gateway" },
      ...(gwOffUrl
        ? [{ key: "gatewayOff", title: `gateway, fast lane ${laneOn ? "off" : "on"}: GET /api/users/me`, url: `${gwOffUrl}/api/users/me`, headers: { authorization: `Bearer ${token}` }, proxy: "api-gateway-2" }]
        : []),
      ...(gwBaseUrl ? [{ key: "gatewayBase", title: `gateway of ${baselineDir}: GET /api/users/me`, url: `${gwBaseUrl}/api/users/me`, headers: { authorization: `Bearer ${token}` }, proxy: "api-gateway-base" }] : []),
      { key: "floor", title: "floor: bare node:http + undici proxy", url: `${bareUrl}/`, headers: {}, proxy: "bare-proxy" },
      { key: "raw", title: "raw floor: node:net + llhttp proxy", url: `${rawUrl}/`, headers: {}, proxy: "raw-proxy" },
      ...(nginx ? [{ key: "nginx", title: "nginx floor: Nginx proxy, one worker", url: `${nginx.url}/`, headers: {}, proxy: "nginx" }] : []),
      ...(nginxAuth ? [{ key: "nginxAuth", title: "nginx + auth floor: auth_request to node:http", url: `${nginxAuth.url}/`, headers: {}, proxy: "nginx-auth", authoriser: "bare-auth" }] : []),
      ...(nginxGw
        ? [{ key: "nginxGw", title: "nginx + gateway authoriser: /api/users/me", url: `${nginxGw.url}/api/users/me`, headers: { authorization: `Bearer ${token}` }, proxy: "nginx-gw", authoriser: "gateway-authoriser" }]
        : []),
    ];
    // BENCH_TARGETS: the keys to measure (direct is always measured: every share is taken against it).
    const only = process.env.BENCH_TARGETS?.split(",").map((k) => k.trim());
    const targets = allTargets.filter((t) => (!only && t.key !== "gatewayOff") || t.key === "direct" || only?.includes(t.key));
    // Each target warmed once, then all measured in turn, round after round: a ratio is taken
    // within its round, so a load that drifts over the run shifts both sides of it alike. Each round
    // starts one target later than the one before (round 2: the second target first, direct last): in the
    // fixed order a change measured right after direct beat the baseline in 11 rounds of 13, and the same
    // change measured after the baseline in 2 of 5 (session 63, docs/measurements/gateway.md).
    for (const t of targets) if (warmup > 0) await run(`${t.title} (warm-up)`, t.url, t.headers, warmup);
    const measured: Record<string, Measured[]> = Object.fromEntries(targets.map((t) => [t.key, []]));
    const row = (name: string, r: autocannon.Result) =>
      `${name.padEnd(52)} ${String(Math.round(r.requests.average)).padStart(8)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   max ${String(r.latency.max).padStart(5)} ms   non-2xx ${r.non2xx}   errors ${r.errors}`;
    const us = (c: { user: number; sys: number }) => `${c.user + c.sys} (user ${c.user} + sys ${c.sys})`;
    for (let round = 1; round <= rounds; round++) {
      console.log(`round ${round} (load average ${loadavg()[0].toFixed(1)}):`);
      for (const t of targets.map((_, i) => targets[(i + round - 1) % targets.length])) {
        const m = await measure(t.title, t.url, t.headers);
        measured[t.key].push(m);
        console.log(`  ${row(t.title, m.result)}`);
        const proxyCpu = (t.proxy ? `${t.proxy} ${us(m.cpu[t.proxy])}; ` : "") + (t.authoriser ? `${t.authoriser} ${us(m.cpu[t.authoriser])}; ` : "");
        console.log(`    CPU per request (µs): ${proxyCpu}user-management ${us(m.cpu["user-management"])}; autocannon ${us(m.cpu.autocannon)}`);
      }
      const d = measured.direct[round - 1].result.requests.average;
      const share = (k: string) => (measured[k] ? `${((100 * measured[k][round - 1].result.requests.average) / d).toFixed(0)} %` : "not measured");
      console.log(`  gateway ${share("gateway")} of direct throughput${gwOffUrl ? `, the other gateway ${share("gatewayOff")}` : ""}, floor ${share("floor")}, raw floor ${share("raw")}${nginx ? `, nginx floor ${share("nginx")}` : ""}${nginxAuth ? `, nginx + auth floor ${share("nginxAuth")}` : ""}${nginxGw ? `, nginx + gateway authoriser ${share("nginxGw")}` : ""}`);
    }
    const shares = (k: string) => measured[k].map((m, i) => (100 * m.result.requests.average) / measured.direct[i].result.requests.average);
    const cpuOf = (k: string, proc: string) => measured[k].map((m) => m.cpu[proc].user + m.cpu[proc].sys);
    const range = (xs: number[], unit: string) => `median ${median(xs).toFixed(0)}${unit} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
    console.log(`over ${rounds} round(s), each share against the direct run of its own round:`);
    const measuredKey = (k: string) => measured[k] !== undefined;
    if (measuredKey("gateway")) console.log(`  gateway: ${range(shares("gateway"), " %")} of direct throughput; ${range(cpuOf("gateway", "api-gateway"), " µs")} of gateway CPU per request`);
    if (measuredKey("gatewayOff")) console.log(`  gateway, fast lane ${laneOn ? "off" : "on"}: ${range(shares("gatewayOff"), " %")} of direct throughput; ${range(cpuOf("gatewayOff", "api-gateway-2"), " µs")} of gateway CPU per request`);
    if (measuredKey("gatewayBase") && measuredKey("gateway")) {
      const ratios = measured.gateway.map((m, i) => (m.cpu["api-gateway"].user + m.cpu["api-gateway"].sys) / (measured.gatewayBase[i].cpu["api-gateway-base"].user + measured.gatewayBase[i].cpu["api-gateway-base"].sys));
      console.log(`  gateway of ${baselineDir}: ${range(shares("gatewayBase"), " %")} of direct throughput; ${range(cpuOf("gatewayBase", "api-gateway-base"), " µs")} of gateway CPU per request; the gateway's CPU per request over it, round by round: ${ratios.map((r) => r.toFixed(2)).join(", ")}`);
    }
    if (measuredKey("floor")) console.log(`  floor:   ${range(shares("floor"), " %")} of direct throughput; ${range(cpuOf("floor", "bare-proxy"), " µs")} of floor proxy CPU per request`);
    if (measuredKey("raw")) console.log(`  raw floor: ${range(shares("raw"), " %")} of direct throughput; ${range(cpuOf("raw", "raw-proxy"), " µs")} of raw proxy CPU per request`);
    if (nginx && measuredKey("nginx")) console.log(`  nginx:   ${range(shares("nginx"), " %")} of direct throughput; ${range(cpuOf("nginx", "nginx"), " µs")} of Nginx worker CPU per request`);
    if (nginxAuth && measuredKey("nginxAuth"))
      console.log(
        `  nginx + auth: ${range(shares("nginxAuth"), " %")} of direct throughput; ${range(cpuOf("nginxAuth", "nginx-auth"), " µs")} of Nginx worker and ${range(cpuOf("nginxAuth", "bare-auth"), " µs")} of authoriser CPU per request`,
      );
    if (nginxGw && measuredKey("nginxGw"))
      console.log(
        `  nginx + gateway authoriser: ${range(shares("nginxGw"), " %")} of direct throughput; ${range(cpuOf("nginxGw", "nginx-gw"), " µs")} of Nginx worker and ${range(cpuOf("nginxGw", "gateway-authoriser"), " µs")} of authoriser CPU per request`,
      );
    console.log(`  direct:  ${range(measured.direct.map((m) => m.result.requests.average), " req/s")}; ${range(cpuOf("direct", "user-management"), " µs")} of user-management CPU per request`);
    // What the gateway's fast lane took (GATEWAY_FAST_LANE): requests it served, connections it handed to Fastify.
    const lane = (await (await fetch(`${gwUrl}/metrics`)).text()).split("\n").filter((l) => l.startsWith("gateway_fast_lane_total"));
    console.log(`  gateway fast lane${gwOffUrl ? ` (the first gateway, lane ${laneOn ? "on" : "off"})` : ""}: ${lane.length ? lane.map((l) => l.replace(/^gateway_fast_lane_total/, "")).join("; ") : "off"}`);
  } finally {
    await Promise.all(children.map((c) => stopServiceProcess(c)));
    await nginx?.stop();
    await nginxAuth?.stop();
    await nginxGw?.stop();
    await redis.stop();
    await postgres.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
