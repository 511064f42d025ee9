/**
 * How the kit sends ClickHouse `{name:Type}` parameters. Against a server of 20.x or later it
 * sends them as real query parameters (param_<name>, separate from the SQL); against Debian's
 * 18.16 (the harness server, and the local image) it binds them client-side. The modern path is
 * checked here against a fake ClickHouse HTTP endpoint (no modern server runs on this machine):
 * it proves what the kit puts on the wire, not how a real 24.8 server answers.
 */
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createClickHouse } from "../../services/src/kit/datastores";
import { useServers } from "../harness/shared";

const srv = useServers("clickhouse");

interface Seen {
  url: URL;
  sql: string;
}

function fakeClickHouse(version: string) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const sql = (url.searchParams.get("query") ?? "") + body;
      seen.push({ url, sql });
      res.setHeader("content-type", "application/x-ndjson");
      res.end(/version\(\)/.test(sql) ? `{"v":"${version}"}\n` : `{"n":1}\n`);
    });
  });
  return new Promise<{ url: string; seen: Seen[]; close: () => void }>((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() }),
    ),
  );
}

describe("ClickHouse parameter binding", () => {
  const closers: (() => void)[] = [];
  afterAll(() => closers.forEach((c) => c()));

  it("sends server-side query parameters to a modern server, never the value inside the SQL", async () => {
    const fake = await fakeClickHouse("24.8.4.13");
    closers.push(fake.close);
    const ch = createClickHouse({ CLICKHOUSE_URL: fake.url, CLICKHOUSE_USER: "u", CLICKHOUSE_PASSWORD: "p", CLICKHOUSE_DATABASE: "db" });
    const hostile = "BTC'; DROP TABLE bars; --";
    await ch.query("SELECT count() AS n FROM bars WHERE symbol = {symbol:String}", { symbol: hostile });
    expect(await ch.paramBinding()).toBe("server");
    const q = fake.seen.find((s) => s.sql.includes("FROM bars"))!;
    expect(q.sql).toContain("{symbol:String}");
    expect(q.sql).not.toContain("DROP TABLE");
    // The value travels as a parameter, escaped in ClickHouse's parameter format (quotes escaped).
    expect(q.url.searchParams.get("param_symbol")).toBe("BTC\\'; DROP TABLE bars; --");
    await ch.close();
  });

  it("binds client-side, type-checked, against Debian's ClickHouse 18.16", async () => {
    const ch = createClickHouse(srv.env as never);
    expect(await ch.paramBinding()).toBe("client");
    const rows = await ch.query<{ s: string }>("SELECT {s:String} AS s", { s: "it's" });
    expect(rows).toEqual([{ s: "it's" }]);
    await expect(ch.query("SELECT {n:UInt32} AS n", { n: "1 OR 1=1" })).rejects.toThrow();
    await ch.close();
  });
});

describe("ClickHouse insert", () => {
  it("names the rows' fields as its columns, so an omitted column takes its DEFAULT (18.16 gave it its type's zero: inserted_at 1970)", async () => {
    const ch = createClickHouse(srv.env as never);
    const table = `kit_insert_${Date.now()}`;
    await ch.command(`CREATE TABLE ${table} (id String, note String DEFAULT 'none', inserted_at DateTime DEFAULT now()) ENGINE = Memory`);
    try {
      // The second row carries a field the first lacks: the columns are every field any row has.
      await ch.insert(table, [{ id: "a" }, { id: "b", note: "given" }]);
      const rows = await ch.query<{ id: string; note: string; year: number }>(`SELECT id, note, toYear(inserted_at) AS year FROM ${table} ORDER BY id`);
      const thisYear = new Date().getUTCFullYear();
      expect(rows.map((r) => ({ ...r, year: Number(r.year) }))).toEqual([
        { id: "a", note: "none", year: thisYear },
        { id: "b", note: "given", year: thisYear },
      ]);
    } finally {
      await ch.command(`DROP TABLE IF EXISTS ${table}`);
      await ch.close();
    }
  });
  it("keeps the rows' order across field sets, and a field whose value is undefined is left out (its DEFAULT), not named", async () => {
    const ch = createClickHouse(srv.env as never);
    const table = `kit_insert_order_${Date.now()}`;
    // Without a version column ReplacingMergeTree keeps the row inserted last of a key.
    await ch.command(`CREATE TABLE ${table} (id String, v String, note String DEFAULT 'none') ENGINE = ReplacingMergeTree ORDER BY id`);
    try {
      await ch.insert(table, [{ id: "k", v: "1" }, { id: "k", v: "2", note: "given" }, { id: "k", v: "3" }, { id: "u", v: "1", note: undefined }]);
      const rows = await ch.query<{ id: string; v: string; note: string }>(`SELECT id, v, note FROM ${table} FINAL ORDER BY id`);
      expect(rows).toEqual([
        { id: "k", v: "3", note: "none" },
        { id: "u", v: "1", note: "none" },
      ]);
    } finally {
      await ch.command(`DROP TABLE IF EXISTS ${table}`);
      await ch.close();
    }
  });
});

