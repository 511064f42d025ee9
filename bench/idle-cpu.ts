/**
 * What the order path's services burn with nothing to do (npx tsx bench/idle-cpu.ts [seconds]
 * [services]): starts private PostgreSQL, Redis, Kafka and ClickHouse, applies the migrations, runs
 * each service in its own Node process (as bench/trading.ts does), lets them settle 15 s, then prints
 * the CPU ms per second of each process, of each of its threads (from /proc/<pid>/task, main thread
 * first), and of the Kafka and PostgreSQL process trees over `seconds` (default 20). An idle cost is
 * paid all day by every replica, and at a moderate order rate it is part of every order's CPU.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { startClickHouse, startKafka, startPostgres, startRedis } from "../tests/harness";
import { migrateAll } from "../tests/helpers/schemas";
import { cpuSeconds, startServiceProcess, stopServiceProcess, treeCpuSeconds } from "./lib/service-process";

const SECONDS = Number(process.argv[2] ?? 20);
const NAMES = (process.argv[3] ?? "order-management,trading-engine,portfolio-manager,data-bridge,api-gateway").split(",");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK_MS = 10; // USER_HZ: /proc's clock ticks

/** CPU ms of each thread of `pid`, by thread id. */
function threadCpuMs(pid: number): Map<string, number> {
  return new Map(
    readdirSync(`/proc/${pid}/task`).map((tid) => {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      return [tid, (Number(f[11]) + Number(f[12])) * TICK_MS];
    }),
  );
}

async function main() {
  const [postgres, redis, kafka, clickhouse] = await Promise.all([startPostgres(), startRedis(), startKafka({ readyTimeoutMs: 600_000 }), startClickHouse()]);
  const env: Record<string, string> = {
    ...postgres.env, ...redis.env, ...kafka.env, ...clickhouse.env,
    LOG_LEVEL: "error", JWT_SECRET: randomBytes(64).toString("hex"), MARKET_SUBSCRIBE: "false",
    CH_FLUSH_MS: "100", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "2000", // as bench/trading.ts
  };
  const pool = await migrateAll(env);
  const services = [];
  try {
    const urls: Record<string, string> = {};
    for (const name of NAMES) {
      const s = await startServiceProcess(name, name === "api-gateway" ? { ...env, ...urls } : env);
      services.push(s);
      urls[`SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`] = s.url;
    }
    await sleep(15_000);
    const before = services.map((s) => ({ all: cpuSeconds(s.pid), threads: threadCpuMs(s.pid) }));
    const [kafka0, postgres0] = [treeCpuSeconds(kafka.pid!), treeCpuSeconds(postgres.pid!)];
    await sleep(SECONDS * 1000);
    const perSecond = (ms: number) => (ms / SECONDS).toFixed(1);
    console.log(`idle CPU ms per second over ${SECONDS} s:`);
    services.forEach((s, i) => {
      const now = threadCpuMs(s.pid);
      const threads = [...now].map(([tid, ms]) => ms - (before[i].threads.get(tid) ?? 0)).filter((ms) => ms > 0);
      console.log(`  ${s.name} ${perSecond((cpuSeconds(s.pid) - before[i].all) * 1000)} (threads: ${threads.map(perSecond).join(", ")})`);
    });
    console.log(`  kafka ${perSecond((treeCpuSeconds(kafka.pid!) - kafka0) * 1000)}, postgres ${perSecond((treeCpuSeconds(postgres.pid!) - postgres0) * 1000)}`);
  } finally {
    for (const s of services) await stopServiceProcess(s);
    await pool.end();
    await Promise.all([postgres.stop(), redis.stop(), kafka.stop(), clickhouse.stop()]);
  }
}
main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
