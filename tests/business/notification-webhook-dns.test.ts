/**
 * Webhook hosts are names a user chooses (session 40's outbound-request hunt). notification-service
 * runs as in production (NOTIFY_WEBHOOK_ALLOW_PRIVATE=false: https to public addresses only) on real
 * PostgreSQL, Kafka and Redis, its webhook hosts resolved by a name server on loopback that the test
 * controls (tests/fakes/dns.ts, given as NOTIFY_WEBHOOK_DNS_SERVERS): names answering 127.0.0.1,
 * 169.254.169.254, ::1 or fd00:ec2::254 are refused on the address resolved for the connection
 * (the registration resolves nothing: a name may change), a name answering a public address and then
 * a private one is refused the second time, and a name server that never answers costs a delivery its
 * own timeout, no thread of the pool. Before, names went to getaddrinfo (the system's resolver, on
 * libuv's four threads, kept busy after the delivery gave up) and the variable did not exist.
 */
import { pbkdf2 } from "node:crypto";
import { randomUUID } from "node:crypto";
import type { LookupAddress } from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService } from "../../services/src/kit";
import { publicOnlyLookup } from "../../services/src/kit/public-egress";
import notificationService from "../../services/src/services/notification-service";
import { webhookChannel } from "../../services/src/services/notification-service/channels";
import { FakeDns } from "../fakes/dns";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const dns = new FakeDns();
// Registered before the rig's, so the name server is up (and its address known) when the service starts.
beforeAll(() => dns.start());
afterAll(() => dns.stop());
// Four webhooks of one user get one notice each: above the rig's rate limit of 3 a user and channel.
const rig = useNotificationRig(() => ({ NOTIFY_WEBHOOK_ALLOW_PRIVATE: "false", NOTIFY_WEBHOOK_DNS_SERVERS: dns.server, NOTIFY_RATE_LIMIT_MAX: "10", NOTIFY_WEBHOOK_PORTS: "443,8443" }));

const notice = { dedupKey: "d", kind: "fill", at: new Date().toISOString(), data: {} } as never;

