/**
 * The auth floor of bench/gateway.ts's "nginx + auth" target: a node:http server answering Nginx's
 * auth_request subrequests with 204 and fixed identity headers, nothing else (no token check, no
 * limits, no logs): the least a Node authoriser behind Nginx costs per request on this machine.
 * `node --import tsx bench/lib/bare-auth.ts` with PORT and IDENTITY (JSON of the headers) set.
 * Not a product.
 */
import { createServer } from "node:http";

const identity = JSON.parse(process.env.IDENTITY ?? "{}") as Record<string, string>;

createServer((_req, res) => {
  res.writeHead(204, identity);
  res.end();
}).listen(Number(process.env.PORT), "127.0.0.1", () => process.stdout.write("listening\n"));
