/**
 * The harness's machine-wide port reservations (tests/harness/port-reservations.ts) across real
 * processes: test workers of two runs draw from the same slice (the same VITEST_POOL_ID) and must
 * never get the same port, and a reservation left by a killed process is taken over.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownerAlive, releasePort, reservePort } from "../harness/port-reservations";

const root = join(__dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "port-reservations-"));
// Read at this process's first reservation: its reservations go to the same private folder.
process.env.HARNESS_PORT_DIR = dir;

/**
 * A process running `script` (TypeScript, the harness importable as `proc` and `reservations`) in
 * slice 3, its first stdout line parsed as JSON; it then stays until its stdin closes, keeping
 * whatever it reserved.
 */
function claimer(script: string): { child: ChildProcess; first: Promise<unknown>; exited: Promise<number | null> } {
  const prelude =
    `const proc = require(${JSON.stringify(join(root, "tests/harness/proc.ts"))});` +
    `const reservations = require(${JSON.stringify(join(root, "tests/harness/port-reservations.ts"))});`;
  const program = `${prelude}\n(async () => {\n${script}\nprocess.stdin.resume();\n})();`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", program], {
    cwd: root,
    env: { ...process.env, HARNESS_PORT_DIR: dir, VITEST_POOL_ID: "3" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const first = new Promise<unknown>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (line) => resolve(JSON.parse(line)));
    child.once("exit", (code, signal) => reject(new Error(`claimer exited (${code ?? signal}) before answering`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, first, exited };
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("machine-wide port reservations", () => {
  // 3 x 330 ports (every tenth draw a pair) of one 2,000-port slice: drawn without the reservations,
  // about 150 of the 990 were given twice (measured with reservePort bypassed).
  const PER_PROCESS = 300;
  let given: number[][] = [];

  beforeAll(async () => {
    const claim = `const ports = []; for (let i = 0; i < ${PER_PROCESS}; i++) { if (i % 10 === 0) ports.push(...(await proc.freePortPair())); else ports.push(await proc.freePort()); } console.log(JSON.stringify(ports));`;
    const runs = [claimer(claim), claimer(claim), claimer(claim)];
    children.push(...runs.map((r) => r.child));
    given = (await Promise.all(runs.map((r) => r.first))) as number[][];
    for (const r of runs) r.child.stdin!.end();
    expect(await Promise.all(runs.map((r) => r.exited))).toEqual([0, 0, 0]);
  }, 120_000);

  it("never gives one port to two processes drawing from the same slice at once", () => {
    const all = given.flat();
    expect(all.length).toBeGreaterThanOrEqual(3 * PER_PROCESS);
    expect(all.every((p) => p >= 26_000 && p <= 28_000)).toBe(true); // slice 3 (and a pair's second port past its end)
    expect(new Set(all).size).toBe(all.length);
  });

  it("gives every reservation back when the process exits, its owner file too", () => {
    expect(readdirSync(dir)).toEqual([]);
  });

  it("gives them back when the process is ended by SIGTERM (as vitest ends its workers), and still ends", async () => {
    const ended = claimer(`console.log(JSON.stringify(await proc.freePortPair()));`);
    children.push(ended.child);
    const pair = (await ended.first) as number[];
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(pair.map(String)));
    ended.child.kill("SIGTERM");
    await ended.exited;
    expect(ended.child.signalCode).toBe("SIGTERM");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes over a reservation whose owner was killed, and not one whose owner lives", async () => {
    const killed = claimer(`const [p] = await proc.freePortPair(); console.log(JSON.stringify(p)); process.kill(process.pid, "SIGKILL");`);
    const living = claimer(`console.log(JSON.stringify(await proc.freePort()));`);
    children.push(killed.child, living.child);
    const [deadPort, livePort] = (await Promise.all([killed.first, living.first])) as number[];
    await killed.exited;
    // Left behind: SIGKILL runs no exit hook.
    expect(readdirSync(dir)).toContain(String(deadPort));
    expect(readdirSync(dir)).toContain(String(deadPort + 1));
    expect(reservePort(livePort)).toBe(false);
    expect(reservePort(deadPort)).toBe(true);
    expect(reservePort(deadPort + 1)).toBe(true);
    expect(readFileSync(join(dir, String(deadPort)), "utf8").split(" ")[0]).toBe(String(process.pid));
    // The killed process's owner file went with its first reservation taken over.
    expect(readdirSync(dir).filter((f) => f.startsWith(`owner-${killed.child.pid}-`))).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith(".takeover"))).toEqual([]);
    // Held now: a second ask, from this process or another, is refused.
    expect(reservePort(deadPort)).toBe(false);
    const other = claimer(`console.log(JSON.stringify(reservations.reservePort(${deadPort})));`);
    children.push(other.child);
    expect(await other.first).toBe(false);
    other.child.stdin!.end();
    living.child.stdin!.end();
    await Promise.all([other.exited, living.exited]);
    releasePort(deadPort);
    releasePort(deadPort + 1);
  }, 120_000);

  it("counts a pid now running another program (a later start time) as dead", () => {
    const stat = readFileSync(`/proc/${process.pid}/stat`, "utf8");
    const [pid, start] = [process.pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]];
    expect(ownerAlive(`${pid} ${start}\n`)).toBe(true);
    expect(ownerAlive(`${pid} ${Number(start) + 1}\n`)).toBe(false);
    expect(ownerAlive(`${pid}\n`)).toBe(true); // no start time recorded (not Linux): the pid decides
    expect(ownerAlive("")).toBe(false);
  });
});
