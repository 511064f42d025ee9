/**
 * Machine-wide reservations of the loopback ports the harness hands out, so that two test runs on
 * one machine (two clones' `.ci/run`, a `.ci/run` beside `npm run e2e`) never give one port to two
 * servers. Before, each process only remembered its own ports and probed a candidate with a
 * listen/close: a server of the other run could bind the port between that probe and its own bind
 * (`EADDRINUSE 127.0.0.1:25421` in fleet-metrics' beforeAll, session 54).
 *
 * A reservation is a file named after the port in `portReservationDir()`, made as a hard link to
 * this process's owner file (`owner-<pid>-<start time>`): link(2) fails with EEXIST when the name
 * exists, so exactly one process gets it, and the file is whole the moment it appears (no reader
 * ever sees a half-written pid). One syscall a reservation: freePort() is called thousands of times
 * a run.
 *
 * A reservation whose owner is dead (kill(pid, 0) answers ESRCH, or the pid now belongs to a later
 * process: its start time in /proc differs) is taken over: the taker first makes `<port>.takeover`
 * (again one exclusive link), then checks that the port file still names the dead owner and renames
 * its own link over it. Two takers cannot both pass (one of them holds the takeover file while it
 * checks), and a taker that checks after another took over sees a live owner. Left: a taker killed
 * in the microseconds while it holds `<port>.takeover` leaves that port reserved for good (one
 * port of 10,000; deleting the folder clears it).
 *
 * Reservations are given back when the process exits or is ended by a signal it can catch (best
 * effort: a SIGKILLed worker leaves its files, which the dead-owner check then takes over).
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";

/**
 * The folder shared by every run on the machine: `port-reservations` in the project's cache
 * (`${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}`, as scripts/lib/cache-dir.sh spells it; not
 * XDG_CACHE_HOME, which that helper does not read either, so every run agrees on one folder);
 * HARNESS_PORT_DIR overrides it (the unit test uses a folder of its own). Runs with different cache
 * folders do not see each other's reservations: only the probe protects them from each other.
 */
export function portReservationDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HARNESS_PORT_DIR) return env.HARNESS_PORT_DIR;
  const home = env.HOME || safeHomedir();
  const cache = env.TRADING_CACHE_DIR || (home ? join(home, ".cache", "ai-trading") : undefined);
  return cache ? join(cache, "port-reservations") : join(tmpdir(), `ai-trading-port-reservations-${userInfo().uid}`);
}

function safeHomedir(): string | undefined {
  try {
    return homedir() || undefined;
  } catch {
    return undefined;
  }
}

/** A process's identity as written in its owner file: pid and start time (clock ticks since boot; "" off Linux). */
function identity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime), counted after the command name, which may hold spaces and parentheses.
    return `${pid} ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
  } catch {
    return process.platform === "linux" ? undefined : `${pid} `;
  }
}

/** Whether the process written in an owner file (`<pid> <start time>`) still runs. */
export function ownerAlive(content: string): boolean {
  const [pidText, start] = content.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (!start) return true;
  const now = identity(pid);
  // No /proc entry although kill() found it: it has just exited, or /proc is not Linux's; alive to be safe.
  return now === undefined || now === `${pid} ${start}`;
}

let dir: string | undefined;
let ownerFile: string | undefined;
let ownerIno = -1;
let exitHookInstalled = false;
const held = new Set<number>();

/** This process's owner file, made at the first reservation (the folder is read then, once). */
function ensureOwnerFile(): string {
  if (ownerFile) return ownerFile;
  dir ??= portReservationDir();
  mkdirSync(dir, { recursive: true });
  const me = identity(process.pid) ?? `${process.pid} `;
  ownerFile = join(dir, `owner-${me.trim().replace(" ", "-")}`);
  const fd = openSync(ownerFile, "w", 0o644);
  try {
    writeSync(fd, `${me}\n`);
  } finally {
    closeSync(fd);
  }
  ownerIno = statSync(ownerFile).ino;
  if (!exitHookInstalled) installExitHooks();
  exitHookInstalled = true;
  return ownerFile;
}

/**
 * Gives the ports back at exit, and on SIGTERM, SIGINT and SIGHUP, which end a process without its
 * "exit" event: vitest ends its fork workers with SIGTERM. With no other listener for the signal
 * (tests/harness/proc.ts adds one that exits once a file has started a server) it is raised again
 * so that it still ends the process.
 */
function installExitHooks(): void {
  process.on("exit", releaseAllPorts);
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.once(signal, () => {
      releaseAllPorts();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * Reserves `port` for this process, machine-wide; false when another live process holds it.
 * Synchronous and one link(2) in the common case.
 */
export function reservePort(port: number): boolean {
  const owner = ensureOwnerFile();
  const path = join(dir!, String(port));
  try {
    linkSync(owner, path);
    held.add(port);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return takeOverIfDead(port, path, owner);
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function takeOverIfDead(port: number, path: string, owner: string): boolean {
  const before = readOrUndefined(path);
  if (before === undefined) {
    // Given back between our link and this read: one more try.
    try {
      linkSync(owner, path);
      held.add(port);
      return true;
    } catch {
      return false;
    }
  }
  if (ownerAlive(before)) return false;
  const takeover = `${path}.takeover`;
  try {
    linkSync(owner, takeover);
  } catch {
    return false; // another process is taking it over right now
  }
  try {
    if (readOrUndefined(path) !== before) return false; // taken over (or given back) meanwhile
    const mine = `${path}.${process.pid}`;
    tryUnlink(mine); // left by an earlier process with this pid that died here
    linkSync(owner, mine);
    renameSync(mine, path);
    held.add(port);
    const [deadPid, deadStart] = before.trim().split(" ");
    tryUnlink(join(dir!, `owner-${deadPid}${deadStart ? `-${deadStart}` : ""}`));
    return true;
  } finally {
    tryUnlink(takeover);
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

/** Gives `port` back (only if this process still holds it). */
export function releasePort(port: number): void {
  if (!held.delete(port) || !dir) return;
  const path = join(dir, String(port));
  try {
    if (statSync(path).ino === ownerIno) unlinkSync(path);
  } catch {
    /* gone already */
  }
}

/** Gives every port back and removes the owner file; runs at exit. */
export function releaseAllPorts(): void {
  for (const port of [...held]) releasePort(port);
  if (ownerFile) tryUnlink(ownerFile);
  ownerFile = undefined;
}
