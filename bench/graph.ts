/**
 * How long the program takes to build its resource graph under mocks, per stack, and how many
 * resources it declares. Each sample runs in a fresh process (a fresh Pulumi runtime).
 *
 *   npx tsx bench/graph.ts [samples]     (default 5)
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { median } from "./lib/stats";

async function child(stack: string): Promise<void> {
  const { runProgram } = await import("../tests/helpers/program");
  const t0 = process.hrtime.bigint();
  const run = await runProgram(stack);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const custom = run.resources.filter((r) => !r.type.startsWith("trading:")).length;
  process.stdout.write(JSON.stringify({ ms, resources: run.resources.length, custom, rssMiB: process.memoryUsage().rss / 2 ** 20 }) + "\n");
  process.exit(0);
}

function main(): void {
  const samples = Number(process.argv[2] ?? 5);
  const tsx = path.join(__dirname, "..", "node_modules", ".bin", "tsx");
  console.log(`resource graph under mocks, ${samples} fresh processes per stack (node ${process.version})`);
  console.log("stack  resources(custom)  median_ms  min_ms  max_ms  rss_MiB");
  for (const stack of ["dev", "prod"]) {
    const runs = Array.from({ length: samples }, () =>
      JSON.parse(execFileSync(tsx, [__filename, "--child", stack], { encoding: "utf8" }).trim().split("\n").pop()!),
    );
    const ms: number[] = runs.map((r) => r.ms);
    const r0 = runs[0];
    console.log(
      `${stack.padEnd(6)} ${String(r0.resources).padStart(4)} (${r0.custom})`.padEnd(25) +
        `${median(ms).toFixed(0).padStart(9)}  ${Math.min(...ms).toFixed(0).padStart(6)}  ${Math.max(...ms).toFixed(0).padStart(6)}  ${Math.max(...runs.map((r) => r.rssMiB)).toFixed(0).padStart(7)}`,
    );
  }
}

if (process.argv[2] === "--child") void child(process.argv[3]);
else main();
