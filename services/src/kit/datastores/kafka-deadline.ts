/**
 * A Kafka producer whose sends end by a deadline (the kit client's `deadlineProducer`, ./kafka.ts):
 * database-service's dead-letter replays answer an admin about a send and must neither wait the
 * minutes the shared producer retries a deleted topic nor leave the send running unseen.
 */
import type { ISocketFactory, Message, Producer } from "kafkajs";

/** A send that did not end by its producer's deadline: it may still reach the topic, or not. */
export class SendDeadlineError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`the send did not end within ${deadlineMs} ms`);
    this.name = "SendDeadlineError";
  }
}

export interface DeadlineProducer {
  /** `send` of kafkajs (acks from every in-sync replica), rejecting with SendDeadlineError at the deadline. */
  send(topic: string, messages: Message[]): Promise<import("kafkajs").RecordMetadata[]>;
  close(): Promise<void>;
}

/**
 * The retries of a deadline producer's client: three tries, at most a second apart. The shared
 * client's (eight, up to 30 s apart) ride out a leader election for the fleet's own producers, and
 * kafkajs nests them (the producer's retries around the cluster's connection and metadata retries):
 * a send to a deleted topic took 66 s to fail, one with the broker down 114 s (session 53, measured
 * on the harness's broker); with these, about one and two.
 */
export const DEADLINE_PRODUCER_RETRY = { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 } as const;

/**
 * A producer with its own client (its own connections, DEADLINE_PRODUCER_RETRY, each request and
 * connection bounded by `deadlineMs`, no topic created by a send) whose sends end by `deadlineMs`:
 * kafkajs' own failure when it comes first (nothing of the send is left running), otherwise at the
 * deadline the producer is disconnected, so its requests are cut, and the send rejects with
 * SendDeadlineError; the next send connects a new one. What the cut send wrote may still be appended
 * by the broker: after SendDeadlineError the message may be on the topic or not. A message whose
 * partition the topic does not have is not sent and not reported (kafkajs 2.2.4 leaves it out of
 * the request): the answer then holds no record of that partition.
 */
export function deadlineProducer(
  kafkajs: typeof import("kafkajs"),
  base: { clientId: string; brokers: string[]; connectTimeoutMs: number; socketFactory: ISocketFactory; logCreator: import("kafkajs").logCreator },
  deadlineMs: number,
): DeadlineProducer {
  const kafka = new kafkajs.Kafka({
    clientId: `${base.clientId}-deadline`,
    brokers: base.brokers,
    connectionTimeout: Math.min(base.connectTimeoutMs, deadlineMs),
    requestTimeout: deadlineMs,
    retry: DEADLINE_PRODUCER_RETRY,
    logLevel: kafkajs.logLevel.WARN,
    socketFactory: base.socketFactory,
    logCreator: base.logCreator,
  });
  let current: { producer: Producer; connected: Promise<void> } | undefined;
  const drop = async (p: Producer) => {
    if (current?.producer === p) current = undefined;
    await p.disconnect().catch(() => undefined);
  };
  return {
    async send(topic, messages) {
      if (!current) {
        const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: DEADLINE_PRODUCER_RETRY });
        current = { producer, connected: producer.connect() };
      }
      const { producer, connected } = current;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => void drop(producer).then(() => reject(new SendDeadlineError(deadlineMs))), deadlineMs);
      });
      const sent = connected.then(() => producer.send({ topic, messages, acks: -1, timeout: deadlineMs }));
      // A producer whose connection failed is not used again.
      sent.catch(() => connected.catch(() => drop(producer)));
      return Promise.race([sent, deadline]).finally(() => clearTimeout(timer));
    },
    async close() {
      if (current) await drop(current.producer);
    },
  };
}

