import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BaseServer } from "./server";
import { ManagedProcess, freePort, generatePassword, makeTempDir, waitFor } from "./proc";

export interface ClickHouseEnv extends Record<string, string> {
  CLICKHOUSE_URL: string;
  CLICKHOUSE_USER: string;
  CLICKHOUSE_PASSWORD: string;
  CLICKHOUSE_DATABASE: string;
}

export interface StartClickHouseOptions {
  readyTimeoutMs?: number;
  /** The default user's password instead of a generated one (e.g. one with characters to escape). */
  password?: string;
  /** The server's time zone (`<timezone>`, what toDate of a DateTime answers in); UTC by default. */
  timezone?: string;
}

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * A private clickhouse-server. Written for the Debian 12 package (18.16, `<yandex>` root element),
 * also accepted by newer servers. HTTP and native TCP on free loopback ports.
 */
export class ClickHouseServer extends BaseServer<ClickHouseEnv> {
  readonly user = "default";
  readonly database = "default";

  constructor(
    port: number,
    readonly tcpPort: number,
    private readonly readyTimeoutMs: number,
    readonly password: string = generatePassword(),
    readonly timezone = "UTC",
  ) {
    super("clickhouse", port, makeTempDir("clickhouse"));
    this.writeConfig();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get env(): ClickHouseEnv {
    return {
      CLICKHOUSE_URL: this.url,
      CLICKHOUSE_USER: this.user,
      CLICKHOUSE_PASSWORD: this.password,
      CLICKHOUSE_DATABASE: this.database,
    };
  }

  private writeConfig(): void {
    const d = this.dir;
    for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(
      join(d, "config.xml"),
      `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${d}/log/clickhouse-server.log</log>
    <errorlog>${d}/log/clickhouse-server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <http_port>${this.port}</http_port>
  <tcp_port>${this.tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>50</max_concurrent_queries>
  <uncompressed_cache_size>8388608</uncompressed_cache_size>
  <mark_cache_size>52428800</mark_cache_size>
  <path>${d}/data/</path>
  <tmp_path>${d}/tmp/</tmp_path>
  <user_files_path>${d}/user_files/</user_files_path>
  <format_schema_path>${d}/format_schemas/</format_schema_path>
  <users_config>${d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>${xmlEscape(this.timezone)}</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
`,
    );
    writeFileSync(
      join(d, "users.xml"),
      `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <${this.user}>
      <password>${xmlEscape(this.password)}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${this.user}>
  </users>
  <quotas>
    <default>
      <interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
    </default>
  </quotas>
</yandex>
`,
      { mode: 0o600 },
    );
  }

  protected launch(): ManagedProcess {
    return new ManagedProcess(
      "clickhouse",
      process.env.CLICKHOUSE_SERVER_BIN ?? "clickhouse-server",
      [`--config-file=${join(this.dir, "config.xml")}`],
      { logFile: join(this.dir, "server.log"), cwd: this.dir },
    );
  }

  /** POST one statement over HTTP with the generated credentials; returns the response body. */
  async query(sql: string, database = this.database): Promise<string> {
    const qs = new URLSearchParams({ database });
    const res = await fetch(`${this.url}/?${qs}`, {
      method: "POST",
      body: sql,
      headers: { "X-ClickHouse-User": this.user, "X-ClickHouse-Key": this.password },
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`clickhouse ${res.status}: ${body.trim()}`);
    return body;
  }

  /** Create a fresh database (isolation between test files sharing one server); returns its name. */
  async createDatabase(name = `t_${generatePassword(6)}`): Promise<string> {
    await this.query(`CREATE DATABASE IF NOT EXISTS ${name}`);
    return name;
  }

  protected async waitReady(proc: ManagedProcess): Promise<void> {
    await waitFor("clickhouse", async () => (await this.query("SELECT 1")).trim() === "1", {
      timeoutMs: this.readyTimeoutMs,
      intervalMs: 100,
      proc,
    });
  }
}

/** Start a private clickhouse-server (HTTP + native ports free on loopback, generated password). */
export async function startClickHouse(opts: StartClickHouseOptions = {}): Promise<ClickHouseServer> {
  const server = new ClickHouseServer(await freePort(), await freePort(), opts.readyTimeoutMs ?? 600_000, opts.password, opts.timezone);
  return server.start();
}
