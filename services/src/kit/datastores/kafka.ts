/**
 * Redpanda (Kafka protocol): kafkajs with an idempotent producer and tracked consumers. Every
 * consumer made here is disconnected on shutdown and, given the service's registry, reports its
 * lag (kafka_consumer_lag, ./kafka-lag.ts: after each batch, and from the broker every 15 s).
 */
import type { Logger } from "pino";
import { connect, isIP } from "node:net";
import * as tls from "node:tls";
import type { Admin, Kafka, Producer, Consumer, EachMessagePayload, Message, ConsumerConfig, ISocketFactory } from "kafkajs";
import type { Registry } from "prom-client";
import type { DatastoreConfig } from "./env";
import { trackConsumerLag, type BrokerOffsets } from "./kafka-lag";
import { patchKafkaJsIdleLoop } from "./kafkajs-idle-loop";
import { deadlineProducer, type DeadlineProducer } from "./kafka-deadline";

/**
 * kafkajs's own socket factory (socketFactory.js: plain or TLS, keep-alive after 60 s) with Nagle's
 * algorithm off, as the broker has it (Kafka's socket.tcp.no.delay, Redpanda alike). kafkajs leaves
 * Node's default on: a request written while an earlier one's bytes wait for their ACK (a produce
 * behind a fetch on the same connection) is held until that ACK, which the peer may delay by 40 ms.
 */
const noDelaySocket: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : connect({ host, port }, onConnect);
  socket.setKeepAlive(true, 60_000);
  socket.setNoDelay(true);
  return socket;
};

export function createKafka(cfg: DatastoreConfig["redpanda"], clientId: string, log: Logger, metrics?: Registry) {
  const kafkajs = require("kafkajs") as typeof import("kafkajs");
  patchKafkaJsIdleLoop();
  const levelName: Record<number, "error" | "warn" | "info" | "debug"> = {
    [kafkajs.logLevel.ERROR]: "error",
    [kafkajs.logLevel.WARN]: "warn",
    [kafkajs.logLevel.INFO]: "info",
    [kafkajs.logLevel.DEBUG]: "debug",
  };
  const logCreator: import("kafkajs").logCreator = () => (entry) => {
    const { message, ...rest } = entry.log;
    log[levelName[entry.level] ?? "info"]({ kafka: { namespace: entry.namespace, ...rest } }, message);
  };
  const kafka: Kafka = new kafkajs.Kafka({
    clientId,
    brokers: cfg.KAFKA_BROKERS,
    connectionTimeout: cfg.KAFKA_CONNECT_TIMEOUT_MS,
    // A leader election (broker restart, new topic) outlasts kafkajs's default five retries
    // (~10 s of backoff) on a loaded host; eight retries capped at 30 s ride it out.
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 30_000 },
    logLevel: kafkajs.logLevel.WARN,
    socketFactory: noDelaySocket,
    logCreator,
  });
  let producer: Promise<Producer> | undefined;
  const deadlineProducers = new Set<DeadlineProducer>();
  const consumers = new Set<Consumer>();
  const brokerOffsets = adminOffsets(kafka);
  return {
    kafka,
    /** The idempotent producer (acks=all, exactly-once per partition), connected on first use. */
    producer(): Promise<Producer> {
      if (!producer) {
        const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: memoizedPartitioner(kafkajs) });
        producer = p.connect().then(() => p);
        producer.catch(() => (producer = undefined));
      }
      return producer;
    },
    async send(topic: string, messages: Message[]) {
      const p = await this.producer();
      return p.send({ topic, messages, acks: -1 });
    },
    /**
     * A producer of its own whose sends end by `deadlineMs` (deadlineProducer below), for a send a
     * caller answers a client about and must not wait minutes for; disconnected on shutdown.
     */
    deadlineProducer(deadlineMs: number): DeadlineProducer {
      const p = deadlineProducer(kafkajs, { clientId, brokers: cfg.KAFKA_BROKERS, connectTimeoutMs: cfg.KAFKA_CONNECT_TIMEOUT_MS, socketFactory: noDelaySocket, logCreator }, deadlineMs);
      deadlineProducers.add(p);
      return p;
    },
    /** A consumer of the group (not connected yet): disconnected on shutdown, its lag reported. */
    consumer(config: ConsumerConfig): Consumer {
      const consumer = kafka.consumer(config);
      consumers.add(consumer);
      if (metrics) trackConsumerLag(consumer, config.groupId, metrics, brokerOffsets);
      return consumer;
    },
    /** Starts a consumer group on `topics`, one message at a time. */
    async consume(opts: {
      groupId: string;
      topics: string[];
      fromBeginning?: boolean;
      eachMessage: (payload: EachMessagePayload) => Promise<void>;
      config?: Partial<ConsumerConfig>;
    }): Promise<Consumer> {
      const consumer = this.consumer({ groupId: opts.groupId, ...opts.config });
      await consumer.connect();
      await consumer.subscribe({ topics: opts.topics, fromBeginning: opts.fromBeginning ?? false });
      await consumer.run({ eachMessage: opts.eachMessage });
      return consumer;
    },
    async ping() {
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.describeCluster();
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    async close() {
      await Promise.allSettled([...consumers].map((c) => c.disconnect()));
      if (producer) await producer.then((p) => p.disconnect()).catch(() => undefined);
      await Promise.allSettled([...deadlineProducers].map((p) => p.close()));
      await brokerOffsets.close();
    },
  };
}
export type KafkaKitClient = ReturnType<typeof createKafka>;

