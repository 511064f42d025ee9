/**
 * Listening to what kafkajs reports of a service's consumers (a join, an offset commit) in a test: the
 * service creates its consumers inside consumeBatches, out of the test's reach, so the client's factory is
 * wrapped before they are made.
 */
import type { KafkaKitClient } from "../../services/src/kit";

type KafkaConsumer = ReturnType<KafkaKitClient["consumer"]>;

/** Calls `listen` with every consumer `kafka` creates from now on (to attach listeners: `c.on(c.events.GROUP_JOIN, ...)`). */
export function onEachNewConsumer(kafka: Pick<KafkaKitClient, "consumer">, listen: (consumer: KafkaConsumer) => void): void {
  const create = kafka.consumer.bind(kafka);
  kafka.consumer = (config) => {
    const consumer = create(config);
    listen(consumer);
    return consumer;
  };
}
