/**
 * Node's own HTTP/1.1 parser binding (llhttp, the one node:http parses every request and answer
 * with), for the gateway's fast lane (./connections.ts, ./upstream-pool.ts). Internal to Node, so
 * reached through `_http_common`; its shape is Node 20's (checked at start: a Node without it gets no
 * fast lane, ./index.ts). Strict: no lenient flag, as node:http runs unless `insecureHTTPParser`.
 */
import { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { createRequire } from "node:module";

const require_ = createRequire(__filename);

/** The parser object (native). Its callbacks are set by index (the HTTPParser.k* constants). */
export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [callback: number]: unknown;
}

interface HttpCommon {
  HTTPParser: {
    new (): LlhttpParser;
    REQUEST: number;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kLenientNone: number;
  };
  methods: string[];
}

function load(): HttpCommon | undefined {
  try {
    const common = require_("_http_common") as Partial<HttpCommon>;
    const P = common.HTTPParser;
    if (!P || !Array.isArray(common.methods) || typeof P.kOnHeadersComplete !== "number" || typeof P.kOnMessageComplete !== "number") return undefined;
    return common as HttpCommon;
  } catch {
    return undefined;
  }
}

export const httpCommon = load();

/** (versionMajor, versionMinor, rawHeaders, method index, url, statusCode, statusMessage, upgrade, shouldKeepAlive) */
export type HeadersComplete = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, statusCode: number, statusMessage: string, upgrade: boolean, keepAlive: boolean) => number | void;

export interface ParserCallbacks {
  headersComplete: HeadersComplete;
  body?: (chunk: Buffer) => void;
  messageComplete: () => void;
}

/**
 * A strict parser of `type` with the callbacks; a head longer than what the binding hands over at
 * once (more than 32 headers) arrives in parts (kOnHeaders), joined as node:http joins them.
 */
export function newParser(type: "request" | "response", maxHeaderSize: number, cb: ParserCallbacks): LlhttpParser {
  const { HTTPParser } = httpCommon!;
  const parser = new HTTPParser();
  parser.initialize(type === "request" ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, maxHeaderSize, HTTPParser.kLenientNone);
  let partHeaders: string[] = [];
  let partUrl = "";
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    partHeaders.push(...headers);
    partUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, statusCode: number, statusMessage: string, upgrade: boolean, keepAlive: boolean) => {
    if (!headers) {
      headers = partHeaders;
      partHeaders = [];
    }
    if (!url) {
      url = partUrl;
      partUrl = "";
    }
    return cb.headersComplete(major, minor, headers, method, url, statusCode, statusMessage, upgrade, keepAlive);
  };
  parser[HTTPParser.kOnBody] = cb.body ?? (() => undefined);
  parser[HTTPParser.kOnMessageComplete] = () => {
    // An answer's trailers come through kOnHeaders after its head: dropped, as the Fastify path
    // drops them (until session 54 they became the next answer's head on a pooled connection).
    partHeaders = [];
    partUrl = "";
    return cb.messageComplete();
  };
  return parser;
}

/** The request's view for the kit's checks: an IncomingMessage whose headers node:http's own code joins. */
export function messageOf(socket: Socket, raw: string[], method: string, url: string, major: number, minor: number): IncomingMessage {
  const msg: IncomingMessage & { _addHeaderLines(h: string[], n: number): void } = Object.create(IncomingMessage.prototype);
  // (Set one by one, as Object.assign from a literal sets them, without the literal: an object a request.)
  msg.socket = socket;
  msg.method = method;
  msg.url = url;
  msg.httpVersionMajor = major;
  msg.httpVersionMinor = minor;
  msg.httpVersion = major === 1 && minor === 1 ? "1.1" : `${major}.${minor}`;
  msg.complete = false;
  // IncomingMessage's own header joining (duplicates: cookie with "; ", the single-valued ones kept first, others with ", ").
  msg._addHeaderLines(raw, raw.length);
  msg.complete = true;
  return msg;
}

/**
 * Whether the read's first CRLF CRLF is its last four bytes (`d.indexOf("\r\n\r\n") === d.length - 4`):
 * its last four bytes first, then a scan for an earlier one (Buffer.indexOf with a string needle cost
 * about 2 µs a request on the bench's host, its wrapper and the needle's conversion more than the search).
 */
export function headEndsRead(d: Buffer): boolean {
  const end = d.length - 4;
  if (end < 0 || d[end] !== CR || d[end + 1] !== LF || d[end + 2] !== CR || d[end + 3] !== LF) return false;
  for (let i = 0; i < end; i++) if (d[i] === CR && d[i + 1] === LF && d[i + 2] === CR && d[i + 3] === LF) return false;
  return true;
}
const CR = 13;
const LF = 10;
