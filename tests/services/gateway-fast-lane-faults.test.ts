/**
 * A fault of the fast lane's own while it handles an upstream's answer (a throw out of a parser
 * callback, a socket event or a timer) must end that request, not the gateway's process: session 59's
 * gateway bench ended the process with a TypeError thrown from an exchange's answer, inside the
 * upstream socket's 'data' event. The pool here is the lane's own (fast-lane/upstream-pool.ts), on a
 * real loopback upstream.
 */
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LaneListener } from "../../services/src/services/api-gateway/fast-lane/connections";
import { UpstreamPool } from "../../services/src/services/api-gateway/fast-lane/upstream-pool";
import { ConnectionBudgets } from "../../services/src/services/api-gateway/upstream-budget";
import type { Exchange, PooledAnswer } from "../../services/src/services/api-gateway/fast-lane/upstream-exchange";

let upstream: Server;
let base: URL;
/** The pool logs only a fault outside any request (none here): any line fails the test. */
const logged: unknown[] = [];
const log = { error: (...args: unknown[]) => void logged.push(args) } as never;

beforeAll(async () => {
  upstream = createServer((req, res) => res.end(`answer to ${req.url}`));
  upstream.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  base = new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

/** An exchange whose handling of the answer may throw; it records how it ended. */
function exchange(path: string, throwOnAnswer: boolean) {
  const ended: { answer?: PooledAnswer; broken?: unknown; failure?: Error } = {};
  let done!: () => void;
  const over = new Promise<void>((r) => (done = r));
  const x: Exchange = {
    head: Buffer.from(`GET ${path} HTTP/1.1\r\nhost: ${base.host}\r\n\r\n`),
    head_only: false,
    bodyTimeoutMs: 5_000,
    onAnswer(a) {
      ended.answer = a;
      if (throwOnAnswer) throw new TypeError("Cannot read properties of undefined (reading 'current')");
      done();
    },
    onStream() {
      throw new Error("no streamed answer expected");
    },
    onFailure(err) {
      ended.failure = err;
      done();
    },
    notSent(e) {
      ended.failure = e;
      done();
    },
    broken(err) {
      ended.broken = err;
      done();
    },
  };
  return { x, ended, over };
}

describe("fast lane: a fault of its own ends the request, not the process", () => {
  it("a throw out of an exchange's answer (inside the upstream socket's data event) is that exchange's broken(), and the pool serves the next request", async () => {
    const pool = new UpstreamPool({ connections: 1, keepAliveTimeoutMs: 30_000, answers: { add: () => undefined, answered: () => undefined, recent: () => false, budgets: new ConnectionBudgets(1) } as never, log });
    try {
      const faulty = exchange("/one", true);
      pool.send(base, faulty.x);
      await faulty.over;
      expect(faulty.ended.answer?.statusCode).toBe(200);
      expect((faulty.ended.broken as Error).message).toMatch(/reading 'current'/);
      // The one connection was closed with the fault (its parser may have been mid-answer): the next request gets a new one.
      const next = exchange("/two", false);
      pool.send(base, next.x);
      await next.over;
      expect(next.ended.failure).toBeUndefined();
      expect(next.ended.answer?.body.toString()).toBe("answer to /two");
      expect(logged).toEqual([]);
    } finally {
      pool.close();
    }
  });

  it("a throw out of a client read's handling (here the hand-over's count) closes that connection, logged, and the listener serves the next", async () => {
    const server = createServer((_req, res) => res.end("node:http's answer"));
    const faults: { message: string; outcome: string }[] = [];
    let throwOnHandOver = true;
    new LaneListener(
      server,
      () => "route", // every request declined: handed over to node:http
      () => false,
      (err, outcome) => void faults.push({ message: err.message, outcome }),
      () => {
        if (throwOnHandOver) throw new Error("a fault in the hand-over's count");
      },
      () => undefined,
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      // An incomplete head: handed over at its first read, whose count throws.
      const closed = await new Promise<string>((resolve) => {
        const c = connect(port, "127.0.0.1", () => c.write("GET /one HTTP/1.1\r\nhost: x\r\n"));
        let got = "";
        c.on("data", (d) => (got += d));
        c.on("close", () => resolve(got));
        c.on("error", () => undefined);
      });
      expect(closed).toBe("");
      expect(faults).toEqual([{ message: "a fault in the hand-over's count", outcome: "its connection closed" }]);
      throwOnHandOver = false;
      const answer = await fetch(`http://127.0.0.1:${port}/two`);
      expect(await answer.text()).toBe("node:http's answer");
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
