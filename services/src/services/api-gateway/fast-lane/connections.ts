/**
 * The fast lane's client side: every connection of the gateway's listening socket starts here
 * instead of in node:http (the server's 'connection' listeners are taken over), and each read is
 * parsed by Node's own llhttp binding (./llhttp.ts: strict, the server's maxHeaderSize). A read that
 * is exactly one complete GET or HEAD request of HTTP/1.1 (no bytes after it: nothing pipelined, no
 * part of a next request) is offered to the lane (./serve.ts), which serves it, declines, or names a
 * cold cache: then the socket is paused, the cache warmed and the request offered again. Anything
 * else (a partial request, pipelined ones, a parse error, a declined request, bytes arriving while
 * the lane's answer is out) hands the connection over to node:http for the rest of its life, with
 * every byte not yet answered: node:http's own listener is called with the socket, as when the
 * server accepted it, and the bytes are put back in front of the socket's stream (`unshift`), where
 * node:http's listener reads them first. Node and Fastify then decide from scratch, as without the lane.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { clientErrorResponse } from "../../../kit/client-errors";
import type { TokenMemo } from "../authenticate";
import { carryOver } from "./handed-over";
import { headEndsRead, httpCommon, messageOf, newParser, type LlhttpParser } from "./llhttp";
import type { ColdRequest, LaneRequest, LaneServer } from "./lane-request";

export type { ColdRequest, LaneRequest, LaneServer };

/** Warm-ups of one request at most (its route, credentials, and the three rate-limit keys): then Fastify's. */
const MAX_WARMS = 5;

type ConnectionListener = (this: Server, socket: Socket) => void;

export class LaneConnection {
  private parser: LlhttpParser | undefined;
  private busy = false;
  private pending: Buffer[] = [];
  private ended = false;
  private gone = false;
  private parsed: LaneRequest | undefined;
  private completes = 0;
  private current: LaneRequest | undefined; // (the request the lane handles; `started`: its answer's first bytes written)
  private started = false;
  /** A throw out of a read's handling (a fault of the lane's) would end the process: the connection ends instead. */
  private readonly onData = (d: Buffer) => {
    try {
      this.read(d);
    } catch (e) {
      this.lane.fault(e as Error, "its connection closed");
      this.destroy();
    }
  };
  private readonly onEnd = () => this.clientEnded();
  /** An answer was written on this connection (its idle timeout is then keepAliveTimeout's, closed silently). */
  private answered = false;
  private readonly onTimeout = () => {
    if (this.busy) return;
    this.gone = true;
    if (this.answered) return void this.socket.destroy();
    // No request within headersTimeout: node:http's 408 (the kit's clientError answer), then the close.
    this.socket.end(clientErrorResponse({ code: "ERR_HTTP_REQUEST_TIMEOUT" }, this.lane.server));
    this.socket.destroySoon();
  };
  private readonly onClose = () => {
    this.exchange?.clientGone();
    this.lane.forget(this);
  };
  /** The last token this client sent and its claims (../authenticate.ts TokenMemo). */
  readonly tokens: TokenMemo = { authorization: undefined, claims: undefined };
  /** The lane's request in flight on this connection (told when the client goes away: one listener per connection, not one per request). */
  exchange: { clientGone(): void } | undefined;

