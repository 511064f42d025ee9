/**
 * What the backup tests (tests/services/postgres-backup.test.ts, clickhouse-backup.test.ts) do with
 * the processes they start: a backup's whole process group killed as a container's end kills it,
 * and heartbeat bounds short enough for a test (a wait that fails naming what hung: patience.ts within).
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
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

/**
 * Counts a run recorder's turns: each check of the heartbeat follows a `sleep 1` the recorder's shell
 * starts as a child of its own (components/data/backup.ts), a new process each turn, seen in /proc.
 * A turn the polling missed (a loaded machine) is not counted: the count is never ahead of the turns.
 */
export function recorderTurns(pid: number): { started: () => number; stop: () => void } {
  const sleeps = new Set<string>();
  const read = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return ""; // gone meanwhile
    }
  };
  const look = () => {
    for (const child of read(`/proc/${pid}/task/${pid}/children`).split(" ").filter(Boolean))
      if (read(`/proc/${child}/comm`).trim() === "sleep") sleeps.add(`${child}:${read(`/proc/${child}/stat`).split(" ")[21]}`);
  };
  look();
  const timer = setInterval(look, 50);
  return { started: () => sleeps.size, stop: () => clearInterval(timer) };
}
