/**
 * Calls to peer services: base URL from `SERVICE_<NAME>_URL` or the catalog default
 * (`http://<name>:<port>`), `x-request-id` propagated, bounded by a timeout, and (`cutOnClose`) by
 * the service's shutdown.
 */
import { catalog, defaultServiceUrl, findService, serviceUrlEnvVar, type ServiceDefinition } from "../catalog";
import { ConfigError } from "./config";
import { HttpError, shuttingDown } from "./errors";

/**
 * How long a peer call marked `cutOnClose` may still run once the service's close began (the kit's
 * `closing`, after SIGTERM and SHUTDOWN_DRAIN_MS). A peer answers in milliseconds when it is well: a
 * call still running a second into the close is a slow peer (ai-orchestrator's ml-predictor call may
 * take up to ORCH_PREDICT_TIMEOUT_MS, 10 s by default and up to 600 s), and waiting for it would spend
 * the whole SHUTDOWN_TIMEOUT_MS (10 s) that the other requests, the onClose hooks and the datastore
 * clients' close share, or pass it (exit 1). One second lets a call almost done finish, and leaves
 * nine of the ten for the rest.
 */
export const PEER_CLOSE_GRACE_MS = 1_000;

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

/**
 * How an answer to a client names a catalog service: by the public route it serves (`the service at
 * /api/orders/`), never by its catalog name, which is the platform's inside (session 52). The name
 * stays in the logs.
 */
export function publicServiceName(name: string): string {
  const route = findService(name)?.route;
  return route ? `the service at /api/${route}/` : "a service this request needs";
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
  /**
   * Cut once the service's close began and PEER_CLOSE_GRACE_MS passed (the PeerClient's `closing`):
   * the call rejects with a 503 SHUTTING_DOWN (errors.ts shuttingDown), which the caller lets through
   * (a drain answer, logged at warn) or turns into its own. Only for a call whose cut changes nothing
   * (a read, or a POST that only asks, as ml-predictor's /internal/predict): a cut write may still be
   * carried out by the peer, its outcome unknown, so the kit never cuts one on its own; a write is
   * bounded by its timeout alone.
   */
  cutOnClose?: boolean;
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
    /** Aborted PEER_CLOSE_GRACE_MS after the service's close began (./service.ts): what cuts a `cutOnClose` call. */
    private readonly closing?: AbortSignal,
  ) {}

  baseUrl(name: string): string {
    return peerBaseUrl(name, this.source);
  }

  /**
   * Calls `path` on peer `name` (which must be listed in this service's catalog `calls`, as the
   * network policies only allow those). Resolves with any HTTP status; rejects with a 502/504
   * HttpError when the peer cannot be reached or its answer is not read in time, with a 503
   * SHUTTING_DOWN when a `cutOnClose` call is cut by the shutdown.
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
    // One controller aborted by the timeout or the cut, its listener on the long-lived closing signal
    // removed after the call: AbortSignal.any keeps every combined signal as a dependant of that
    // signal (nodejs/node#55351), a slow leak of one per call.
    const cut = req.cutOnClose ? this.closing : undefined;
    const bound = new AbortController();
    let ended: "timeout" | "cut" | undefined;
    const end = (why: "timeout" | "cut") => () => {
      ended ??= why;
      bound.abort();
    };
    const timer = setTimeout(end("timeout"), req.timeoutMs ?? 5_000);
    const onCut = end("cut");
    if (cut?.aborted) onCut();
    else cut?.addEventListener("abort", onCut, { once: true });
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: req.method ?? (body === undefined ? "GET" : "POST"), headers, body, signal: bound.signal });
      // The answer's body under the same bounds: a peer stalling mid-answer was a raw error (a 500).
      text = await res.text();
    } catch {
      if (ended === "cut") throw shuttingDown(`its call to ${publicServiceName(name)} was cut (not answered ${PEER_CLOSE_GRACE_MS} ms into the close)`);
      const timedOut = ended === "timeout";
      throw new HttpError(timedOut ? 504 : 502, timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE", `${publicServiceName(name)} did not answer`);
    } finally {
      clearTimeout(timer);
      cut?.removeEventListener("abort", onCut);
    }
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
