/** ArangoDB: a thin arangojs Database (no server runs here: unverified against a real one). */
import type { Database } from "arangojs";
import type { DatastoreConfig } from "./env";

export function createArango(cfg: DatastoreConfig["arangodb"]) {
  const { Database } = require("arangojs") as typeof import("arangojs");
  const db: Database = new Database({
    url: cfg.ARANGO_URL,
    databaseName: cfg.ARANGO_DATABASE,
    auth: { username: cfg.ARANGO_USER, password: cfg.ARANGO_PASSWORD ?? "" },
  });
  return {
    db,
    async ping() {
      await db.version();
    },
    async close() {
      db.close();
    },
  };
}
export type ArangoKitClient = ReturnType<typeof createArango>;

