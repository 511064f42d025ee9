/**
 * The training job's Python (scripts/ml/venv.sh: a venv from PyPI cached outside the clone, keyed
 * by ml/requirements.txt). The first call on a machine installs it (~30 s to a few minutes).
 */
import { join } from "node:path";
import { runOk } from "../harness/run";

const ROOT = join(__dirname, "..", "..");
let python: Promise<string> | undefined;

/** The venv's python (installed by the first call: asynchronously, tests/harness/run.ts says why). */
export function mlPython(): Promise<string> {
  python ??= runOk("bash", [join(ROOT, "scripts", "ml", "venv.sh")]).then((out) => out.trim().split("\n").pop()!);
  return python;
}

export const ML_DIR = join(ROOT, "ml");
