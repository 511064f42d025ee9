import { ManagedProcess, removeDir } from "./proc";

export type ServerKind = "postgres" | "redis" | "kafka" | "clickhouse" | "weaviate";

/** What every start*() returns. */
export interface ServerHandle<Env extends Record<string, string> = Record<string, string>> {
  readonly kind: ServerKind;
  readonly host: "127.0.0.1";
  /** Main client port (Postgres, Redis, Kafka PLAINTEXT, ClickHouse HTTP). */
  readonly port: number;
  /** Connection URL in the conventions.md format of this datastore. */
  readonly url: string;
  /** The conventions.md environment variables for this datastore. */
  readonly env: Env;
  /** Temp dir holding config, data and the server log (`server.log`). */
  readonly dir: string;
  /** Duration of the last start (spawn → ready), ms. */
  readonly lastStartMs: number;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Graceful stop; removes the temp dir unless keepData (then restart() works again). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** SIGKILL the server's whole process group (a crash); data stays for restart(). */
  kill(): Promise<void>;
  /** Start again on the same port with the same data (stops first if running). */
  restart(): Promise<void>;
}

/** Shared start/stop/kill/restart life cycle; subclasses launch the process and probe readiness. */
export abstract class BaseServer<Env extends Record<string, string>> implements ServerHandle<Env> {
  readonly host = "127.0.0.1" as const;
  lastStartMs = 0;
  protected proc?: ManagedProcess;
  private removed = false;

  protected constructor(
    readonly kind: ServerKind,
    readonly port: number,
    readonly dir: string,
    protected readonly stopSignal: NodeJS.Signals = "SIGTERM",
  ) {}

  abstract get url(): string;
  abstract get env(): Env;
  protected abstract launch(): ManagedProcess;
  /** Work before the first launch (creating the data directory): asynchronous, see run.ts. */
  protected async prepare(): Promise<void> {}
  protected abstract waitReady(proc: ManagedProcess): Promise<void>;

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && !this.proc.exited;
  }

  async start(): Promise<this> {
    if (this.removed) throw new Error(`${this.kind}: data dir removed by stop(); cannot restart`);
    const t0 = Date.now();
    await this.prepare();
    for (let attempt = 1; ; attempt++) {
      const proc = this.launch();
      this.proc = proc;
      try {
        await this.waitReady(proc);
        break;
      } catch (err) {
        await proc.kill();
        // A server that exited during start-up on a loaded machine (e.g. the previous instance's
        // port or shared memory not yet released after a crash) gets one more try.
        if (!proc.exited || attempt >= 2 || proc.signal === "SIGKILL") throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.lastStartMs = Date.now() - t0;
    return this;
  }

  async stop(opts: { keepData?: boolean } = {}): Promise<void> {
    await this.proc?.stop(this.stopSignal);
    if (!opts.keepData && !this.removed) {
      this.removed = true;
      removeDir(this.dir);
    }
  }

  async kill(): Promise<void> {
    await this.proc?.kill();
  }

  async restart(): Promise<void> {
    if (this.running) await this.proc!.stop(this.stopSignal);
    await this.start();
  }
}
