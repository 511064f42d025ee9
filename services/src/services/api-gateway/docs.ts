/**
 * The platform's public API description: every routed service's OpenAPI document (fetched from
 * its /internal/openapi.json, kit/openapi.ts) merged under the service's catalog route prefix
 * (`/users/login` of user-management becomes `/api/users/login`), plus the gateway's own public
 * routes. Served at GET /api/docs/openapi.json and as a Swagger UI page at /api/docs (the assets
 * come from the @fastify/swagger-ui package, no CDN).
 *
 * The document is public, so it presents the API by public route, as the error texts do (kit
 * publicServiceName): a client knows `/api/orders`, not which service stands behind it. Tags,
 * component schema names (and the $refs to them) and operation ids are the route's (`orders`,
 * `orders.Order`), the gateway's own routes are `platform`; no service name, host or port is in it
 * (tests/services/openapi.test.ts reads every key and string of it).
 *
 * The merged document is cached for DOCS_CACHE_MS; a service that does not answer is left out and
 * its route named in `x-unavailable-routes` (the page still loads), and the next request tries it again.
 * The documents are read as the gateway's other peer reads (kit peers): bounded by HEALTH_TIMEOUT_MS and
 * cut PEER_CLOSE_GRACE_MS into the gateway's close (`cutOnClose`), which answers 503 SHUTTING_DOWN (since
 * session 54; before, the close waited for them up to HEALTH_TIMEOUT_MS, 60 s at most).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import swaggerUi from "@fastify/swagger-ui";
import type { Logger } from "pino";
import type { ServiceDefinition } from "../../catalog";
import { isShuttingDown, OPENAPI_DOCUMENT_PATH, OPENAPI_VERSION, pathOf, type PeerClient } from "../../kit";

export const DOCS_PREFIX = "/api/docs";

type Json = Record<string, unknown>;
export interface OpenApiDocument {
  openapi: string;
  info: Json;
  paths?: Record<string, Json>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  tags?: Json[];
  [k: string]: unknown;
}

/** `/` of route `orders` -> `/api/orders/` (Nginx redirects `/api/orders` there); `/:id` -> `/api/orders/{id}`. */
export function publicPath(route: string, path: string): string {
  return path === "/" ? `/api/${route}/` : `/api/${route}${path}`;
}

/** The tag of the gateway's own routes (/api/health): the platform's, not a service's. */
export const PLATFORM_TAG = "platform";

/** A renamed copy: every `#/components/schemas/<name>` $ref as `rename(name)`. */
function renameRefs(value: unknown, rename: (name: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => renameRefs(v, rename));
  if (!value || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value as Json)) {
    const m = k === "$ref" && typeof v === "string" ? /^#\/components\/schemas\/(.+)$/.exec(v) : null;
    out[k] = m ? `#/components/schemas/${rename(m[1])}` : renameRefs(v, rename);
  }
  return out;
}

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

/** A path item whose operations carry the route's tag alone (the kit tags them with the service's name) and route-prefixed operation ids. */
function publicPathItem(item: Json, tag: string): Json {
  const out: Json = { ...item };
  for (const [method, op] of Object.entries(item)) {
    if (!HTTP_METHODS.has(method) || !op || typeof op !== "object") continue;
    const operation: Json = { ...(op as Json), tags: [tag] };
    if (typeof operation.operationId === "string") operation.operationId = `${tag}.${operation.operationId}`;
    out[method] = operation;
  }
  return out;
}

/** One source of the merged document: the gateway's own routes or a routed service's, under its public tag. */
interface Source {
  /** The public name of its routes: the catalog route (`orders`), or PLATFORM_TAG. */
  tag: string;
  description: string;
  doc: OpenApiDocument;
  toPublic: (path: string) => string;
}

/**
 * Merges the gateway's own document with the routed services' ones. Pure: `services` pairs each
 * routed service with its document (absent when it did not answer).
 */
