/**
 * How database-service replays a Kafka consumer's dead letter, whichever store keeps it (PostgreSQL's
 * `consumer_dead_letters`, ./dead-letters.ts; ClickHouse's, ./clickhouse-dead-letters.ts): no I/O
 * here, the store and the send are given.
 *
 * Claim, send, mark. The claim (a random id and its time, committed at once) says one replay is
 * sending; the send runs outside any transaction with the producer's own deadline (kit
 * deadlineProducer); then the letter is marked replayed, the claim cleared, or on a send that failed
 * the claim is released and the letter stays replayable. Before session 53 the row was locked in a
 * transaction for the send: a deleted topic held the transaction, its connection and the lock for
 * the minutes the shared producer retried. A claim older than `claimStaleMs` is taken over by the
 * next replay (the replay that held it crashed between its send and its mark, or its mark failed).
 *
 * A replay is at least once, not exactly once: a crash (or a failed mark) after the broker took the
 * message leaves a claimed, unmarked letter, which a replay after the bound sends again; a send cut at
 * its deadline after its Produce request was written may have reached the topic too (its claim is kept
 * for the bound, so no other replay sends it while the cut one could still land). One cut before any
 * Produce was written (a broker hung in its handshake, or down) sent nothing: its claim is released
 * at once (before session 54 it was held for the bound too). The letter's key and headers (its `event-id`) go
 * out byte for byte, so a consumer that dedupes by event id applies the second copy as nothing.
 */
import { randomUUID } from "node:crypto";
import type { Message, RecordMetadata } from "kafkajs";
import { SendDeadlineError } from "../../kit";

/** A letter as a replay reads it, whichever store keeps it. */
export interface ReplayableLetter {
  consumerGroup: string;
  topic: string;
  partition: number;
  offset: string;
  replayedAt: Date | null;
  /** How long ago a replay claimed it (the store's clock), null: not claimed. */
  claimAgeMs: number | null;
  /** What a replay sends, or why it cannot send the message as kept. */
  message: { message: Message } | { problem: string };
  /**
   * When the letter was set aside (ISO text), where a store can hold letters of one message one
   * after another under one id (ClickHouse's: set aside again once retention deleted the first): a
   * replay's claim and mark are that letter's.
   */
  setAsideAt?: string;
}

/** A store's dead letters as a replay claims and marks them. */
export interface LetterReplays {
  letter(id: string): Promise<ReplayableLetter | undefined>;
  /** Claims the letter for `claim` unless it is replayed or claimed less than `claimStaleMs` ago; whether it was. */
  claim(id: string, letter: ReplayableLetter, claim: string, claimStaleMs: number): Promise<boolean>;
  /** Marks `letter` replayed at `offset` (the first mark stays) and clears the claim. */
  mark(id: string, offset: string | null, letter: ReplayableLetter): Promise<void>;
  /** Clears the claim if it is still `claim`'s. */
  release(id: string, claim: string): Promise<void>;
}

export type ReplayOutcome =
  | { replayed: { topic: string; partition: number; offset: string | null } }
  | { missing: true }
  | { already: Date }
  | { notReplayable: string }
  /** The letter's topic is not a name Kafka accepts, or one the broker refused to take writes to (why); nothing sent, not claimed (or the claim released). */
  | { badTopic: string }
  /** Another replay holds a claim, for this long yet. */
  | { inProgress: { retryAfterS: number } }
  /** Nothing was sent (the topic, or the letter's partition of it, does not exist); the claim released. */
  | { targetMissing: "topic" | "partition" }
  /** Nothing was sent (kafkajs gave up, or the deadline came before a Produce request was written); the claim released. */
  | { sendFailed: unknown }
  /** The send was cut at its deadline and may yet arrive: the claim is kept for its bound. */
  | { outcomeUnknown: { retryAfterS: number } }
  /** Sent, but the mark failed: the claim stays for its bound, after which a replay sends it again. */
  | { notRecorded: { offset: string | null; retryAfterS: number } };

