/**
 * The collector's address as the service reports a failed trace export: an OTLP endpoint may carry
 * a login (`https://user:token@collector/v1/traces`, Basic auth, as some hosted collectors take it),
 * and the warning named the endpoint as configured. Real HTTP: tracing started as main.ts starts it,
 * a local collector refusing every export with 401.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind, trace } from "../../services/node_modules/@opentelemetry/api";
import { flushTelemetry, shutdownTelemetry, startTelemetry } from "../../services/src/kit/telemetry";

const TOKEN = `tok${randomBytes(12).toString("hex")}`;
const warnings: Array<{ msg: string; fields: Record<string, unknown> }> = [];
let collector: Server;
let port = 0;

beforeAll(async () => {
  collector = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(401, { "content-type": "application/json" }).end('{"code":16,"message":"unauthenticated"}'));
  });
  await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  port = (collector.address() as AddressInfo).port;
  const endpoint = `http://tracing:${TOKEN}@127.0.0.1:${port}/v1/traces`;
  startTelemetry({ service: "payment-service", env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint }, warn: (msg, fields) => warnings.push({ msg, fields }) });
});

afterAll(async () => {
  await shutdownTelemetry();
  await new Promise<void>((r) => collector.close(() => r()));
});

describe("a failed trace export", () => {
  it("is reported naming the collector, without its credentials", async () => {
    trace.getTracer("test").startSpan("GET /x", { kind: SpanKind.SERVER }).end();
    await flushTelemetry().catch(() => undefined);
    expect(warnings.map((w) => w.msg)).toContain("trace export failed; spans dropped (requests are not affected)");
    const text = JSON.stringify(warnings);
    expect(text).toContain(`127.0.0.1:${port}/v1/traces`);
    expect(text).not.toContain(TOKEN);
  });
});
