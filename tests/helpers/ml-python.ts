/**
 * The training job's Python (scripts/ml/venv.sh: a venv from PyPI cached outside the clone, keyed
 * by ml/requirements.txt). The first call on a machine installs it (~30 s to a few minutes).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
let python: string | undefined;

export function mlPython(): string {
  if (!python) {
    const out = execFileSync("bash", [join(ROOT, "scripts", "ml", "venv.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    python = out.trim().split("\n").pop()!;
  }
  return python;
}

export const ML_DIR = join(ROOT, "ml");
