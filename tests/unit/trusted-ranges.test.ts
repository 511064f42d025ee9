/**
 * Session 63's leftovers of the trusted-proxy ranges, judged alike by the stack config (trustedProxies,
 * dockerSubnet) and the service kit (TRUST_PROXY) through catalog/addresses.ts: a CIDR whose address has
 * bits set past its prefix (10.0.0.1/16, which proxy-addr and Docker read as 10.0.0.0/16 without a word)
 * is refused with the network spelled out, and the kit refuses a range listed twice as the stack does.
 */
import { describe, expect, it } from "vitest";
import { hostBitsNetwork, repeatedProxyRange } from "../../catalog/addresses";
import { ConfigError } from "../../services/src/kit";
import { findService } from "../../services/src/catalog";
import { parseTrustProxy } from "../../services/src/kit/request-guards";
import { loadServiceConfig } from "../../services/src/kit/service-config";
import { parseStackConfig } from "../../stacks/config";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

const prefix = (key: string, stack: string) => `Invalid configuration trading:${key} on stack '${stack}': `;

describe("catalog/addresses.ts hostBitsNetwork, repeatedProxyRange", () => {
  it("names the network of a CIDR with host bits, in IPv6's canonical spelling, and nothing for a network or an address", () => {
    expect(hostBitsNetwork("10.0.0.1/16")).toBe("10.0.0.0/16");
    expect(hostBitsNetwork("172.28.0.255/25")).toBe("172.28.0.128/25");
    expect(hostBitsNetwork("fd00:10:0:FFFF::/48")).toBe("fd00:10::/48");
    expect(hostBitsNetwork("fe80::1/64")).toBe("fe80::/64");
    for (const none of ["10.0.0.0/16", "10.0.0.1/32", "10.0.0.1", "FD00:10:0::/48", "::1", "::1/128", "172.28.0.128/25"]) expect(hostBitsNetwork(none), none).toBeUndefined();
  });

  it("finds two spellings of one range, not a narrower range inside a wider one", () => {
    expect(repeatedProxyRange(["10.0.0.0/16", "10.0.0.1/16"])).toEqual(["10.0.0.0/16", "10.0.0.1/16"]);
    expect(repeatedProxyRange(["fd00:10::/48", "FD00:10:0::/48"])).toEqual(["fd00:10::/48", "FD00:10:0::/48"]);
    expect(repeatedProxyRange(["10.0.0.5", "10.0.0.5/32"])).toEqual(["10.0.0.5", "10.0.0.5/32"]);
    expect(repeatedProxyRange(["10.0.0.0/16", "10.0.0.0/24", "::", "0.0.0.0"])).toBeUndefined();
  });
});

describe("stack config: a CIDR with bits set past its prefix", () => {
  it("is refused in trustedProxies, naming the network and the host (before: 10.244.7.1/16 was taken, trusting all of 10.244.0.0/16)", () => {
    for (const [v, entry, network] of [
      ["10.244.7.1/16", "10.244.7.1/16", "10.244.0.0/16"],
      ["10.244.0.5, 172.28.0.1/24", "172.28.0.1/24", "172.28.0.0/24"],
      ["fd00:10:0:ffff::/48", "fd00:10:0:ffff::/48", "fd00:10::/48"],
    ]) {
      const e = error("prod", { ...k8s, trustedProxies: v });
      expect(e.key, v).toBe("trustedProxies");
      expect(e.message, v).toBe(
        `${prefix("trustedProxies", "prod")}'${entry}' has address bits set past its /${entry.split("/")[1]} prefix, which are ignored: it is the network ${network}; write ${network} (or ${entry.split("/")[0]} alone, for the one host)`,
      );
    }
  });

  it("is refused in dockerSubnet, naming the network (before: 172.28.0.1/24 was taken, and the gateway's default TRUST_PROXY)", () => {
    const e = error("dev", { ...docker, dockerSubnet: "172.28.0.1/24" });
    expect(e.key).toBe("dockerSubnet");
    expect(e.message).toBe(`${prefix("dockerSubnet", "dev")}'172.28.0.1/24' has address bits set past its /24 prefix, which are ignored: it is the network 172.28.0.0/24; write 172.28.0.0/24`);
  });

  it("keeps networks and single addresses", () => {
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: "10.244.0.0/16, 10.0.0.1, 10.0.0.2/32, fd00:10::/48" }).trustedProxies).toBe("10.244.0.0/16, 10.0.0.1, 10.0.0.2/32, fd00:10::/48");
    expect(parseStackConfig("dev", { ...docker, dockerSubnet: "172.28.0.128/25" }).trustedProxies).toBe("172.28.0.128/25");
  });
});

describe("service kit TRUST_PROXY: host bits and repeats, the stack config's rules", () => {
  it("refuses a CIDR with bits set past its prefix, naming the network (before: taken, 10.0.0.1/16 trusting 10.0.0.0/16)", () => {
    expect(() => parseTrustProxy("10.0.0.1/16, 10.244.0.0/16, fd00:10:0:ffff::/48")).toThrow(
      'has entries with address bits set past the prefix, which are ignored "10.0.0.1/16" (write 10.0.0.0/16, or 10.0.0.1 alone for the one host), "fd00:10:0:ffff::/48" (write fd00:10::/48, or fd00:10:0:ffff:: alone for the one host)',
    );
  });

  it("refuses a range listed twice, as written or in another spelling, and a named range twice (before: taken)", () => {
    expect(() => parseTrustProxy("10.244.0.0/16, 10.244.0.0/16")).toThrow('lists "10.244.0.0/16" twice: give each range once');
    expect(() => parseTrustProxy("172.28.0.2, 172.28.0.2/32")).toThrow('lists "172.28.0.2" and "172.28.0.2/32", the same range to proxy-addr');
    expect(() => parseTrustProxy("fd00:10::/48, FD00:10:0::/48")).toThrow('lists "fd00:10::/48" and "FD00:10:0::/48", the same range to proxy-addr');
    expect(() => parseTrustProxy("::1, 0:0:0:0:0:0:0:1/128")).toThrow('lists "::1" and "0:0:0:0:0:0:0:1/128", the same range to proxy-addr');
    expect(() => parseTrustProxy("loopback, 10.244.0.0/16, loopback")).toThrow('lists "loopback" twice: give each range once');
  });

  it("keeps nested ranges and loopback beside 127.0.0.1 (a narrower range inside a wider one is no repeat)", () => {
    expect(parseTrustProxy("10.244.0.0/16, 10.244.0.0/24, loopback, 127.0.0.1, ::1")).toEqual(["10.244.0.0/16", "10.244.0.0/24", "loopback", "127.0.0.1", "::1"]);
  });

  it("is a ConfigError naming TRUST_PROXY at a service's start", () => {
    const hub = findService("central-hub")!;
    const env = { DRAGONFLY_URL: "redis://dragonfly:6379" };
    for (const v of ["10.0.0.1/16", "10.0.0.0/16,10.0.0.0/16"]) {
      let thrown: unknown;
      try {
        loadServiceConfig(hub, {}, { ...env, TRUST_PROXY: v });
      } catch (e) {
        thrown = e;
      }
      expect(thrown, v).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message, v).toMatch(/^Invalid configuration of central-hub: TRUST_PROXY /);
    }
  });
});
