/** The kit's request guards: the JSON body pre-check never lets unstorable text through; TRUST_PROXY never trusts every client. */
import { describe, expect, it } from "vitest";
import { findUnstorableText, jsonDepthExceeds, mayHoldUnstorableText, parseTrustProxy } from "../../services/src/kit/request-guards";

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


describe("parseTrustProxy", () => {
  it("refuses IPv4-mapped IPv6 entries in every spelling: proxy-addr applies ::ffff:0.0.0.0/96 to IPv4 clients as 0.0.0.0/0", () => {
    for (const v of ["::ffff:0.0.0.0/96", "::ffff:0:0/96", "0:0:0:0:0:FFFF:0:0/96", "::FFFF:10.0.0.0/104", "10.0.0.5,::ffff:172.18.0.1"]) {
      expect(() => parseTrustProxy(v), v).toThrow(/IPv4-mapped IPv6 entries .*write them as IPv4/);
    }
  });
  it("keeps plain IPv4 and IPv6 entries, CIDRs of /8 (IPv4) or /16 (IPv6) or narrower and the named ranges", () => {
    expect(parseTrustProxy("10.244.0.0/16, fd00::/16,loopback, ::ffff:0/128")).toEqual(["10.244.0.0/16", "fd00::/16", "loopback", "::ffff:0/128"]);
    expect(() => parseTrustProxy("0.0.0.0/0")).toThrow(/invalid entries/);
    expect(parseTrustProxy(" ")).toBeUndefined();
  });
});
