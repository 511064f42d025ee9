import { KAFKA_SESSION_TIMEOUT_MS } from "../../catalog";
import { Type } from "../../kit";

/**
 * Consumer-group timing. A SIGKILLed member is only evicted after the session timeout, so a
 * restarted singleton (trading-engine) waits that long before it gets its partitions back.
 *
 * KAFKA_FETCH_MAX_WAIT_MS is how long the broker holds a fetch that finds nothing: a long poll,
 * answered as soon as a message arrives on any of its partitions, so it costs no latency
 * (measured: produce-to-consume p50 16 ms with 100 ms or 1,000 ms, 12 partitions, one message
 * every 150-350 ms), but every empty answer costs the broker about 2 ms of CPU: four idle consumers
 * at 100 ms took 65-100 ms of Kafka CPU per second, at 1,000 ms 0-10 (a private broker; the order
 * path bench saw 270 ms/s of idle broker CPU with its five consumers at 100 and 20 ms). kafkajs
 * heartbeats between fetches, so the wait is at most a third of the session timeout, as the heartbeat
 * interval is (Kafka's rule for it: a member silent for a session timeout is evicted and its group
 * rebalances). Both are refused at start beyond it (session 51; before, the wait was cut to a third
 * without a word and the heartbeat not checked at all).
 */
const THIRD_OF_SESSION = "Kafka evicts a member silent for KAFKA_SESSION_TIMEOUT_MS and rebalances its group: heartbeats (sent between fetches) come at least three times in it";
export const consumerEnv = {
  // The catalog's default and most (a stack may set it: catalog KAFKA_SESSION_TIMEOUT_MS); 6 s at least here, for tests' short sessions.
  KAFKA_SESSION_TIMEOUT_MS: Type.Integer({ ...KAFKA_SESSION_TIMEOUT_MS, minimum: 6_000 }),
  KAFKA_HEARTBEAT_MS: Type.Integer({ default: 3_000, minimum: 100, atMost: { key: "KAFKA_SESSION_TIMEOUT_MS", divisor: 3, why: THIRD_OF_SESSION } }),
  KAFKA_FETCH_MAX_WAIT_MS: Type.Integer({ default: 1_000, minimum: 10, maximum: 10_000, atMost: { key: "KAFKA_SESSION_TIMEOUT_MS", divisor: 3, why: THIRD_OF_SESSION } }),
};
export type ConsumerTiming = { KAFKA_SESSION_TIMEOUT_MS: number; KAFKA_HEARTBEAT_MS: number; KAFKA_FETCH_MAX_WAIT_MS: number };
export const consumerConfig = (c: ConsumerTiming) => ({
  sessionTimeout: c.KAFKA_SESSION_TIMEOUT_MS,
  heartbeatInterval: c.KAFKA_HEARTBEAT_MS,
  rebalanceTimeout: Math.max(c.KAFKA_SESSION_TIMEOUT_MS, 10_000),
  maxWaitTimeInMs: c.KAFKA_FETCH_MAX_WAIT_MS,
});

import type { ServiceContext } from "../../kit";
import { heartbeatWhileHandling } from "./batchHeartbeats";
import { deadLetterHeaders, deadLettersCounter, isRetriable, reasonText, setAside, type DeadLetterStore } from "./deadLetters";
import { GroupCommit } from "./groupCommit";
import { checkMessage } from "./topicSchemas";

export interface BatchMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string;
  /**
   * The message as received: its key's and value's bytes, its headers (what a dead letter keeps, whatever the
   * reason). The headers stay kafkajs' until a dead letter is written (deadLetterHeaders then): encoding them for
   * every message, for a dead letter almost never written, was about half a percent of the engine's CPU.
   */
  raw: { key: Buffer | null; value: Buffer | null; headers: import("kafkajs").IHeaders | undefined };
  /** `value` parsed (a JSON object that passed its topic's schema): handlers need not parse it again. */
  json: object;
}

