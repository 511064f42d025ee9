import { execFileSync } from "node:child_process";
import { writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pg } from "./deps";
import { BaseServer } from "./server";
import { run } from "./run";
import { ManagedProcess, chownRecursive, freePort, generatePassword, makeTempDir, waitFor } from "./proc";

export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

export interface PostgresEnv extends Record<string, string> {
  POSTGRES_URL: string;
}

export interface StartPostgresOptions {
  /** Superuser created by initdb (default "harness"). */
  user?: string;
  /** Database in the returned URL (default "postgres"). */
  database?: string;
  readyTimeoutMs?: number;
  /** More server settings, `name=value` each (a bench's `shared_preload_libraries=pg_stat_statements`). */
  settings?: string[];
}

function osUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  // postgres refuses to run as root: use the unprivileged `postgres` account.
  const name = process.env.HARNESS_PG_OS_USER ?? "postgres";
  const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
  return { uid, gid };
}

export class PostgresServer extends BaseServer<PostgresEnv> {
  readonly password = generatePassword();
  private readonly owner = osUser();

  constructor(
    port: number,
    readonly user: string,
    readonly database: string,
    private readonly readyTimeoutMs: number,
    private readonly settings: string[] = [],
  ) {
    super("postgres", port, makeTempDir("pg"), "SIGINT" /* fast shutdown */);
  }

  get url(): string {
    return this.urlFor(this.database);
  }

  get env(): PostgresEnv {
    return { POSTGRES_URL: this.url };
  }

  urlFor(database: string): string {
    return `postgresql://${this.user}:${this.password}@127.0.0.1:${this.port}/${database}`;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  protected async prepare(): Promise<void> {
    if (existsSync(join(this.dataDir, "PG_VERSION"))) return;
    const pwfile = join(this.dir, "pwfile");
    writeFileSync(pwfile, this.password + "\n", { mode: 0o600 });
    if (this.owner.uid !== undefined) chownRecursive(this.dir, this.owner.uid, this.owner.gid!);
    const r = await run(
      join(PG_BIN, "initdb"),
      ["-D", this.dataDir, "-U", this.user, `--pwfile=${pwfile}`, "--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"],
      { uid: this.owner.uid, gid: this.owner.gid },
    );
    if (r.status !== 0) throw new Error(`initdb failed (${r.status}): ${r.stderr || r.error}`);
  }

  protected launch(): ManagedProcess {
    return new ManagedProcess(
      "postgres",
      join(PG_BIN, "postgres"),
      [
        "-D", this.dataDir,
        "-p", String(this.port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", `unix_socket_directories=${this.dir}`,
        "-c", "max_connections=200",
        "-c", "shared_buffers=32MB",
        // fsync off is safe for SIGKILL of the server (the OS keeps written pages); commits stay synchronous.
        "-c", "fsync=off",
        "-c", "full_page_writes=off",
        "-c", "password_encryption=scram-sha-256",
        ...this.settings.flatMap((kv) => ["-c", kv]),
      ],
      { uid: this.owner.uid, gid: this.owner.gid, logFile: join(this.dir, "server.log"), cwd: this.dir },
    );
  }

  protected async waitReady(proc: ManagedProcess): Promise<void> {
    await waitFor(
      "postgres",
      async () => {
        // A probe that gives up after 1 s never succeeds on a loaded machine (the server answers,
        // slowly): each probe waits as long as a client would; the overall bound is readyTimeoutMs.
        const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 15_000 });
        try {
          await c.connect();
          await c.query("SELECT 1");
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      { timeoutMs: this.readyTimeoutMs, intervalMs: 100, proc },
    );
  }

  /** Run one statement as the superuser (default database of the URL). */
  async query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: unknown[] = [], database = this.database): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.urlFor(database), connectionTimeoutMillis: 3000 });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Create a fresh database (isolation between test files sharing one server); returns its URL. */
  async createDatabase(name = `t_${generatePassword(6)}`): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name ${name}`);
    await this.query(`CREATE DATABASE ${name}`);
    return this.urlFor(name);
  }
}

/** Start a private PostgreSQL 15 on a free loopback port (scram-sha-256, generated password). */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const server = new PostgresServer(await freePort(), opts.user ?? "harness", opts.database ?? "postgres", opts.readyTimeoutMs ?? 600_000, opts.settings);
  return server.start();
}
