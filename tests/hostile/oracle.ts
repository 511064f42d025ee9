/**
 * What no answer to a client may contain: a 5xx status, a stack trace, file paths, SQL or driver
 * messages, internal host names or connection strings, a native library's source locations
 * (tests/unit/hostile-oracle.test.ts), and (for JSON errors) anything but the platform's error shape.
 * Since session 52 an error answer (4xx/5xx) names no internal thing either (./internal-names.ts: a
 * catalog service, a datastore or driver, a topic, a table).
 */
import { expect } from "vitest";
import { hostname } from "node:os";
import { rawExchange, type RawAnswer } from "../helpers/raw-http";
import { internalNamesIn } from "./internal-names";

const LEAKS: Array<[string, RegExp]> = [
  ["stack frame", /\n\s+at [^\n]+:\d+:\d+/],
  ["stack frame (inline)", /\bat (?:async )?[\w.<>]+ \((?:\/|node:|file:)[^)]*\)/],
  ["'Error:' frame", /\b(?:Type|Reference|Range|Syntax|URI|Eval|Aggregate)?Error: /],
  ["file path", /(?:\/work\/|\/root\/|\/home\/|\/app\/|node_modules|services\/src\/|\.ts:\d+|\.js:\d+)/],
  ["SQL", /\b(?:SELECT\s+[\w*,\s]+\s+FROM|INSERT INTO|UPDATE\s+\w+\s+SET|DELETE FROM|syntax error at or near|violates (?:check|unique|foreign key) constraint|relation "\w+"|invalid input syntax for|duplicate key value)\b/i],
  ["driver", /\b(?:ECONNREFUSED|ETIMEDOUT|ENOTFOUND|KafkaJSError|ReplyError|ioredis|PostgresError|ClickHouse exception)\b/i],
  ["connection string", /\b(?:postgres(?:ql)?|redis|clickhouse|kafka):\/\//i],
  // A native library's (onnxruntime's) source location and signature: "model.cc:191", "graph.cpp(88)",
  // "/onnxruntime_src/onnxruntime/core/graph/model.cc", "onnxruntime::Model::Model(". Not a URL's
  // host and port ("https://hooks.example.cc:8443/": .cc is a country's domain) nor a string that is a
  // host:port ("a.cc:443"): the file's name follows a space, a "/" or a bracket, or starts a string
  // and the message goes on after its line number.
  ["native source location", /(?<!:\/\/[\w.-]*)(?:(?<=^|[\s/(\[])[A-Za-z_][\w.-]*\.(?:c|cc|cpp|cxx|h|hh|hpp|hxx)(?::\d+(?![\d/])|\(\d+\))|(?<=")[A-Za-z_][\w.-]*\.(?:c|cc|cpp|cxx|h|hh|hpp|hxx):\d+\s)/],
  ["native source path", /(?<![\w.:\/-])(?:\/[\w.+-]+)+\.(?:c|cc|cpp|cxx|h|hh|hpp|hxx)\b(?![.\w-])/],
  ["C++ signature", /\b[A-Za-z_]\w*(?:::[A-Za-z_~]\w*){2,}\(/],
];

/** The leaks found in a response body (with the current host name and internal ports). */
export function leaksIn(body: string, internalPorts: readonly number[] = []): string[] {
  const found = LEAKS.filter(([, re]) => re.test(body)).map(([name]) => name);
  const host = hostname();
  if (host.length > 3 && body.includes(host)) found.push("host name");
  for (const p of internalPorts) if (body.includes(`127.0.0.1:${p}`) || body.includes(`localhost:${p}`)) found.push(`internal address :${p}`);
  return found;
}

export interface Verdict {
  ok: boolean;
  problems: string[];
}

/** Judges one answer: status < 500, no leaks, JSON errors in the platform's shape. */
export function judge(status: number, body: string, contentType: string | null, internalPorts: readonly number[] = []): Verdict {
  const problems: string[] = [];
  if (status >= 500) problems.push(`status ${status}`);
  problems.push(...leaksIn(body, internalPorts));
  if (status >= 400) problems.push(...internalNamesIn(body).map((n) => `internal name ${n}`));
  if (status >= 400 && (contentType ?? "").includes("json") && body.length > 0) {
    try {
      const e = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
      if (typeof e.error?.code !== "string" || typeof e.error?.message !== "string") problems.push("error body not in the platform's shape");
    } catch {
      problems.push("error body is not JSON");
    }
  }
  return { ok: problems.length === 0, problems };
}

/** One answer as the hostile suites read it: its status, its body parsed when it is JSON, its text. */
export interface JudgedAnswer {
  status: number;
  json: any;
  text: string;
  /** The answer's headers (sendJudged's answers). */
  headers?: Headers;
}

/**
 * The answer a service gives when the host, not the request, is too slow: order-management's 503
 * SUBMIT_DEADLINE_PASSED (the submit could not commit within OM_SUBMIT_DEADLINE_MS, nothing was stored,
 * "retry"). A client does what it says; so does sendJudged, up to OVERLOAD_RETRIES times a second or
 * Retry-After apart, and judges the last answer: one still 503 after that fails the oracle. Seen on a
 * host at load 20 (session 56, the whole suite beside two busy loops and five other jobs), never on a
 * request's content.
 */
const OVERLOAD_RETRIES = 4;
export function isOverloadAnswer(status: number, text: string): boolean {
  if (status !== 503) return false;
  try {
    return (JSON.parse(text) as { error?: { code?: unknown } }).error?.code === "SUBMIT_DEADLINE_PASSED";
  } catch {
    return false;
  }
}

/**
 * Sends one request (a JSON body when `body` is given) and judges its answer: a line naming the
 * request, the status and the problems goes to `failures` when the oracle refuses it.
 */
export async function sendJudged(
  url: string,
  method: string,
  // `raw`: a JSON body sent as written, in place of `body` serialised (numbers JSON.stringify never writes: `-0`, `1e21`).
  o: { headers?: Record<string, string>; body?: unknown; raw?: string; failures: string[]; internalPorts?: readonly number[] },
): Promise<JudgedAnswer> {
  const sent = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const headers = { ...o.headers, ...(sent === undefined ? {} : { "content-type": "application/json" }) };
  let r: Response;
  let text: string;
  for (let attempt = 1; ; attempt++) {
    r = await fetch(url, { method, headers, body: sent, signal: AbortSignal.timeout(60_000) });
    text = await r.text();
    if (attempt > OVERLOAD_RETRIES || !isOverloadAnswer(r.status, text)) break;
    await new Promise((done) => setTimeout(done, 1_000 * Math.max(1, Number(r.headers.get("retry-after")) || 1)));
  }
  const v = judge(r.status, text, r.headers.get("content-type"), o.internalPorts);
  if (!v.ok) o.failures.push(`${method} ${url.slice(new URL(url).origin.length)} ${sent?.slice(0, 80)} -> ${r.status} [${v.problems.join(", ")}] ${text.slice(0, 160)}`);
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text, headers: r.headers };
}

/**
 * sendJudged for an exchange written byte for byte (helpers/raw-http.ts rawExchange): the last answer
 * judged, a failure pushed to `o.failures` under `label`.
 */
export async function rawJudged(
  label: string,
  url: string,
  parts: Parameters<typeof rawExchange>[1],
  o: { failures: string[]; internalPorts?: readonly number[]; waitMs?: number },
): Promise<RawAnswer> {
  const a = await rawExchange(url, parts, o.waitMs);
  const v = judge(a.status || 599, a.body, a.headers["content-type"] ?? null, o.internalPorts);
  if (!v.ok) o.failures.push(`${label} -> ${a.status} [${v.problems.join(", ")}] ${a.all.slice(0, 200)}`);
  return a;
}

/** A case of a table-driven hostile test: [as, method, path, body, status, field]: who sends it, and the status and the field its error names. */
export type StatusCase = [string, string, string, unknown, number, string | undefined];

/**
 * Sends each case with `send` (the file's own client, which judges every answer into `failures`) and
 * expects its status and field (soft: every case is reported), then no failures of the oracle.
 */
export async function checkStatusCases(cases: StatusCase[], send: (as: string, method: string, path: string, body: unknown) => Promise<JudgedAnswer>, failures: readonly string[], pathShown = 160): Promise<void> {
  for (const [as, method, path, body, status, field] of cases) {
    const r = await send(as, method, path, body);
    expect.soft([r.status, r.json?.error?.field], `${as} ${method} ${path.slice(0, pathShown)}: ${r.text.slice(0, 240)}`).toEqual([status, field]);
  }
  expect(failures).toEqual([]);
}
