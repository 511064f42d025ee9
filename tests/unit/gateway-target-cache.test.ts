/**
 * The gateway's routing cache (api-gateway/proxy.ts TargetCache): filled before authentication, so
 * what an anonymous client can make it hold is bounded (10,000 anonymous URLs of 8 KB each held about
 * 155 MB when every URL was kept).
 */
import { describe, expect, it } from "vitest";
import { TargetCache, upstreamTarget } from "../../services/src/services/api-gateway/proxy";
import { catalog } from "../../services/src/catalog";

const routes = new Map(catalog.filter((s) => s.route).map((s) => [s.route!, s]));
const decide = (url: string) => upstreamTarget(url, routes);

describe("TargetCache", () => {
  it("keeps short URLs only, and at most its entries: long anonymous URLs cost nothing held", () => {
    const cache = new TargetCache(100, 512);
    const long = (i: number) => `/api/trading/orders?pad=${"x".repeat(8_000)}&i=${i}`;
    for (let i = 0; i < 1_000; i++) cache.target(long(i), decide);
    expect(cache.heldUrlChars).toBe(0);
    for (let i = 0; i < 1_000; i++) cache.target(`/api/trading/orders?i=${i}`, decide);
    expect(cache.heldUrlChars).toBeLessThanOrEqual(100 * 512);
  });

  it("answers a long URL as the parse does, and a known one from the cache without parsing again", () => {
    const cache = new TargetCache();
    const long = `/api/trading/orders?pad=${"x".repeat(8_000)}`;
    expect(cache.target(long, decide)).toEqual(decide(long));
    let parses = 0;
    const counted = (url: string) => (parses++, decide(url));
    const first = cache.target("/api/trading/orders?status=open", counted);
    expect(cache.target("/api/trading/orders?status=open", counted)).toBe(first);
    expect(parses).toBe(1);
  });

  it("caches no refusal: a URL that is refused is refused every time", () => {
    const cache = new TargetCache();
    for (let i = 0; i < 2; i++) expect(() => cache.target("/api/trading/%zz", decide)).toThrow(/Malformed percent-encoding/);
    expect(cache.heldUrlChars).toBe(0);
  });
});
