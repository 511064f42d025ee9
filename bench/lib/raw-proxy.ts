/**
 * A second floor of bench/gateway.ts: a Node proxy without Node's HTTP objects. node:net sockets on
 * both sides, each message parsed by Node's own llhttp binding (the parser node:http uses), the
 * request head written to a kept-alive upstream socket, the answer sent back in one write once the
 * upstream's message is complete. No IncomingMessage/ServerResponse streams, no undici, no
 * framework, no authentication, no limits, no logs. `node --import tsx bench/lib/raw-proxy.ts` with
 * PORT, UPSTREAM_URL, UPSTREAM_PATH and IDENTITY (JSON of the headers to send) in the environment.
 * Not a product (GET only, no request body, no timeouts): it shows what the proxying itself costs
 * when Node's HTTP machinery is left out, the question for a gateway whose hot path would be built so.
 */
import { connect, createServer, type Socket } from "node:net";

// node:http's own parser binding; internal, so this stays a bench.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser } = require("_http_common") as { HTTPParser: any };

const upstreamUrl = new URL(process.env.UPSTREAM_URL!);
const path = process.env.UPSTREAM_PATH ?? "/";
const identity = JSON.parse(process.env.IDENTITY ?? "{}") as Record<string, string>;
const requestHead = Buffer.from(
  `GET ${path} HTTP/1.1\r\nhost: ${upstreamUrl.host}\r\n` + Object.entries(identity).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n",
  "latin1",
);

interface Upstream {
  socket: Socket;
  parser: any;
  /** Called with the upstream's complete answer (status, content type, body). */
  done?: (status: number, contentType: string, body: Buffer) => void;
}
const idle: Upstream[] = [];

function openUpstream(): Upstream {
  const socket = connect(Number(upstreamUrl.port), upstreamUrl.hostname);
  socket.setNoDelay(true);
  const parser = new HTTPParser();
  const u: Upstream = { socket, parser };
  let status = 0;
  let contentType = "application/json";
  let chunks: Buffer[] = [];
  parser.initialize(HTTPParser.RESPONSE, {});
  parser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[], _m: unknown, _url: unknown, statusCode: number) => {
    status = statusCode;
    for (let i = 0; i < headers.length; i += 2) if (headers[i].length === 12 && headers[i].toLowerCase() === "content-type") contentType = headers[i + 1];
    chunks = [];
  };
  parser[HTTPParser.kOnBody] = (b: Buffer) => void chunks.push(Buffer.from(b));
  parser[HTTPParser.kOnMessageComplete] = () => {
    const done = u.done;
    u.done = undefined;
    idle.push(u);
    done?.(status, contentType, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  };
  socket.on("data", (d) => parser.execute(d));
  socket.on("error", () => undefined);
  socket.on("close", () => {
    const i = idle.indexOf(u);
    if (i >= 0) idle.splice(i, 1);
    u.done?.(502, "text/plain", Buffer.alloc(0));
  });
  return u;
}

createServer({ noDelay: true }, (client) => {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {});
  parser[HTTPParser.kOnHeadersComplete] = () => undefined;
  parser[HTTPParser.kOnMessageComplete] = () => {
    const u = idle.pop() ?? openUpstream();
    u.done = (status, contentType, body) => {
      client.write(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} OK\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\n\r\n`, "latin1"), body]));
    };
    u.socket.write(requestHead);
  };
  client.on("data", (d) => {
    const r = parser.execute(d);
    if (r instanceof Error) client.destroy();
  });
  client.on("error", () => undefined);
}).listen(Number(process.env.PORT), "127.0.0.1", () => process.stdout.write("listening\n"));
