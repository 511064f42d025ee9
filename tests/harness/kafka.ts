import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { kafkajs } from "./deps";
import { BaseServer } from "./server";
import { runOk } from "./run";
import { ManagedProcess, freePort, makeTempDir, waitFor } from "./proc";

export interface KafkaEnv extends Record<string, string> {
  KAFKA_BROKERS: string;
}

export interface StartKafkaOptions {
  readyTimeoutMs?: number;
  /** JVM heap, default "-Xms128m -Xmx384m" (2-core test machine). */
  heapOpts?: string;
}

let kafkaHomeCache: Promise<string> | undefined;

/**
 * The Kafka distribution from scripts/kafka/fetch-kafka.sh (KAFKA_HOME overrides): fetched from
 * Maven Central on a machine that has not got it yet, asynchronously (tests/harness/run.ts).
 */
export function kafkaHome(): Promise<string> {
  const fromEnv = process.env.KAFKA_HOME;
  if (fromEnv && existsSync(join(fromEnv, "bin", "kafka-single-node.sh"))) return Promise.resolve(fromEnv);
  kafkaHomeCache ??= runOk("bash", [resolve(__dirname, "..", "..", "scripts", "kafka", "fetch-kafka.sh")]).then((out) => {
    const dir = out.trim().split("\n").pop()!.trim();
    if (!existsSync(join(dir, "bin", "kafka-single-node.sh"))) throw new Error(`fetch-kafka.sh printed ${dir}, which has no launcher`);
    return dir;
  });
  return kafkaHomeCache;
}

/** Single-node KRaft Apache Kafka (broker + controller) on free loopback ports; PLAINTEXT, no auth. */
export class KafkaServer extends BaseServer<KafkaEnv> {
  constructor(
    port: number,
    readonly controllerPort: number,
    private readonly readyTimeoutMs: number,
    private readonly heapOpts: string,
  ) {
    super("kafka", port, makeTempDir("kafka"));
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  get brokers(): string[] {
    return [this.url];
  }

  get env(): KafkaEnv {
    return { KAFKA_BROKERS: this.url };
  }

  private home = "";

  protected async prepare(): Promise<void> {
    this.home ||= await kafkaHome();
  }

  protected launch(): ManagedProcess {
    const home = this.home;
    return new ManagedProcess(
      "kafka",
      "bash",
      [join(home, "bin", "kafka-single-node.sh"), String(this.port), join(this.dir, "data"), String(this.controllerPort), "127.0.0.1"],
      {
        logFile: join(this.dir, "server.log"),
        cwd: this.dir,
        env: { ...process.env, KAFKA_HEAP_OPTS: this.heapOpts, KAFKA_LISTEN_HOST: "127.0.0.1", LOG_DIR: this.dir },
      },
    );
  }

  /** A kafkajs client for this broker (logging off, short retries). */
  client(clientId = "harness") {
    return new kafkajs.Kafka({
      clientId,
      brokers: this.brokers,
      logLevel: kafkajs.logLevel.NOTHING,
      connectionTimeout: 2000,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  }

  protected async waitReady(proc: ManagedProcess): Promise<void> {
    await waitFor(
      "kafka",
      async () => {
        const admin = this.client("harness-ready").admin();
        try {
          await admin.connect();
          await admin.listTopics(); // a real admin API round trip, not just an open port
          return true;
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      { timeoutMs: this.readyTimeoutMs, intervalMs: 500, proc },
    );
  }
}

/** Start a private single-node KRaft Kafka; formats storage on the first start, waits on admin listTopics. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaServer> {
  const server = new KafkaServer(await freePort(), await freePort(), opts.readyTimeoutMs ?? 180_000, opts.heapOpts ?? "-Xms128m -Xmx384m");
  return server.start();
}
