/**
 * Node's leak warnings printed by a service process a test starts, made failures of the test file:
 * listener-warning-guard.ts (the setup file every vitest config runs) reports them at the file's end
 * beside the test process's own, naming the service and the warning. Before session 57 a service run
 * as a child process printed its warning to its own stderr, which the starters kept in a buffer nobody
 * read: the file passed.
 *
 * The class judged is the guard's: MaxListenersExceededWarning, what Node prints when listeners pile
 * up on one emitter or AbortSignal past its limit (`Possible EventEmitter memory leak detected`,
 * `Possible EventTarget memory leak detected`): a listener added per wait or per request and never
 * removed. Node's other warnings (DeprecationWarning, ExperimentalWarning, TimeoutOverflowWarning, a
 * rejection handled late) tell of no leak and stay printed only, as in the test process. Node prints a
 * warning on one line of stderr, `(node:<pid>) <name>: <message>`, whoever listens to `warning` in
 * the process (the kit adds no listener, and no service runs with --no-warnings).
 */

/** A leak warning a service process printed. */
export interface ChildWarning {
  /** The service (or the child's name a test gave it). */
  service: string;
  /** The process's id as Node printed it. */
  pid: number;
  /** `MaxListenersExceededWarning: ...` as printed. */
  text: string;
}

/** Node's print of a leak warning, one line: `(node:1234) MaxListenersExceededWarning: Possible EventTarget memory leak detected. ...`. */
const LEAK_LINE = /^\(node:(\d+)\) (MaxListenersExceededWarning: .*)$/;

/** The leak warnings in a process's stderr text (whole lines). */
export function leakWarningsIn(text: string): Array<{ pid: number; text: string }> {
  return text.split("\n").flatMap((line) => {
    const m = LEAK_LINE.exec(line.trimEnd());
    return m ? [{ pid: Number(m[1]), text: m[2] }] : [];
  });
}

const KEY = Symbol.for("ai-trading.child-warnings");
const holder = globalThis as { [KEY]?: ChildWarning[] };

/** The warnings recorded in this process since the current test file began (one list, whatever module instances read it). */
export function childWarnings(): ChildWarning[] {
  return (holder[KEY] ??= []);
}

/** Takes the recorded warnings out (the guard's report at a file's end; a test of the mechanism that made one on purpose). */
export function takeChildWarnings(): ChildWarning[] {
  return childWarnings().splice(0);
}

/**
 * Watches `stream` (a service process's stderr) line by line from now on: each leak warning in it is
 * recorded as `service`'s, and fails the test file at its end (listener-warning-guard.ts).
 */
export function watchServiceWarnings(service: string, stream: NodeJS.ReadableStream | null | undefined): void {
  if (!stream) return;
  let partial = "";
  const judge = (lines: string) => {
    for (const w of leakWarningsIn(lines)) childWarnings().push({ service, ...w });
  };
  stream.on("data", (d: Buffer | string) => {
    partial += d.toString();
    const end = partial.lastIndexOf("\n");
    if (end < 0) return;
    judge(partial.slice(0, end));
    partial = partial.slice(end + 1);
  });
  stream.on("end", () => judge(partial));
}

/** The failure of a file whose service processes printed `warnings` (undefined: none). */
export function childWarningsFailure(warnings: ChildWarning[]): Error | undefined {
  if (warnings.length === 0) return undefined;
  const each = warnings.map((w) => `${w.service} (pid ${w.pid}): ${w.text}`).join("\n");
  return new Error(
    `${warnings.length} MaxListenersExceededWarning(s) printed by service processes this file started: listeners kept on one ` +
      `signal or emitter in the service (remove each when its wait ends; many waits sharing it on purpose: events.setMaxListeners ` +
      `with a comment why). Run the service with NODE_OPTIONS=--trace-warnings for the stack.\n\n${each}`,
  );
}
