/**
 * Which replica runs the rollup: the leader of a Kafka consumer group of its own, one leader per
 * generation (the broker elects it; the replicas are its members). performance-analytics has
 * neither PostgreSQL (no advisory lock) nor a route to central-hub (no hub lock) in the catalog,
 * and Kafka is what it already has. The group consumes nothing: it is subscribed to one topic with
 * every partition paused, so membership costs a heartbeat every KAFKA_HEARTBEAT_MS.
 *
 * A replica holds the leadership from the join that made it leader until it sees a rebalance (or
 * its consumer stops), and only while its last heartbeat is younger than half the session timeout:
 * the broker elects another leader only after every member rejoined (having seen the rebalance) or
 * was evicted for no heartbeat within the whole session timeout, so two replicas never both hold
 * it. The rollup asks before each write, so a pass that lost it stops; ClickHouse cannot refuse a
 * write already sent, which is one user's complete series (readers take a user's latest version).
 */
import type { Consumer } from "kafkajs";
import type { ServiceContext } from "../../kit";
import { consumerConfig, type ConsumerTiming } from "../../trading/infra/kafka";

export interface Leadership {
  /** True while this replica may run the rollup. */
  holds(): boolean;
}

export function rollupLeadership(ctx: ServiceContext<ConsumerTiming>, o: { groupId: string; topic: string }): Leadership {
  const lease = Math.floor(ctx.config.KAFKA_SESSION_TIMEOUT_MS / 2);
  let leader = false;
  let lastBeat = 0;
  let closing = false;
  let current: Consumer | undefined;
  const lose = () => {
    leader = false;
  };

  const start = async (): Promise<void> => {
    const consumer = ctx.app.kafka.consumer({ groupId: o.groupId, ...consumerConfig(ctx.config) });
    current = consumer;
    const ev = consumer.events;
    consumer.on(ev.GROUP_JOIN, ({ payload }) => {
      leader = payload.isLeader;
      lastBeat = Date.now();
      if (leader) ctx.log.info({ groupId: o.groupId }, "this replica runs the performance rollup");
    });
    consumer.on(ev.HEARTBEAT, () => {
      lastBeat = Date.now();
    });
    consumer.on(ev.REBALANCING, lose);
    consumer.on(ev.STOP, lose);
    consumer.on(ev.DISCONNECT, lose);
    consumer.on(ev.CRASH, ({ payload }) => {
      lose();
      if (payload.restart || closing) return;
      ctx.log.warn({ groupId: o.groupId, err: { message: payload.error.message } }, "rollup leadership consumer stopped; starting a new one");
      restartLater();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [o.topic], fromBeginning: false });
      await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
      consumer.pause([{ topic: o.topic }]);
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  };
  const restartLater = (delayMs = 1000): void => {
    setTimeout(() => {
      if (closing) return;
      start().catch((err: Error) => {
        ctx.log.warn({ groupId: o.groupId, err: { message: err.message } }, "rollup leadership consumer failed to start; retrying");
        restartLater(Math.min(delayMs * 2, 30_000));
      });
    }, delayMs).unref();
  };
  ctx.onClose(async () => {
    closing = true;
    lose();
    await current?.disconnect().catch(() => undefined);
  });
  restartLater(0);
  return { holds: () => leader && !closing && Date.now() - lastBeat < lease };
}
