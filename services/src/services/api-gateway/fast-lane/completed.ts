/**
 * What the fast lane records of an answer it sent (./exchange.ts), as the Fastify path's hooks do: the kit's
 * access line (probes.ts: the same fields in the same order), its request-duration histogram, and the usage event.
 */
import type { Identity } from "../../../kit";
import { clientRequestIdOf } from "../../../kit/app";
import type { LaneRequest } from "./connections";
import type { LaneDeps } from "./deps";

/** The access line's fields (kit probes.ts writes the same for the Fastify path). */
export interface AccessLine {
  requestId: string;
  clientRequestId?: string;
  method: string;
  url: string;
  statusCode: number;
  ms: number;
  reason?: string;
}

/** The access line, the histogram and the usage event of `req`'s answer (`status`; a drain answer's `drainReason`: at warn). */
export function answerCompleted(d: LaneDeps, req: LaneRequest, requestId: string, identity: Identity | undefined, status: number, drainReason?: string): void {
  const ms = performance.now() - req.startedAt;
  d.observeDuration(req.method, status, ms / 1000);
  const level = drainReason ? "warn" : status >= 500 ? "error" : "info";
  if (d.accessLog.isLevelEnabled(level)) {
    const clientRequestId = clientRequestIdOf(req.msg);
    const method = req.method;
    const url = d.pathOf(req.url);
    const roundedMs = Math.round(ms * 10) / 10;
    // The fields in the Fastify path's order, each object made whole (no spread of a conditional part: a
    // runtime call each, on every request).
    const line: AccessLine = clientRequestId ? { requestId, clientRequestId, method, url, statusCode: status, ms: roundedMs } : { requestId, method, url, statusCode: status, ms: roundedMs };
    if (drainReason) line.reason = drainReason;
    d.accessLog[level](line, "request completed");
  }
  d.usage?.recordRequest(d.routes, req.url, req.method, status, ms, identity);
}
