/**
 * Usage metering: one event per request proxied under /api/ (user, API key, route, method, status,
 * latency) to the `platform.usage` topic, which usage-monitoring stores in ClickHouse and billing
 * meters. Requests never wait for Kafka: events are buffered and sent in batches; when Kafka is
 * down the buffer is bounded and the oldest events are dropped (counted in
 * gateway_usage_events_dropped_total), so metering can under-count but never slow the API.
 */
import { randomUUID } from "node:crypto";
import type { Producer } from "kafkajs";
import { Counter } from "prom-client";
import { userPartitionKey, type Identity, type ServiceContext } from "../../kit";
import { BUSINESS_TOPICS, type UsageEventMsg } from "../../business/events";

const MAX_BUFFER = 20_000;
const BATCH = 1_000;

export class UsageEmitter {
  private buffer: UsageEventMsg[] = [];
  private timer?: NodeJS.Timeout;
  private sending?: Promise<void>;
  private readonly dropped: Counter<string>;
  private producer?: Promise<Producer>;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly intervalMs = 200,
  ) {
    this.dropped = new Counter({ name: "gateway_usage_events_dropped_total", help: "usage events dropped (Kafka unavailable, buffer full)", registers: [ctx.metrics.registry] });
  }

  record(e: Omit<UsageEventMsg, "eventId" | "ts">): void {
    if (this.buffer.length >= MAX_BUFFER) {
      this.buffer.shift();
      this.dropped.inc();
    }
    this.buffer.push({ eventId: randomUUID(), ts: Date.now(), ...e });
  }

  /** The event of one answered /api/ request (the Fastify path's onResponse hook and the fast lane alike). */
  recordRequest(routes: ReadonlyMap<string, unknown>, url: string, method: string, status: number, elapsedMs: number, id: Identity | undefined): void {
    const m = /^\/api\/([^/?]+)/.exec(url);
    this.record({
      userId: id?.userId ?? null,
      apiKeyId: id?.apiKeyId ?? null,
      route: m && routes.has(m[1]) ? m[1] : "unknown",
      method,
      status,
      latencyMs: Math.round(elapsedMs * 1000) / 1000,
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.ctx.onClose(async () => {
      clearInterval(this.timer);
      await this.flush();
      await this.resetProducer();
    });
  }

  private connected(): Promise<Producer> {
    if (!this.producer) {
      const p = this.ctx.app.kafka.kafka.producer({ allowAutoTopicCreation: false });
      this.producer = p.connect().then(() => p);
      this.producer.catch(() => (this.producer = undefined));
    }
    return this.producer;
  }

  private async resetProducer(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    await p?.then((x) => x.disconnect()).catch(() => undefined);
  }

  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    this.sending = (async () => {
      while (this.buffer.length > 0) {
        const batch = this.buffer.slice(0, BATCH);
        try {
          const producer = await this.connected();
          await producer.send({ topic: BUSINESS_TOPICS.usage, acks: -1, messages: batch.map((e) => ({ key: e.userId === null ? "anonymous" : userPartitionKey(e.userId), value: JSON.stringify(e) })) });
          this.buffer.splice(0, batch.length);
        } catch (err) {
          this.ctx.log.warn({ err: { message: (err as Error).message }, buffered: this.buffer.length }, "usage events not sent; kept for the next flush");
          await this.resetProducer();
          return;
        }
      }
    })().finally(() => (this.sending = undefined));
    return this.sending;
  }
}