  constructor(
    readonly socket: Socket,
    private readonly lane: LaneListener,
  ) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("timeout", this.onTimeout);
    socket.on("close", this.onClose);
    socket.on("error", () => undefined); // a reset: 'close' follows
    // Before a first request: the server's headersTimeout (REQUEST_RECEIVE_TIMEOUT_MS), as node:http.
    socket.setTimeout(lane.server.headersTimeout);
  }

  get idle(): boolean {
    return !this.busy && !this.gone;
  }

  private read(d: Buffer): void {
    if (this.gone) return; // closing after an answer: nothing more is read
    if (this.busy) return this.pipelined(d);
    this.parser ??= newParser("request", this.lane.maxHeaderSize, {
      headersComplete: (major, minor, headers, method, url, _s, _sm, upgrade, keepAlive) => {
        const name = httpCommon!.methods[method];
        this.parsed =
          major === 1 && minor === 1 && !upgrade && (name === "GET" || name === "HEAD") && headers && url
            ? { msg: messageOf(this.socket, headers, name, url, major, minor), method: name, url, keepAlive, startedAt: performance.now() }
            : undefined;
        return 0;
      },
      messageComplete: () => void this.completes++,
    });
    this.parsed = undefined;
    this.completes = 0;
    const r = this.parser.execute(d);
    // Exactly one request, complete, and nothing after it: a bodiless request's head ends at its first
    // CRLF CRLF (strict llhttp takes no bare LF), which must be the read's last four bytes.
    const req = this.parsed as LaneRequest | undefined;
    const whole = !(r instanceof Error) && this.completes === 1 && headEndsRead(d);
    if (!whole || !req) return this.handOver(d, r instanceof Error ? "parse" : "request");
    this.busy = true;
    this.current = req;
    this.started = false;
    this.decide(req, d, 0);
  }

  /**
   * Bytes while the lane handles `current`. The kit's rule (client-errors.ts answerClientError): a request
   * llhttp refuses, pipelined behind one whose answer is not started, closes the connection after that
   * answer (sent with Connection: close) and gets no 400 of its own; behind one whose answer has begun
   * (a streamed one), the connection is closed at once, nothing written over the answer (session 55:
   * the lane handed those bytes to node:http after its answer, whose 400 followed it).
   */
  private pipelined(d: Buffer): void {
    this.pending.push(d);
    if (!this.current) return;
    const check = newParser("request", this.lane.maxHeaderSize, { headersComplete: () => 0, messageComplete: () => undefined });
    const refused = check.execute(Buffer.concat(this.pending)) instanceof Error;
    check.close();
    if (refused && this.started) return this.destroy();
    if (refused) [this.current.keepAlive, this.pending] = [false, []];
  }

  /** Offers `req` (read as `bytes`) to the lane: served, warmed and offered again, or handed over. */
  private decide(req: LaneRequest, bytes: Buffer, warms: number): void {
    let taken: true | string | ColdRequest = "error";
    try {
      taken = this.lane.serve(req, this);
    } catch (e) {
      this.lane.fault(e as Error, "handed to Fastify");
    }
    if (taken === true) return;
    if (typeof taken === "string" || warms >= MAX_WARMS) {
      this.busy = false;
      return this.handOver(bytes, typeof taken === "string" ? taken : taken.reason, req);
    }
    // A cold cache, not a "no": nothing more is read meanwhile (the socket paused; no token is taken
    // by a warm-up), then the request is decided again from the start.
    const cold = taken;
    this.socket.pause();
    this.lane.warming(cold.reason, req);
    cold.warm().then(
      (warmed) => this.warmed(req, bytes, warms, warmed ? undefined : cold.reason),
      () => this.warmed(req, bytes, warms, cold.reason),
    );
  }

  private warmed(req: LaneRequest, bytes: Buffer, warms: number, stillCold: string | undefined): void {
    if (this.socket.destroyed) return; // the client went away meanwhile: nothing to answer, nothing was counted
    this.socket.resume(); // (what arrives meanwhile is pending: busy)
    if (stillCold === undefined) return this.decide(req, bytes, warms + 1);
    this.busy = false;
    this.handOver(bytes, stillCold, req);
  }

  /** Writes (part of) the lane's answer. */
  write(bytes: Buffer): boolean {
    this.started = true;
    return !this.gone && this.socket.write(bytes);
  }

  /** The lane's answer is written: next request, or the end of the connection. */
  finish(keepAlive: boolean): void {
    this.busy = false;
    this.answered = true;
    if (this.gone) return;
    // Set at the first answer: Node restarts it at every read and write (this answer's too); set per answer it was a new timer each.
    if (this.socket.timeout !== this.lane.server.keepAliveTimeout) this.socket.setTimeout(this.lane.server.keepAliveTimeout);
    if (!keepAlive || this.lane.closing()) {
      this.gone = true;
      this.socket.end();
      this.socket.destroySoon();
      return;
    }
    if (this.pending.length > 0) {
      const bytes = Buffer.concat(this.pending);
      this.pending = [];
      return this.handOver(bytes, "pipelined");
    }
    if (this.ended) this.socket.end();
  }

  /** Gives up the connection (the client went away mid-answer, or a streamed answer failed). */
  destroy(): void {
    this.gone = true;
    this.socket.destroy();
  }

  /** Closes an idle connection (the service is closing). */
  closeIdle(): void {
    if (this.idle) {
      this.gone = true;
      this.socket.destroy();
    }
  }

  /**
   * The client ended its side (FIN). node:http ends the connection then (the server's
   * httpAllowHalfOpen is false: Node ends its side at once): a request in flight is never answered
   * (its access line is written when its answer finishes: none), nor any pipelined after it, which
   * the lane held as pending bytes. The lane the same: its exchange given up, nothing more read or
   * written (it answered the request in flight, logged it, and dropped the pipelined ones, until
   * session 54).
   */
  private clientEnded(): void {
    this.ended = true;
    this.gone = true;
    this.pending = [];
    this.exchange?.clientGone();
    this.socket.end();
  }

  /** node:http takes the connection from here, `bytes` first (`req`'s, when the lane began it: its deadline and warm-up go with it). */
  private handOver(bytes: Buffer, reason: string, req?: LaneRequest): void {
    const s = this.socket;
    if (req) carryOver(s, { method: req.method, url: req.url, deadline: req.deadline ?? Date.now(), auth: req.auth, beforeClose: req.beforeClose ?? false, requestId: req.requestId });
    this.gone = true;
    s.removeListener("data", this.onData);
    s.removeListener("end", this.onEnd);
    s.removeListener("timeout", this.onTimeout);
    s.removeListener("close", this.onClose);
    s.setTimeout(0);
    this.lane.forget(this);
    this.lane.handedOver(reason, req);
    this.parser?.close();
    this.parser = undefined;
    // (Not reached once the client ended its side: clientEnded ends the connection, as node:http.)
    if (this.ended) return void s.destroy();
    // node:http's listener first (it adds its 'data' listener and takes the socket's reads), then the
    // bytes in front: the stream is flowing, so they reach node:http's parser at once, before any read.
    this.lane.original(s);
    if (bytes.length > 0) s.unshift(bytes);
  }
}

