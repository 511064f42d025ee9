/**
 * The trading bench's HTTP client: POSTs a JSON body over kept-alive node:net sockets (at most
 * `maxSockets`; the last one freed is used first, as node:http's Agent does) and parses the answer
 * with Node's own llhttp binding (the parser node:http uses, as bench/lib/raw-proxy.ts), one request
 * at a time per socket, one write per request.
 *
 * Not fetch: measured in bench/trading.ts at 200 orders/s, fetch cost the load generator 1.5-2 ms of
 * CPU per order (its WHATWG streams and Headers objects), as much as the gateway and
 * order-management together, on the same two cores as the services it measures; a late load
 * generator also delays the sends it times. Not node:http either since session 57: without its
 * ClientRequest, IncomingMessage stream and header objects the load generator took 0.25 ms of CPU per
 * order instead of 0.41 (docs/measurements/order-path.md, session 57, overloaded runs). In production
 * the clients run elsewhere: what the generator spends is taken from the cores of the path it
 * measures. What is measured is unchanged: an answer counts when its whole body has arrived and parsed.
 */
import { connect, type Socket } from "node:net";

// node:http's own parser binding; internal, so this stays a bench.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser } = require("_http_common") as { HTTPParser: any };

export interface JsonAnswer {
  status: number;
  body: { status?: string; orderId?: string; rejectReason?: string; error?: { code?: string } };
}

interface Target {
  host: string;
  port: number;
  /** The request line and the headers every request to this URL carries. */
  head: string;
}

interface Pending {
  resolve: (a: JsonAnswer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Connection {
  target: Target;
  socket: Socket;
  pending?: Pending;
}

export function jsonPoster(maxSockets: number) {
  const targets = new Map<string, Target>();
  /** Free connections by URL, the last freed at the end. */
  const idle = new Map<string, Connection[]>();
  let open = 0;
  /** Requests waiting for a socket (all maxSockets busy). */
  const queue: (() => void)[] = [];
  let closed = false;

  const targetOf = (url: string): Target => {
    let t = targets.get(url);
    if (!t) {
      const u = new URL(url);
      if (u.protocol !== "http:") throw new Error(`json-poster: http only, not ${u.protocol}`);
      t = { host: u.hostname, port: Number(u.port || 80), head: `POST ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: keep-alive\r\n` };
      targets.set(url, t);
    }
    return t;
  };

  const release = (url: string, c: Connection) => {
    const next = queue.shift();
    const free = idle.get(url) ?? [];
    free.push(c);
    idle.set(url, free);
    next?.();
  };

  const drop = (url: string, c: Connection, err: Error) => {
    const free = idle.get(url);
    const i = free?.indexOf(c) ?? -1;
    if (i >= 0) free!.splice(i, 1);
    if (!c.socket.destroyed) c.socket.destroy();
    const p = c.pending;
    c.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  };

  const openConnection = (url: string, target: Target): Connection => {
    const socket = connect(target.port, target.host);
    socket.setNoDelay(true);
    const c: Connection = { target, socket };
    open++;
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {});
    let status = 0;
    let keepAlive = true;
    let chunks: Buffer[] = [];
    parser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, _headers: string[], _method: unknown, _url: unknown, statusCode: number, _message: unknown, _upgrade: boolean, shouldKeepAlive: boolean) => {
      status = statusCode;
      keepAlive = shouldKeepAlive;
      chunks = [];
    };
    parser[HTTPParser.kOnBody] = (b: Buffer) => void chunks.push(Buffer.from(b));
    parser[HTTPParser.kOnMessageComplete] = () => {
      const p = c.pending;
      c.pending = undefined;
      if (!p) return;
      clearTimeout(p.timer);
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      chunks = [];
      try {
        p.resolve({ status, body: JSON.parse(body.toString("utf8")) });
      } catch (err) {
        p.reject(err as Error);
      }
      if (keepAlive && !closed) release(url, c);
      else drop(url, c, new Error("connection closed"));
    };
    socket.on("data", (d: Buffer) => {
      const r = parser.execute(d);
      if (r instanceof Error) drop(url, c, r);
    });
    socket.on("error", (err) => drop(url, c, err));
    socket.on("close", () => {
      open--;
      drop(url, c, new Error("socket hang up"));
      queue.shift()?.();
    });
    return c;
  };

  /** A free connection to `url` (the last freed), a new one while fewer than maxSockets are open, or the next freed one. */
  const acquire = async (url: string, target: Target): Promise<Connection> => {
    for (;;) {
      const c = idle.get(url)?.pop();
      if (c && !c.socket.destroyed) return c;
      if (open < maxSockets) return openConnection(url, target);
      await new Promise<void>((r) => queue.push(r));
    }
  };

  return {
    async post(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<JsonAnswer> {
      if (closed) throw new Error("json-poster closed");
      const target = targetOf(url);
      const c = await acquire(url, target);
      let head = target.head;
      for (const k in headers) head += `${k}: ${headers[k]}\r\n`;
      return new Promise<JsonAnswer>((resolve, reject) => {
        c.pending = { resolve, reject, timer: setTimeout(() => drop(url, c, new Error(`no answer within ${timeoutMs} ms`)), timeoutMs) };
        c.socket.write(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
    },
    close() {
      closed = true;
      for (const [url, free] of idle) for (const c of [...free]) drop(url, c, new Error("json-poster closed"));
    },
  };
}
