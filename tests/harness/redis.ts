import { createConnection } from "node:net";
import { join } from "node:path";
import { BaseServer } from "./server";
import { ManagedProcess, freePort, generatePassword, makeTempDir, waitFor } from "./proc";

export interface RedisEnv extends Record<string, string> {
  DRAGONFLY_URL: string;
}

export interface StartRedisOptions {
  readyTimeoutMs?: number;
  /** AOF with fsync on every write so kill() → restart() keeps every acknowledged write (default true). */
  persistent?: boolean;
}

/** AUTH + PING over raw RESP; resolves true on +PONG. */
function ping(port: number, password: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    const done = (err?: Error, ok?: boolean) => {
      sock.destroy();
      if (err) reject(err);
      else resolve(!!ok);
    };
    sock.setTimeout(1000, () => done(new Error("timeout")));
    sock.on("error", (e) => done(e));
    sock.on("connect", () => {
      sock.write(`*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n*1\r\n$4\r\nPING\r\n`);
    });
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.startsWith("-")) return done(new Error(buf.trim()));
      if (buf.includes("+PONG")) return done(undefined, true);
      if (buf.split("\r\n").length > 3) return done(new Error(`unexpected reply ${JSON.stringify(buf)}`));
    });
  });
}

export class RedisServer extends BaseServer<RedisEnv> {
  readonly password = generatePassword();

  constructor(
    port: number,
    private readonly readyTimeoutMs: number,
    private readonly persistent: boolean,
  ) {
    super("redis", port, makeTempDir("redis"));
  }

  get url(): string {
    return `redis://:${this.password}@127.0.0.1:${this.port}`;
  }

  get env(): RedisEnv {
    return { DRAGONFLY_URL: this.url };
  }

  protected launch(): ManagedProcess {
    const persistence = this.persistent
      ? ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
      : ["--appendonly", "no", "--save", ""];
    return new ManagedProcess(
      "redis",
      process.env.REDIS_SERVER_BIN ?? "redis-server",
      [
        "--port", String(this.port),
        "--bind", "127.0.0.1",
        "--requirepass", this.password,
        "--dir", this.dir,
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--logfile", "",
        "--databases", "64",
        ...persistence,
      ],
      { logFile: join(this.dir, "server.log"), cwd: this.dir },
    );
  }

  protected async waitReady(proc: ManagedProcess): Promise<void> {
    await waitFor("redis", () => ping(this.port, this.password), { timeoutMs: this.readyTimeoutMs, intervalMs: 50, proc });
  }
}

/** Start a private redis-server (Dragonfly stand-in, Redis protocol) with requirepass on a free loopback port. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const server = new RedisServer(await freePort(), opts.readyTimeoutMs ?? 20_000, opts.persistent ?? true);
  return server.start();
}
