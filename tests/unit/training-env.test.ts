/**
 * Session 45's secrets hunt: ml-predictor's training job ran Python with the service's whole
 * environment. On Kubernetes the service's credentials are variables (secretKeyRef), so the trainer,
 * which reads none of them, held POSTGRES_URL, JWT_SECRET and the rest, for a traceback, a library's
 * dump of its environment or a process it starts. It gets what Python and the locale need now.
 * A fake "python" (a bash script) records its environment and writes what the trainer would.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { train, trainerEnv } from "../../services/src/ml/training";

const CREDENTIALS = {
  POSTGRES_URL: "postgresql://trading:PgS3cretValue@postgres:5432/ai_trading",
  JWT_SECRET: "ab".repeat(64),
  DRAGONFLY_URL: "redis://:DfS3cretValue@dragonfly:6379",
  BINANCE_SECRET_KEY: "BnS3cretValue",
};

let dir: string;
const saved: Record<string, string | undefined> = {};
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "trainer-env-"));
  for (const [k, v] of Object.entries(CREDENTIALS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("the training job's environment (session 45)", () => {
  it("holds none of the service's credentials: only what Python and the locale need, and the trainer's own settings", async () => {
    const training = join(dir, "ml");
    mkdirSync(join(training, "trading_ml"), { recursive: true });
    writeFileSync(join(training, "trading_ml", "train.py"), "");
    const seen = join(dir, "env.txt");
    const python = join(dir, "python");
    // --out is the last argument but one; the report and the model where train() reads them.
    writeFileSync(python, `#!/bin/bash\nenv > "${seen}"\nout="\${@: -1}"\nfor a in "$@"; do [ "$prev" = --out ] && out="$a"; prev="$a"; done\nmkdir -p "$out"\necho '{}' > "$out/report.json"\necho onnx > "$out/model.onnx"\n`);
    chmodSync(python, 0o755);
    const r = await train({ bars: [], python, trainingDir: training, timeoutMs: 60_000 });
    expect(r.onnx.toString()).toBe("onnx\n");
    const env = Object.fromEntries(readFileSync(seen, "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    for (const [k, v] of Object.entries(CREDENTIALS)) {
      expect(env[k], k).toBeUndefined(); // before: every one of them
      expect(Object.values(env).join("\n")).not.toContain(v.slice(-12));
    }
    expect(env).toMatchObject({ PYTHONPATH: training, OMP_NUM_THREADS: "1", PYTHONHASHSEED: "0" });
    expect(env.PATH).toBe(process.env.PATH);
  });

  it("keeps the locale, the home and a virtualenv's variables, and nothing named like a service setting", () => {
    const env = trainerEnv({ PATH: "/usr/bin", HOME: "/app", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", VIRTUAL_ENV: "/venv", TMPDIR: "/tmp", SERVICE_NAME: "ml-predictor", ARANGO_PASSWORD: "x", WEAVIATE_API_KEY: "y", POSTGRES_URL_FILE: "/run/secrets/postgres_url" }, { PYTHONPATH: "/ml" });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/app", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", VIRTUAL_ENV: "/venv", TMPDIR: "/tmp", PYTHONPATH: "/ml" });
  });
});
