/**
 * The kit's patch of kafkajs' request queue (services/src/kit/datastores/kafkajs-idle-loop.ts),
 * against a real broker: unpatched, an idle connection re-arms a 1 ms timer forever (hundreds of
 * queue checks a second); patched, an idle client checks almost never, and a producer that can
 * have only one request in flight, so that its requests do queue, still delivers every message. The unpatched figure runs in a child process: in this one the harness applies the patch.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { useServers } from "../harness/shared";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";

const srv = useServers("kafka");
const TOPIC = `test.idle-loop.${randomBytes(4).toString("hex")}`;
const SERVICES = join(__dirname, "..", "..", "services");

/**
 * Queue checks (RequestQueue.checkPendingRequests calls) a connected, idle producer makes in a fresh
 * Node process, with or without the patch: (`untilChecks`) until it has made that many, or else while
 * a witness, a 1 ms timer awaited again and again as the unpatched loop's is, turns WITNESS_TURNS times
 * (the unpatched loop would have made at least as many checks by then), however long a loaded
 * machine's late timers take (bounded by the child's 120 s).
 */
/** The witness's turns: the unpatched loop would have made a thousand checks (a second's worth on an idle host). */
const WITNESS_TURNS = 1_000;
async function idleChecks(patched: boolean, untilChecks?: number): Promise<number> {
  const script = `
    const { createRequire } = require("node:module");
    const req = createRequire(${JSON.stringify(join(SERVICES, "package.json"))});
    if (process.env.PATCH === "1") require(${JSON.stringify(join(SERVICES, "src", "kit", "datastores", "kafkajs-idle-loop.ts"))}).patchKafkaJsIdleLoop(req);
    const RequestQueue = req("kafkajs/src/network/requestQueue");
    const WITNESS_TURNS = ${WITNESS_TURNS};
    let checks = 0;
    const check = RequestQueue.prototype.checkPendingRequests;
    RequestQueue.prototype.checkPendingRequests = function () { checks++; return check.call(this); };
    const { Kafka, logLevel } = req("kafkajs");
    const producer = new Kafka({ brokers: process.env.BROKERS.split(","), logLevel: logLevel.NOTHING }).producer();
    (async () => {
      await producer.connect();
      await new Promise((r) => setTimeout(r, 300));
      const from = checks;
      const until = Number(process.env.UNTIL_CHECKS || 0);
      if (until) while (checks - from < until) await new Promise((r) => setTimeout(r, 10));
      else for (let turns = 0; turns < WITNESS_TURNS; turns++) await new Promise((r) => setTimeout(r, 1));
      console.log(JSON.stringify({ checks: checks - from }));
      await producer.disconnect();
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "-e", script], {
    cwd: SERVICES,
    env: { ...process.env, BROKERS: srv.kafka.brokers, PATCH: patched ? "1" : "0", UNTIL_CHECKS: String(untilChecks ?? "") },
    timeout: 120_000,
  });
  return (JSON.parse(stdout.trim().split("\n").pop()!) as { checks: number }).checks;
}

describe("kafkajs' idle request-queue loop", () => {
  let kafka: InstanceType<typeof kafkajs.Kafka>;
  beforeAll(async () => {
    kafka = new kafkajs.Kafka({ brokers: srv.kafka.brokers.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 1 }]);
    await admin.disconnect();
  }, 120_000);

  it("unpatched, an idle client checks its queues hundreds of times a second; patched, almost never", async () => {
    // A 1 ms timer per connection: about 0.1 s for 100 checks on an idle host. On a loaded one timers
    // fire late (a second held fewer than 100), so the unpatched loop is shown by the checks it keeps
    // making, not by a rate; the patched one is counted while a 1 ms witness timer turns a thousand
    // times, in which the unpatched loop would have made as many checks, however late the timers fire.
    const [unpatched, patched] = [await idleChecks(false, 100), await idleChecks(true)];
    expect(unpatched).toBeGreaterThanOrEqual(100);
    expect(patched).toBeLessThan(10);
  }, 300_000);

  it("a producer with one request in flight still delivers every message", async () => {
    const producer = kafka.producer({ maxInFlightRequests: 1 });
    let queued = 0;
    producer.on(producer.events.REQUEST_QUEUE_SIZE, ({ payload }) => (queued = Math.max(queued, payload.queueSize)));
    await producer.connect();
    const N = 200;
    // Sent without waiting for each other: all but one wait in the request queue's pending list.
    await Promise.all(Array.from({ length: N }, (_, i) => producer.send({ topic: TOPIC, acks: -1, messages: [{ key: "k", value: String(i) }] })));
    await producer.disconnect();
    expect(queued).toBeGreaterThan(0); // requests did wait in the queue the patch changes

    const seen: number[] = [];
    const consumer = kafka.consumer({ groupId: `idle-loop-${randomBytes(4).toString("hex")}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        seen.push(Number(message.value!.toString()));
        if (seen.length >= N) done();
      },
    });
    await all;
    await consumer.disconnect();
    // Concurrent sends are not ordered among themselves by kafkajs: every one exactly once.
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  }, 300_000);
});
