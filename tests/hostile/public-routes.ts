/**
 * Every public route of a red-team platform's services, read from what each registered (new routes are covered
 * without editing a test), with the sample request ./cases.ts makes for it. Shared by the rounds that try a
 * class of input on every route (./session-62.test.ts, ./session-63.test.ts).
 */
import { catalog } from "../../services/src/catalog";
import { isInternalPath, type RouteInfo } from "../../services/src/kit";
import type { Platform } from "../helpers/platform";
import { plausibleRequest } from "./cases";

export interface PublicRoute {
  service: string;
  route: RouteInfo;
  /** The gateway path of the route's sample request (./cases.ts plausibleRequest). */
  path: string;
  /** Its sample body, for a route that takes one. */
  body?: Record<string, unknown>;
  /** The gateway path with `value` (sent as written) in place of path parameter `name`. */
  pathWith(name: string, value: string): string;
}

/** The public routes of `p`'s services but the gateway's own (its docs and internal paths left out). */
export function publicRoutesOf(p: Platform): PublicRoute[] {
  const out: PublicRoute[] = [];
  for (const [name, svc] of p.services) {
    const segment = catalog.find((s) => s.name === name)?.route;
    if (name === "api-gateway" || typeof segment !== "string") continue;
    for (const route of svc.routes.filter((r) => !isInternalPath(r.url) && !r.url.startsWith("/api/docs"))) {
      const { path, body } = plausibleRequest(route);
      const pathWith = (param: string, value: string) => `/api/${segment}${route.url.replace(/:([A-Za-z0-9_]+)/g, (m, n: string) => (n === param ? value : plausibleRequest({ ...route, url: m }).path))}`;
      out.push({ service: name, route, path: `/api/${segment}${path}`, body, pathWith });
    }
  }
  return out;
}
