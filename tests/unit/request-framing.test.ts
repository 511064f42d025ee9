/**
 * kit request-framing.ts hostIssue: which Host values are a `host[:port]` (RFC 9110 §7.2). The
 * servers' answers are in tests/hostile/session-51.test.ts.
 */
import { describe, expect, it } from "vitest";
import { bodyTextIssue, hostIssue } from "../../services/src/kit/request-framing";

describe("hostIssue", () => {
  it("takes a name, an IPv4 or bracketed IPv6 address, each with an optional port up to 65535", () => {
    for (const host of ["gw", "Gw.Example.", "api.example.com:443", "127.0.0.1:8080", "[::1]:8080", "[2001:db8::1]", "[::ffff:10.0.0.1]:80", "gw:65535", "gw:", "my_svc.ns.svc.cluster.local:80", "xn--zo-2ja.example", "a%2Eb"]) {
      expect(hostIssue(host), host).toBe(false);
    }
  });
  it("refuses userinfo, two ports, a port past 65535, spaces, paths, non-ASCII, bad brackets and an empty value", () => {
    for (const host of ["user:pw@gw", "@gw", "gw:80:80", "gw:65536", "gw:999999", "gw gw", " gw", "gw/x", "gw?x", "gw#x", "[::1", "::1", "[gw]:80", "[::1]x", "\u00e9.example", "gw:8o", "", "%zz", "gw\\x"]) {
      expect(hostIssue(host), JSON.stringify(host)).toBe(true);
    }
  });
});

describe("bodyTextIssue: a JSON body's charset and bytes", () => {
  const ascii = Buffer.from('{"a":"b"}');
  const issue = (type: string | undefined, body = ascii) => {
    const e = bodyTextIssue(type, body);
    return e && [e.statusCode, e.field];
  };
  it("UTF-8 and US-ASCII (its subset) in any spelling and case, quoted or not, are taken (session 63: US-ASCII was a 415)", () => {
    for (const type of [undefined, "application/json", "application/json; charset=utf-8", "application/json;charset=UTF8", "application/json; charset=us-ascii", 'application/json; charset="US-ASCII"', "application/json; CHARSET = ascii", "application/json; charset=ISO646-US", "application/json; charset=ANSI_X3.4-1968", "application/json; charset=csASCII", "application/json; charset=iso_646.irv:1991"])
      expect(issue(type), String(type)).toBeUndefined();
  });
  it("csUTF8, IANA's alias of UTF-8, in any case and quoted, is UTF-8 (a 415 until session 63); its bytes are still judged as UTF-8", () => {
    for (const type of ["application/json; charset=csUTF8", "application/json; charset=CSUTF8", "application/json; charset=csutf8", 'application/json; charset="csUTF8"'])
      expect(issue(type, Buffer.from('{"a":"Zo\u00eb"}')), type).toBeUndefined();
    expect(issue("application/json; charset=csUTF8", Buffer.from('{"a":"Zo\u00eb"}', "latin1"))).toEqual([400, "body"]);
    for (const type of ["application/json; charset=csutf-8", "application/json; charset=csUTF16", "application/json; charset=cs-utf8"]) expect(issue(type), type).toEqual([415, "content-type"]);
  });
  it("parameters are read whole: a charset inside another parameter's quoted value is none, a quoted-pair is its character", () => {
    expect(issue('application/json; profile="x;charset=latin1"')).toBeUndefined();
    expect(issue('application/json; profile="a \\" ;charset=latin1"; charset=utf-8')).toBeUndefined();
    expect(issue('application/json; charset="us\\-ascii"')).toBeUndefined();
    expect(issue('application/json; profile="x"; charset=latin1')).toEqual([415, "content-type"]);
    expect(issue('application/json; charset="utf-8')).toEqual([415, "content-type"]);
  });
  it("any other charset is a 415 naming content-type; a byte that is not ASCII in a body declared US-ASCII a 400 naming body", () => {
    for (const type of ["application/json; charset=latin1", "application/json; charset=iso-8859-1", "application/json; charset=utf-16", "application/json; charset=windows-1252", "application/json; charset=us-ascii-x", "application/json; charset=", "application/json; charset=\"\""])
      expect(issue(type), type).toEqual([415, "content-type"]);
    const zoe = Buffer.from('{"a":"Zo\u00eb"}');
    expect(issue("application/json; charset=us-ascii", zoe)).toEqual([400, "body"]);
    expect(issue("application/json; charset=us-ascii", Buffer.from('{"a":"Zo\u00eb"}', "latin1"))).toEqual([400, "body"]);
    expect(issue("application/json", zoe)).toBeUndefined();
  });
});
