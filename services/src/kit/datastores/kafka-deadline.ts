/**
 * A Kafka producer whose sends end by a deadline (the kit client's `deadlineProducer`, ./kafka.ts):
 * database-service's dead-letter replays answer an admin about a send and must neither wait the
 * minutes the shared producer retries a deleted topic nor leave the send running unseen.
 */
import type { ISocketFactory, Message, Producer } from "kafkajs";

/**
 * A send that did not end by its producer's deadline. `requestWritten`: whether a Produce request
 * was written to one of the producer's sockets while it ran; then the message may still reach the
 * topic, or not. False: none was (the connection, its handshake or the metadata never answered, or
 * the broker was down), so the broker cannot have the message.
 */
export class SendDeadlineError extends Error {
  constructor(
    readonly deadlineMs: number,
    readonly requestWritten = true,
  ) {
    super(`the send did not end within ${deadlineMs} ms${requestWritten ? "" : " (nothing was sent)"}`);
    this.name = "SendDeadlineError";
  }
}

/** Kafka's Produce request's API key: a request's frame is its size (int32), then its API key (int16). */
const PRODUCE_API_KEY = 0;

/**
 * Whether a chunk a kafkajs connection writes is a Produce request. kafkajs 2.2.4 writes each request
 * whole in one `socket.write` (network/connection.js: the size-prefixed frame); the only other writes
 * are SASL tokens of the legacy handshake, whose bytes 4 and 5 could read as key 0 only for a
 * token starting with two zero bytes: counted as a Produce, which only makes the outcome "unknown".
 */
export function isProduceRequest(chunk: unknown): boolean {
  return Buffer.isBuffer(chunk) && chunk.length >= 6 && chunk.readInt16BE(4) === PRODUCE_API_KEY;
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
 *
 * Whether the cut send wrote its Produce request is known (SendDeadlineError.requestWritten): each
 * producer has a client of its own whose sockets count the Produce requests written to them, and at
 * the deadline the producer is fenced, so a Produce kafkajs would still write for it (its retries
 * reconnect a disconnected cluster) destroys its socket instead of reaching the broker. A send
 * during which none was written sent nothing, and nothing of it is sent later (a broker that
 * accepts connections and never answers cuts the send in its handshake; one that is down, in its
 * connect). Any Produce written while the send ran counts, another send's too, so "nothing written"
 * is never said of a send that may have been.
 */
export function deadlineProducer(
  kafkajs: typeof import("kafkajs"),
  base: { clientId: string; brokers: string[]; connectTimeoutMs: number; socketFactory: ISocketFactory; logCreator: import("kafkajs").logCreator },
  deadlineMs: number,
): DeadlineProducer {
  interface Current {
    producer: Producer;
    connected: Promise<void>;
    produceRequestsWritten: number;
    fenced: boolean;
  }
  const clientOf = (state: { produceRequestsWritten: number; fenced: boolean }) => {
    const socketFactory: ISocketFactory = (args) => {
      const socket = base.socketFactory(args);
      const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (isProduceRequest(chunk)) {
          if (state.fenced) return void socket.destroy(new Error("the send was cut at its deadline")), false;
          state.produceRequestsWritten++;
        }
        return write(chunk, ...rest);
      }) as typeof socket.write;
      return socket;
    };
    return new kafkajs.Kafka({
      clientId: `${base.clientId}-deadline`,
      brokers: base.brokers,
      connectionTimeout: Math.min(base.connectTimeoutMs, deadlineMs),
      requestTimeout: deadlineMs,
      retry: DEADLINE_PRODUCER_RETRY,
      logLevel: kafkajs.logLevel.WARN,
      socketFactory,
      logCreator: base.logCreator,
    });
  };
  let current: Current | undefined;
  const drop = async (c: Current) => {
    if (current === c) current = undefined;
    await c.producer.disconnect().catch(() => undefined);
  };
  return {
    async send(topic, messages) {
      if (!current) {
        const state = { produceRequestsWritten: 0, fenced: false };
        const producer = clientOf(state).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: DEADLINE_PRODUCER_RETRY });
        current = Object.assign(state, { producer, connected: producer.connect() });
      }
      const c = current;
      let timer: NodeJS.Timeout | undefined;
      const writtenBefore = c.produceRequestsWritten;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // Fenced and counted at once: no Produce of this producer reaches a socket after this.
          c.fenced = true;
          const err = new SendDeadlineError(deadlineMs, c.produceRequestsWritten > writtenBefore);
          void drop(c).then(() => reject(err));
        }, deadlineMs);
      });
      const sent = c.connected.then(() => {
        if (c.fenced) throw new Error("the send was cut at its deadline");
        return c.producer.send({ topic, messages, acks: -1, timeout: deadlineMs });
      });
      // A producer whose connection failed is not used again.
      sent.catch(() => c.connected.catch(() => drop(c)));
      // After the deadline the disconnect fails the send too: the answer is the deadline's.
      const outcome = sent.catch((err: unknown) => (c.fenced ? deadline : Promise.reject(err)));
      return Promise.race([outcome, deadline]).finally(() => clearTimeout(timer));
    },
    async close() {
      if (current) await drop(current);
    },
  };
}

