/**
 * database-service's rules, no I/O: how probe results become a datastore report (a failing
 * required datastore fails the whole report, a failing optional one degrades it), and how applied
 * migrations compare with the migration files shipped in the image.
 */
import type { Datastore } from "../../catalog";

export interface DatastoreHealth {
  status: "enabled" | "disabled" | "failing";
  required: boolean;
  latencyMs?: number;
  error?: string;
}

export type DatastoreHealthMap = Partial<Record<Datastore, DatastoreHealth>>;

export interface DatastoreReport {
  status: "ok" | "degraded" | "failing";
  checkedAt: string;
  datastores: DatastoreHealthMap;
}

export function datastoreReport(datastores: DatastoreHealthMap, now = new Date()): DatastoreReport {
  const all = Object.values(datastores);
  const failingRequired = all.some((h) => h.status === "failing" && h.required);
  const failingAny = all.some((h) => h.status === "failing");
  return { status: failingRequired ? "failing" : failingAny ? "degraded" : "ok", checkedAt: now.toISOString(), datastores };
}

/** The gauge value of a probe: its latency, -1 when failing; nothing for a disabled datastore. */
export function probeGaugeValue(h: DatastoreHealth): number | undefined {
  if (h.status === "disabled") return undefined;
  return h.status === "failing" ? -1 : h.latencyMs ?? 0;
}

export const roundMs = (ms: number, decimals = 2) => Math.round(ms * 10 ** decimals) / 10 ** decimals;

export interface AppliedMigration {
  file: string;
  checksum: string;
  appliedAt: Date;
  durationMs: number;
}

/** Applied PostgreSQL migrations (with whether the file still has the checksum applied) and the pending files. */
export function postgresMigrationStatus(applied: AppliedMigration[], files: { file: string; checksum: string }[]) {
  const appliedFiles = new Set(applied.map((r) => r.file));
  return {
    applied: applied.map((r) => ({
      file: r.file,
      appliedAt: r.appliedAt,
      durationMs: r.durationMs,
      checksumMatches: files.find((f) => f.file === r.file)?.checksum === r.checksum,
    })),
    pending: files.filter((f) => !appliedFiles.has(f.file)).map((f) => f.file),
  };
}

/** ClickHouse tracks applied files only (no checksums on 18.16's side of the kit). */
export function clickhouseMigrationStatus(appliedFiles: string[], files: { file: string }[]) {
  const done = new Set(appliedFiles);
  return { applied: [...done].sort(), pending: files.filter((f) => !done.has(f.file)).map((f) => f.file) };
}