/** Whether a Kafka protocol error of `type` is in `err`'s chain of causes (kafkajs wraps the broker's error). */
function hasProtocolError(err: unknown, type: string): boolean {
  for (let e = err as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.type === type) return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}

/** Whether kafkajs gave up on a send because the topic (or partition) is unknown to the broker. */
export const isUnknownTopic = (err: unknown): boolean => hasProtocolError(err, "UNKNOWN_TOPIC_OR_PARTITION");

/**
 * Whether the broker refused the send's topic as one no client writes to (INVALID_TOPIC_EXCEPTION: its
 * own internal topics, say): refused every time, so the letter is not replayable as kept, not a send
 * to retry (session 55: a letter of `__consumer_offsets` was a 503 REPLAY_NOT_SENT "it stays replayable").
 */
export const isRefusedTopic = (err: unknown): boolean => hasProtocolError(err, "INVALID_TOPIC_EXCEPTION");

/** The broker's own topics (its consumer groups' offsets, its transactions' state, KRaft's metadata): it takes no client's writes to them. */
const BROKER_TOPICS: ReadonlySet<string> = new Set(["__consumer_offsets", "__transaction_state", "__cluster_metadata"]);

/**
 * Why Kafka refuses `topic` as a topic's name, undefined when it accepts it (Apache Kafka's
 * `Topic.validate`: 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`, neither `.` nor
 * `..`), nor one of the broker's own topics (BROKER_TOPICS). A letter's topic is one a consumer read,
 * so a refused name is a row written or edited by hand:
 * the broker would refuse the send (kafkajs retrying it until the deadline), so it is not claimed.
 */
export function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return "it is empty";
  if (topic.length > 249) return "it is longer than 249 characters";
  if (topic === "." || topic === "..") return "it is one or two dots only";
  if (!/^[A-Za-z0-9._-]+$/.test(topic)) return "it holds characters other than ASCII letters, digits, '.', '_' and '-'";
  if (BROKER_TOPICS.has(topic)) return "it is one of the broker's own topics, which take no client's writes";
  return undefined;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export async function replayLetter(
  store: LetterReplays,
  id: string,
  send: (topic: string, m: Message) => Promise<RecordMetadata[]>,
  claimStaleMs: number,
): Promise<ReplayOutcome> {
  const letter = await store.letter(id);
  if (!letter) return { missing: true };
  if (letter.replayedAt) return { already: letter.replayedAt };
  if ("problem" in letter.message) return { notReplayable: letter.message.problem };
  const topicProblem = topicNameProblem(letter.topic);
  if (topicProblem) return { badTopic: topicProblem };
  const claim = randomUUID();
  if (!(await store.claim(id, letter, claim, claimStaleMs))) {
    const now = await store.letter(id);
    if (now?.replayedAt) return { already: now.replayedAt };
    return { inProgress: { retryAfterS: seconds(claimStaleMs - (now?.claimAgeMs ?? 0)) } };
  }
  const release = () => store.release(id, claim).catch(() => undefined); // a claim not released expires at its bound
  let records: RecordMetadata[];
  try {
    records = await send(letter.topic, letter.message.message);
  } catch (err) {
    if (err instanceof SendDeadlineError && err.requestWritten) return { outcomeUnknown: { retryAfterS: seconds(claimStaleMs) } };
    await release();
    if (isRefusedTopic(err)) return { badTopic: "the broker refuses writes to it" };
    return isUnknownTopic(err) ? { targetMissing: "topic" } : { sendFailed: err };
  }
  // kafkajs 2.2.4 sends nothing for a partition the topic does not have, and reports nothing.
  const record = records.find((r) => r.topicName === letter.topic && r.partition === letter.partition);
  if (!record) {
    await release();
    return { targetMissing: "partition" };
  }
  const offset = record.baseOffset ?? null;
  try {
    await store.mark(id, offset, letter);
  } catch {
    return { notRecorded: { offset, retryAfterS: seconds(claimStaleMs) } };
  }
  return { replayed: { topic: letter.topic, partition: letter.partition, offset } };
}
