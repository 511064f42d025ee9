/**
 * A keep-alive HTTP/1.1 connection written byte for byte (tests/helpers/raw-http.ts reads until the
 * server closes; these tests need several answers on one connection): `send` writes, `next` resolves
 * with the next whole answer (Content-Length or chunked body; a HEAD's none), its raw head kept so
 * two gateways' answers can be compared header for header.
 */
import net from "node:net";

export interface KeptAnswer {
  status: number;
  /** The header lines in order, [name as sent, value]. */
  lines: Array<[string, string]>;
  headers: Record<string, string>;
  body: string;
}

export class KeepAliveClient {
  private readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  /** Whether the next answers are to HEAD requests (no body), in order. */
  private readonly heads: boolean[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(url: string): Promise<KeepAliveClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(port), hostname, () => resolve(new KeepAliveClient(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Writes `bytes`; `heads` says, for each request in them, whether it is a HEAD. */
  send(bytes: string | Buffer, ...heads: boolean[]): void {
    this.heads.push(...(heads.length ? heads : [false]));
    this.socket.write(bytes);
  }

  /** The next whole answer (rejects when the connection closes first or after `waitMs`). */
  async next(waitMs = 10_000): Promise<KeptAnswer> {
    const until = Date.now() + waitMs;
    for (;;) {
      const a = this.take();
      if (a) return a;
      if (this.closed || Date.now() > until) throw new Error(`no whole answer (closed: ${this.closed}); read: ${this.buffered.toString("latin1").slice(0, 300)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  private take(): KeptAnswer | undefined {
    const text = this.buffered.toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const [statusLine, ...rest] = text.slice(0, end).split("\r\n");
    const lines = rest.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()] as [string, string]);
    const headers = Object.fromEntries(lines.map(([n, v]) => [n.toLowerCase(), v]));
    const status = Number(statusLine.split(" ")[1]);
    let pos = end + 4;
    let body = "";
    const head = this.heads[0] ?? false;
    if (!head && headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (text.length < pos + n) return undefined;
      body = text.slice(pos, pos + n);
      pos += n;
    } else if (!head && headers["transfer-encoding"] === "chunked") {
      for (;;) {
        const nl = text.indexOf("\r\n", pos);
        if (nl < 0) return undefined;
        const size = parseInt(text.slice(pos, nl), 16);
        if (text.length < nl + 2 + size + 2) return undefined;
        body += text.slice(nl + 2, nl + 2 + size);
        pos = nl + 2 + size + 2;
        if (size === 0) break;
      }
    }
    this.heads.shift();
    this.buffered = this.buffered.subarray(pos);
    return { status, lines, headers, body: Buffer.from(body, "latin1").toString("utf8") };
  }

  close(): void {
    this.socket.destroy();
  }
}
