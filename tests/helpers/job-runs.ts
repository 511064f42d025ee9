/**
 * A backup job's row in `scheduled_job_runs` (kit scheduled-job-runs.ts), and the check that
 * database-service, which owns the schema, exports it on /metrics for the per-job alerts: the
 * PostgreSQL and the ClickHouse backups record their runs there from their own pods.
 */
import { expect } from "vitest";
import { findService } from "../../services/src/catalog";
import { createService, type Service } from "../../services/src/kit";
import databaseService from "../../services/src/services/database-service";
import { pg } from "../harness";

export type JobRunRow = { last_started_at: Date | null; last_succeeded_at: Date | null; last_failed_at: Date | null; last_failure_code: string | null };

/** One statement on a connection of its own, closed after it. */
export async function queryOnce<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** `job`'s row in scheduled_job_runs (undefined before its first run). */
export async function jobRunRow(url: string, job: string): Promise<JobRunRow | undefined> {
  return (await queryOnce<JobRunRow>(url, "SELECT * FROM scheduled_job_runs WHERE job = $1", [job]))[0];
}

/** database-service's /metrics gives `job`'s last start, success and failure (with `failureCode`) as `row` holds them. */
export async function expectJobRunsExported(env: Record<string, string>, job: string, row: JobRunRow, failureCode: string): Promise<void> {
  expect(findService("database-service")!.exportsJobRuns).toContain(job);
  const svc: Service = await createService(databaseService, { env: { ...env, LOG_LEVEL: "silent" }, defaultMetrics: false });
  try {
    const res = await svc.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    const value = (name: string) => res.body.match(new RegExp(`^${name}\\{([^}]*scheduled_job="${job}"[^}]*)\\} (\\S+)$`, "m"));
    expect(Number(value("scheduled_job_last_start_timestamp_seconds")?.[2])).toBe(row.last_started_at!.getTime() / 1000);
    expect(Number(value("scheduled_job_last_success_timestamp_seconds")?.[2])).toBe(row.last_succeeded_at!.getTime() / 1000);
    const failure = value("scheduled_job_last_failure_timestamp_seconds");
    expect(failure?.[1]).toContain(`code="${failureCode}"`);
    expect(Number(failure?.[2])).toBe(row.last_failed_at!.getTime() / 1000);
  } finally {
    await svc.close();
  }
}
