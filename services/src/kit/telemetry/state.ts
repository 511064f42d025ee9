/** The running tracer provider's flush, registered by ./index.ts, so the kit can flush without loading the SDK. */
let flush: (() => Promise<void>) | undefined;

export function setTelemetryFlush(fn: (() => Promise<void>) | undefined): void {
  flush = fn;
}

/** Exports the spans buffered so far (on shutdown; a no-op when tracing is off). Never throws. */
export async function flushTelemetry(): Promise<void> {
  await flush?.().catch(() => undefined);
}
