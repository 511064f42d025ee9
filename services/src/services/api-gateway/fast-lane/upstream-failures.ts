/**
 * How the fast lane's upstream connections (./upstream-pool.ts) name what went wrong, as undici does
 * for the Fastify path (../upstreams.ts): a connection closed, refused or lost, a length mismatch.
 */
import { LOST_CONNECTION_CODES, REFUSED_CONNECTION_CODES } from "../../../kit";
import type { UpstreamFailure } from "../upstreams";

export const closedError = () => Object.assign(new Error("upstream connection closed"), { code: "ECONNRESET" });

/** Whether the raw headers name a Content-Length other than `size`. */
export function lengthMismatch(raw: string[], size: number): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 14 && raw[i].toLowerCase() === "content-length") return Number(raw[i + 1]) !== size;
  }
  return false;
}

/** Why a connection failed, as ../upstreams.ts tells it (a parse error: "failed"). */
export function failureOf(err: Error): UpstreamFailure {
  const code = (err as { code?: string }).code ?? "";
  return REFUSED_CONNECTION_CODES.has(code) ? "refused" : LOST_CONNECTION_CODES.has(code) ? "closed" : "failed";
}
