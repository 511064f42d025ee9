/**
 * The OpenAPI documents of the whole fleet, checked on every catalog service started on the
 * harness's real servers (tests/helpers/platform.ts), against the routes each service really
 * registered (Service.routes), so a service or route added later is covered without a new test:
 * - each service's own document (GET /internal/openapi.json, kit/openapi.ts) is valid OpenAPI 3.1,
 *   has every public route with its request schemas (path, query, body) and a success response
 *   schema, and nothing internal (probes, /internal/...);
 * - the gateway's merged document (/api/docs/openapi.json) has every routed service's public routes
 *   under /api/<route>, credentials on all but the catalog's anonymous paths;
 * - the docs page and its assets are served by the gateway itself (no CDN).
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog, entryPoint } from "../../services/src/catalog";
import { isInternalPath, type RouteInfo } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { leavesKeysOpen } from "../../services/src/kit/record-keys";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { documentTexts, namedInDocument } from "../helpers/public-document";

// A broker of this file's own: it runs a trading-engine (harness/shared.ts privateKafka).
const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
let p: Platform;

beforeAll(async () => {
  p = await startPlatform(srv.env);
}, 900_000);
afterAll(async () => {
  await p?.close();
});

type Operation = {
  parameters?: Array<{ name: string; in: string; schema?: unknown }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
};
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; [k: string]: unknown };

const gateway = entryPoint(catalog)!;
/** Fastify `/:id/cancel` -> OpenAPI `/{id}/cancel`. */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
const pathParams = (url: string) => [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
/** Routes hidden on purpose: the gateway's proxy wildcard and the docs' own routes. */
const hiddenByDesign = (service: string, url: string) => service === gateway.name && (url === "/api/*" || url.startsWith("/api/docs"));
const publicRoutes = (service: string): RouteInfo[] => p.services.get(service)!.routes.filter((r) => !isInternalPath(r.url));

async function getJson(url: string): Promise<{ status: number; body: Doc }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  return { status: r.status, body: (await r.json()) as Doc };
}

async function validate(doc: Doc): Promise<{ valid: boolean; errors?: unknown; version?: string }> {
  const v = new Validator();
  const res = await v.validate(doc);
  return { valid: res.valid, errors: res.errors, version: v.version };
}

/** What one registered route lacks in a document: the operation, request or response schemas. */
function routeProblems(doc: Doc, r: RouteInfo, path: string): string[] {
  const at = `${r.method} ${path}`;
  const op = doc.paths?.[path]?.[r.method.toLowerCase()];
  if (!op) return [`${at}: not documented`];
  const problems: string[] = [];
  const params = op.parameters ?? [];
  for (const name of pathParams(r.url)) if (!params.some((x) => x.in === "path" && x.name === name && x.schema)) problems.push(`${at}: path parameter ${name} has no schema`);
  const query = r.schema?.querystring as { properties?: Record<string, unknown> } | undefined;
  for (const name of Object.keys(query?.properties ?? {})) if (!params.some((x) => x.in === "query" && x.name === name && x.schema)) problems.push(`${at}: query parameter ${name} undocumented`);
  if (r.schema?.body && !op.requestBody?.content?.["application/json"]?.schema) problems.push(`${at}: request body schema missing`);
  const success = Object.entries(op.responses ?? {}).filter(([code]) => /^2/.test(code));
  if (success.length === 0) problems.push(`${at}: no success response schema`);
  for (const [code, res] of success) {
    if (code === "204") continue;
    if (!res.content || !Object.values(res.content).every((c) => c.schema)) problems.push(`${at}: response ${code} has no schema`);
  }
  if (!op.responses?.["4XX"]) problems.push(`${at}: error responses undocumented`);
  return problems;
}

describe("OpenAPI 3.1 of every catalog service", () => {
  it("every catalog service is implemented (a service not built yet is absent from the catalog)", () => {
    expect(catalog.filter((s) => !registry[s.name]).map((s) => s.name)).toEqual([]);
  });

  for (const def of catalog) {
    it(`${def.name}: valid, with every public route it registered, its request and response schemas, nothing internal`, async () => {
      const { status, body: doc } = await getJson(`${p.urls.get(def.name)}/internal/openapi.json`);
      expect(status).toBe(200);
      expect(doc.openapi).toBe("3.1.0");
      const validation = await validate(doc);
      expect(validation.errors ?? []).toEqual([]);
      expect(validation).toMatchObject({ valid: true, version: "3.1" });

      expect(Object.keys(doc.paths ?? {}).filter((x) => isInternalPath(x))).toEqual([]);
      const routes = publicRoutes(def.name);
      expect(routes.filter((r) => r.schema?.hide && !hiddenByDesign(def.name, r.url)).map((r) => `${r.method} ${r.url}`)).toEqual([]);
      expect(routes.filter((r) => !r.schema?.hide).flatMap((r) => routeProblems(doc, r, openapiPath(r.url)))).toEqual([]);
      if (def.route) expect(routes.length).toBeGreaterThan(0);
      // Every date-time a client sends is documented with the range the kit enforces (a query or
      // path parameter carries the description itself, a body field in its schema).
      const described: Array<[string, unknown]> = [];
      const walk = (n: any): void => {
        if (n && typeof n === "object") {
          if (n.format === "date-time") described.push([JSON.stringify(n), n.description]);
          Object.values(n).forEach(walk);
        }
      };
      for (const op of Object.values(doc.paths ?? {}).flatMap((item: any) => Object.values(item)) as any[]) {
        for (const param of op.parameters ?? []) if (param.schema?.format === "date-time") described.push([param.name, param.description]);
        walk(op.requestBody);
      }
      for (const [what, description] of described) expect(String(description), what).toContain("from 1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z");
    });
  }
});

