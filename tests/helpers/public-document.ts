/**
 * What the public API description (/api/docs/openapi.json) may not show a client: a catalog
 * service's name (a client knows `/api/orders`, not `order-management`), an internal host (a
 * service's or datastore's host name with a port, a loopback address, a cluster DNS name, one of
 * the test platform's own listening addresses) or a datastore product (PostgreSQL, ClickHouse,
 * Dragonfly, Redis, Kafka/Redpanda, Weaviate, ArangoDB: a description says "recorded", not
 * "recorded in PostgreSQL"). Read over every key and every string of the document: tags, operation
 * ids, component names and the $refs to them, descriptions, extensions. A datastore's name is let
 * through only where it is the API's own data (wireValue): a field's name or a value a field takes.
 */
import { catalog, DATA_COMPONENTS } from "../../services/src/catalog";

/** One key or string of a JSON document and where it is (`/paths/~1api~1orders~1/get/tags/0`). */
export interface DocumentText {
  at: string;
  text: string;
}

const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

/** Every key and string value of a JSON value, with its JSON pointer. */
export function documentTexts(value: unknown, at = ""): DocumentText[] {
  if (typeof value === "string") return [{ at, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => documentTexts(v, `${at}/${i}`));
  if (!value || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [{ at: `${at}/${pointer(k)}#key`, text: k }, ...documentTexts(v, `${at}/${pointer(k)}`)]);
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const SERVICE_NAMES = catalog.map((s) => s.name).sort((a, b) => b.length - a.length);
/** A service name as a word of its own: in `order-management.Order` or `tags: ["order-management"]`. */
const SERVICE_NAME = new RegExp(`(?<![\\w-])(?:${SERVICE_NAMES.map(escaped).join("|")})(?![\\w-])`, "gi");
/** A host a client never reaches: a datastore's host name with a port or after `//`, loopback, cluster DNS. */
const INTERNAL_HOST = new RegExp(
  [
    `(?<![\\w.-])(?:${DATA_COMPONENTS.map(escaped).join("|")}):\\d+`,
    `\\/\\/(?:${DATA_COMPONENTS.map(escaped).join("|")})(?![\\w.-])`,
    `\\b127\\.0\\.0\\.1\\b`,
    `\\blocalhost:\\d+`,
    `\\.svc(?:\\.cluster\\.local)?\\b`,
    `\\.cluster\\.local\\b`,
  ].join("|"),
  "gi",
);

/**
 * The datastores' names as products, each a word of its own: the catalog's (`postgres`,
 * `dragonfly`, `redpanda`, `redis`, ...) and the spellings prose uses (`PostgreSQL`, `Kafka`, `Arango`).
 */
const DATASTORE_PRODUCT = new RegExp(
  `(?<![\\w-])(?:${[...DATA_COMPONENTS, "postgresql", "kafka", "arango"].sort((a, b) => b.length - a.length).map(escaped).join("|")})(?![\\w-])`,
  "gi",
);

/**
 * Is the text at this pointer the API's own data rather than prose: a field's name (a key under
 * `properties`, an entry of `required`) or a value a field takes (`enum`, `const`)? Those are what a
 * client sends and reads (`/api/database/migrations` answers `postgres` and `clickhouse`; a
 * backtest's `data.source` takes `"clickhouse"`): renaming them would break clients, so they stay.
 */
export function wireValue(at: string): boolean {
  return /\/properties\/[^/]+#key$/.test(at) || /\/(?:required|enum)\/\d+$/.test(at) || /\/const$/.test(at);
}

/** The datastore products one text of the document names as prose (none where it is a wire value). */
export function datastoresInDocument({ at, text }: DocumentText): string[] {
  if (wireValue(at)) return [];
  return [...new Set([...text.matchAll(DATASTORE_PRODUCT)].map((m) => `datastore ${m[0]}`))];
}

/** Everything internal the document shows, as `<pointer>: <what>` (`/tags/0/name: service order-management`). */
export function namedInDocument(doc: unknown, hosts: readonly string[] = []): string[] {
  return documentTexts(doc).flatMap((t) => [...internalInDocument(t.text, hosts), ...datastoresInDocument(t)].map((what) => `${t.at}: ${what}`));
}

/** The internal things one text of the document names (`hosts`: listening addresses, `127.0.0.1:4411`). */
export function internalInDocument(text: string, hosts: readonly string[] = []): string[] {
  const found = [...text.matchAll(SERVICE_NAME)].map((m) => `service ${m[0]}`);
  found.push(...[...text.matchAll(INTERNAL_HOST)].map((m) => `host ${m[0]}`));
  found.push(...hosts.filter((h) => text.includes(h)).map((h) => `address ${h}`));
  // A catalog port after a host name: `http://x:8010`, `api:9002`.
  for (const s of catalog) if (new RegExp(`[\\w.-]:${s.port}(?!\\d)`).test(text)) found.push(`port ${s.port}`);
  return [...new Set(found)];
}
