/**
 * Sends a request to an upstream service over one keep-alive undici Pool per service and hands
 * back its answer.
 *
 * Not @fastify/reply-from: measured (README "Gateway speed"), its per-request URL building, header
 * copies and stream piping cost the gateway more CPU than everything else on the proxy path. The
 * platform's answers are small JSON documents, so an answer is collected and sent as one Buffer
 * (one write, with Content-Length); one larger than BUFFER_LIMIT_BYTES is streamed as it arrives,
 * with backpressure, and the upstream request is aborted if the client goes away.
 */
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import { Pool, type Dispatcher } from "undici";
import { HttpError } from "../../kit";
import { SECURITY_HEADERS } from "./security-headers";

export const BUFFER_LIMIT_BYTES = 1 << 20;

/** Hop-by-hop headers (RFC 9110 7.6.1) and the framing headers undici sets itself. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization", "host", "content-length", "expect", "http2-settings"]);
const RETRYABLE = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);
const TIMEOUTS = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

export interface UpstreamRequest {
  method: string;
  /** Path and query string. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Bounds the wait for the answer's headers and each gap in its body. */
  timeoutMs: number;
}

export interface UpstreamAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or a stream of it when larger than BUFFER_LIMIT_BYTES. */
  body: Buffer | Readable;
}

/** The upstream could not be reached or did not answer in time (nothing was received). */
export class UpstreamError extends Error {
  constructor(
    readonly timedOut: boolean,
    cause: Error,
  ) {
    super(cause.message, { cause });
  }
}

/**
 * The headers to forward: the client's, less hop-by-hop ones, those the client's Connection header
 * names, and `drop` (credentials, identity, trace context).
 */
export function forwardedHeaders(incoming: IncomingHttpHeaders, drop: ReadonlySet<string>): Record<string, string | string[]> {
  const named = incoming.connection ? incoming.connection.toLowerCase().split(",").map((s) => s.trim()) : [];
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name) || (named.length > 0 && named.includes(name))) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The answer's headers to send on, less hop-by-hop ones (Content-Length kept only for a streamed
 * body) and the gateway's own security headers (./security-headers.ts).
 */
export function answerHeaders(headers: IncomingHttpHeaders, streamed: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || (HOP_BY_HOP.has(name) && !(streamed && name === "content-length")) || Object.hasOwn(SECURITY_HEADERS, name)) continue;
    out[name] = value;
  }
  return out;
}

export class Upstreams {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly o: { connections: number; keepAliveTimeoutMs: number }) {}

  /** Resolves with the answer; rejects with UpstreamError when none arrived. */
  send(base: string, req: UpstreamRequest): Promise<UpstreamAnswer> {
    let pool = this.pools.get(base);
    if (!pool) {
      pool = new Pool(base, { connections: this.o.connections, pipelining: 1, keepAliveTimeout: this.o.keepAliveTimeoutMs });
      this.pools.set(base, pool);
    }
    return new Promise((resolve, reject) => dispatch(pool, req, 0, resolve, reject));
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => p.destroy())));
    this.pools.clear();
  }
}

function dispatch(pool: Pool, req: UpstreamRequest, attempt: number, resolve: (a: UpstreamAnswer) => void, reject: (e: Error) => void): void {
  let statusCode = 0;
  let headers: IncomingHttpHeaders = {};
  let chunks: Buffer[] = [];
  let size = 0;
  let stream: Readable | undefined;
  let ended = false;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {}, // (its presence selects this handler interface)
    onResponseStart(_c, status, h) {
      statusCode = status;
      headers = h;
    },
    onResponseData(controller, chunk) {
      if (stream) {
        if (!stream.push(chunk)) controller.pause();
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size <= BUFFER_LIMIT_BYTES) return;
      stream = new Readable({
        read: () => controller.resume(),
        destroy: (err, cb) => {
          if (!ended) controller.abort(err ?? new Error("client went away"));
          cb(err);
        },
      });
      for (const c of chunks) stream.push(c);
      chunks = [];
      resolve({ statusCode, headers, body: stream });
    },
    onResponseEnd() {
      ended = true;
      if (stream) stream.push(null);
      else resolve({ statusCode, headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
    },
    onResponseError(_c, err) {
      ended = true;
      if (stream) return void stream.destroy(err);
      const code = (err as { code?: string }).code ?? "";
      // A kept-alive connection the upstream closed as we reused it: safe to send an idempotent request again.
      if (statusCode === 0 && attempt === 0 && (req.method === "GET" || req.method === "HEAD") && RETRYABLE.has(code)) return dispatch(pool, req, 1, resolve, reject);
      reject(new UpstreamError(TIMEOUTS.has(code) || /timeout/i.test(err.name), err));
    },
  };
  try {
    pool.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs }, handler);
  } catch (e) {
    // undici refuses a header it cannot send (what reaches here passed Node's parser and the
    // gateway's checks): the client's request, 400. Anything else is the gateway's own fault.
    reject(/header/i.test((e as Error).message) ? new HttpError(400, "BAD_REQUEST", "A request header cannot be forwarded as sent") : (e as Error));
  }
}
