/** The kit's request guards: the JSON body pre-check never lets unstorable text through; TRUST_PROXY never trusts every client. */
import { describe, expect, it } from "vitest";
import { findNonFiniteNumber, findUnstorableText, inexactNumberPaths, jsonDepthExceeds, jsonTextFacts, mayHoldUnstorableText, parseTrustProxy } from "../../services/src/kit/request-guards";
import { TRUSTED_PROXY_MIN_PREFIX } from "../../catalog/addresses";
import { parseStackConfig } from "../../stacks/config";
import { loadServiceConfig } from "../../services/src/kit/service-config";
import { findService } from "../../services/src/catalog";
import { dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

describe("mayHoldUnstorableText", () => {
  const bodies = [
    String.raw`{"a":"\u0000"}`,
    String.raw`{"\u0000":1}`,
    String.raw`{"a":["x",{"b":"\ud800"}]}`,
    String.raw`{"a":"\udc00x"}`,
    String.raw`{"a":"\u00e9 \ud83d\ude00"}`,
    String.raw`{"a":"\\u0000"}`,
    '{"a":"\ud83d\ude00"}',
    '{"bars":[{"symbol":"BTCUSDT","open":"100.5"}]}',
    '{"a":"caf\u00e9","n":[1,2.5,null,true]}',
  ];
  it("is true for every body whose parsed value holds NUL or a lone surrogate", () => {
    for (const text of bodies) if (findUnstorableText(JSON.parse(text))) expect(mayHoldUnstorableText(text), text).toBe(true);
  });
  it("is false for plain bodies, so they skip the walk", () => {
    expect(mayHoldUnstorableText('{"bars":[{"symbol":"BTCUSDT","open":"100.5"}]}')).toBe(false);
    expect(mayHoldUnstorableText('{"a":"caf\u00e9"}')).toBe(false);
  });
});

describe("jsonDepthExceeds", () => {
  /** The depth JSON.parse finds, walking the parsed value. */
  const depthOf = (v: unknown): number => (v !== null && typeof v === "object" ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
  it("counts nesting outside strings only, whatever the escapes inside them", () => {
    const texts = [
      "[[[1]]]",
      '{"a":{"b":[1,{"c":2}]}}',
      JSON.stringify(["[[[[", "{{{{"]),
      JSON.stringify([["a\\"], [['\\"[[[']]]),
      JSON.stringify({ 'k"[[': [["\\\\"]] }),
      '["\\u005b\\"", [[[]]]]',
      JSON.stringify({ bars: [{ symbol: 'A]\\"[', open: "1" }], s: "\\" }),
      "[".repeat(70) + "]".repeat(70),
    ];
    for (const t of texts) {
      const depth = depthOf(JSON.parse(t));
      for (const limit of [depth - 1, depth]) expect(jsonDepthExceeds(t, limit), `${t.slice(0, 40)} limit ${limit}`).toBe(depth > limit);
    }
  });
});

describe("jsonTextFacts.mayOverflow", () => {
  const overflowing = [
    "1e309",
    "-1e999",
    "[1E+400]",
    '{"a":{"b":[1,2.5e0309]}}',
    `{"big":${"9".repeat(309)}}`,
    `[true,false,null,-${"1".repeat(400)}.5]`,
    '{"e":1,"x":1e3000}',
  ];
  it("is true for every text whose parsed value holds a number beyond the range of a double", () => {
    for (const t of overflowing) {
      expect(findNonFiniteNumber(JSON.parse(t)), t.slice(0, 40)).toBeDefined();
      expect(jsonTextFacts(t, 64).mayOverflow, t.slice(0, 40)).toBe(true);
    }
  });
  it("is false for plain bodies (so they skip the walk), whatever digits their strings hold", () => {
    const plain = [
      '{"bars":[{"symbol":"BTCUSDT","openTime":1577836800000,"closeTime":1577836859999,"open":"100.5","volume":"1e999"}]}',
      JSON.stringify({ s: "9".repeat(400), e: "1e309", t: true, f: false, n: [1e30, 1.5e-30, -0.25] }),
      '{"series":[{"symbol":"A","interval":"1m","bars":[[1577836800000,1577836859999,"1","2","0.5","1.5","10"]]}]}',
    ];
    for (const t of plain) {
      expect(findNonFiniteNumber(JSON.parse(t)), t.slice(0, 40)).toBeUndefined();
      expect(jsonTextFacts(t, 64).mayOverflow, t.slice(0, 40)).toBe(false);
    }
  });
});

describe("jsonTextFacts.inexactNumbers", () => {
  /** What JSON.parse makes of each number literal in a text, found by a reviver (no source text in Node 20). */
  const numbersOf = (t: string): number[] => {
    const out: number[] = [];
    JSON.parse(t, (_k, v) => (typeof v === "number" && out.push(v), v));
    return out;
  };
  it("holds the magnitude of every integer literal beyond Number.MAX_SAFE_INTEGER and every literal of more than 17 significant digits, as JSON.parse reads it", () => {
    for (const [t, found] of [
      ["9007199254740992", [2 ** 53]],
      ["[9007199254740993]", [2 ** 53]],
      ['{"a":{"b":[1,-12345678901234567890]}}', [12345678901234567000]],
      [`{"x":${"9".repeat(308)}}`, [Number("9".repeat(308))]],
      ['{"a":9007199254740993,"b":-9007199254740995}', [2 ** 53, 2 ** 53 + 4]],
      // More than 17 significant digits, fraction or exponent alike: a decimal no double holds.
      ['{"b":12345678901234567890e0,"c":-1.2345678901234567890}', [12345678901234567000, 1.2345678901234567]],
      ['[1.00000000000000000001,0.1000000000000000055511151231257827021181583404541015625]', [1, 0.1]],
      [`[100.${"0".repeat(40)}1]`, [100]],
    ] as const) {
      expect([...(jsonTextFacts(t, 64).inexactNumbers ?? [])], t).toEqual(found);
      for (const n of found) expect(numbersOf(t).map(Math.abs), t).toContain(n);
    }
  });
  it("is undefined for safe integers, fractions and exponents of 17 significant digits or fewer (zeros at either end do not count), and digits inside strings", () => {
    for (const t of [
      "9007199254740991",
      "[-9007199254740991,1577836800000]",
      '{"a":9007199254740993.5,"b":12345678901234567e3,"c":1.2345678901234567000,"d":1e21,"e":0.00000000000000000001,"f":0.30000000000000004}',
      `[1.5${"0".repeat(40)},0.${"0".repeat(400)}12345678901234567e400,4.9406564584124654e-324]`,
      JSON.stringify({ s: "9007199254740993", k: { "12345678901234567890": 1 } }),
      '{"bars":[{"symbol":"BTCUSDT","openTime":1577836800000,"open":"100.5"}]}',
    ]) {
      expect(jsonTextFacts(t, 64).inexactNumbers, t).toBeUndefined();
      expect(jsonTextFacts(t, 64).inexactPath, t).toBeUndefined();
    }
  });
  it("holds 0 for a non-zero literal below the smallest double (1e-400 parses to 0: it was taken as 0, session 51), not for zero itself nor the subnormals a serialiser writes", () => {
    for (const t of ['{"a":1e-400}', "[-2.5E-999]", '{"x":{"y":[0,1e-324]}}', `[0.${"0".repeat(330)}1]`, "[1.5e-1000000]"]) {
      expect([...(jsonTextFacts(t, 64).inexactNumbers ?? [])], t).toEqual([0]);
    }
    expect(jsonTextFacts('{"a":[1,{"b":1e-400}]}', 64).inexactPath).toEqual(["a", "1", "b"]);
    for (const t of ["[0e-400,0.0E+999,-0.000e-500]", "[5e-324,4.9406564584124654e-324,2.2250738585072014e-308,1e-320]", "[1e-300,1e100]"]) {
      expect(jsonTextFacts(t, 64).inexactNumbers, t).toBeUndefined();
    }
  });
  it("names where the first inexact literal is written, not another field of the same value (session 50: {quantity: 1, price: 1.000...1} named quantity)", () => {
    for (const [t, path] of [
      ["9007199254740993", []],
      [`{"a:b":[0,{"c\\u0022":"x","d":9007199254740993}]}`, ["a:b", "1", "d"]],
      ['{"quantity":1,"price":1.00000000000000000001}', ["price"]],
      ['{"amount":100,"ts":100.000000000000000000001}', ["ts"]],
      ['{"a":[1,2,{"b":9007199254740993}]}', ["a", "2", "b"]],
      ['[[1,2],[3,"x,y",9007199254740993]]', ["1", "2"]],
      ['{"a":{"b":1,"c":[]},"d":[{"e":0},{"f":12345678901234567890}]}', ["d", "1", "f"]],
      [String.raw`{"k\"x":[0,12345678901234567890],"z":9007199254740995}`, ['k"x', "1"]],
      ['{ "s" : "9007199254740993" , "n" : [ 0 , -9007199254740993 ] }', ["n", "1"]],
      // A key given twice: the literal is named where written, even when the last value wins.
      ['{"q":9007199254740993,"q":1}', ["q"]],
    ] as const) {
      expect(jsonTextFacts(t, 64).inexactPath, t).toEqual(path);
      expect(inexactNumberPaths(t)[0], t).toEqual(path);
    }
  });
  it("inexactNumberPaths names every inexact literal, in order, in one scan (a Kafka batch's bars are refused one by one)", () => {
    expect(inexactNumberPaths('{"v":2,"bars":[[1,2,"3"],[9007199254740993,"x]",1.00000000000000000001],[0],[12345678901234567890]]}')).toEqual([
      ["bars", "1", "0"],
      ["bars", "1", "2"],
      ["bars", "3", "0"],
    ]);
    expect(inexactNumberPaths('{"a":1,"b":[2.5,"9007199254740993"]}')).toEqual([]);
    // A text JSON.parse refuses (an unterminated string): each literal still has a path, however short.
    expect(inexactNumberPaths('[9007199254740993,"abc')).toEqual([["0"]]);
  });
});

describe("parseTrustProxy", () => {
  it("refuses IPv4-mapped IPv6 entries in every spelling: proxy-addr applies ::ffff:0.0.0.0/96 to IPv4 clients as 0.0.0.0/0", () => {
    for (const v of ["::ffff:0.0.0.0/96", "::ffff:0:0/96", "0:0:0:0:0:FFFF:0:0/96", "::FFFF:10.0.0.0/104", "10.0.0.5,::ffff:172.18.0.1"]) {
      expect(() => parseTrustProxy(v), v).toThrow(/IPv4-mapped IPv6 entries .*write them as IPv4/);
    }
  });
  it("keeps plain IPv4 and IPv6 entries, CIDRs of /16 (IPv4) or /48 (IPv6) or narrower and loopback", () => {
    expect(parseTrustProxy("10.244.0.0/16, fd00:10::/48,loopback, 172.28.0.2, ::1")).toEqual(["10.244.0.0/16", "fd00:10::/48", "loopback", "172.28.0.2", "::1"]);
    // ::ffff:0 is no IPv4-mapped address (that is ::ffff:0:0/96) but the reserved ::/8: refused as no unicast range since session 51.
    expect(() => parseTrustProxy("::ffff:0/128")).toThrow(/no unicast range .*"::ffff:0\/128"/);
    expect(() => parseTrustProxy("10.0.0.0/33")).toThrow(/invalid entries "10.0.0.0\/33"/);
    expect(parseTrustProxy(" ")).toBeUndefined();
  });
  it("refuses entries wider than the edge proxy, the stack config's bound (session 42): IPv4 wider than /16, IPv6 wider than /48, the wide named ranges", () => {
    // Before: the kit took an IPv4 /8 and any IPv6 /16, while the stack config refused them.
    for (const [v, wide] of [["10.0.0.0/8", "10.0.0.0/8"], ["10.244.0.5, 172.16.0.0/12", "172.16.0.0/12"], ["100.64.0.0/15", "100.64.0.0/15"], ["fd00::/16", "fd00::/16"], ["2001:db8::/47", "2001:db8::/47"], ["0.0.0.0/0", "0.0.0.0/0"], ["::/0", "::/0"], ["uniquelocal", "uniquelocal"], ["10.0.0.1, linklocal", "linklocal"]]) {
      expect(() => parseTrustProxy(v), v).toThrow(`has entries wider than the edge proxy (at most /16 for IPv4, /48 for IPv6) "${wide}"`);
    }
  });
  it("refuses public, link-local and non-unicast IPv4 entries (session 50), the stack config's rule (catalog/addresses.ts nonProxyIPv4)", () => {
    expect(() => parseTrustProxy("10.244.0.0/16, 8.8.0.0/16, 169.254.169.254")).toThrow(
      `has entries outside the edge proxy's ranges (10/8, 172.16/12, 192.168/16, 100.64/10 or loopback) "8.8.0.0/16" (public), "169.254.169.254" (link-local (the cloud metadata service's range)): every host there could set X-Forwarded-For`,
    );
    for (const v of ["203.0.113.7", "172.15.0.0/16", "100.63.0.1", "0.0.0.1", "240.0.0.0/16"]) expect(() => parseTrustProxy(v), v).toThrow(/outside the edge proxy's ranges/);
    expect(parseTrustProxy("100.64.0.0/16, 127.0.0.1, 172.16.0.0/16")).toEqual(["100.64.0.0/16", "127.0.0.1", "172.16.0.0/16"]);
  });

  it("takes global IPv6 entries only with the opt-in TRUST_PROXY_GLOBAL_IPV6 (session 51), unique local, link-local and loopback without it, no non-unicast one ever", () => {
    // Before: any public /48 was taken, and every host of it could pick the client address the gateway counts.
    for (const v of ["2600:1f14:abc::/48", "2001:db8::1", "10.244.0.0/16, 2a00:1450:4001::/56", "3fff::/64"]) {
      expect(() => parseTrustProxy(v), v).toThrow(/^has global IPv6 entries "[0-9a-f:/]+": an edge proxy sends from unique local fc00::\/7, link-local fe80::\/10 or loopback ::1 unless the pod network is global \(EKS IPv6, dual-stack clusters\); if it is, set TRUST_PROXY_GLOBAL_IPV6=true/);
      expect(parseTrustProxy(v, true), v).toEqual(v.split(",").map((s) => s.trim()));
    }
    // ::1 and 0:0:0:0:0:0:0:1/128 are one range: each is taken, not both (tests/unit/trusted-ranges.test.ts).
    const local = "fd00:10::/48, FC00:1:2::/64, fe80::/64, febf:ffff::1, ::1";
    expect(parseTrustProxy(local)).toEqual(local.split(",").map((s) => s.trim()));
    expect(parseTrustProxy("0:0:0:0:0:0:0:1/128")).toEqual(["0:0:0:0:0:0:0:1/128"]);
    for (const v of ["ff02::1", "ff00:1::/48", "::/128", "::2", "100::/64", "64:ff9b::1", "4000::1", "fec0::/48"]) {
      expect(() => parseTrustProxy(v, true), v).toThrow(`has IPv6 entries of no unicast range (multicast, unspecified, reserved) "${v}": no edge proxy sends from them`);
    }
  });

  it("refuses a prefix length written with leading zeros (session 63), the stack config's rule (catalog/addresses.ts prefixLengthProblem)", () => {
    // Before: "10.0.0.0/016" was taken, read by proxy-addr as /16 (some readers take 016 for octal 14).
    expect(() => parseTrustProxy("10.244.0.5, 10.0.0.0/016, fd00:10::/0048")).toThrow(
      'has entries whose prefix length has a leading zero "10.0.0.0/016" (write /16), "fd00:10::/0048" (write /48): some readers take a leading 0 for octal',
    );
    expect(parseTrustProxy("10.0.0.0/16, 10.0.0.0/30, fd00:10::/100")).toEqual(["10.0.0.0/16", "10.0.0.0/30", "fd00:10::/100"]);
    const hub = findService("central-hub")!;
    expect(() => loadServiceConfig(hub, {}, { DRAGONFLY_URL: "redis://dragonfly:6379", TRUST_PROXY: "10.244.0.0/016" })).toThrow(/^Invalid configuration of central-hub: .*TRUST_PROXY has entries whose prefix length has a leading zero "10.244.0.0\/016" \(write \/16\)/);
  });

  it("takes every trustedProxies the stack config accepts, dockerSubnet (its docker default) included: one bound", () => {
    for (const trustedProxies of ["10.244.0.0/16", "10.96.0.0/16, fd00:10::/48", "10.244.0.0/16, fe80::1", "192.168.0.0/16"]) {
      expect(() => parseTrustProxy(parseStackConfig("prod", { ...k8s, trustedProxies }).trustedProxies), trustedProxies).not.toThrow();
    }
    // The opt-in reaches the gateway as TRUST_PROXY_GLOBAL_IPV6 (components/platform.ts): the stack's value is the services'.
    const global = parseStackConfig("prod", { ...k8s, trustedProxies: "2001:db8::1", trustGlobalIPv6Proxies: "true" });
    expect(() => parseTrustProxy(global.trustedProxies, global.trustGlobalIPv6Proxies)).not.toThrow();
    for (const dockerSubnet of ["172.28.0.0/24", "10.1.0.0/16", "192.168.0.0/16", "172.31.255.0/26"]) {
      expect(() => parseTrustProxy(parseStackConfig("dev", { ...docker, dockerSubnet }).trustedProxies), dockerSubnet).not.toThrow();
    }
    expect(TRUSTED_PROXY_MIN_PREFIX).toEqual({ v4: 16, v6: 48 });
  });
});