interface ConsumeOptions {
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  /**
   * The batches of every partition fetched together are handed over as one (kafkajs runs up to
   * `partitions` of them at once and a GroupCommit joins them): one transaction where there were
   * one per partition. Only for a handler indifferent to the partition of a message (the order of
   * each partition's messages is kept).
   */
  joinPartitions?: number;
  /** How much a fetch gathers (default: answer as soon as anything is there, within 100 ms). */
  fetch?: FetchOptions;
  /**
   * After handling a batch, wait this long before the next fetch of its partition(s), so that under
   * load a batch gathers what arrived meanwhile (one transaction for many events instead of one each);
   * a first event after a quiet spell is still handled at once. For consumers off the latency path
   * (portfolio-manager): each batch has a fixed cost (a fetch, a transaction of several statements),
   * which at a moderate rate and one or two events a batch was most of their CPU.
   */
  lingerMs?: number;
  /** Called once every message of a topic-partition up to `offset` was handled or set aside. */
  onDone?: (topic: string, partition: number, offset: string) => void;
}

/** The reason a message without a value is set aside for (kafkajs hands over a null value: a tombstone, which no platform topic has). */
export const NO_VALUE = "no value (a tombstone: the platform's topics are not compacted)";

/** How often a consumer commits the offsets of the batches it handled (at most; and once quiet). */
export const COMMIT_INTERVAL_MS = 1000;
type Committer = Pick<import("kafkajs").EachBatchPayload, "commitOffsetsIfNecessary" | "uncommittedOffsets">;

/** How much a fetch gathers: the broker answers once `minBytes` are there or `maxWaitTimeInMs` passed. */
export type FetchOptions = Partial<Pick<import("kafkajs").ConsumerConfig, "minBytes" | "maxBytes" | "maxBytesPerPartition" | "maxWaitTimeInMs">>;

/**
 * A consumer group that hands whole fetched batches (one topic-partition at a time, or several
 * joined: `joinPartitions`) to `handle`, so a service can apply many events in one database
 * transaction. Offsets are committed only after `handle` resolves: a crash replays the batch, which
 * the handlers dedupe (event / fill / order ids).
 *
 * Poison: a message without a value (the platform's topics are not compacted: a null value is no
 * tombstone, it is malformed), that is not JSON, breaks its topic's schema (topicSchemas.ts) or that `decode`
 * refuses (what the message means to this consumer; a throw that is not an outage) never reaches
 * `handle`: it is recorded in `consumer_dead_letters` (PostgreSQL, or ClickHouse for a consumer
 * without PostgreSQL) with the reason, counted in `consumer_dead_letters_total{consumer_group, topic}`,
 * and the rest of its batch goes on together. A topic schema may
 * refuse part of a message (the bad bars of a candles batch): the message is recorded the same way
 * (its bytes as received, the reason naming the bad part) once the rest of it was handled. When a batch
 * fails with an error that is not an outage (see deadLetters.ts), its messages are handed over
 * again one at a time, and each one that still fails is set aside the same way. Handlers apply a
 * batch in one transaction, so the failed attempt left nothing behind. An outage is rethrown:
 * kafkajs retries the batch. While a batch is in hand the member heartbeats every KAFKA_HEARTBEAT_MS
 * (batchHeartbeats.ts): a handler's wait (a lock, a peer) past the session timeout no longer gets it evicted.
 */
export function consumeBatches(
  ctx: ServiceContext<ConsumerTiming>,
  opts: ConsumeOptions & { handle: (msgs: BatchMessage[]) => Promise<void> },
): Promise<void> {
  return consumeDecoded(ctx, { ...opts, decode: (m) => m });
}

