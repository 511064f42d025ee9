/**
 * How long the policy pack takes to judge the real program: the program runs once under mocks
 * (tests/helpers/program.ts) per stack, then the whole pack (every resource policy on every
 * resource, then every stack policy, with the engine's unknown-checking property bags) evaluates
 * its resources `samples` times with that stack's config file. In-process: the figure excludes the
 * CLI's gRPC transport and the pack's start-up (measured separately: `startup_ms`, loading the pack).
 *
 *   npx tsx bench/policies.ts [samples] [stack...]     (default 10 samples, stacks dev and prod)
 *   npx tsx bench/policies.ts 10 prod                  (the prod stack's resources only)
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { median } from "./lib/stats";

async function child(stack: "dev" | "prod", samples: number): Promise<void> {
  const t0 = process.hrtime.bigint();
  const { runPack } = await import("../tests/policies/run-pack");
  const { policies } = await import("../policies/all");
  const startup = Number(process.hrtime.bigint() - t0) / 1e6;
  const { runProgram } = await import("../tests/helpers/program");
  const run = await runProgram(stack);
  const resources = run.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
  await runPack(resources, stack); // warm-up
  const ms: number[] = [];
  const cpu: number[] = [];
  let violations = 0;
  for (let i = 0; i < samples; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    violations = (await runPack(resources, stack)).length;
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1e3);
  }
  process.stdout.write(JSON.stringify({ ms, cpu, startup, resources: resources.length, policies: policies.length, violations, rssMiB: process.memoryUsage().rss / 2 ** 20 }) + "\n");
  process.exit(0);
}

function main(): void {
  const samples = Number(process.argv[2] ?? 10);
  const tsx = path.join(__dirname, "..", "node_modules", ".bin", "tsx");
  console.log(`policy pack evaluation of the real program, ${samples} runs per stack after a warm-up (node ${process.version})`);
  // cpu_ms: the process's CPU time per run (median), which a loaded host inflates far less than the wall-clock figures.
  console.log("stack  resources  policies  violations  median_ms  min_ms  max_ms  cpu_ms  startup_ms  rss_MiB");
  const stacks = process.argv.slice(3);
  for (const stack of stacks.length ? stacks : ["dev", "prod"]) {
    if (stack !== "dev" && stack !== "prod") throw new Error(`bench/policies.ts: unknown stack "${stack}" (dev or prod)`);
    const r = JSON.parse(execFileSync(tsx, [__filename, "--child", stack, String(samples)], { encoding: "utf8", maxBuffer: 64 * 2 ** 20 }).trim().split("\n").pop()!);
    const ms = r.ms as number[];
    const f = (n: number) => n.toFixed(1).padStart(8);
    console.log(`${stack.padEnd(5)}  ${String(r.resources).padStart(9)}  ${String(r.policies).padStart(8)}  ${String(r.violations).padStart(10)}  ${f(median(ms))}  ${f(Math.min(...ms))}  ${f(Math.max(...ms))}  ${median(r.cpu as number[]).toFixed(1).padStart(6)}  ${f(r.startup)}  ${r.rssMiB.toFixed(0).padStart(7)}`);
  }
}

if (process.argv[2] === "--child") {
  child(process.argv[3] as "dev" | "prod", Number(process.argv[4] ?? 10)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
