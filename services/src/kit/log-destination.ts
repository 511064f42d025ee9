/**
 * Where a service's log lines go when no stream is given (createLogger): the process's stdout, the
 * lines of one event-loop turn written together, with one write(2) when nothing is in flight.
 *
 * Why: pino's default destination (sonic-boom, asynchronous) starts an fs.write, a round trip
 * through libuv's thread pool, for each line that arrives while none is in flight: under the gateway
 * bench one per 2.5 access lines, and those round trips (their dispatch and completion) were about a
 * fifth of the gateway's busy time in session 56's profile, more than formatting the line. Joined
 * per turn and written at once, the same lines took about 2 % (bench/gateway.ts BENCH_PROF, the
 * README's "The fast lane"). A line waits at most until its turn ends (setImmediate), never for more
 * lines to come (the batched log lines tried before, README "Why it stays a Node proxy", held them).
 *
 * The write is synchronous, as pino's own `sync: true` mode: a reader that stops reading a full pipe
 * holds the process until it reads again (the container runtime reads stdout as it comes). A write
 * that cannot go now (EAGAIN on a non-blocking descriptor) or goes in part hands the rest to pino's
 * asynchronous destination, which retries it; later lines follow it there until it has written all,
 * so the order holds. The process's exit writes what is held, a line logged just before
 * process.exit included.
 *
 * One per process: every logger writes to the same stdout, in the order of their calls.
 */
import { writeSync } from "node:fs";
import { destination, type DestinationStream } from "pino";

/** pino's asynchronous destination (sonic-boom), for what cannot be written at once. */
export interface Fallback {
  write(data: string): boolean;
  flushSync(): void;
  once(event: "drain", listener: () => void): unknown;
}

export class TurnBatchedDestination implements DestinationStream {
  private pending = "";
  private scheduled = false;
  /** The fallback holds lines not yet written: the next ones go after them. */
  private deferred = false;
  private readonly drained = () => {
    this.deferred = false;
  };

  constructor(
    private readonly fd: number,
    private readonly fallback: Fallback,
  ) {}

  write(line: string): void {
    this.pending += line;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(writePending, this);
  }

  /** This turn's lines: written now, or after those the fallback still holds. */
  writePending(): void {
    this.scheduled = false;
    if (this.pending === "") return;
    const lines = this.pending;
    this.pending = "";
    if (this.deferred) {
      this.fallback.write(lines);
      return;
    }
    const bytes = Buffer.from(lines);
    let written = 0;
    try {
      written = writeSync(this.fd, bytes);
    } catch {
      // (EAGAIN: the fallback retries.)
    }
    if (written === bytes.length) return;
    this.deferred = true;
    this.fallback.once("drain", this.drained);
    this.fallback.write(bytes.subarray(written).toString());
  }

  /** Everything held, written synchronously (the process's exit): the fallback's lines, then this turn's. */
  flushSync(): void {
    try {
      this.fallback.flushSync();
    } catch {
      // (Its stdout gone, or destroyed: nothing more can be written there; this turn's lines are still tried.)
    }
    let rest = Buffer.from(this.pending);
    this.pending = "";
    for (let tries = 0; rest.length > 0 && tries < 100; tries++) {
      try {
        rest = rest.subarray(writeSync(this.fd, rest));
      } catch {
        // (EAGAIN: a full pipe; tried again, a bounded number of times.)
      }
    }
  }

  /** pino's logger.flush: this turn's lines handed on now. */
  flush(cb?: (err?: Error) => void): void {
    this.writePending();
    cb?.();
  }
}

const writePending = (d: TurnBatchedDestination) => d.writePending();

/** pino's asynchronous destination on `fd` (sonic-boom): a TurnBatchedDestination's fallback. */
export const asyncDestination = (fd: number): Fallback => destination({ dest: fd, sync: false });

let stdoutDestination: TurnBatchedDestination | undefined;

/**
 * The process's stdout as a TurnBatchedDestination; undefined when stdout's write was replaced (a test
 * runner capturing it), where pino writes through process.stdout itself, as it chooses without a stream.
 */
export function stdoutLogDestination(): DestinationStream | undefined {
  // (pino's own test: stdout's write not its class's)
  if (process.stdout.write !== (process.stdout.constructor as { prototype: { write: unknown } }).prototype.write) return undefined;
  if (!stdoutDestination) {
    const fd = process.stdout.fd || 1;
    const held = new TurnBatchedDestination(fd, asyncDestination(fd));
    // (pino's own exit flush of the fallback runs too, before or after: its lines are written once.)
    process.on("exit", () => held.flushSync());
    stdoutDestination = held;
  }
  return stdoutDestination;
}
