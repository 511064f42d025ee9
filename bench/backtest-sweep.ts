/**
 * A 200-parameter-set sweep over 1,000,000 one-minute bars through the backtesting-engine API, on
 * real PostgreSQL and ClickHouse (tests/harness), worked by REPLICAS separate service processes
 * (the deployment's replicas), progress printed while it runs:
 *
 *   npx tsx bench/backtest-sweep.ts [replicas=2] [mode=event|vectorized]
 *
 * Prints the wall time from submission to the last job's result, and per-second progress.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { freePort, pg, startClickHouse, startPostgres } from "../tests/harness";
import { createClickHouse } from "../services/src/kit/datastores";
import { CLICKHOUSE_MIGRATIONS_DIR, POSTGRES_MIGRATIONS_DIR, runClickHouseMigrations, runPostgresMigrations } from "../services/src/migrations";

const REPLICAS = Number(process.argv[2] ?? 2);
const MODE = process.argv[3] ?? "event";
const ROOT = join(__dirname, "..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const [postgres, clickhouse] = await Promise.all([startPostgres({ readyTimeoutMs: 600_000 }), startClickHouse({ readyTimeoutMs: 600_000 })]);
  const replicas: ChildProcess[] = [];
  try {
    const pool = new pg.Pool({ connectionString: postgres.url });
    await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
    const ch = createClickHouse(clickhouse.env);
    await runClickHouseMigrations(ch, { dir: CLICKHOUSE_MIGRATIONS_DIR });
    const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
    const logs = openSync(join(postgres.dir, "..", `backtest-sweep-replicas-${process.pid}.log`), "a");
    console.log(`replica logs: ${join(postgres.dir, "..", `backtest-sweep-replicas-${process.pid}.log`)}`);
    for (const port of ports)
      replicas.push(spawn(process.execPath, ["--import", "tsx", join(ROOT, "services", "src", "main.ts"), "backtesting-engine"], {
        cwd: ROOT, stdio: ["ignore", logs, logs],
        env: { ...process.env, ...postgres.env, ...clickhouse.env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", BACKTEST_POLL_MS: "200" },
      }));
    let base = `http://127.0.0.1:${ports[0]}`;
    const headers = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" };
    for (;;) {
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      await sleep(200);
    }
    // 10 fast x 20 slow windows = 200 sets, every one with fast < slow.
    const fast = Array.from({ length: 10 }, (_, i) => 5 + i);
    const slow = Array.from({ length: 20 }, (_, i) => 20 + 3 * i);
    const minutes = 1_000_000;
    const start = Date.UTC(2023, 0, 1);
    const body = {
      strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1m", mode: MODE,
      period: { start: new Date(start).toISOString(), end: new Date(start + minutes * 60_000).toISOString() },
      data: { source: "synthetic", seed: 42 }, execution: { takerFeeBps: "10", slippageBps: "2" },
      sweep: { parameters: { fast, slow } },
    };
    const t0 = Date.now();
    const sub = await fetch(`${base}/`, { method: "POST", headers, body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ id: string; jobs: number; barsPerSymbol: number }>);
    console.log(`submitted ${sub.id}: ${sub.jobs} jobs x ${sub.barsPerSymbol.toLocaleString("en")} bars, ${REPLICAS} replicas, mode ${MODE}`);
    let status = "";
    while (status !== "succeeded" && status !== "failed") {
      await sleep(1_000);
      const s = (await fetch(`${base}/${sub.id}`, { headers }).then((r) => r.json()).catch((e: Error) => {
        // A replica that died is the queue's business (its jobs return after their lease); ask another.
        console.log(`status from ${base} failed: ${e.message}; asking the next replica`);
        base = `http://127.0.0.1:${ports[(ports.indexOf(Number(new URL(base).port)) + 1) % ports.length]}`;
        return undefined;
      })) as { status: string; progress: Record<string, number> } | undefined;
      if (!s?.progress) {
        console.log(`status answer without progress: ${JSON.stringify(s).slice(0, 300)}`);
        continue;
      }
      status = s.status;
      const p = s.progress;
      console.log(`${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s  ${status.padEnd(9)} succeeded ${p.succeeded}/${sub.jobs} running ${p.running} queued ${p.queued} failed ${p.failed}  ${(p.fraction * 100).toFixed(1)} %`);
    }
    const wall = (Date.now() - t0) / 1000;
    const best = (await fetch(`${base}/${sub.id}/results?limit=1`, { headers }).then((r) => r.json())) as { jobs: Array<{ parameters: unknown; metrics: { sharpe: number; totalReturn: number } }> };
    const workers = await pool.query("SELECT worker, count(*)::int AS jobs FROM bt_jobs WHERE run_id = $1 GROUP BY worker ORDER BY worker", [sub.id]);
    console.log(`\nsweep ${status}: ${sub.jobs} parameter sets x ${sub.barsPerSymbol.toLocaleString("en")} bars in ${wall.toFixed(1)} s wall (${((sub.jobs * sub.barsPerSymbol) / wall / 1e6).toFixed(2)}M bars/s through the API)`);
    console.log(`jobs per replica: ${workers.rows.map((r) => r.jobs).join(", ")}; best: ${JSON.stringify(best.jobs[0]?.parameters)} sharpe ${best.jobs[0]?.metrics.sharpe.toFixed(2)}`);
    await pool.end();
    await ch.close();
  } finally {
    for (const r of replicas) r.kill("SIGTERM");
    await sleep(500);
    await Promise.all([postgres.stop(), clickhouse.stop()]);
  }
}

void main();
