/** kit addressBucketOf: what client addresses share a rate-limit and lockout bucket (session 40's entry-point hunt). */
import { describe, expect, it } from "vitest";
import { addressBucketOf, siteBucketOf } from "../../services/src/kit/address-bucket";

describe("addressBucketOf", () => {
  it("keeps IPv4 addresses and anything that is no address as they are", () => {
    expect(addressBucketOf("198.51.100.7")).toBe("198.51.100.7");
    expect(addressBucketOf("not-an-address")).toBe("not-an-address");
  });

  it("counts an IPv6 address by its /64, however it is spelled", () => {
    const one = addressBucketOf("2001:db8:1:2::1");
    expect(one).toBe("2001:db8:1:2::/64");
    for (const same of ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:0db8:0001:0002:0:0:0:9", "2001:DB8:1:2::abcd", "2001:db8:1:2::1%eth0", "2001:db8:1:2:0:0:1.2.3.4"]) expect(addressBucketOf(same), same).toBe(one);
    expect(addressBucketOf("2001:db8:1:3::1")).not.toBe(one);
    expect(addressBucketOf("::1")).toBe("0:0:0:0::/64");
    expect(addressBucketOf("fe80::1")).toBe("fe80:0:0:0::/64");
  });

  it("an IPv4-mapped address is its IPv4 address", () => {
    expect(addressBucketOf("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressBucketOf("::ffff:c633:6407")).toBe("198.51.100.7");
    expect(addressBucketOf("0:0:0:0:0:ffff:198.51.100.7")).toBe("198.51.100.7");
  });
});

describe("siteBucketOf (session 41)", () => {
  it("names the /48 of an IPv6 address, however it is spelled; nothing for IPv4 or IPv4-mapped addresses", () => {
    expect(siteBucketOf("2001:db8:1:2::1")).toBe("2001:db8:1::/48");
    for (const same of ["2001:db8:1:ffff::1", "2001:0db8:0001:0100::9", "2001:DB8:1::abcd", "2001:db8:1:2::1%eth0"]) expect(siteBucketOf(same), same).toBe("2001:db8:1::/48");
    expect(siteBucketOf("2001:db8:2:2::1")).toBe("2001:db8:2::/48");
    expect(siteBucketOf("198.51.100.7")).toBeUndefined();
    expect(siteBucketOf("::ffff:198.51.100.7")).toBeUndefined();
    expect(siteBucketOf("not-an-address")).toBeUndefined();
  });
});
