/**
 * A name server on loopback (UDP, RFC 1035's wire format, the subset a stub resolver asks): A and
 * AAAA questions answered from a table the test fills, with TTL 0 so nothing is cached; a name may
 * answer differently on each query (a rebinding name) or never answer at all (a silent name server);
 * an unknown name is NXDOMAIN. Every question is recorded.
 */
import { createSocket, type Socket } from "node:dgram";
import { isIPv4, type AddressInfo } from "node:net";

type Answers = { a?: string[]; aaaa?: string[] };

export class FakeDns {
  /** Each name's answers; a list of them is served one per query, the last one from then on. */
  readonly names = new Map<string, Answers | Answers[]>();
  /** Names whose questions are never answered. */
  readonly silent = new Set<string>();
  readonly questions: { name: string; type: "A" | "AAAA" | number }[] = [];
  private socket?: Socket;
  private served = new Map<string, number>();
  server = "";

  async start(): Promise<void> {
    this.socket = createSocket("udp4");
    this.socket.on("message", (msg, from) => {
      const reply = this.answer(msg);
      if (reply) this.socket!.send(reply, from.port, from.address);
    });
    await new Promise<void>((r) => this.socket!.bind(0, "127.0.0.1", () => r()));
    this.server = `127.0.0.1:${(this.socket.address() as AddressInfo).port}`;
  }

  stop = () => new Promise<void>((r) => (this.socket ? this.socket.close(() => r()) : r()));

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 17) return undefined;
    const labels: string[] = [];
    let at = 12;
    while (at < msg.length && msg[at] !== 0) {
      labels.push(msg.subarray(at + 1, at + 1 + msg[at]).toString("ascii"));
      at += 1 + msg[at];
    }
    const questionEnd = at + 5; // the root label, QTYPE, QCLASS
    const qtype = msg.readUInt16BE(at + 1);
    const name = labels.join(".").toLowerCase();
    this.questions.push({ name, type: qtype === 1 ? "A" : qtype === 28 ? "AAAA" : qtype });
    if (this.silent.has(name)) return undefined;
    const entry = this.names.get(name);
    let answers: Answers | undefined;
    if (Array.isArray(entry)) {
      const n = this.served.get(`${name}/${qtype}`) ?? 0;
      this.served.set(`${name}/${qtype}`, n + 1);
      answers = entry[Math.min(n, entry.length - 1)];
    } else answers = entry;
    const addresses = qtype === 1 ? (answers?.a ?? []) : qtype === 28 ? (answers?.aaaa ?? []) : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // the query's id
    header.writeUInt16BE(answers ? 0x8180 : 0x8183, 2); // a response, recursion available; NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const records = addresses.map((address) => {
      const rdata = addressBytes(address);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(qtype, 2);
      rr.writeUInt16BE(1, 4); // class IN
      rr.writeUInt32BE(0, 6); // TTL 0: asked again every time
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
    return Buffer.concat([header, msg.subarray(12, questionEnd), ...records]);
  }
}

/** An address's bytes (IPv4 dotted, or IPv6 in hex groups with at most one "::"). */
function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split(".").map(Number));
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
