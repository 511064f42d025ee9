/**
 * Calls to peer services: base URL from `SERVICE_<NAME>_URL` or the catalog default
 * (`http://<name>:<port>`), `x-request-id` propagated, bounded by a timeout.
 */
import { defaultServiceUrl, findService, serviceUrlEnvVar, type ServiceDefinition } from "../catalog";
import { HttpError } from "./errors";

export function peerBaseUrl(name: string, source: NodeJS.ProcessEnv = process.env): string {
  const override = source[serviceUrlEnvVar(name)];
  if (override && override.trim() !== "") return override.replace(/\/+$/, "");
  const def = findService(name);
  if (!def) throw new Error(`unknown service "${name}" (not in the catalog)`);
  return defaultServiceUrl(def);
}

export interface PeerRequest {
  method?: string;
  /** JSON-serialised when not a string. */
  body?: unknown;
  headers?: Record<string, string>;
  /** The x-request-id to propagate (pass `request.id` from a handler). */
  requestId?: string;
  timeoutMs?: number;
}

export interface PeerResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export class PeerClient {
  constructor(
    private readonly self: ServiceDefinition,
    private readonly source: NodeJS.ProcessEnv = process.env,
  ) {}

  baseUrl(name: string): string {
    return peerBaseUrl(name, this.source);
  }

  /**
   * Calls `path` on peer `name` (which must be listed in this service's catalog `calls`, as the
   * network policies only allow those). Resolves with any HTTP status; rejects with a 502/504
   * HttpError when the peer cannot be reached.
   */
  async call<T = unknown>(name: string, path: string, req: PeerRequest = {}): Promise<PeerResponse<T>> {
    if (!this.self.calls.includes(name))
      throw new Error(`${this.self.name} may not call ${name}: add it to "calls" in its catalog entry`);
    const headers: Record<string, string> = { accept: "application/json", ...req.headers };
    if (req.requestId) headers["x-request-id"] = req.requestId;
    let body: string | undefined;
    if (req.body !== undefined) {
      body = typeof req.body === "string" ? req.body : JSON.stringify(req.body);
      headers["content-type"] ??= "application/json";
    }
    const url = this.baseUrl(name) + (path.startsWith("/") ? path : `/${path}`);
    let res: Response;
    try {
      res = await fetch(url, {
        method: req.method ?? (body === undefined ? "GET" : "POST"),
        headers,
        body,
        signal: AbortSignal.timeout(req.timeoutMs ?? 5_000),
      });
    } catch (e) {
      const timedOut = (e as Error).name === "TimeoutError";
      throw new HttpError(timedOut ? 504 : 502, timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE", `${name} did not answer`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get("content-type") ?? "").includes("json") && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}