/** consumeBatches with `decode`: the handler gets what each message means to it. */
export async function consumeDecoded<T>(
  ctx: ServiceContext<ConsumerTiming>,
  opts: ConsumeOptions & { decode: (m: BatchMessage) => T; handle: (items: T[]) => Promise<void> },
): Promise<void> {
  const decode = opts.decode;
  const joined = new GroupCommit<T[], void>(
    async (lists) => {
      await opts.handle(lists.flat());
      return lists.map(() => undefined);
    },
    { maxBatch: 64, concurrency: 1, isOutage: isRetriable },
  );
  // With joinPartitions, kafkajs runs several partitions' eachBatch at once; every call of `handle`,
  // a message retried alone included, goes through `joined` (one at a time), so a handler never
  // runs beside itself (the trading-engine's book is rebuilt after a failed transaction: a batch
  // committing meanwhile would be lost from memory).
  const handleTogether = (items: T[]) => (opts.joinPartitions ? joined.submit(items) : opts.handle(items));
  let closing = false;
  let current: import("kafkajs").Consumer | undefined;
  // Offsets are committed at most every COMMIT_INTERVAL_MS (kafkajs' own autoCommit commits after
  // every batch whatever autoCommitInterval says: one OffsetCommit per batch, the broker's most
  // frequent request under load). `committer` is the current consumer's way to commit what was
  // handled; `trailing` commits the last batches once the stream goes quiet; on close the batches
  // in hand finish, what they handled is committed, then the consumer leaves.
  let committer: Committer | undefined;
  let trailing: NodeJS.Timeout | undefined;
  const inHand = new Set<Promise<void>>();
  const commitHandled = async (): Promise<void> => {
    const c = committer;
    if (!c) return;
    const pending = c.uncommittedOffsets();
    if (pending.topics.length === 0) return;
    // A commit refused after a rebalance only means the new owner replays those batches (deduped).
    await c.commitOffsetsIfNecessary(pending).catch((err: Error) => ctx.log.debug({ groupId: opts.groupId, err: { message: err.message } }, "offset commit refused; the batches will be replayed"));
  };
  const commitSoon = (): void => {
    if (trailing || closing) return;
    trailing = setTimeout(() => {
      trailing = undefined;
      void commitHandled();
    }, COMMIT_INTERVAL_MS);
    trailing.unref();
  };
  ctx.onClose(async () => {
    closing = true;
    if (trailing) clearTimeout(trailing);
    await Promise.allSettled([...inHand]);
    await commitHandled();
    await current?.disconnect().catch(() => undefined);
  });
  const start = async (): Promise<void> => {
    // A long poll (consumerEnv: KAFKA_FETCH_MAX_WAIT_MS), unless the caller gathers batches itself (`fetch`).
    const consumer = ctx.app.kafka.consumer({ groupId: opts.groupId, ...consumerConfig(ctx.config), ...opts.fetch });
    current = consumer;
    // kafkajs restarts a crashed consumer only after retriable errors. Others (e.g. the group
    // coordinator of a broker that is still starting) would leave the service running without its
    // consumer: start a new one instead.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || closing) return;
      ctx.log.warn({ groupId: opts.groupId, err: { message: payload.error.message } }, "kafka consumer stopped after a non-retriable error; starting a new one");
      restartLater();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: opts.topics, fromBeginning: opts.fromBeginning ?? true });
    await consumer.run({
      partitionsConsumedConcurrently: opts.joinPartitions ?? 1,
      eachBatchAutoResolve: false,
      // Committed here at most every COMMIT_INTERVAL_MS (above), not by kafkajs after each batch; a
      // crash replays at most that much, which the handlers dedupe.
      autoCommit: false,
      autoCommitInterval: COMMIT_INTERVAL_MS,
      eachBatch: (payload) => {
        if (closing) return Promise.resolve();
        const done = eachBatch(payload).finally(() => inHand.delete(done));
        inHand.add(done);
        return done;
      },
    });
  };
  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary, uncommittedOffsets }: import("kafkajs").EachBatchPayload): Promise<void> => {
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    // Heartbeats while the batch is in hand, whatever it waits for (batchHeartbeats.ts): kafkajs sends none inside eachBatch.
    const beating = heartbeatWhileHandling(heartbeat, ctx.config.KAFKA_HEARTBEAT_MS, (err, rejoin) =>
      ctx.log.debug({ groupId: opts.groupId, topic: batch.topic, partition: batch.partition, err: { message: err.message } }, rejoin ? "the group is rebalancing: the member rejoins once the batch ends" : "heartbeat during a batch failed"),
    );
    try {
      await handleBatch(batch);
    } finally {
      await beating.stop();
    }
    const last = batch.messages[batch.messages.length - 1].offset;
    resolveOffset(last);
    opts.onDone?.(batch.topic, batch.partition, last);
    committer = { commitOffsetsIfNecessary, uncommittedOffsets };
    await commitOffsetsIfNecessary();
    if (uncommittedOffsets().topics.length > 0) commitSoon();
    await heartbeat();
    if (opts.lingerMs && !closing) await new Promise((r) => setTimeout(r, opts.lingerMs));
  };
  /** The batch's messages handled, or set aside (each poison one, and each that fails alone). */
  const handleBatch = async (batch: import("kafkajs").Batch): Promise<void> => {
    const valid: Decoded[] = [];
    for (const raw of batch.messages) {
      const received = { topic: batch.topic, partition: batch.partition, offset: raw.offset, raw: { key: raw.key, value: raw.value, headers: raw.headers } };
      if (!raw.value) {
        await setMessageAside(received, NO_VALUE);
        continue;
      }
      const msg = { ...received, key: raw.key ? raw.key.toString() : null, value: raw.value.toString() };
      const checked = checkMessage(msg.topic, msg.value, raw.value);
      if (checked.problem !== undefined) {
        await setMessageAside(msg, reasonText(checked.problem));
        continue;
      }
      // A rewritten user id (topicSchemas canonicaliseUserIds) reaches handlers that parse `value` too.
      const m: BatchMessage = { ...msg, value: checked.canonical ?? msg.value, json: checked.json };
      try {
        valid.push({ m, item: decode(m), aside: checked.aside });
      } catch (err) {
        if (isRetriable(err)) throw err;
        await setMessageAside(m, reasonText(err));
      }
    }
    await handleOrSetAside(valid);
  };
  const deadLetters: DeadLetterStore | undefined = ctx.datastores.isEnabled("postgres")
    ? { postgres: ctx.app.pg }
    : ctx.datastores.isEnabled("clickhouse")
      ? { clickhouse: ctx.app.clickhouse }
      : undefined;
  const setAsideTotal = deadLettersCounter(ctx.metrics.registry);
  // Each topic's series starts at 0, so the alert's increase() sees the first dead letter too.
  for (const topic of opts.topics) setAsideTotal.inc({ consumer_group: opts.groupId, topic }, 0);
  // A dead letter holds the message as received (`raw`: its key and value bytes, its headers), whatever the reason:
  // never `value` decoded (a byte that is not UTF-8 became U+FFFD) nor anything re-serialised from
  // its JSON (a literal a double does not carry would be written as its double, and a hand replay of
  // the dead letter would pass the check that refused it).
  const setMessageAside = async (m: Pick<BatchMessage, "topic" | "partition" | "offset" | "raw">, reason: string): Promise<void> => {
    if (deadLetters) await setAside(deadLetters, { groupId: opts.groupId, topic: m.topic, partition: m.partition, offset: m.offset, key: m.raw.key, value: m.raw.value, headers: deadLetterHeaders(m.raw.headers), reason }, setAsideTotal);
    ctx.log.error({ groupId: opts.groupId, topic: m.topic, partition: m.partition, offset: m.offset, reason }, deadLetters ? "message set aside in consumer_dead_letters" : "message skipped (no store for dead letters)");
  };
  // `aside`: why part of a message whose rest is handled was refused (a candles batch's bad bars). The
  // message is set aside once the rest was handled, one dead letter per message (the table's key is
  // the offset): if the rest fails too, it is set aside with both reasons instead.
  type Decoded = { m: BatchMessage; item: T; aside?: { problem: string } };
  const partReason = (aside: { problem: string }) => reasonText(`${aside.problem}; the rest was applied`);
  const handleOrSetAside = async (valid: Decoded[]): Promise<void> => {
    if (valid.length === 0) return;
    try {
      await handleTogether(valid.map((v) => v.item));
      for (const v of valid) if (v.aside) await setMessageAside(v.m, partReason(v.aside));
      return;
    } catch (err) {
      if (!deadLetters || isRetriable(err)) throw err;
    }
    for (const v of valid) {
      try {
        await handleTogether([v.item]);
      } catch (err) {
        if (isRetriable(err)) throw err;
        await setMessageAside(v.m, reasonText(v.aside ? `${v.aside.problem}; the rest: ${reasonText(err)}` : err));
        continue;
      }
      if (v.aside) await setMessageAside(v.m, partReason(v.aside));
    }
  };
  const restartLater = (delayMs = 1000) =>
    setTimeout(() => {
      if (closing) return;
      start().catch((err: Error) => {
        ctx.log.warn({ groupId: opts.groupId, err: { message: err.message } }, "kafka consumer failed to start; retrying");
        restartLater(Math.min(delayMs * 2, 30_000));
      });
    }, delayMs).unref();
  await start();
}
