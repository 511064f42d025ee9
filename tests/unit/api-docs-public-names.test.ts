/**
 * The gateway's merged API description (services/src/services/api-gateway/docs.ts mergeDocuments)
 * presents the API by public route: the kit tags every operation with its service's catalog name
 * (kit/openapi.ts), a service's component schemas are its own, an operation may carry an id; in the
 * merged document all three are the route's, and a service that did not answer is named by its route.
 * The real documents of every service are read the same way in tests/services/openapi.test.ts.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { catalog, findService } from "../../services/src/catalog";
import { mergeDocuments, PLATFORM_TAG, type OpenApiDocument } from "../../services/src/services/api-gateway/docs";
import { documentTexts, internalInDocument, namedInDocument } from "../helpers/public-document";

const orders = findService("order-management")!;
const risk = findService("risk-analyzer")!;
const gatewayName = catalog.find((s) => s.entryPoint)!.name;

/** A service's own document as kit/openapi.ts writes it: its title and tag are its catalog name. */
function serviceDocument(name: string, path: string): OpenApiDocument {
  const ok = { description: "the order", content: { "application/json": { schema: { $ref: "#/components/schemas/Order" } } } };
  return {
    openapi: "3.1.0",
    info: { title: name, version: "0.1.0" },
    tags: [{ name, description: "Order lifecycle in PostgreSQL" }],
    components: { schemas: { Order: { type: "object", properties: { id: { type: "string" }, legs: { type: "array", items: { $ref: "#/components/schemas/Order" } } } } } },
    paths: { [path]: { get: { tags: [name], operationId: "readOrder", responses: { "200": ok } }, parameters: [] } },
  };
}

const gateway: OpenApiDocument = {
  openapi: "3.1.0",
  info: { title: gatewayName, version: "0.4.2" },
  tags: [{ name: gatewayName }],
  paths: { "/api/health": { get: { tags: [gatewayName], responses: { "200": { description: "ok" } } } } },
};

describe("the merged API description names routes, not services", () => {
  const merged = mergeDocuments(gateway, [
    { def: orders, doc: serviceDocument(orders.name, "/{id}") },
    { def: risk, doc: serviceDocument(risk.name, "/var") },
    { def: findService("ml-predictor")! },
  ]);

  it("tags, component names, $refs and operation ids are the route's; no service name or host in any key or string", async () => {
    expect(merged.tags).toEqual([
      { name: PLATFORM_TAG, description: expect.any(String) },
      { name: "orders", description: "The routes under /api/orders/" },
      { name: "risk", description: "The routes under /api/risk/" },
    ]);
    const read = (merged.paths!["/api/orders/{id}"] as any).get;
    expect(read.tags).toEqual(["orders"]);
    expect(read.operationId).toBe("orders.readOrder");
    expect(read.responses["200"].content["application/json"].schema.$ref).toBe("#/components/schemas/orders.Order");
    expect((merged.paths!["/api/risk/var"] as any).get.operationId).toBe("risk.readOrder");
    expect((merged.paths!["/api/health"] as any).get.tags).toEqual([PLATFORM_TAG]);
    expect(Object.keys(merged.components!.schemas!)).toEqual(["orders.Order", "risk.Order"]);
    expect((merged.components!.schemas!["risk.Order"] as any).properties.legs.items.$ref).toBe("#/components/schemas/risk.Order");
    // The path item's own fields (parameters) are kept as they are.
    expect((merged.paths!["/api/orders/{id}"] as any).parameters).toEqual([]);
    expect(merged["x-unavailable-routes"]).toEqual(["/api/ml/"]);

    // The services' own tag descriptions ("Order lifecycle in PostgreSQL") are dropped with their tags.
    expect(namedInDocument(merged)).toEqual([]);
    const v = new Validator();
    const res = await v.validate(structuredClone(merged) as Parameters<Validator["validate"]>[0]);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
  });

  it("the walk finds what it looks for: a service name in a tag, a key or a description, an internal host", () => {
    const leaky = { tags: [{ name: orders.name }], paths: { "/x": { description: "calls postgres:5432, http://dragonfly and 127.0.0.1:4411" } }, [`${risk.name}.Order`]: {} };
    const found = documentTexts(leaky).flatMap(({ at, text }) => internalInDocument(text, ["127.0.0.1:4411"]).map((what) => `${at}: ${what}`));
    expect(found).toEqual([
      `/tags/0/name: service ${orders.name}`,
      "/paths/~1x/description: host postgres:5432",
      "/paths/~1x/description: host //dragonfly",
      "/paths/~1x/description: host 127.0.0.1",
      "/paths/~1x/description: address 127.0.0.1:4411",
      `/${risk.name}.Order#key: service ${risk.name}`,
    ]);
    expect(internalInDocument(`see http://${orders.name}:${orders.port}/`)).toEqual([`service ${orders.name}`, `port ${orders.port}`]);
    expect(internalInDocument("Refused: the route /api/orders/ is a public word")).toEqual([]);
  });

  it("the walk finds a datastore product named in prose, not where it is the API's own data (a field's name or value)", () => {
    const fields = {
      type: "object",
      description: "`state` as recorded in PostgreSQL, `enforced` as Dragonfly holds it",
      required: ["postgres", "clickhouse"],
      properties: {
        postgres: { type: "object", title: "Kafka's and Redpanda's offsets" },
        clickhouse: { description: "the same for ClickHouse, or \"disabled\"" },
        source: { enum: ["clickhouse", "synthetic"] },
        kind: { const: "weaviate", description: "stored" },
      },
      examples: [{ note: "a Redis key, an ArangoDB graph, postgresql:// and arango" }],
      "x-store": "ioredis and kafkajs are drivers, not products; clickhousey is no name",
    };
    expect(namedInDocument({ components: { schemas: { "orders.Postgres": fields } } })).toEqual([
      "/components/schemas/orders.Postgres#key: datastore Postgres",
      "/components/schemas/orders.Postgres/description: datastore PostgreSQL",
      "/components/schemas/orders.Postgres/description: datastore Dragonfly",
      "/components/schemas/orders.Postgres/properties/postgres/title: datastore Kafka",
      "/components/schemas/orders.Postgres/properties/postgres/title: datastore Redpanda",
      "/components/schemas/orders.Postgres/properties/clickhouse/description: datastore ClickHouse",
      "/components/schemas/orders.Postgres/examples/0/note: datastore Redis",
      "/components/schemas/orders.Postgres/examples/0/note: datastore ArangoDB",
      "/components/schemas/orders.Postgres/examples/0/note: datastore postgresql",
      "/components/schemas/orders.Postgres/examples/0/note: datastore arango",
    ]);
  });
});
