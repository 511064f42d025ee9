/**
 * Runs the Python training job (ml/trading_ml/train.py: LightGBM, walk-forward validation, ONNX
 * export) on bars and returns the ONNX bytes with its report. The job is a pure function of its
 * input file; registering the result is the registry's business.
 *
 * Python: ML_PYTHON (default `python3`; `bash scripts/ml/venv.sh` prints the cached venv's python).
 * Code: ML_TRAINING_DIR (default: the repo's / image's `ml/` folder next to `services/`).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { OhlcvBar } from "./features";

export interface ScoreSet {
  rows: number;
  baseRate: number;
  model: { auc: number; accuracy: number; logLoss: number; brier: number };
  prior: { accuracy: number; logLoss: number };
  persistence: { accuracy: number; auc: number };
  accuracyGain: number;
  logLossGain: number;
}

export interface TrainingReport {
  features: string[];
  lookback: number;
  horizon: number;
  intervalMs: number;
  symbols: string[];
  bars: number;
  rows: number;
  trainingWindow: { from: number; to: number };
  params: Record<string, unknown>;
  metrics: { outOfSample: ScoreSet; folds: Array<ScoreSet & { fold: number; trainRows: number; testFrom: number; testTo: number }>; hasEdge: boolean };
  reference: {
    predictionBins: number[];
    predictionFractions: number[];
    features: Record<string, { mean: number; std: number }>;
  };
  onnx: { input: string; output: string; positiveClass: number; maxAbsDiffVsLightgbm: number };
  timing: { validationSeconds: number; fitSeconds: number; totalSeconds: number };
}

export interface TrainingInput {
  bars: ReadonlyArray<OhlcvBar & { symbol: string; open: number }>;
  horizon?: number;
  folds?: number;
  seed?: number;
  python?: string;
  trainingDir?: string;
  /** Kill the job after this long (default 30 min). */
  timeoutMs?: number;
}

export class TrainingError extends Error {}

/** The `ml/` folder: ML_TRAINING_DIR, else next to services/ (repo: services/src/ml, image: dist/ml). */
export function defaultTrainingDir(): string {
  if (process.env.ML_TRAINING_DIR) return process.env.ML_TRAINING_DIR;
  for (const up of ["../../../ml", "../../ml"]) {
    const dir = resolve(__dirname, up);
    if (existsSync(join(dir, "trading_ml", "train.py"))) return dir;
  }
  return resolve(__dirname, "../../../ml");
}

/**
 * The variables the trainer gets from the service's: what Python, its libraries and the locale need,
 * nothing else. A child process inherits every variable, and on Kubernetes the service's credentials
 * are variables (secretKeyRef: POSTGRES_URL, JWT_SECRET...), which the trainer never reads but a
 * traceback, a library's dump of its environment or a process it starts would carry on (session 45).
 */
const TRAINER_ENV = /^(PATH|HOME|USER|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|LD_LIBRARY_PATH|VIRTUAL_ENV|PYTHONHOME|PYTHONUSERBASE|PYTHONDONTWRITEBYTECODE|PYTHONUNBUFFERED)$/;

/** `source` reduced to TRAINER_ENV's variables, with `extra`. */
export function trainerEnv(source: NodeJS.ProcessEnv, extra: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined && TRAINER_ENV.test(k)) out[k] = v;
  return { ...out, ...extra };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-20_000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => (clearTimeout(timer), rej(new TrainingError(`cannot start ${cmd}: ${e.message}`))));
    child.on("close", (code) => (clearTimeout(timer), res({ code, stdout, stderr })));
  });
}

export async function train(input: TrainingInput): Promise<{ onnx: Buffer; report: TrainingReport }> {
  const dir = input.trainingDir ?? defaultTrainingDir();
  if (!existsSync(join(dir, "trading_ml", "train.py"))) throw new TrainingError(`training code not found in ${dir} (set ML_TRAINING_DIR)`);
  const work = mkdtempSync(join(tmpdir(), "ml-train-"));
  try {
    const lines = ["symbol,open_time,open,high,low,close,volume"];
    for (const b of input.bars) lines.push(`${b.symbol},${b.openTime},${b.open},${b.high},${b.low},${b.close},${b.volume}`);
    writeFileSync(join(work, "bars.csv"), lines.join("\n") + "\n");
    const args = ["-m", "trading_ml.train", "--bars", join(work, "bars.csv"), "--out", join(work, "out")];
    if (input.horizon !== undefined) args.push("--horizon", String(input.horizon));
    if (input.folds !== undefined) args.push("--folds", String(input.folds));
    if (input.seed !== undefined) args.push("--seed", String(input.seed));
    const python = input.python ?? process.env.ML_PYTHON ?? "python3";
    // OMP_WAIT_POLICY=PASSIVE: OpenMP threads busy-wait otherwise, 10x slower on shared cores.
    const env = trainerEnv(process.env, { PYTHONPATH: dir, OMP_WAIT_POLICY: "PASSIVE", OMP_NUM_THREADS: "1", PYTHONHASHSEED: "0" });
    const r = await run(python, args, env, input.timeoutMs ?? 30 * 60_000);
    if (r.code !== 0) throw new TrainingError(`training job failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    const report = JSON.parse(readFileSync(join(work, "out", "report.json"), "utf8")) as TrainingReport;
    return { onnx: readFileSync(join(work, "out", "model.onnx")), report };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
