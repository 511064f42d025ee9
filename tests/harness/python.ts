/**
 * Python virtual environments from PyPI for tests that compare against a Python tool (the
 * backtrader oracle). One venv per (name, interpreter version, requirement list), created once
 * under ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/python/ and reused by every later run (and by the
 * next clone). Built in a temp dir and renamed into place, under a lock directory, so concurrent
 * runs and interrupted installs never leave a half-made venv behind.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sleep } from "./proc";

const run = promisify(execFile);

/** A lock dir is stale when the process that made it is gone (or it is older than `maxAgeMs`). */
function staleLock(lock: string, maxAgeMs: number): boolean {
  try {
    const pid = Number(readFileSync(join(lock, "pid"), "utf8"));
    if (pid > 0) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ESRCH") return true;
      }
    }
  } catch {
    // no pid file yet: the owner is between mkdir and write, or died there; fall back to age
  }
  const st = statSync(lock, { throwIfNoEntry: false });
  return st !== undefined && Date.now() - st.mtimeMs > maxAgeMs;
}

export type PythonVenv = { python: string; dir: string } | { skipped: string };

export function cacheDir(): string {
  return process.env.TRADING_CACHE_DIR ?? join(homedir(), ".cache", "ai-trading");
}

/** The interpreter's version, or undefined when there is no Python at all. */
async function pythonVersion(python: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(python, ["-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"], { timeout: 30_000 });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * A venv with exactly `requirements` (pinned `name==version` strings) installed from PyPI.
 * Returns `{ skipped }` only when no Python interpreter exists; any other failure (no venv module,
 * PyPI unreachable) throws, naming the fix.
 */
export async function pythonVenv(name: string, requirements: string[], timeoutMs = 900_000): Promise<PythonVenv> {
  const base = process.env.PYTHON ?? "python3";
  const version = await pythonVersion(base);
  if (!version) return { skipped: `no Python interpreter (${base}); install Debian's python3 and python3-venv (scripts/deps/install-test-deps.sh does)` };
  const key = createHash("sha256").update(`${version}\n${[...requirements].sort().join("\n")}`).digest("hex").slice(0, 12);
  const root = join(cacheDir(), "python");
  const dir = join(root, `${name}-${key}`);
  const python = join(dir, "bin", "python");
  if (existsSync(join(dir, ".complete"))) return { python, dir };
  mkdirSync(root, { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch {
      if (existsSync(join(dir, ".complete"))) return { python, dir };
      if (staleLock(lock, timeoutMs)) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await sleep(1_000);
    }
  }
  try {
    if (existsSync(join(dir, ".complete"))) return { python, dir };
    // Holding the lock: leftovers of interrupted installs are ours to remove.
    const prefix = `${name}-${key}.tmp-`;
    for (const f of readdirSync(root)) if (f.startsWith(prefix)) rmSync(join(root, f), { recursive: true, force: true });
    const tmp = `${dir}.tmp-${process.pid}`;
    try {
      await run(base, ["-m", "venv", tmp], { timeout: Math.max(60_000, deadline - Date.now()) });
    } catch (e) {
      const err = e as Error & { killed?: boolean; stderr?: string };
      throw new Error(err.killed
        ? `${base} -m venv did not finish in time (a loaded machine?); rerun to retry`
        : `${base} -m venv failed (Debian: apt-get install python3-venv): ${err.stderr || err.message}`);
    }
    await run(join(tmp, "bin", "python"), ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet", ...requirements], {
      timeout: Math.max(60_000, deadline - Date.now()),
      maxBuffer: 16 * 1024 * 1024,
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    // A venv records its own path in bin/ scripts; `python -m pip` and the interpreter work after the rename.
    writeFileSync(join(dir, ".complete"), `${requirements.join("\n")}\n`);
    return { python, dir };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
