/**
 * ML benchmark: prediction latency of the serving path (TypeScript features + onnxruntime-node,
 * one thread) for one symbol and for a batch of 100, and training time of the Python job (features,
 * 4-fold walk-forward + final fit, ONNX export) per 100k bars.
 *
 *   npx tsx bench/ml.ts            (uses scripts/ml/venv.sh's python)
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { LOOKBACK } from "../services/src/ml/features";
import { loadModel, sha256 } from "../services/src/ml/model";
import { Predictor } from "../services/src/ml/predictor";
import { train } from "../services/src/ml/training";
import { plantedBars } from "../tests/helpers/planted-bars";
import { percentile } from "./lib/stats";

const ROOT = join(__dirname, "..");
const python = execFileSync("bash", [join(ROOT, "scripts/ml/venv.sh")], { encoding: "utf8" }).trim().split("\n").pop()!;
const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);

async function main() {
  const symbols = ["AAAUSDT", "BBBUSDT"];
  const bars = symbols.flatMap((s) => plantedBars({ symbol: s, bars: 50_000, seed: `bench-${s}`, plantedSignal: 0.5 }));
  const t0 = process.hrtime.bigint();
  const { onnx, report } = await train({ bars, python, trainingDir: join(ROOT, "ml") });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`training: ${bars.length} bars (${report.rows} rows, ${report.features.length} features) in ${wall.toFixed(1)} s wall ` +
    `(validation ${report.timing.validationSeconds} s, final fit ${report.timing.fitSeconds} s) = ${((wall * 100_000) / bars.length).toFixed(1)} s per 100k bars`);

  const model = await loadModel("bench", onnx, report.features, sha256(onnx));
  const predictor = new Predictor(model, { version: "bench", trainedAt: new Date().toISOString(), horizonBars: 1, intervalMs: 60_000, features: report.features });
  const series = plantedBars({ symbol: "CCCUSDT", bars: 5_000, seed: "bench-serve", plantedSignal: 0.5 });
  const window = (end: number) => series.slice(end - LOOKBACK, end + 1);
  for (const batch of [1, 100]) {
    const samples: number[] = [];
    for (let i = 0; i < (batch === 1 ? 3000 : 500); i++) {
      const inputs = Array.from({ length: batch }, (_, k) => ({ symbol: `S${k}`, bars: window(LOOKBACK + ((i * 7 + k) % 4000)) }));
      const s = process.hrtime.bigint();
      await predictor.predict(inputs);
      samples.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const warm = samples.slice(50);
    console.log(`predict ${batch === 1 ? "1 symbol " : "100 symbols"} (features + ONNX): p50 ${fmt(percentile(warm, 50))}  p99 ${fmt(percentile(warm, 99))}  (${warm.length} runs)`);
  }
  await model.close();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
