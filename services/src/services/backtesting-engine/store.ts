/**
 * Data access: run metadata and job results in PostgreSQL, curves and trades in ClickHouse. Rows
 * in ClickHouse carry the attempt that wrote them; reads join on the attempt PostgreSQL recorded,
 * so rows of a killed or superseded attempt are never returned (ClickHouse has no transactions to
 * roll them back with).
 */
import type { ClickHouseKitClient, PostgresClient } from "../../kit";
import { envelopeIndices } from "../../backtest";
import type { JobOutcome } from "./executor";
import type { ClaimedJob } from "./queue";

export interface RunRow {
  id: string;
  owner_id: string;
  strategy: string;
  kind: string;
  status: string;
  total_jobs: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}
export interface JobRow {
  idx: number;
  status: string;
  attempts: number;
  progress: number;
  result_attempt: number | null;
  result: StoredResult | null;
  error: unknown;
}
export type StoredResult = Omit<JobOutcome, "curve" | "trades"> & { trades: number };

export class ResultStore {
  constructor(private readonly pg: PostgresClient, private readonly ch: ClickHouseKitClient, private readonly curvePoints: number, private readonly maxTrades: number) {}

  /** Writes the attempt's curve (downsampled, min/max kept) and, for runs and walk-forward folds, its trades. */
  async writeSeries(job: ClaimedJob, outcome: JobOutcome): Promise<void> {
    const { time, equity, drawdown } = outcome.curve;
    const base = { run_id: job.runId, job: job.idx, attempt: job.attempt };
    const keep = envelopeIndices(equity, Math.max(1, Math.floor(this.curvePoints / 2)));
    await this.ch.insert("bt_curves", keep.map((i, seq) => ({ ...base, seq, time_ms: time[i], equity: equity[i], drawdown: drawdown[i] })));
    if (job.spec.kind === "sweep") return;
    const trades = outcome.trades.slice(0, this.maxTrades);
    for (let k = 0; k < trades.length; k += 50_000)
      await this.ch.insert("bt_trades", trades.slice(k, k + 50_000).map((t, j) => ({
        ...base, seq: k + j, symbol: t.symbol, direction: t.direction, entry_time_ms: t.entryTime, exit_time_ms: t.exitTime,
        quantity: t.quantity, entry_price: t.entryPrice, exit_price: t.exitPrice, pnl: t.pnl, fees: t.fees,
      })));
  }

  async run(id: string, ownerId: string): Promise<RunRow | undefined> {
    const r = await this.pg.query<RunRow>(`SELECT id, owner_id, strategy, kind, status, total_jobs, created_at, started_at, finished_at FROM bt_runs WHERE id = $1 AND owner_id = $2`, [id, ownerId]);
    return r.rows[0];
  }

  async progress(id: string): Promise<{ queued: number; running: number; succeeded: number; failed: number; cancelled: number; fraction: number }> {
    const r = await this.pg.query<{ status: string; n: string; p: number }>(`SELECT status, count(*) AS n, sum(progress) AS p FROM bt_jobs WHERE run_id = $1 GROUP BY status`, [id]);
    const out = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, fraction: 0 };
    let total = 0;
    let done = 0;
    for (const row of r.rows) {
      const n = Number(row.n);
      out[row.status as "queued"] = n;
      total += n;
      done += row.status === "running" ? Number(row.p) : row.status === "queued" ? 0 : n;
    }
    out.fraction = total > 0 ? Math.round((done / total) * 10_000) / 10_000 : 0;
    return out;
  }

  async jobs(id: string, limit: number, offset: number, bySharpe: boolean): Promise<JobRow[]> {
    const order = bySharpe ? `(result->'metrics'->>'sharpe')::float8 DESC NULLS LAST, idx` : "idx";
    const r = await this.pg.query<JobRow>(
      `SELECT idx, status, attempts, progress, result_attempt, result, error FROM bt_jobs WHERE run_id = $1 ORDER BY ${order} LIMIT $2 OFFSET $3`,
      [id, limit, offset],
    );
    return r.rows;
  }

  async job(id: string, idx: number): Promise<JobRow | undefined> {
    const r = await this.pg.query<JobRow>(`SELECT idx, status, attempts, progress, result_attempt, result, error FROM bt_jobs WHERE run_id = $1 AND idx = $2`, [id, idx]);
    return r.rows[0];
  }

  /** The succeeded job with the best Sharpe ratio (the run's own job for a single run). */
  async bestJob(id: string): Promise<number | undefined> {
    const r = await this.pg.query<{ idx: number }>(
      `SELECT idx FROM bt_jobs WHERE run_id = $1 AND status = 'succeeded' ORDER BY (result->'metrics'->>'sharpe')::float8 DESC NULLS LAST, idx LIMIT 1`,
      [id],
    );
    return r.rows[0]?.idx;
  }

  async curve(id: string, idx: number, attempt: number): Promise<{ time: number[]; equity: number[]; drawdown: number[] }> {
    const rows = await this.ch.query<{ time_ms: string | number; equity: number; drawdown: number }>(
      `SELECT time_ms, equity, drawdown FROM bt_curves WHERE run_id = {run:String} AND job = {job:UInt32} AND attempt = {attempt:UInt32} ORDER BY seq`,
      { run: id, job: idx, attempt },
    );
    return { time: rows.map((r) => Number(r.time_ms)), equity: rows.map((r) => Number(r.equity)), drawdown: rows.map((r) => Number(r.drawdown)) };
  }

  async trades(id: string, idx: number, attempt: number, limit: number, offset: number): Promise<unknown[]> {
    const rows = await this.ch.query<Record<string, string | number>>(
      `SELECT symbol, direction, entry_time_ms, exit_time_ms, quantity, entry_price, exit_price, pnl, fees FROM bt_trades
       WHERE run_id = {run:String} AND job = {job:UInt32} AND attempt = {attempt:UInt32} ORDER BY seq LIMIT {limit:UInt32} OFFSET {offset:UInt32}`,
      { run: id, job: idx, attempt, limit, offset },
    );
    return rows.map((r) => ({
      symbol: r.symbol, direction: r.direction, entryTime: new Date(Number(r.entry_time_ms)).toISOString(), exitTime: new Date(Number(r.exit_time_ms)).toISOString(),
      quantity: Number(r.quantity), entryPrice: Number(r.entry_price), exitPrice: Number(r.exit_price), pnl: Number(r.pnl), fees: Number(r.fees),
    }));
  }
}