/** The broker's offsets the consumers' lag refreshes read (kafka-lag.ts), through one admin client connected on first use. */
export function adminOffsets(kafka: Kafka): BrokerOffsets & { close(): Promise<void> } {
  let admin: Promise<Admin> | undefined;
  let closed = false;
  // After close, a refresh still in flight gets no client (a reconnected one would keep the process up).
  const connected = (): Promise<Admin> => {
    if (closed) return Promise.reject(new Error("kafka client closed"));
    if (!admin) {
      const a = kafka.admin();
      admin = a.connect().then(() => a);
      admin.catch(() => (admin = undefined));
    }
    return admin;
  };
  return {
    async committed(group, topics) {
      const offsets = await (await connected()).fetchOffsets({ groupId: group, topics });
      return offsets.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: Number(p.offset) })));
    },
    async watermarks(topic) {
      return (await (await connected()).fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) }));
    },
    async close() {
      closed = true;
      if (admin) await admin.then((a) => a.disconnect()).catch(() => undefined);
    },
  };
}

/**
 * kafkajs's default partitioner (murmur2 of the key, as the Java client), remembering each key's
 * partition: the hash runs on 64-bit emulated integers, ~3 µs a message, and a producer sends the
 * same keys (symbols, order ids) over and over. Same partitions as the default, by construction.
 */
function memoizedPartitioner(kafkajs: typeof import("kafkajs")): import("kafkajs").ICustomPartitioner {
  return () => {
    const hash = kafkajs.Partitioners.DefaultPartitioner();
    const memo = new Map<string, number>();
    return (args) => {
      const { topic, partitionMetadata, message } = args;
      if (typeof message.key !== "string" || (message.partition !== undefined && message.partition !== null)) return hash(args);
      const id = `${partitionMetadata.length}|${topic}|${message.key}`;
      let partition = memo.get(id);
      if (partition === undefined) {
        partition = hash(args);
        if (memo.size >= 10_000) memo.clear(); // bounded: order ids never repeat for long
        memo.set(id, partition);
      }
      return partition;
    };
  };
}

/** Metadata errors of a topic that exists but whose partitions are not served yet (just created, broker restarting). */
const SETTLING = new Set(["UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER"]);

/**
 * Creates the topics that do not exist and waits until every partition of every one has a leader.
 * kafkajs' own `waitForLeaders` retries only LEADER_NOT_AVAILABLE: a KRaft broker can answer the
 * metadata of a topic it created a moment ago with UNKNOWN_TOPIC_OR_PARTITION ("This server does
 * not host this topic-partition") while the change propagates, which kafkajs throws (a CI run
 * failed on it on a loaded machine). This polls the metadata instead, tolerating those answers,
 * until `timeoutMs`; then it fails naming the topics without leaders.
 */
export async function createTopicsReady(
  admin: import("kafkajs").Admin,
  topics: import("kafkajs").ITopicConfig[],
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  await admin.createTopics({ topics, waitForLeaders: false, timeout: opts.timeoutMs ?? 60_000 });
  await waitForTopicLeaders(admin, topics, opts);
}

/** Waits until every partition of the topics has a leader (createTopicsReady; also after a broker restart). */
export async function waitForTopicLeaders(
  admin: import("kafkajs").Admin,
  topics: Pick<import("kafkajs").ITopicConfig, "topic" | "numPartitions">[],
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let pending = topics.map((t) => t.topic);
  for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
    try {
      const { topics: md } = await admin.fetchTopicMetadata({ topics: pending });
      pending = pending.filter((name) => {
        const t = md.find((m) => m.name === name);
        const wanted = topics.find((x) => x.topic === name)?.numPartitions ?? 1;
        return !t || t.partitions.length < Math.max(1, wanted) || t.partitions.some((p) => p.leader < 0 || (p.partitionErrorCode ?? 0) !== 0);
      });
      if (pending.length === 0) return;
    } catch (err) {
      if (!SETTLING.has((err as { type?: string }).type ?? "")) throw err;
    }
    if (Date.now() >= deadline) throw new Error(`kafka topics without a leader after ${timeoutMs} ms: ${pending.join(", ")}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}
