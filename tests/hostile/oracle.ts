/**
 * What no answer to a client may contain: a 5xx status, a stack trace, file paths, SQL or driver
 * messages, internal host names or connection strings, and (for JSON errors) anything but the
 * platform's error shape.
 */
import { hostname } from "node:os";

const LEAKS: Array<[string, RegExp]> = [
  ["stack frame", /\n\s+at [^\n]+:\d+:\d+/],
  ["stack frame (inline)", /\bat (?:async )?[\w.<>]+ \((?:\/|node:|file:)[^)]*\)/],
  ["'Error:' frame", /\b(?:Type|Reference|Range|Syntax|URI|Eval|Aggregate)?Error: /],
  ["file path", /(?:\/work\/|\/root\/|\/home\/|\/app\/|node_modules|services\/src\/|\.ts:\d+|\.js:\d+)/],
  ["SQL", /\b(?:SELECT\s+[\w*,\s]+\s+FROM|INSERT INTO|UPDATE\s+\w+\s+SET|DELETE FROM|syntax error at or near|violates (?:check|unique|foreign key) constraint|relation "\w+"|invalid input syntax for|duplicate key value)\b/i],
  ["driver", /\b(?:ECONNREFUSED|ETIMEDOUT|ENOTFOUND|KafkaJSError|ReplyError|ioredis|PostgresError|ClickHouse exception)\b/i],
  ["connection string", /\b(?:postgres(?:ql)?|redis|clickhouse|kafka):\/\//i],
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
