/**
 * ClickHouse: @clickhouse/client with `{name:Type}` placeholders bound from `params`, never string
 * concatenation.
 *
 * The default path is the server's own: placeholders go to the server as query parameters, sent
 * apart from the SQL (ClickHouse 20+, production pins 24.8). Only a server that reports an older
 * version gets the offline-only path of ./legacy-binding.ts (see why there). The choice is made once
 * per client from `SELECT version()` and retried if that probe fails.
 */
import { Readable } from "node:stream";
import type { ClickHouseClient } from "@clickhouse/client";
import type { DatastoreConfig } from "../datastores/env";
import { bindParamsForLegacyServer, isLegacyServerVersion } from "./legacy-binding";

export { ClickHouseParamError } from "./legacy-binding";

/** "server": query parameters sent to the server (default); "client": legacy client-side binding. */
export type ParamBinding = "server" | "client";

/**
 * `at` (a Date, or epoch milliseconds) as ClickHouse's DateTime text, UTC to the second ("2026-12-07
 * 06:40:00"): one spelling for every DateTime the platform writes and every cutoff it compares with them.
 */
export const clickhouseDateTime = (at: Date | number): string => new Date(at).toISOString().slice(0, 19).replace("T", " ");

export function createClickHouse(cfg: DatastoreConfig["clickhouse"]) {
  const { createClient } = require("@clickhouse/client") as typeof import("@clickhouse/client");
  const client: ClickHouseClient = createClient({
    url: cfg.CLICKHOUSE_URL,
    username: cfg.CLICKHOUSE_USER,
    password: cfg.CLICKHOUSE_PASSWORD ?? "",
    database: cfg.CLICKHOUSE_DATABASE,
    request_timeout: 30_000,
    // Pre-23.11 servers (and Debian's 18.16) close an idle keep-alive socket after 3 s. Under load
    // the event loop can stall past that between two queries, and the client then writes to a
    // socket the server has closed ("socket hang up"): stale sockets are destroyed before reuse,
    // with a margin, and a read that still meets a closed socket is retried once (see query()).
    keep_alive: { enabled: true, idle_socket_ttl: 1_500, eagerly_destroy_stale_sockets: true },
  });
  let binding: Promise<ParamBinding> | undefined;
  const paramBinding = (): Promise<ParamBinding> =>
    (binding ??= client
      .query({ query: "SELECT version() AS v", format: "JSONEachRow" })
      .then((rs) => rs.json<{ v: string }>())
      .then((rows): ParamBinding => (isLegacyServerVersion(String(rows[0]?.v ?? "")) ? "client" : "server"))
      .catch((err) => {
        binding = undefined; // retry the detection on the next call
        throw err;
      }));
  return {
    client,
    paramBinding,
    /** SELECT with `{name:Type}` placeholders bound from `params`. */
    async query<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
      const run = async () => {
        const rs =
          (await paramBinding()) === "server"
            ? await client.query({ query, query_params: params, format: "JSONEachRow" })
            : await client.query({ query: bindParamsForLegacyServer(query, params), format: "JSONEachRow" });
        return rs.json<T>();
      };
      // A SELECT has no effect to duplicate: one retry when the server had closed the pooled socket.
      return run().catch((err: unknown) => (isClosedSocket(err) ? run() : Promise.reject(err)));
    },
    async command(query: string, params: Record<string, unknown> = {}) {
      if ((await paramBinding()) === "server") await client.command({ query, query_params: params });
      else await client.command({ query: bindParamsForLegacyServer(query, params) });
    },
    /**
     * JSONEachRow insert naming the rows' fields as its columns (`INSERT INTO t (a, b) FORMAT
     * JSONEachRow`), so every column the rows leave out takes its DEFAULT: a server before 19.x
     * (Debian's 18.16 here) gives a field a row omits its type's zero instead (`inserted_at DEFAULT
     * now()` becoming 1970), named or not. Rows of different field sets therefore go in one insert
     * per run of consecutive rows of one set (usually there is one), in the rows' order (byFieldSet).
     */
    async insert<T>(table: string, values: T[]) {
      for (const [columns, rows] of byFieldSet(values)) await client.insert({ table, values: rows, columns, format: "JSONEachRow" });
    },
    /**
     * Bulk insert of rows the caller already rendered as TabSeparated (text or its bytes; one line per
     * row, values in `columns` order, escaped by the caller): one request, no per-row serialization here.
     */
    async insertTsv(table: string, columns: [string, ...string[]], text: string | Buffer) {
      if (text.length === 0) return;
      await client.insert({ table, columns, format: "TabSeparated", values: Readable.from([text], { objectMode: false }) });
    },
    /**
     * Readiness: a `SELECT` with the client's credentials. The server's `/ping` answers "Ok." to
     * anyone, so with a wrong password the service reported ready and failed its first query.
     */
    async ping() {
      const r = await client.ping({ select: true });
      if (!r.success) throw r.error;
    },
    async close() {
      await client.close();
    },
  };
}
export type ClickHouseKitClient = ReturnType<typeof createClickHouse>;

/**
 * The rows cut into runs of consecutive rows carrying the same fields, each run with its field names,
 * in the rows' order: inserted one run after the other, no row moves before one given ahead of it (of
 * two rows of one key a ReplacingMergeTree without a version keeps the one inserted last). A field
 * whose value is undefined is not among them: JSON leaves it out of the row, and a named column a row
 * leaves out takes its type's zero on 18.16, not its DEFAULT.
 */
export function byFieldSet<T>(rows: T[]): [[string, ...string[]], T[]][] {
  const runs: [[string, ...string[]], T[]][] = [];
  let runSignature: string | undefined;
  for (const r of rows) {
    // JSONEachRow rows are objects.
    const [first, ...rest] = Object.entries(r as object).flatMap(([k, v]) => (v === undefined ? [] : [k]));
    if (first === undefined) throw new Error("a ClickHouse insert row needs at least one field");
    const signature = [first, ...rest].join("\u0000");
    if (signature === runSignature) runs[runs.length - 1][1].push(r);
    else runs.push([[first, ...rest], [r]]);
    runSignature = signature;
  }
  return runs;
}

/** The server closed a kept-alive socket the client reused (nothing was executed). */
export function isClosedSocket(err: unknown): boolean {
  const e = err as { message?: unknown; code?: unknown } | null;
  return /socket hang up|ECONNRESET|EPIPE/i.test(`${String(e?.message ?? "")} ${String(e?.code ?? "")}`);
}
