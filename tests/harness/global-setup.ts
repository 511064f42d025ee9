/**
 * vitest globalSetup: starts the servers shared by every test file once (in parallel) and hands
 * their coordinates to the workers with `provide`; stops them at the end (exit hooks and a
 * parent-death watchdog cover crashes). `HARNESS_SHARED` picks which (comma list, default
 * "postgres,kafka,clickhouse"; "none" for none). Redis is cheap (~0.1 s) and is private per file.
 */
import type { TestProject } from "vitest/node";
import { startPostgres, type PostgresServer } from "./postgres";
import { KafkaServer } from "./kafka";
import { freePort } from "./proc";
import { startClickHouse, type ClickHouseServer } from "./clickhouse";
import type { SharedCoordinates } from "./shared";

export default async function setup(project: TestProject) {
  const wanted = new Set(
    (process.env.HARNESS_SHARED ?? "postgres,kafka,clickhouse")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s && s !== "none"),
  );
  const started: Array<PostgresServer | KafkaServer | ClickHouseServer> = [];
  const coords: SharedCoordinates = {};
  const t0 = Date.now();
  const jobs: Promise<void>[] = [];
  if (wanted.has("postgres"))
    jobs.push(startPostgres().then((s) => {
      started.push(s);
      coords.postgres = { adminUrl: s.url, port: s.port, user: s.user, password: s.password, startMs: s.lastStartMs };
    }));
  // Kafka takes 10-30 s on 2 cores: it starts in the background (its port is known up front) and
  // only the files that use it wait for it (useServers("kafka") polls the admin API).
  let kafkaStarting: Promise<unknown> | undefined;
  if (wanted.has("kafka")) {
    // Start bound 480 s (over four minutes measured at load 25); HARNESS_KAFKA_START_MS changes it.
    const kafka = new KafkaServer(await freePort(), await freePort(), Number(process.env.HARNESS_KAFKA_START_MS ?? 480_000), "-Xms128m -Xmx384m");
    started.push(kafka);
    coords.kafka = { brokers: kafka.url, startMs: 0 };
    const t = Date.now();
    kafkaStarting = kafka.start().then(
      () => console.log(`[harness] shared kafka@${kafka.port} ready in ${Date.now() - t} ms`),
      (e: Error) => console.error(`[harness] shared kafka failed to start: ${e.message}`),
    );
  }
  if (wanted.has("clickhouse"))
    jobs.push(startClickHouse().then((s) => {
      started.push(s);
      coords.clickhouse = { url: s.url, user: s.user, password: s.password, startMs: s.lastStartMs };
    }));
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw failed.reason;
  }
  if (started.length)
    console.log(
      `[harness] shared servers ready in ${Date.now() - t0} ms: ` +
        started.map((s) => `${s.kind}@${s.port} (${s.kind === "kafka" ? "starting in the background" : `${s.lastStartMs} ms`})`).join(", "),
    );
  project.provide("harness", coords);
  return async () => {
    await kafkaStarting;
    await Promise.allSettled(started.map((s) => s.stop()));
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    harness: SharedCoordinates;
  }
}
