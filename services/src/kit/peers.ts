/**
 * Calls to peer services: base URL from `SERVICE_<NAME>_URL` or the catalog default
 * (`http://<name>:<port>`), `x-request-id` propagated, bounded by a timeout.
 */
import { catalog, defaultServiceUrl, findService, serviceUrlEnvVar, type ServiceDefinition } from "../catalog";
import { ConfigError } from "./config";
import { HttpError } from "./errors";

/**
 * The peers' base URLs a deployer may override (`SERVICE_<NAME>_URL` of any catalog service: the
 * gateway routes to every one), judged at start (session 50). Before, any text was taken and each
 * call to that peer failed at run time (no scheme, a login fetch refuses to send, a query the request
 * paths were appended after), and an empty one silently stood for the catalog's address. Throws a
 * ConfigError naming each variable, never echoing a value (it may hold a login).
 */
export function checkPeerUrls(service: string, source: NodeJS.ProcessEnv): void {
  const problems: string[] = [];
  for (const def of catalog) {
    const name = serviceUrlEnvVar(def.name);
    const raw = source[name];
    const problem = raw === undefined ? undefined : peerUrlProblem(raw.trim(), defaultServiceUrl(def));
    if (problem !== undefined) problems.push(`${name} ${problem}`);
  }
  if (problems.length > 0) throw new ConfigError(service, problems);
}

function peerUrlProblem(value: string, catalogUrl: string): string | undefined {
  if (value === "") return `is set but empty: give the peer's base URL, or unset it for its default, ${JSON.stringify(catalogUrl)}`;
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) return `must be a URL with protocol http or https, such as ${catalogUrl}`;
  if (url.username !== "" || url.password !== "") return "must not hold a login (fetch refuses to send a URL with credentials)";
  if (url.search !== "" || url.hash !== "") return "must not hold a query or a fragment: the request paths are appended to it";
  return undefined;
}

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
