import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { BaseServer } from "./server";
import { ManagedProcess, freePort, freePortPair, generatePassword, makeTempDir, waitFor } from "./proc";

export interface WeaviateEnv extends Record<string, string> {
  WEAVIATE_URL: string;
  WEAVIATE_GRPC_PORT: string;
  WEAVIATE_API_KEY: string;
}

export interface StartWeaviateOptions {
  readyTimeoutMs?: number;
}

const REPO = join(__dirname, "..", "..");

/** The version scripts/weaviate/build.sh builds by default (scripts/weaviate/versions.env). */
export function weaviateVersion(): string {
  if (process.env.WEAVIATE_VERSION) return process.env.WEAVIATE_VERSION;
  const env = readFileSync(join(REPO, "scripts", "weaviate", "versions.env"), "utf8");
  const m = /^WEAVIATE_DEFAULT_VERSION=(\S+)/m.exec(env);
  if (!m) throw new Error("scripts/weaviate/versions.env has no WEAVIATE_DEFAULT_VERSION");
  return m[1];
}

/** Path of the cached server binary (WEAVIATE_SERVER_BIN overrides); it may not exist yet. */
export function weaviateBinary(): string {
  if (process.env.WEAVIATE_SERVER_BIN) return process.env.WEAVIATE_SERVER_BIN;
  const cache = process.env.TRADING_CACHE_DIR ?? join(homedir(), ".cache", "ai-trading");
  return join(cache, "weaviate", weaviateVersion(), "bin", "weaviate-server");
}

/**
 * The build `npm test` started in the background because the binary was not cached
 * (scripts/test.sh: WEAVIATE_BUILD_LOG; its exit status is written to <log>.exit when it ends), so
 * that the other suites run while it compiles; undefined when none was started.
 */
function pendingBuild(): { log: string; exitFile: string } | undefined {
  const log = process.env.WEAVIATE_BUILD_LOG;
  return log ? { log, exitFile: `${log}.exit` } : undefined;
}

/** The cached build is complete (scripts/weaviate/build.sh moves bin/ and .complete into place together). */
function built(): boolean {
  const bin = weaviateBinary();
  return existsSync(bin) && (process.env.WEAVIATE_SERVER_BIN !== undefined || existsSync(join(dirname(dirname(bin)), ".complete")));
}

/**
 * How long a file waits for the background build: a cold build took 11 min alone and 24 min beside
 * two other Go builds here; the budget is the CI's whole 40 min.
 */
export const WEAVIATE_BUILD_WAIT_MS = Number(process.env.WEAVIATE_BUILD_WAIT_MS ?? 40 * 60_000);

