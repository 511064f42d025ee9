/**
 * What /api/health (./proxy.ts) reports of one routed service: its own /health asked over the kit's
 * peer client, bounded by HEALTH_TIMEOUT_MS and, as the gateway's other peer reads (user-states.ts,
 * authenticate.ts), cut PEER_CLOSE_GRACE_MS into the gateway's close (kit peers `cutOnClose`). Before
 * session 54 it was a bare fetch bounded by HEALTH_TIMEOUT_MS alone (up to 60 s): a service that did
 * not answer held the gateway's close that long, and the client then read a report of "down" services
 * from a gateway that was going away. The cut is thrown on (503 SHUTTING_DOWN with Retry-After: 1,
 * another replica answers the request sent again), never reported as the service being down.
 */
import { HttpError, isShuttingDown, type PeerClient } from "../../kit";

export interface ServiceHealth {
  status: "ok" | "down";
  latencyMs?: number;
  error?: string;
}

export async function serviceHealth(peers: Pick<PeerClient, "call">, name: string, timeoutMs: number, requestId?: string): Promise<ServiceHealth> {
  const t0 = performance.now();
  try {
    const r = await peers.call(name, "/health", { timeoutMs, cutOnClose: true, requestId });
    return r.status >= 200 && r.status < 300 ? { status: "ok", latencyMs: Math.round(performance.now() - t0) } : { status: "down", error: `HTTP ${r.status}` };
  } catch (e) {
    if (isShuttingDown(e)) throw e;
    return { status: "down", error: e instanceof HttpError && e.statusCode === 504 ? `no answer within ${timeoutMs} ms` : "unreachable" };
  }
}
