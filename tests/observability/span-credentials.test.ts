/**
 * Credentials in the spans a service exports, end to end: tracing started as main.ts starts it
 * (OTLP over HTTP to a local receiver standing in for chain-debug), an outgoing call made inside a
 * request's span, the exported JSON read as the collector gets it. The HTTP client's span records
 * the whole URL (`url.full`), and the Telegram Bot API takes its token in the path
 * (`/bot<token>/sendMessage`), where the scrubbing of queries and userinfo never looked.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind, trace } from "../../services/node_modules/@opentelemetry/api";
import { flushTelemetry, shutdownTelemetry, startTelemetry } from "../../services/src/kit/telemetry";
import { telegramChannel } from "../../services/src/services/notification-service/channels";
import { FakeTelegram } from "../fakes/telegram";

const TOKEN = `${1_000_000 + Math.floor(Math.random() * 1_000_000)}:AAH${randomBytes(16).toString("hex")}`;
const telegram = new FakeTelegram(TOKEN);
const exported: string[] = [];
let receiver: Server;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      exported.push(Buffer.concat(chunks).toString("utf8"));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  await telegram.start();
  telegram.chats.add("4242");
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  expect(startTelemetry({ service: "notification-service", env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER_ARG: "1" } })).toBe(true);
});

afterAll(async () => {
  await shutdownTelemetry();
  await telegram.stop();
  await new Promise<void>((r) => receiver.close(() => r()));
});

describe("exported spans", () => {
  it("never carry the Telegram bot token of a sendMessage URL", async () => {
    const channel = telegramChannel(telegram.url, TOKEN, 5_000);
    // A server span around the call, as a request's (a client span alone starts no trace: ./telemetry's sampler).
    await trace.getTracer("test").startActiveSpan("POST /preferences/telegram/code", { kind: SpanKind.SERVER }, async (span) => {
      await channel.send("4242", { subject: "s", text: "t" });
      span.end();
    });
    expect(telegram.messages).toHaveLength(1);
    await flushTelemetry();
    const text = exported.join("\n");
    // The client span was exported, with its URL (the route stays readable) ...
    expect(text).toContain("/sendMessage");
    // ... and without the token, nor its secret half.
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(TOKEN.split(":")[1]);
  });
});
