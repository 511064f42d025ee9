/**
 * A platform service as a real process (`node --import=tsx services/src/main.ts <service>`: one
 * process, so a signal reaches the service itself; tests/services/kit.test.ts says why not the tsx
 * CLI), listening on a free loopback port, its JSON log lines kept for the test to read. A leak
 * warning on its stderr fails the test file (tests/harness/child-warnings.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { watchServiceWarnings } from "../harness/child-warnings";
import { freePort } from "../harness/proc";

const main = join(__dirname, "..", "..", "services", "src", "main.ts");
const clean = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" };

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything written on stdout so far. */
  out: () => string;
  /** The JSON log lines so far, parsed (the lines that are not JSON left out). */
  lines: () => Array<Record<string, any>>;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts `service` with `env` (a free PORT and HOST 127.0.0.1 unless given: PORT=0 is refused since session 52) and resolves once it listens. */
export async function startServiceProcess(service: string, env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--import=tsx", main, service], {
    env: { ...clean, PORT: String(await freePort()), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  // A MaxListenersExceededWarning it prints fails the test file (tests/harness/listener-warning-guard.ts).
  watchServiceWarnings(service, child.stderr);
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", () => out.includes(`${service} listening`) && resolve());
    child.on("exit", (c) => reject(new Error(`${service} exited early with ${c}: ${out}${err}`)));
  });
  const port = Number(/"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out)![1]);
  const lines = () =>
    out.split("\n").flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, any>];
      } catch {
        return [];
      }
    });
  return { child, url: `http://127.0.0.1:${port}`, port, out: () => out, lines, exited };
}
