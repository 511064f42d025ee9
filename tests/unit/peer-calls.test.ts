/**
 * The kit's peer client (services/src/kit/peers.ts) against a local HTTP server: a silent peer is a
 * 504 UPSTREAM_TIMEOUT, a refused one a 502 UPSTREAM_UNAVAILABLE, one stalling mid-answer a 504 too
 * (its body read was outside the bound: a raw error, a 500); a call marked `cutOnClose` ends as a 503
 * SHUTTING_DOWN once its closing signal (the service's close plus PEER_CLOSE_GRACE_MS) aborts, one
 * not marked (a write) runs to its answer.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findService } from "../../services/src/catalog";
import { HttpError, PeerClient } from "../../services/src/kit";

let server: Server;
let url: string;
const held: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === "/stall") {
      // The head and half a body, then nothing.
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"half":');
      return;
    }
    if (req.url === "/slow") return void setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'), 300);
    held.push(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  for (const res of held) res.socket?.destroy();
  server.closeAllConnections();
  server.close();
});

const self = findService("ai-orchestrator")!;
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: HttpError) => ({ status: e.statusCode, code: e.code }));

describe("PeerClient.call", () => {
  it("a silent peer is a 504, a refused one a 502, one stalling mid-answer a 504 (not a raw error)", async () => {
    const peers = new PeerClient(self, { SERVICE_ML_PREDICTOR_URL: url });
    expect(await failure(peers.call("ml-predictor", "/held", { timeoutMs: 200 }))).toEqual({ status: 504, code: "UPSTREAM_TIMEOUT" });
    expect(await failure(peers.call("ml-predictor", "/stall", { timeoutMs: 200 }))).toEqual({ status: 504, code: "UPSTREAM_TIMEOUT" });
    const refused = new PeerClient(self, { SERVICE_ML_PREDICTOR_URL: "http://127.0.0.1:1" });
    expect(await failure(refused.call("ml-predictor", "/", { timeoutMs: 2_000 }))).toEqual({ status: 502, code: "UPSTREAM_UNAVAILABLE" });
  });

  it("cutOnClose: a 503 SHUTTING_DOWN once the closing signal aborts, at once when it already has; a call not marked runs to its answer", async () => {
    const closing = new AbortController();
    const peers = new PeerClient(self, { SERVICE_ML_PREDICTOR_URL: url }, closing.signal);
    const cut = failure(peers.call("ml-predictor", "/held", { timeoutMs: 60_000, cutOnClose: true }));
    const write = peers.call<{ ok: boolean }>("ml-predictor", "/slow", { method: "POST", body: {}, timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    closing.abort();
    expect(await cut).toEqual({ status: 503, code: "SHUTTING_DOWN" });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect((await write).body).toEqual({ ok: true });
    expect(await failure(peers.call("ml-predictor", "/held", { cutOnClose: true }))).toEqual({ status: 503, code: "SHUTTING_DOWN" });
  });
});