describe("request records on every catalog service", () => {
  // kit record-keys.ts: a `patternProperties` beside nothing said of other keys let a key no pattern
  // matches through with its value unchecked (backtesting-engine's parameters: {"bad key!": "text"}).
  it("no record of a request (body, query, path, inside a header) takes a key its patterns do not match", () => {
    const open: string[] = [];
    const walk = (n: unknown, at: string): void => {
      if (Array.isArray(n)) return n.forEach((v, i) => walk(v, `${at}/${i}`));
      if (!n || typeof n !== "object") return;
      if (leavesKeysOpen(n as Record<string, unknown>)) open.push(at);
      for (const [k, v] of Object.entries(n)) walk(v, `${at}/${k}`);
    };
    let records = 0;
    const count = (n: unknown): void => {
      if (n && typeof n === "object") {
        if ("patternProperties" in n) records++;
        Object.values(n).forEach(count);
      }
    };
    for (const [name, svc] of p.services) {
      for (const r of svc.routes) {
        const s = r.schema ?? {};
        for (const part of ["body", "querystring", "params"] as const) {
          walk(s[part], `${name} ${r.method} ${r.url} ${part}`);
          count(s[part]);
        }
        const headers = (s.headers as { properties?: unknown } | undefined)?.properties;
        walk(headers, `${name} ${r.method} ${r.url} headers`);
      }
    }
    expect(open).toEqual([]);
    // The walk saw records (backtesting-engine's parameters, central-hub's metadata).
    expect(records).toBeGreaterThan(2);
  });
});

describe("the gateway's merged public API", () => {
  it("GET /api/docs/openapi.json: valid, every routed service's public routes under /api/<route>, nothing internal", async () => {
    const { status, body: doc } = await getJson(`${p.gatewayUrl}/api/docs/openapi.json`);
    expect(status).toBe(200);
    expect(doc["x-unavailable-routes"]).toBeUndefined();
    const validation = await validate(doc);
    expect(validation.errors ?? []).toEqual([]);
    expect(validation.version).toBe("3.1");
    const paths = Object.keys(doc.paths);
    expect(paths.filter((x) => !x.startsWith("/api/"))).toEqual([]);
    expect(paths.filter((x) => x !== "/api/health" && /\/(internal|health|ready|metrics)(\/|$)/.test(x))).toEqual([]);
    const problems: string[] = [];
    for (const def of catalog.filter((s) => s.route)) {
      for (const r of publicRoutes(def.name).filter((x) => !x.schema?.hide)) {
        problems.push(...routeProblems(doc, r, r.url === "/" ? `/api/${def.route}/` : `/api/${def.route}${openapiPath(r.url)}`));
      }
    }
    expect(problems).toEqual([]);
    expect(doc.paths["/api/health"]?.get).toBeDefined();
    // The catalog's anonymous paths need no credentials; everything else names both.
    expect(doc.paths["/api/users/login"]?.post?.security).toBeUndefined();
    expect(doc.paths["/api/orders/"]?.post?.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  });

  // The document is public: it presents the API by public route (/api/orders/...), as the error
  // texts do (tests/unit/error-texts.test.ts), and tells no client which service stands behind a
  // route, where one listens, nor which datastore keeps what. Every key and every string of it is
  // read: tags, operation ids, component names and their $refs, descriptions, x- extensions; a
  // datastore's name only as the API's own data (a field's name or value, helpers/public-document.ts wireValue).
  it("GET /api/docs/openapi.json names no catalog service, internal host or datastore, in any key or string", async () => {
    const { body: doc } = await getJson(`${p.gatewayUrl}/api/docs/openapi.json`);
    const hosts = [...p.urls.values()].map((u) => new URL(u).host);
    expect(documentTexts(doc).length).toBeGreaterThan(1_000);
    expect(namedInDocument(doc, hosts)).toEqual([]);
  });

  it("GET /api/docs/: the docs page, its assets served by the gateway (no CDN), the merged document behind it", async () => {
    const page = await fetch(`${p.gatewayUrl}/api/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).not.toMatch(/https?:\/\/(?!localhost)/);
    const js = await fetch(`${p.gatewayUrl}/api/docs/static/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    await js.arrayBuffer();
    const spec = await getJson(`${p.gatewayUrl}/api/docs/json`);
    expect(Object.keys(spec.body.paths)).toContain("/api/orders/");
  });
});
