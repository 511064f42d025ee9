/**
 * For tests that put a node:http server of their own between services (a gate holding a request, a
 * peer's stand-in): listening on a free loopback port, and reading a request's whole body.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll } from "vitest";
import type { AddressInfo } from "node:net";

/** Starts `server` on a free loopback port; answers its base URL. */
export const listen = (server: Server): Promise<string> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));

/** The request's body, whole. */
export async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stand-in peer that never answers (held.url: the request's path; held.res: its answer, never ended). */
export interface HoldingStandIn {
  /** Its base URL (set in beforeAll). */
  readonly url: string;
  /** The requests it received, in order, held unanswered. */
  readonly held: Array<{ url: string; res: ServerResponse }>;
}

/** A stand-in holding every request it gets, started in beforeAll, its connections cut in afterAll. */
export function useHoldingStandIn(): HoldingStandIn {
  const held: HoldingStandIn["held"] = [];
  let server: Server | undefined;
  let url = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      held.push({ url: req.url ?? "", res });
    });
    url = await listen(server);
  });
  afterAll(() => {
    for (const h of held) h.res.socket?.destroy();
    server?.close();
  });
  return {
    get url() {
      return url;
    },
    held,
  };
}
