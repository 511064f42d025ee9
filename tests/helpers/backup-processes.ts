/**
 * What the backup tests (tests/services/postgres-backup.test.ts, clickhouse-backup.test.ts) do with
 * the processes they start: a backup's whole process group killed as a container's end kills it,
 * a wait that fails naming what hung, and heartbeat bounds short enough for a test.
 */
import type { ChildProcess } from "node:child_process";
import type { BackupHeartbeat } from "../../components/data/backup";

/** Fast heartbeat bounds for the tests (production: BACKUP_HEARTBEAT). */
export const FAST_HEARTBEAT: BackupHeartbeat = { intervalSeconds: 1, staleAfterSeconds: 4 };

/** SIGKILLs `child`'s whole process group (it was spawned `detached`); a no-op once it is gone. */
export function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** `promise`, or a failure naming `what` after `ms` (so that a hang fails the test instead of timing it out). */
export const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
