/**
 * A GET or HEAD answered by an upstream that began to close (its own 503 SHUTTING_DOWN) is sent once more
 * (session 53): on the Fastify path (./upstreams.ts, sendPastClosing) and, by the same rule, on the fast
 * lane's own connections (./fast-lane/exchange.ts, closingResendBudget). Out of ./upstreams.ts in session 60.
 */
import { isClosingAnswer } from "../../kit";
import { UpstreamError } from "./upstream-errors";
import type { UpstreamAnswer, UpstreamRequest, Upstreams } from "./upstreams";

/**
 * How long a GET or HEAD answered by a closing upstream waits before it is sent again: the closing
 * replica's connection is closed with its answer, and a moment lets the Service's endpoints drop it
 * (its readiness failed at SIGTERM), so the new connection goes to a replica that is up.
 */
export const CLOSING_RESEND_WAIT_MS = 100;
/** The least of the request's deadline that must be left after that wait for the second try to be made. */
export const CLOSING_RESEND_MIN_LEFT_MS = 500;

/** An upstream's own 503 SHUTTING_DOWN: read from its body; a HEAD's has none, so a 503 that closes its connection and says when to retry (kit closing-answers.ts). */
function closingAnswer(method: string, a: UpstreamAnswer): boolean {
  if (method === "HEAD") return a.statusCode === 503 && a.headers.connection === "close" && a.headers["retry-after"] !== undefined;
  return isClosingAnswer(a.statusCode, a.body);
}

/**
 * sendPastClosing's rule, which the fast lane (./fast-lane/exchange.ts) follows with its own upstream
 * connections: the time the second try of a `method` request answered `a` gets (ms, from the end of
 * CLOSING_RESEND_WAIT_MS), or undefined when `a` is forwarded as it is: not a GET or HEAD, not the
 * upstream's own 503 SHUTTING_DOWN, or less than CLOSING_RESEND_MIN_LEFT_MS of `deadline` (Date.now()
 * clock) left after the wait.
 */
export function closingResendBudget(method: string, a: UpstreamAnswer, deadline: number, now = Date.now()): number | undefined {
  if (a.statusCode !== 503 || (method !== "GET" && method !== "HEAD") || !closingAnswer(method, a)) return undefined;
  const left = deadline - now - CLOSING_RESEND_WAIT_MS;
  return left < CLOSING_RESEND_MIN_LEFT_MS ? undefined : left;
}

/**
 * `upstreams.send`; a GET or HEAD answered with the upstream's own 503 SHUTTING_DOWN (a replica whose
 * close began: session 53; before, the 503 was forwarded and the client retried) is sent once more,
 * CLOSING_RESEND_WAIT_MS later, on a new connection (the closing one ended with its answer; behind a
 * Kubernetes Service, most likely another replica), when `deadline` (the gateway request's end,
 * Date.now() clock) leaves CLOSING_RESEND_MIN_LEFT_MS after the wait: the second answer is forwarded,
 * whatever it is, or the first when the second try gets none. Any other method is never sent twice:
 * a closing service answers 503 to a request it did not start, but a POST's 503 may also come from
 * a handler cut midway (kit errors.ts shuttingDown), its writes made.
 */
export async function sendPastClosing(upstreams: Upstreams, base: string, req: UpstreamRequest, deadline: number, resent?: () => void): Promise<UpstreamAnswer> {
  const first = await upstreams.send(base, req);
  const left = closingResendBudget(req.method, first, deadline);
  if (left === undefined) return first;
  await new Promise((r) => setTimeout(r, CLOSING_RESEND_WAIT_MS));
  resent?.();
  try {
    return await upstreams.send(base, { ...req, timeoutMs: Math.min(req.timeoutMs, left) });
  } catch (e) {
    if (e instanceof UpstreamError) return first;
    throw e;
  }
}
