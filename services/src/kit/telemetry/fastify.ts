/**
 * The Fastify side of tracing: names the http server span after the matched route (so a trace reads
 * "POST /subscriptions", not "POST") and tags it with the request id, which chain-debug can search.
 * The span itself is the http instrumentation's (./index.ts).
 */
import { context, trace } from "@opentelemetry/api";
import { getRPCMetadata, RPCType } from "@opentelemetry/core";
import type { FastifyInstance } from "fastify";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function traceRoutes(app: FastifyInstance<any, any, any, any, any>): void {
  // Callback-style: it runs on every request, and an async hook costs a promise and a microtask turn.
  app.addHook("onRequest", (request, _reply, done) => {
    const span = trace.getActiveSpan();
    if (span) {
      const md = getRPCMetadata(context.active());
      const route = request.routeOptions.url;
      if (md?.type === RPCType.HTTP && route) md.route = route;
      span.setAttribute("http.request.id", String(request.id));
    }
    done();
  });
}
