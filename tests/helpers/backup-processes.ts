/**
 * What the backup tests (tests/services/postgres-backup.test.ts, clickhouse-backup.test.ts) do with
 * the processes they start: a backup's whole process group killed as a container's end kills it,
 * and heartbeat bounds short enough for a test (a wait that fails naming what hung: patience.ts within).
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

/** Whether no process is left in `child`'s process group (it was spawned `detached`): its background loops ended too. */
export function groupGone(child: ChildProcess): boolean {
  try {
    process.kill(-child.pid!, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}
