/**
 * Python virtual environments from PyPI for tests and benchmarks that run a Python tool (the
 * backtrader oracle, the benchmark anchors, the training job). The one implementation is
 * scripts/lib/python-venv.sh (shared with scripts/ml/venv.sh): one venv per (name, interpreter
 * version, requirement list) under ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/python/, created once,
 * under a lock, in a temp dir renamed into place, and reused by every later run and the next clone.
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = join(__dirname, "..", "..", "scripts", "lib", "python-venv.sh");
/** The script's exit code when there is no Python interpreter at all. */
const NO_PYTHON = 3;

export type PythonVenv = { python: string; dir: string } | { skipped: string };

async function venvOf(name: string, args: string[], timeoutMs: number): Promise<PythonVenv> {
  try {
    const { stdout } = await run("bash", [SCRIPT, name, ...args], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, PYTHON_VENV_WAIT_SECONDS: String(Math.ceil(timeoutMs / 1000)) },
    });
    const python = stdout.trim().split("\n").pop()!;
    return { python, dir: dirname(dirname(python)) };
  } catch (e) {
    const err = e as Error & { code?: number; killed?: boolean; stderr?: string };
    if (err.code === NO_PYTHON) return { skipped: (err.stderr ?? "").trim() || "no Python interpreter" };
    if (err.killed) throw new Error(`the venv '${name}' was not ready in ${timeoutMs} ms (a loaded machine?); rerun to retry`);
    throw new Error(`the venv '${name}' could not be made: ${(err.stderr ?? err.message).trim()}`);
  }
}

/**
 * A venv with exactly `requirements` (pinned `name==version` strings) installed from PyPI.
 * Returns `{ skipped }` only when no Python interpreter exists; any other failure (no venv module
 * and no apt, PyPI unreachable) throws, naming the fix.
 */
export function pythonVenv(name: string, requirements: string[], timeoutMs = 900_000): Promise<PythonVenv> {
  return venvOf(name, requirements, timeoutMs);
}

/** The same from a pip requirements file (its non-comment lines are the requirement list). */
export function pythonVenvFromFile(name: string, requirementsFile: string, timeoutMs = 900_000): Promise<PythonVenv> {
  return venvOf(name, ["-r", requirementsFile], timeoutMs);
}
