/**
 * The light half of tracing, used by the kit and services on every request: the OpenTelemetry API
 * only (no SDK), so it costs nothing and does nothing when tracing is off (./index.ts starts it).
 */
import { context, trace, SpanStatusCode } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

const w3c = new W3CTraceContextPropagator();

/** Records a server-side failure on the current span (an exception event: chain-debug groups these). */
export function recordError(err: unknown): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** The current trace context as W3C headers (to persist with work finished later, e.g. an outbox row). */
export function traceCarrier(): Record<string, string> | undefined {
  const span = trace.getActiveSpan();
  if (!span || !span.spanContext().traceFlags) return undefined; // none, or not sampled
  const carrier: Record<string, string> = {};
  w3c.inject(context.active(), carrier, { set: (c, k, v) => ((c as Record<string, string>)[k] = v) });
  return carrier.traceparent ? carrier : undefined;
}

/** Runs `fn` inside the trace context persisted by `traceCarrier` (or the current one without it). */
export function withTraceCarrier<T>(carrier: Record<string, string> | undefined, fn: () => T): T {
  if (!carrier?.traceparent) return fn();
  // Always W3C here: the entry point's inject-only propagator must not hide persisted context.
  return context.with(w3c.extract(context.active(), carrier, { get: (c, k) => (c as Record<string, string>)[k], keys: (c) => Object.keys(c as object) }), fn);
}
