/**
 * Names of the platform's insides that no error body may show a client (session 52): the catalog's
 * service names (a client knows the public route, `/api/orders`, not `order-management`), the
 * datastores and their drivers, the libraries behind the HTTP surface, the Kafka topics and the
 * PostgreSQL tables (those with a prefix or an underscore: a one-word table, `users`, is also an
 * ordinary word). Used by ./oracle.ts on every 4xx/5xx body and by tests/unit/error-texts.test.ts
 * on every error text written in services/src.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { catalog, DATA_COMPONENTS } from "../../services/src/catalog";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import { TOPICS } from "../../services/src/trading/events";

const MIGRATIONS = ["postgres", "clickhouse"].map((d) => join(__dirname, "../../services/src/migrations", d));

/** Tables the PostgreSQL and ClickHouse migrations create whose names are no English word (`pay_intents`, `om_orders`). */
function tables(): string[] {
  const names = new Set<string>();
  for (const dir of MIGRATIONS) for (const f of readdirSync(dir)) {
    for (const m of readFileSync(join(dir, f), "utf8").matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/gi)) if (m[1].includes("_")) names.add(m[1].toLowerCase());
  }
  return [...names];
}

export const INTERNAL_NAMES: readonly string[] = [
  ...catalog.map((s) => s.name),
  ...DATA_COMPONENTS,
  "postgresql", "kafka", "kafkajs", "ioredis", "undici", "fastify", "ajv", "onnxruntime", "pg-pool",
  ...Object.values(TOPICS), ...Object.values(BUSINESS_TOPICS),
  ...tables(),
];

/**
 * Internal names that are also a value a public route takes, allowed only as a quoted value (a
 * validation error listing the allowed values, the client's own value echoed), never in a sentence.
 */
const PUBLIC_VALUES: Readonly<Record<string, string>> = {
  clickhouse: "a backtest's data.source (POST /api/backtests/: \"synthetic\", \"clickhouse\", \"replay\")",
};
/** Is text[at, at + length) a quoted value: `"clickhouse"`, `\"clickhouse\"` (JSON inside JSON), `'clickhouse'`? */
function quoted(text: string, at: number, length: number): boolean {
  const before = text.slice(Math.max(0, at - 2), at);
  const after = text.slice(at + length, at + length + 2);
  return /(?:\\?"|')$/.test(before) && /^(?:\\?"|')/.test(after);
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** A name as a word of its own: `postgres` in "postgres is down", not in "postgresfoo"; `om_orders` not in `/api/orders`. */
const INTERNAL = new RegExp(`(?<![\\w-])(?:${[...INTERNAL_NAMES].sort((a, b) => b.length - a.length).map(escaped).join("|")})(?![\\w-])`, "gi");

/** The internal names a text shows (lower case, each once). */
export function internalNamesIn(text: string): string[] {
  const named = [...text.matchAll(INTERNAL)].filter((m) => !(Object.hasOwn(PUBLIC_VALUES, m[0].toLowerCase()) && quoted(text, m.index, m[0].length)));
  return [...new Set(named.map((m) => m[0].toLowerCase()))];
}
