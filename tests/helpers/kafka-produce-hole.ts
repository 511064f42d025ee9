/**
 * A Kafka broker whose Produce requests go unanswered: a node:net proxy in front of the harness's real
 * broker that passes every request and answer through (so a client connects, handshakes and reads
 * metadata as usual) until a connection writes a Produce request, which it swallows, with every later
 * byte of that connection. What a client sees is a broker hung after it took the request: the message
 * may or may not be on the topic. Connect through it with `socketFactory` (it ignores the host and
 * port a client asks for: the leader's address in the metadata would bypass the proxy).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { KafkaJs } from "../harness/deps";

type ISocketFactory = KafkaJs.ISocketFactory;

export interface ProduceHole {
  socketFactory: ISocketFactory;
  /** Produce requests swallowed so far. */
  swallowed(): number;
  close(): Promise<void>;
}

export async function produceHole(broker: string): Promise<ProduceHole> {
  const [host, port] = [broker.slice(0, broker.lastIndexOf(":")), Number(broker.slice(broker.lastIndexOf(":") + 1))];
  const sockets = new Set<Socket>();
  let swallowed = 0;
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => (client.destroy(), upstream.destroy()));
    }
    let pending = Buffer.alloc(0);
    let hung = false;
    client.on("data", (chunk: Buffer) => {
      if (hung) return;
      pending = Buffer.concat([pending, chunk]);
      // Whole frames (a 4-byte size, then the request: its API key first) pass until a Produce (key 0).
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
        pending = pending.subarray(frame.length);
        if (frame.length >= 6 && frame.readInt16BE(4) === 0) {
          swallowed++;
          hung = true;
          return;
        }
        upstream.write(frame);
      }
    });
    upstream.on("data", (chunk: Buffer) => void (hung || client.write(chunk)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proxyPort = (server.address() as { port: number }).port;
  return {
    socketFactory: ({ onConnect }) => connect({ host: "127.0.0.1", port: proxyPort }, onConnect),
    swallowed: () => swallowed,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