export function mergeDocuments(gateway: OpenApiDocument, services: ReadonlyArray<{ def: ServiceDefinition; doc?: OpenApiDocument }>): OpenApiDocument {
  const merged: OpenApiDocument = {
    openapi: OPENAPI_VERSION,
    info: {
      title: "AI trading platform API",
      version: String(gateway.info.version ?? "0.1.0"),
      description: "Every public route of the platform, through the API gateway. Generated from the route schemas.",
    },
    paths: {},
    components: { schemas: {}, securitySchemes: { ...(gateway.components?.securitySchemes ?? {}) } },
    tags: [],
  };
  const add = ({ tag, description, doc, toPublic }: Source) => {
    // Component schema names are per document: the route's prefix keeps them apart.
    const rename = (n: string) => `${tag}.${n}`;
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) merged.components!.schemas![rename(name)] = renameRefs(schema, rename);
    for (const [p, item] of Object.entries(doc.paths ?? {})) merged.paths![toPublic(p)] = publicPathItem(renameRefs(item, rename) as Json, tag);
    merged.tags!.push({ name: tag, description });
  };
  add({ tag: PLATFORM_TAG, description: "Routes the platform answers itself, such as its health", doc: gateway, toPublic: (p) => p });
  const unavailable: string[] = [];
  for (const { def, doc } of services) {
    if (!def.route) continue;
    const route = def.route;
    if (!doc) unavailable.push(publicPath(route, "/"));
    else add({ tag: route, description: `The routes under ${publicPath(route, "/")}`, doc, toPublic: (p) => publicPath(route, p) });
  }
  if (unavailable.length > 0) merged["x-unavailable-routes"] = unavailable;
  return merged;
}

export interface ApiDocsOptions {
  /** The gateway's own document (app.swagger()). */
  ownDocument: () => OpenApiDocument;
  routed: readonly ServiceDefinition[];
  /** The gateway's peer client (ctx.peers): its `cutOnClose` ends a read once the close began. */
  peers: Pick<PeerClient, "call">;
  timeoutMs: number;
  cacheMs: number;
  log: Logger;
}

/** The merged document, cached, refreshed by the first request after it expires. */
export function docsSource(o: ApiDocsOptions): () => Promise<OpenApiDocument> {
  let cached: { at: number; doc: OpenApiDocument } | undefined;
  let pending: Promise<OpenApiDocument> | undefined;
  const fetchOne = async (def: ServiceDefinition): Promise<OpenApiDocument | undefined> => {
    try {
      const r = await o.peers.call<OpenApiDocument>(def.name, OPENAPI_DOCUMENT_PATH, { timeoutMs: o.timeoutMs, cutOnClose: true });
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      if (!r.body || typeof r.body !== "object") throw new Error("not a JSON document");
      return r.body;
    } catch (e) {
      // The gateway closing: the request is answered 503 SHUTTING_DOWN, not a document missing services.
      if (isShuttingDown(e)) throw e;
      o.log.warn({ upstream: def.name, err: { message: (e as Error).message } }, "OpenAPI document unavailable");
      return undefined;
    }
  };
  const build = async () => {
    const services = await Promise.all(o.routed.map(async (def) => ({ def, doc: await fetchOne(def) })));
    const doc = mergeDocuments(o.ownDocument(), services);
    // A document missing services is not kept: the next request asks them again.
    cached = doc["x-unavailable-routes"] ? undefined : { at: Date.now(), doc };
    return doc;
  };
  return async () => {
    if (cached && Date.now() - cached.at < o.cacheMs) return cached.doc;
    pending ??= build().finally(() => (pending = undefined));
    return pending;
  };
}

/** GET /api/docs/openapi.json and the Swagger UI at /api/docs, in the gateway's /api scope. */
export async function registerApiDocs(api: FastifyInstance, o: ApiDocsOptions): Promise<void> {
  const documentFor = docsSource(o);
  const byRequest = new WeakMap<FastifyRequest, OpenApiDocument>();
  // The document and the UI's routes take no query parameter (the kit's default: any is a 400 naming
  // it). Swagger UI reads its settings from the page's query only with `queryConfigEnabled`, off
  // here (its default); its deep links are in the fragment, which browsers never send; the page asks
  // its assets, ./json and the initializer by bare relative URLs. The one page meant to be given a
  // query, static/oauth2-redirect.html (`?code=&state=` from an OAuth2 server), is never used: the
  // documents declare no OAuth2 scheme (bearer and API key only, kit SECURITY_SCHEMES).
  api.get(`${DOCS_PREFIX}/openapi.json`, { schema: { hide: true } }, async () => documentFor());
  await api.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, docExpansion: "list" },
    staticCSP: true,
    // The UI's own ./json answers the merged document (fetched before the handler runs).
    uiHooks: {
      preHandler: async (request) => {
        const path = pathOf(request.url);
        if (path.endsWith("/json") || path.endsWith("/yaml")) byRequest.set(request, await documentFor());
      },
    },
    transformSpecificationClone: false,
    transformSpecification: (spec, request) => byRequest.get(request) ?? spec,
  });
}
