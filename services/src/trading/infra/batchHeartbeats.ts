/**
 * Heartbeats while a consumer's batch is in hand. kafkajs (2.x) heartbeats only between its own steps (after a
 * fetch, after each eachBatch call): a handler that runs past KAFKA_SESSION_TIMEOUT_MS (a transaction waiting
 * up to POSTGRES_LOCK_WAIT_MS for a row or an advisory lock, a peer's slow answer) sent none, so Kafka
 * evicted the member, its group rebalanced and its batch, not committed, was delivered again: the wait of
 * one message cost a rebalance and a replay of the whole batch. A batch in hand now heartbeats every
 * KAFKA_HEARTBEAT_MS whatever it waits for (kafkajs' `heartbeat` sends one only when the interval has passed
 * since the last, and shares a request in flight between its callers, so this adds none beside its own).
 *
 * A rebalance begun meanwhile (another member joined or left) is answered REBALANCE_IN_PROGRESS: the member
 * can only rejoin once the batch ends (kafkajs rejoins between batches), and the group waits for it at most
 * its rebalance timeout, so a handler's waits must still end well within the session timeout (the stack refuses
 * a consumer's POSTGRES_LOCK_WAIT_MS at or over it: catalog KAFKA_CONSUMER_RELATIONS). The beats stop there;
 * the batch's own heartbeat after it (kafka.ts) meets the same answer and kafkajs rejoins.
 */

/** kafkajs' errors saying the member must rejoin: a heartbeat until the batch ends would only be refused again. */
const REJOIN_ERRORS = new Set(["REBALANCE_IN_PROGRESS", "UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION"]);

export interface Beating {
  /** Stops the beats (the batch ended); waits for one in flight. */
  stop(): Promise<void>;
}

/**
 * Calls `heartbeat` every `intervalMs` until stopped, one at a time; a failed one is reported to `onError`
 * (never thrown: the batch goes on), and one asking the member to rejoin stops the beats.
 */
export function heartbeatWhileHandling(heartbeat: () => Promise<void>, intervalMs: number, onError: (err: Error, rejoin: boolean) => void): Beating {
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  const beat = () => {
    if (inFlight || stopped) return;
    inFlight = heartbeat()
      .catch((err: Error & { type?: string }) => {
        const rejoin = REJOIN_ERRORS.has(err.type ?? "");
        if (rejoin) stop();
        onError(err, rejoin);
      })
      .finally(() => (inFlight = undefined));
  };
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  return {
    async stop() {
      stop();
      await inFlight;
    },
  };
}
