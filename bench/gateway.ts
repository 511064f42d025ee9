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
 * and prints throughput and latency percentiles, and each process's CPU time per request, user +
 * system (from /proc, so it holds on a loaded machine too; the bench process is autocannon). Each target first gets an unmeasured warm-up of
 * BENCH_WARMUP_S (default 3) so the measured run sees JIT-compiled code, not the compiler.
 * Env: BENCH_DURATION_S (default 10), BENCH_CONNECTIONS (default 32), BENCH_WARMUP_S.
 */
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { join } from "node:path";
import autocannon from "autocannon";
import { runPostgresMigrations } from "../services/src/migrations";
import { freePort, startPostgres, startRedis, pg } from "../tests/harness";
import { cpuTimes, startServiceProcess, stopServiceProcess, type ServiceProcess } from "./lib/service-process";

const duration = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const warmup = Number(process.env.BENCH_WARMUP_S ?? 3);

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

/** The floor: bench/lib/bare-proxy.ts in front of `upstream`, as its own process. */
async function startBareProxy(upstream: string, path: string, identity: Record<string, string>): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "lib", "bare-proxy.ts")], {
    env: { ...process.env, PORT: String(port), UPSTREAM_URL: upstream, UPSTREAM_PATH: path, IDENTITY: JSON.stringify(identity) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push({ name: "bare-proxy", url: `http://127.0.0.1:${port}`, pid: child.pid!, child });
  pids["bare-proxy"] = child.pid!;
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`bare-proxy exited with ${code}`)));
    child.stdout!.once("data", () => resolve());
  });
  return `http://127.0.0.1:${port}`;
}

async function startService(name: string, env: Record<string, string>): Promise<string> {
  // At the production log level (info: one access line per request), the lines discarded.
  const p = await startServiceProcess(name, env, { logs: "discard" });
  children.push(p);
  pids[name] = p.pid;
  return p.url;
}

async function main() {
  const postgres = await startPostgres();
  const redis = await startRedis({ persistent: false });
  const JWT_SECRET = randomBytes(64).toString("hex");
  try {
    await migrate(postgres.url);
    const env = { POSTGRES_URL: postgres.url, DRAGONFLY_URL: redis.url, JWT_SECRET };
    const umUrl = await startService("user-management", env);
    const gwUrl = await startService("api-gateway", {
      DRAGONFLY_URL: redis.url,
      JWT_SECRET,
      SERVICE_USER_MANAGEMENT_URL: umUrl,
      RATE_LIMIT_MAX_REQUESTS: "100000000",
      RATE_LIMIT_WINDOW_MS: "60000",
    });

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
    console.log(`node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${connections} connections, ${duration} s each after ${warmup} s of warm-up, loopback`);
    const measure = async (title: string, url: string, headers: Record<string, string>) => {
      if (warmup > 0) await run(`${title} (warm-up)`, url, headers, warmup);
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
    const d = await measure("direct user-management GET /me", `${umUrl}/me`, identity);
    const g = await measure("gateway GET /api/users/me (JWT + rate limit + proxy)", `${gwUrl}/api/users/me`, { authorization: `Bearer ${token}` });
    const bareUrl = await startBareProxy(umUrl, "/me", identity);
    const b = await measure("floor: bare node:http + undici proxy", `${bareUrl}/`, {});

    const row = (name: string, r: autocannon.Result) =>
      `${name.padEnd(52)} ${String(Math.round(r.requests.average)).padStart(8)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   max ${String(r.latency.max).padStart(5)} ms   non-2xx ${r.non2xx}   errors ${r.errors}`;
    const us = (c: { user: number; sys: number }) => `${c.user + c.sys} (user ${c.user} + sys ${c.sys})`;
    console.log(row("direct: user-management GET /me", d.result));
    console.log(row("gateway: GET /api/users/me (JWT, rate limit, proxy)", g.result));
    console.log(row("floor: bare node:http + undici proxy", b.result));
    console.log("CPU per request (µs):");
    console.log(`  direct:  user-management ${us(d.cpu["user-management"])}; autocannon ${us(d.cpu.autocannon)}`);
    console.log(`  gateway: api-gateway ${us(g.cpu["api-gateway"])}; user-management ${us(g.cpu["user-management"])}; autocannon ${us(g.cpu.autocannon)}`);
    console.log(`  floor:   bare proxy ${us(b.cpu["bare-proxy"])}; user-management ${us(b.cpu["user-management"])}; autocannon ${us(b.cpu.autocannon)}`);
    const ratio = (r: autocannon.Result) => `${((100 * r.requests.average) / d.result.requests.average).toFixed(0)}% of direct throughput`;
    console.log(`gateway: ${ratio(g.result)}, +${(g.result.latency.p99 - d.result.latency.p99).toFixed(1)} ms p99; floor: ${ratio(b.result)}`);
  } finally {
    await Promise.all(children.map((c) => stopServiceProcess(c)));
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
