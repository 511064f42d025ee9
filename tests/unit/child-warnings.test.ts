/**
 * The guard of service processes' leak warnings (tests/harness/child-warnings.ts, session 57): a tiny child that
 * passes an emitter's and an AbortSignal's listener limit prints two MaxListenersExceededWarnings on
 * its stderr; watched as a service's, both are recorded with its name, its pid and Node's text, and
 * they make the file's failure (tests/harness/listener-warning-guard.ts throws it at the file's end). A deprecation
 * warning is not a leak: printed, not recorded. The warnings made here on purpose are taken out before
 * the guard's own check.
 */
import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { childWarningsFailure, leakWarningsIn, takeChildWarnings, watchServiceWarnings } from "../harness/child-warnings";

/** Runs `code` in a child Node, its stderr watched as service `name`'s; resolves with its pid once it exited and its stderr ended. */
async function child(name: string, code: string): Promise<number> {
  const p = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "ignore", "pipe"] });
  watchServiceWarnings(name, p.stderr);
  await new Promise<void>((resolve) => p.on("close", () => resolve()));
  return p.pid!;
}

const LEAKS = `
  const { EventEmitter } = require("node:events");
  const emitter = new EventEmitter();
  for (let i = 0; i < 11; i++) emitter.on("tick", () => {});
  const signal = new AbortController().signal;
  for (let i = 0; i < 11; i++) signal.addEventListener("abort", () => {});
`;

describe("leak warnings of service processes", () => {
  it("a child's MaxListenersExceededWarnings are recorded with its name, pid and text, and make the file's failure", async () => {
    takeChildWarnings();
    const pid = await child("tiny-service", LEAKS);
    const seen = takeChildWarnings();
    expect(seen.map((w) => [w.service, w.pid])).toEqual([["tiny-service", pid], ["tiny-service", pid]]);
    expect(seen[0].text).toMatch(/^MaxListenersExceededWarning: Possible EventEmitter memory leak detected\. 11 tick listeners added/);
    expect(seen[1].text).toMatch(/^MaxListenersExceededWarning: Possible EventTarget memory leak detected\. 11 abort listeners added to \[AbortSignal\]/);
    const failure = childWarningsFailure(seen);
    expect(failure?.message).toContain(`tiny-service (pid ${pid}): MaxListenersExceededWarning: Possible EventEmitter memory leak detected`);
    expect(failure?.message).toMatch(/^2 MaxListenersExceededWarning\(s\) printed by service processes this file started/);
  });

  it("a deprecation warning, and a child's ordinary stderr, are not leaks", async () => {
    takeChildWarnings();
    await child("tiny-service", `process.emitWarning("old API", "DeprecationWarning", "DEP0999"); console.error("(node:1) MaxListenersExceededWarning is only a word here");`);
    expect(takeChildWarnings()).toEqual([]);
    expect(childWarningsFailure([])).toBeUndefined();
  });

  it("reads Node's warning lines wherever the stream cut them, and only the leak ones", async () => {
    const text = "(node:42) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]. MaxListeners is 10. Use events.setMaxListeners() to increase limit\n(Use `node --trace-warnings ...` to show where the warning was created)\n";
    expect(leakWarningsIn(text)).toEqual([{ pid: 42, text: expect.stringMatching(/^MaxListenersExceededWarning: Possible EventTarget memory leak detected\. 11 abort/) }]);
    expect(leakWarningsIn("(node:42) Warning: something else\n(node:42) DeprecationWarning: x")).toEqual([]);
    takeChildWarnings();
    const stream = new PassThrough();
    watchServiceWarnings("cut-service", stream);
    for (let i = 0; i < text.length; i += 7) stream.write(text.slice(i, i + 7));
    stream.end("(node:43) MaxListenersExceededWarning: no newline at the end");
    await new Promise((r) => stream.on("end", r).resume());
    expect(takeChildWarnings()).toEqual([
      { service: "cut-service", pid: 42, text: expect.stringMatching(/^MaxListenersExceededWarning: Possible EventTarget/) },
      { service: "cut-service", pid: 43, text: "MaxListenersExceededWarning: no newline at the end" },
    ]);
  });
});
