/**
 * The floor of bench/gateway.ts: the least a Node proxy can do per request on this machine, node:http
 * server + an undici Pool to the upstream with fixed identity headers, no framework, no
 * authentication, no limits, no logs. `node --import tsx bench/lib/bare-proxy.ts` with PORT,
 * UPSTREAM_URL, UPSTREAM_PATH and IDENTITY (JSON of the headers to send) in the environment.
 * Not a product: it shows how much of the gateway's CPU per request is Node's HTTP itself.
 */
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

// The gateway's own undici (services/package.json), not whatever version the root tree holds.
const { Pool } = createRequire(join(__dirname, "..", "..", "services", "package.json"))("undici") as typeof import("undici");

const upstream = new Pool(process.env.UPSTREAM_URL!, { connections: 128 });
const path = process.env.UPSTREAM_PATH ?? "/";
const identity = JSON.parse(process.env.IDENTITY ?? "{}") as Record<string, string>;

createServer((_req, res) => {
  upstream.request({ path, method: "GET", headers: identity }).then(
    async (r) => {
      const body = Buffer.from(await r.body.arrayBuffer());
      res.writeHead(r.statusCode, { "content-type": String(r.headers["content-type"] ?? "application/json"), "content-length": body.length });
      res.end(body);
    },
    () => {
      res.statusCode = 502;
      res.end();
    },
  );
}).listen(Number(process.env.PORT), "127.0.0.1", () => process.stdout.write("listening\n"));
