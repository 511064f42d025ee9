/**
 * OpenTelemetry for every service: the OpenTelemetry Node SDK's tracer provider, the maintained
 * instrumentations for http (Fastify's server, @clickhouse/client), undici (fetch between services,
 * the gateway's proxy), pg, ioredis and kafkajs, W3C trace context, and an OTLP/HTTP (JSON) exporter
 * to chain-debug. Nothing here is a tracer of our own: this module only configures them.
 *
 * - Off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces) is set.
 * - Export is batched and out of band: a slow or dead collector drops spans (bounded queue), it never
 *   delays or fails a request; failures are logged at most once a minute.
 * - No credential in a span: headers are not recorded, SQL parameters and Redis arguments are not
 *   recorded, and every span is scrubbed before export (./scrub.ts).
 * - The entry point (api-gateway) does not trust a client's `traceparent`: a public request always
 *   starts a new trace (inject-only propagator), so clients cannot join or forge traces.
 * - Root spans that are only noise are not sampled: outgoing calls with no request around them
 *   (outbox polling, usage batches, health probes).
 */
import { SpanKind, type Context, type TextMapPropagator, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { KafkaJsInstrumentation } from "@opentelemetry/instrumentation-kafkajs";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SamplingDecision, TraceIdRatioBasedSampler, type Sampler } from "@opentelemetry/sdk-trace-node";
import { scrubString, scrubUrl, ScrubbingExporter } from "./scrub";
import { setTelemetryFlush } from "./state";

export { scrubAttributes, scrubSpan, scrubString, scrubUrl, REDACTED, ScrubbingExporter } from "./scrub";
export { recordError, traceCarrier, withTraceCarrier } from "./context";

/** Paths never traced: probes, metrics scrapes and the collector's own intake. */
const UNTRACED_PATH = /^\/(health|ready|metrics)(\/|\?|$)|^\/internal\/otlp\//;

export interface TelemetryOptions {
  service: string;
  env: NodeJS.ProcessEnv;
  /** The public entry point ignores incoming trace context. */
  entryPoint?: boolean;
  /** Where export failures are reported (default: a JSON line on stderr). */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
}

/** The OTLP/HTTP traces URL from the standard variables, or undefined (tracing off). */
export function tracesEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const url = explicit || (base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (!url) return undefined;
  // A misconfiguration must not pass silently; named by the variable it came from, the value never
  // echoed (it may hold a login). Session 50: `new URL` threw "Invalid URL", naming neither.
  const name = explicit ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) throw new Error(`${name} must be an http or https URL`);
  // A login is kept: hosted collectors take Basic auth from it (Node's client sends it as Authorization),
  // and the export's warnings name the collector through scrubUrl (trace-export-credentials.test.ts).
  return url;
}

/** Sample ratio from OTEL_TRACES_SAMPLER_ARG (0..1, default 1). */
function sampleRatio(env: NodeJS.ProcessEnv): number {
  const v = env.OTEL_TRACES_SAMPLER_ARG;
  if (v === undefined || v.trim() === "") return 1;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`OTEL_TRACES_SAMPLER_ARG must be a number in [0, 1], got '${v}'`);
  return n;
}

/**
 * Root spans worth a trace: requests served (SERVER), messages consumed (CONSUMER, Kafka batch
 * receives). An outgoing call (CLIENT, PRODUCER) with no request around it is a background loop's
 * poll: not sampled, which also drops the spans below it.
 */
class RootKindSampler implements Sampler {
  constructor(private readonly inner: Sampler) {}
  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Record<string, unknown>, links: unknown[]) {
    const isReceive = attributes["messaging.operation.type"] === "receive";
    if ((kind === SpanKind.CLIENT || kind === SpanKind.PRODUCER || kind === SpanKind.INTERNAL) && !isReceive) return { decision: SamplingDecision.NOT_RECORD };
    return this.inner.shouldSample(ctx, traceId, name, kind, attributes as never, links as never);
  }
  toString() {
    return `RootKindSampler{${this.inner.toString()}}`;
  }
}

/** W3C trace context that only injects: the entry point never continues a client's trace. */
class InjectOnlyPropagator implements TextMapPropagator {
  private readonly w3c = new W3CTraceContextPropagator();
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    this.w3c.inject(ctx, carrier, setter);
  }
  extract(ctx: Context, _carrier: unknown, _getter: TextMapGetter): Context {
    return ctx;
  }
  fields(): string[] {
    return this.w3c.fields();
  }
}

let provider: NodeTracerProvider | undefined;

export function telemetryEnabled(): boolean {
  return provider !== undefined;
}

function stderrWarn(service: string) {
  return (msg: string, fields: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level: 40, time: new Date().toISOString(), service, ...fields, msg })}\n`);
}

/**
 * Starts tracing for this process when an endpoint is configured; returns whether it did. Must run
 * before pg/ioredis/kafkajs are first required (main.ts imports ./preload first).
 */
export function startTelemetry(o: TelemetryOptions): boolean {
  if (provider) return true;
  const url = tracesEndpoint(o.env);
  if (!url) return false;
  const warn = o.warn ?? stderrWarn(o.service);
  let lastWarn = 0;
  const onFailure = (error: Error | undefined) => {
    if (Date.now() - lastWarn < 60_000) return;
    lastWarn = Date.now();
    // The endpoint may carry the collector's login (user:token@): named without it.
    warn("trace export failed; spans dropped (requests are not affected)", { endpoint: scrubUrl(url), err: { message: scrubString(error?.message ?? "unknown") } });
  };
  const exporter = new ScrubbingExporter(new OTLPTraceExporter({ url, timeoutMillis: 5_000 }), onFailure);
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": o.service, "service.namespace": "ai-trading" }),
    sampler: new ParentBasedSampler({ root: new RootKindSampler(new TraceIdRatioBasedSampler(sampleRatio(o.env))) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 4_096, maxExportBatchSize: 512, scheduledDelayMillis: 500, exportTimeoutMillis: 10_000 })],
  });
  const started = provider;
  setTelemetryFlush(() => started.forceFlush());
  provider.register({ propagator: o.entryPoint ? new InjectOnlyPropagator() : new W3CTraceContextPropagator() });
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATH.test(req.url ?? "/"),
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({ requireParentforSpans: true }),
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
      // The command name only: arguments are keys and values (cache entries, session data).
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
      new KafkaJsInstrumentation({}),
    ],
  });
  return true;
}

/** Exports what is buffered and stops (on shutdown; a no-op when tracing is off). */
export async function shutdownTelemetry(): Promise<void> {
  const p = provider;
  provider = undefined;
  setTelemetryFlush(undefined);
  await p?.shutdown().catch(() => undefined);
}

export { flushTelemetry } from "./state";
