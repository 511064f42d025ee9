/**
 * A vitest setup file (vitest.config.ts, vitest.unit.config.ts, tests/policies/vitest.config.ts): a
 * MaxListenersExceededWarning emitted while a test file runs fails that file, with the stack of the
 * listener that passed the limit. Before, Node printed the warning to the worker's stderr and the
 * file passed: the 3 warnings of each recent `.ci/run` (session 55) were a real leak (a listener per pause
 * kept on a market data subscription's signal, trading/marketdata/source.ts sleep) and many waits
 * sharing the kit's `closing` signal; a warning nobody reads lets the next leak creep in the same way.
 *
 * Other warnings (deprecations, experimental features) stay what they were: printed, not failures.
 * A signal or emitter that many waits share on purpose says so with `events.setMaxListeners(n, it)`
 * and a comment why (kit deadline.ts afterGrace, kit service.ts `closing`). A service process the
 * file starts prints its own to its stderr: the starters watch it (./child-warnings.ts, session 57),
 * and those fail the file here too, naming the service. Not seen: a warning of a child nobody watches
 * (a stand-in of a test's own), and one emitted after the file's last hook.
 */
import { afterAll } from "vitest";
import { childWarningsFailure, takeChildWarnings } from "./child-warnings";

interface GuardState {
  /** The warnings seen since the current file's setup ran (a worker may run several files: --no-isolate). */
  seen: Error[];
}

const KEY = Symbol.for("ai-trading.listener-warning-guard");
const holder = globalThis as { [KEY]?: GuardState };

// Installed once per process: this file runs again before each test file of a reused worker, and a
// listener added each time would itself pass the process's limit.
if (!holder[KEY]) {
  const state: GuardState = { seen: [] };
  holder[KEY] = state;
  process.on("warning", (w) => {
    if (w.name === "MaxListenersExceededWarning") state.seen.push(w);
  });
}
const state = holder[KEY];
state.seen = [];
takeChildWarnings();

afterAll(async () => {
  // Node emits the warning on the next tick after the listener that passed the limit was added.
  await new Promise((resolve) => setImmediate(resolve));
  const seen = state.seen.splice(0);
  const children = childWarningsFailure(takeChildWarnings());
  if (seen.length === 0) {
    if (children) throw children;
    return;
  }
  const where = seen.map((w) => `${w.message}\n${(w.stack ?? "").split("\n").slice(1, 12).join("\n")}`).join("\n\n");
  throw new Error(
    `${seen.length} MaxListenersExceededWarning(s) while this file ran: listeners kept on one signal or emitter ` +
      `(remove each when its wait ends; many waits sharing it on purpose: events.setMaxListeners with a comment why)\n\n${where}` +
      (children ? `\n\n${children.message}` : ""),
  );
});