/** Waits for the background build (if any) to finish; fails with its log's tail when it failed. */
async function waitForBuild(): Promise<void> {
  const build = pendingBuild();
  if (!build || built()) return;
  const until = Date.now() + WEAVIATE_BUILD_WAIT_MS;
  while (!built()) {
    if (existsSync(build.exitFile) && !built()) {
      const tail = existsSync(build.log) ? readFileSync(build.log, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
      throw new Error(`the Weaviate build npm test started ended without a binary at ${weaviateBinary()} (exit ${readFileSync(build.exitFile, "utf8").trim()}); its log ${build.log}:\n${tail}`);
    }
    if (Date.now() > until) throw new Error(`the Weaviate build (log ${build.log}) still running after ${WEAVIATE_BUILD_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

/**
 * Whether Weaviate tests can run. `npm test` builds the binary (in the background when it is not
 * cached: the files that need it wait for it, and run last, tests/harness/sequencer.ts) and sets
 * WEAVIATE_REQUIRED=1, so there a missing binary is a failure, never a silent skip; an ad-hoc
 * `npx vitest run` on a machine that has not built it yet skips those tests with this message.
 */
export function weaviateAvailability(): { available: boolean; reason: string } {
  const bin = weaviateBinary();
  if (existsSync(bin) || pendingBuild()) return { available: true, reason: "" };
  const reason = `Weaviate server binary not found at ${bin}: run \`bash scripts/weaviate/build.sh\` (about 11 min cold, cached)`;
  if (process.env.WEAVIATE_REQUIRED === "1") throw new Error(reason);
  console.warn(`[harness] SKIPPING Weaviate tests: ${reason}`);
  return { available: false, reason };
}

/**
 * A private Weaviate (the binary built from the Go module proxy by scripts/weaviate/build.sh) on
 * free loopback ports: HTTP, gRPC, memberlist gossip and data, Raft and its RPC. API-key auth is on
 * (admin key generated per server), anonymous access off, no vectorizer module: the services
 * supply their own vectors. CLUSTER_IN_LOCALHOST and the 127.0.0.1 bind/advertise addresses are
 * required on hosts with IPv6 addresses (otherwise it dies with "too many colons").
 *
 * With CLUSTER_IN_LOCALHOST the Raft join RPC dials RAFT_PORT + 1 (cluster/resolver/rpc.go), not
 * RAFT_INTERNAL_RPC_PORT: the two must be consecutive, or the single node's join hangs on a
 * stranger's port and Raft never bootstraps ("no known peers, aborting election"). The Go
 * profiling listener (default :6060, shared by every instance on the host) is off. Ready means
 * the node has a Raft leader (/v1/cluster/statistics), not only the HTTP /ready probe, which
 * answers before the election and would let the first schema write fail.
 */
export class WeaviateServer extends BaseServer<WeaviateEnv> {
  readonly apiKey = generatePassword();
  readonly readOnlyKey = generatePassword();

  constructor(
    port: number,
    readonly grpcPort: number,
    private readonly clusterPorts: { gossip: number; data: number; raft: number; raftRpc: number },
    private readonly readyTimeoutMs: number,
  ) {
    super("weaviate", port, makeTempDir("weaviate"));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get env(): WeaviateEnv {
    return { WEAVIATE_URL: this.url, WEAVIATE_GRPC_PORT: String(this.grpcPort), WEAVIATE_API_KEY: this.apiKey };
  }

  protected launch(): ManagedProcess {
    const p = this.clusterPorts;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.dir,
      PERSISTENCE_DATA_PATH: join(this.dir, "data"),
      DEFAULT_VECTORIZER_MODULE: "none",
      ENABLE_MODULES: "",
      CLUSTER_HOSTNAME: "node1",
      CLUSTER_IN_LOCALHOST: "true",
      CLUSTER_BIND_ADDR: "127.0.0.1",
      CLUSTER_ADVERTISE_ADDR: "127.0.0.1",
      CLUSTER_GOSSIP_BIND_PORT: String(p.gossip),
      CLUSTER_DATA_BIND_PORT: String(p.data),
      RAFT_PORT: String(p.raft),
      RAFT_INTERNAL_RPC_PORT: String(p.raftRpc),
      RAFT_BOOTSTRAP_EXPECT: "1",
      GRPC_PORT: String(this.grpcPort),
      QUERY_DEFAULTS_LIMIT: "25",
      DISABLE_TELEMETRY: "true",
      LOG_LEVEL: "info",
      GO_PROFILING_DISABLE: "true",
      PROMETHEUS_MONITORING_ENABLED: "false",
      LIMIT_RESOURCES: "true",
      GOMAXPROCS: "2",
      AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED: "false",
      AUTHENTICATION_APIKEY_ENABLED: "true",
      AUTHENTICATION_APIKEY_ALLOWED_KEYS: `${this.apiKey},${this.readOnlyKey}`,
      AUTHENTICATION_APIKEY_USERS: "admin,reader",
      AUTHORIZATION_ADMINLIST_ENABLED: "true",
      AUTHORIZATION_ADMINLIST_USERS: "admin",
      AUTHORIZATION_ADMINLIST_READONLY_USERS: "reader",
    };
    return new ManagedProcess(
      "weaviate",
      weaviateBinary(),
      ["--host", "127.0.0.1", "--port", String(this.port), "--scheme", "http"],
      { logFile: join(this.dir, "server.log"), cwd: this.dir, env },
    );
  }

  protected async waitReady(proc: ManagedProcess): Promise<void> {
    await waitFor(
      "weaviate",
      async () => {
        const ready = await fetch(`${this.url}/v1/.well-known/ready`, { signal: AbortSignal.timeout(2000) });
        if (ready.status !== 200) return false;
        const stats = await fetch(`${this.url}/v1/cluster/statistics`, {
          headers: { authorization: `Bearer ${this.apiKey}` },
          signal: AbortSignal.timeout(2000),
        });
        if (stats.status !== 200) return false;
        const body = (await stats.json()) as { statistics?: Array<{ leaderId?: string; ready?: boolean }> };
        return !!body.statistics?.some((s) => s.ready && s.leaderId);
      },
      { timeoutMs: this.readyTimeoutMs, intervalMs: 250, proc },
    );
  }
}

/** Start a private Weaviate (fails with the build command when the binary is missing). */
export async function startWeaviate(opts: StartWeaviateOptions = {}): Promise<WeaviateServer> {
  await waitForBuild();
  const bin = weaviateBinary();
  if (!existsSync(bin)) throw new Error(`Weaviate server binary not found at ${bin}: run \`bash scripts/weaviate/build.sh\``);
  const [raft, raftRpc] = await freePortPair();
  const ports = { gossip: await freePort(), data: await freePort(), raft, raftRpc };
  const server = new WeaviateServer(await freePort(), await freePort(), ports, opts.readyTimeoutMs ?? 90_000);
  return server.start();
}
