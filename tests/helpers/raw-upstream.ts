/**
 * A stand-in upstream written byte for byte (node:net, no HTTP library), for the gateway tests that
 * check how it takes an upstream's malformed or unusual answers (tests/hostile/session-54.test.ts,
 * tests/services/gateway-fast-lane-upstream-answers.test.ts).
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";

/**
 * A stand-in upstream written byte for byte: each request head answered by `answers[path]` (else a
 * small 200), told how many requests its connection carried before it.
 */
export async function rawUpstream(answers: Record<string, (s: Socket, before: number) => void>): Promise<{ url: string; server: NetServer }> {
  const server = createNetServer((s) => {
    let buf = "";
    let carried = 0;
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const path = buf.slice(0, end).split(" ")[1].slice(1).split("?")[0];
        buf = buf.slice(end + 4);
        const answer = answers[path];
        const before = carried++;
        if (answer) answer(s, before);
        else s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}