describe("notification-service webhook hosts (resolved by a name server the test controls)", () => {
  // Session 40's outbound-request hunt: any public port was taken (a TLS hello and a signed POST to host:22 or :25).
  it("registration takes only the ports of NOTIFY_WEBHOOK_PORTS (443 and, here, 8443): any other is a 400 naming url", async () => {
    const u = await rig.user({});
    for (const port of ["22", "25", "80", "8080", "65535"]) {
      const r = await rig.api("POST", "/webhooks", u.id, { url: `https://hooks.example.com:${port}/h` });
      expect([port, r.status, r.body.error.field, r.body.error.message]).toEqual([port, 400, "url", "url must use port 443 or 8443"]);
    }
    for (const url of ["https://hooks.example.com/h", "https://hooks.example.com:443/h", "https://hooks.example.com:8443/h"]) expect((await rig.api("POST", "/webhooks", u.id, { url })).status, url).toBe(201);
  });

  it("a host whose name resolves to a loopback, metadata or unique-local address is refused where it connects: dead at once", async () => {
    const inside = { "inside.hooks.test": { a: ["127.0.0.1"] }, "metadata.hooks.test": { a: ["169.254.169.254"] }, "v6.hooks.test": { aaaa: ["::1"] }, "ula.hooks.test": { aaaa: ["fd00:ec2::254"] } };
    for (const [name, answers] of Object.entries(inside)) dns.names.set(name, answers);
    const u = await rig.user({});
    for (const name of Object.keys(inside)) expect((await rig.api("POST", "/webhooks", u.id, { url: `https://${name}/hook` })).status).toBe(201);
    const orderId = `ord-${randomUUID()}`;
    await rig.publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const ds = await waitUntil("four webhook deliveries that ended", async () => {
      const d = (await rig.deliveries(u.id)).filter((x) => x.channel === "webhook" && x.status !== "pending");
      return d.length === 4 ? d : undefined;
    }, 90_000);
    // Before: the system's resolver (which knows none of these names) answered ENOTFOUND, retried 3 times.
    expect(ds.map((d) => [d.status, d.attempts, d.lastError])).toEqual(Array(4).fill(["dead", 1, "webhook: EBLOCKED"]));
    const asked = new Set(dns.questions.map((q) => q.name));
    for (const name of Object.keys(inside)) expect(asked.has(name), name).toBe(true);
  }, 120_000);

  it("a name server that never answers costs the delivery its own timeout (retried), and no thread of the pool", async () => {
    dns.silent.add("silent.hooks.test");
    const channel = webhookChannel({ timeoutMs: 1_500, allowPrivate: false, dnsServers: [dns.server] });
    let settled = 0;
    const sends = Array.from({ length: 8 }, () => channel.send("https://silent.hooks.test/hook", "whsec_x", notice).finally(() => settled++));
    // Eight lookups in flight; the pool's four threads still take work (getaddrinfo held one each).
    await Promise.all(Array.from({ length: 4 }, () => new Promise<void>((res, rej) => pbkdf2("p", "s", 1_000, 32, "sha256", (e) => (e ? rej(e) : res())))));
    expect(settled).toBe(0);
    for (const r of await Promise.allSettled(sends)) {
      expect(r.status).toBe("rejected");
      const err = (r as PromiseRejectedResult).reason as { message: string; permanent: boolean };
      // What the name server did is the operator's to read (detail); the user reads one text for every network failure.
      expect(err.message).toBe("webhook: endpoint unreachable");
      expect(err.permanent).toBe(false);
    }
    expect(dns.questions.some((q) => q.name === "silent.hooks.test")).toBe(true);
  });

  it("the lookup refuses a name with any non-public address, and asks again for each connection (rebinding)", async () => {
    const lookup = publicOnlyLookup({ servers: [dns.server], timeoutMs: 2_000 });
    const resolve = (name: string, family = 0) =>
      new Promise<{ list?: LookupAddress[]; code?: string }>((res) => lookup(name, { all: true, family }, (err, list) => res(err ? { code: (err as NodeJS.ErrnoException).code } : { list: list as LookupAddress[] })));
    // Documentation and public addresses: nothing connects to them here, the lookup is called alone.
    dns.names.set("public.hooks.test", { a: ["93.184.216.34"], aaaa: ["2606:2800:220:1::1"] });
    dns.names.set("mixed-a.hooks.test", { a: ["93.184.216.34", "10.0.0.7"] });
    dns.names.set("mixed-families.hooks.test", { a: ["93.184.216.34"], aaaa: ["::ffff:127.0.0.1"] });
    dns.names.set("rebind.hooks.test", [{ a: ["93.184.216.34"] }, { a: ["127.0.0.1"] }]);
    expect((await resolve("public.hooks.test")).list).toEqual([{ address: "93.184.216.34", family: 4 }, { address: "2606:2800:220:1::1", family: 6 }]);
    expect((await resolve("public.hooks.test", 6)).list).toEqual([{ address: "2606:2800:220:1::1", family: 6 }]);
    expect(await resolve("mixed-a.hooks.test")).toEqual({ code: "EBLOCKED" });
    expect(await resolve("mixed-families.hooks.test")).toEqual({ code: "EBLOCKED" });
    // Only the A record asked for, the AAAA one is not: still refused when it is asked for.
    expect((await resolve("mixed-families.hooks.test", 4)).list).toEqual([{ address: "93.184.216.34", family: 4 }]);
    expect((await resolve("rebind.hooks.test")).list).toEqual([{ address: "93.184.216.34", family: 4 }]);
    expect(await resolve("rebind.hooks.test")).toEqual({ code: "EBLOCKED" });
    expect(await resolve("unknown.hooks.test")).toEqual({ code: "ENOTFOUND" });
  });

  it("refuses a name server list that is no list of addresses, naming NOTIFY_WEBHOOK_DNS_SERVERS", async () => {
    await expect(createService(notificationService, { env: { ...rig.env, NOTIFY_WEBHOOK_DNS_SERVERS: "dns.example.com" }, defaultMetrics: false })).rejects.toThrow(/NOTIFY_WEBHOOK_DNS_SERVERS/);
  });
});
