/**
 * Would the Fastify path take a URL to the proxy route (../proxy.ts `/api/*`) and past the kit's
 * pre-handler checks? The lane serves only such URLs (./serve.ts). Asked of Fastify's own router
 * (app.findRoute: find-my-way's match, its path parameters and the query as Fastify parses it) and of
 * the kit's own preValidation predicate (unstorableRequestIssue: NUL or an unpaired surrogate in the
 * query or the path), never a copy of either: a URL the router sends elsewhere or nowhere (a `\`
 * after /api, which the proxy's URL parse would read as `/`), or one the kit refuses 400, is handed over.
 */
import { unstorableRequestIssue } from "../../../kit/request-guards";

/** What Fastify's findRoute gives for a match (null: its 404). */
export interface FoundRoute {
  params: Record<string, string | undefined>;
  searchParams: unknown;
}
export type FindRoute = (o: { method: string; url: string }) => FoundRoute | null;

/** The proxy route's match (`/api/*`): one parameter, the wildcard's. */
const isProxyMatch = (params: Record<string, string | undefined>): boolean => {
  const names = Object.keys(params);
  return names.length === 1 && names[0] === "*";
};

/** The answers for URLs seen (each a router match and a query parse, kept; as TargetCache: bounded, short URLs only). */
export class FastifyRouteCheck {
  private readonly known = new Map<string, boolean>();
  constructor(private readonly find: FindRoute, private readonly maxEntries = 10_000, private readonly maxUrlLength = 512) {}

  /** true when Fastify routes `method` `url` to the proxy route and the kit's preValidation takes it. */
  reachesProxy(method: string, url: string): boolean {
    // (The proxy route takes every method: GET and HEAD are routed alike.)
    const known = this.known.get(url);
    if (known !== undefined) return known;
    const route = this.find({ method, url });
    const ok = route !== null && isProxyMatch(route.params) && unstorableRequestIssue(route.searchParams, route.params) === undefined;
    if (url.length <= this.maxUrlLength) {
      if (this.known.size >= this.maxEntries) this.known.clear();
      this.known.set(url, ok);
    }
    return ok;
  }
}