/** The lane's hold on a server's connections. */
export class LaneListener {
  private readonly connections = new Set<LaneConnection>();
  private readonly listeners: ConnectionListener[];
  /** The server's own (createApp's maxHeaderSize; 0: Node's default), as node:http parses with. */
  readonly maxHeaderSize: number;

  constructor(
    readonly server: Server,
    readonly serve: LaneServer,
    readonly closing: () => boolean,
    /** Logs a fault of the lane's own on a request, and what became of the request. */
    readonly fault: (err: Error, outcome: string) => void,
    /** Counts a connection handed to node:http, and why (`req`: the request the lane began, handed over with it). */
    readonly handedOver: (reason: string, req?: LaneRequest) => void,
    /** Counts a request whose cold cache the lane warms before deciding again, and which. */
    readonly warming: (reason: string, req: LaneRequest) => void,
  ) {
    this.maxHeaderSize = (server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0;
    this.listeners = server.listeners("connection") as ConnectionListener[];
    server.removeAllListeners("connection");
    server.on("connection", (socket: Socket) => {
      if (this.closing()) return this.original(socket);
      this.connections.add(new LaneConnection(socket, this));
    });
  }

  /** Hands `socket` to the server's own listeners (node:http's connectionListener). */
  original(socket: Socket): void {
    for (const l of this.listeners) l.call(this.server, socket);
  }

  forget(c: LaneConnection): void {
    this.connections.delete(c);
  }

  /** The service is closing: idle lane connections are closed (node:http closes its own), busy ones after their answer. */
  closeIdle(): void {
    for (const c of this.connections) c.closeIdle();
  }
}
