/**
 * One HTTP/1.1 exchange written byte for byte over a socket (fetch normalises what these tests must
 * send as written: repeated headers, framing, Expect, a missing Host, a thousand headers).
 */
import net from "node:net";

export interface RawAnswer {
  /** The status of the last answer read (0: none). */
  status: number;
  /** Every status line read, in order ("100" then "413", say). */
  statuses: number[];
  /** The last answer's header block, lower-cased names. */
  headers: Record<string, string>;
  /** The last answer's body (de-chunked when it came chunked). */
  body: string;
  /** Everything read. */
  all: string;
}

/** Splits what a connection answered into its answers' statuses and the last one's headers and body. */
export function parseAnswers(all: string): RawAnswer {
  const statuses: number[] = [];
  let rest = all;
  let headers: Record<string, string> = {};
  let body = "";
  for (;;) {
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(rest);
    if (!m) break;
    statuses.push(Number(m[1]));
    const end = rest.indexOf("\r\n\r\n");
    headers = Object.fromEntries(
      rest.slice(m[0].length, end < 0 ? rest.length : end).split("\r\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    rest = end < 0 ? "" : rest.slice(end + 4);
    if (Number(m[1]) < 200) continue;
    const length = headers["content-length"];
    if (length !== undefined) {
      body = rest.slice(0, Number(length));
      rest = rest.slice(Number(length));
    } else if (headers["transfer-encoding"] === "chunked") {
      body = "";
      for (;;) {
        const line = rest.indexOf("\r\n");
        const size = parseInt(rest.slice(0, line), 16);
        rest = rest.slice(line + 2);
        if (!(size > 0)) break;
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
      rest = rest.slice(rest.indexOf("\r\n") + 2);
    } else {
      body = rest;
      rest = "";
    }
  }
  // Read as Latin-1 so that Content-Length counts bytes; the body is UTF-8 text.
  return { status: statuses.at(-1) ?? 0, statuses, headers, body: Buffer.from(body, "latin1").toString("utf8"), all };
}

/**
 * Writes `parts` to `url`'s host and port (each part after the previous one's pause, ms) and reads
 * until the server closes the connection or `waitMs` passes (then the connection is closed).
 */
export function rawExchange(url: string, parts: Array<string | Buffer | [string | Buffer, number]>, waitMs = 10_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(port), hostname, async () => {
      for (const p of parts) {
        const [data, pauseMs] = Array.isArray(p) ? p : [p, 0];
        if (s.destroyed) break;
        s.write(data);
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
    const timer = setTimeout(() => s.destroy(), waitMs);
    s.on("data", (d) => chunks.push(d));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(parseAnswers(Buffer.concat(chunks).toString("latin1")));
    });
  });
}

/**
 * A client gone mid-answer: writes `request` to `url`'s host and port, reads more than `bytes` of
 * the answer, then resets the connection (RST, not a FIN); resolves once it is closed.
 */
export function resetAfterReading(url: string, request: string | Buffer, bytes: number): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let read = 0;
    const s = net.connect(Number(port), hostname, () => s.write(request));
    s.on("data", (d: Buffer) => {
      read += d.length;
      if (read > bytes && !s.destroyed) s.resetAndDestroy();
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve());
  });
}

/** A raw HTTP/1.1 request: its head (request line and header lines joined by CRLF) and body. */
export const rawRequest = (head: string, body = "") => `${head}\r\n\r\n${body}`;

/** GET /api/users/me through the gateway, written as sent, with `headers` (lines) and Connection: close. */
export const rawMe = (...headers: string[]) => rawRequest(["GET /api/users/me HTTP/1.1", "Host: gw", ...headers, "Connection: close"].join("\r\n"));

/** The ports in the test's datastore addresses (URLs or host:port), which no answer may name. */
export const portsOf = (addresses: string[]): number[] => addresses.map((u) => Number(/:(\d+)(?:\/|$)/.exec(u)?.[1] ?? 0)).filter(Boolean);

/** A new account through the gateway at `gatewayUrl`: its access token and a read-scoped API key named `name`. */
export async function newKeyHolder(gatewayUrl: string, name: string, password: string): Promise<{ token: string; apiKey: string }> {
  const email = `${name}-${Math.random().toString(16).slice(2, 8)}@example.com`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gatewayUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
  await post("/api/users/register", { email, password });
  const token = (await post("/api/users/login", { email, password })).accessToken as string;
  const apiKey = (await post("/api/users/api-keys", { name, scopes: ["read"] }, { authorization: `Bearer ${token}` })).key as string;
  return { token, apiKey };
}
