/**
 * kit request-framing.ts hostIssue: which Host values are a `host[:port]` (RFC 9110 §7.2). The
 * servers' answers are in tests/hostile/session-51.test.ts. A JSON body's charset: ./kit-body-text.test.ts.
 */
import { describe, expect, it } from "vitest";
import { absoluteTargetIssue, hostIssue } from "../../services/src/kit/request-framing";

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

describe("absoluteTargetIssue (session 64)", () => {
  it("takes a path, *, and an http(s) absolute-form whose authority is a Host's", () => {
    for (const target of [undefined, "/", "/api/users/me?x=1", "*", "http://gw/api/users/me", "HTTPS://GW:443/x", "http://[::1]:80/x", "http://gw", "http://gw?x=1", "http://evil.example/api"])
      expect(absoluteTargetIssue(target), String(target)).toBe(false);
  });
  it("refuses another scheme, userinfo, a port past 65535 or twice, an empty or bracketed name, a backslash", () => {
    for (const target of ["ftp://gw/x", "javascript://gw/x", "gw:80", "http:/x", "http://u@gw/x", "http://u:p@gw/x", "http://:@gw/x", "http://gw:99999/x", "http://gw:80:80/x", "http:///x", "http://?x", "http://[gw]/x", "http://gw\\x/y", "api/users"])
      expect(absoluteTargetIssue(target), target).toBe(true);
  });
});
