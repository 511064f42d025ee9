/** Weaviate: weaviate-client v3, connected on first use (HTTP from WEAVIATE_URL + gRPC port). */
import type { WeaviateClient } from "weaviate-client";
import type { DatastoreConfig } from "./env";

export function createWeaviate(cfg: DatastoreConfig["weaviate"]) {
  const u = new URL(cfg.WEAVIATE_URL);
  const secure = u.protocol === "https:";
  let client: Promise<WeaviateClient> | undefined;
  const get = (): Promise<WeaviateClient> => {
    if (!client) {
      const w = require("weaviate-client") as typeof import("weaviate-client");
      client = w.default.connectToCustom({
        httpHost: u.hostname,
        httpPort: u.port ? Number(u.port) : secure ? 443 : 80,
        httpPath: u.pathname === "/" ? undefined : u.pathname,
        httpSecure: secure,
        grpcHost: u.hostname,
        grpcPort: cfg.WEAVIATE_GRPC_PORT,
        grpcSecure: secure,
        authCredentials: cfg.WEAVIATE_API_KEY ? new w.ApiKey(cfg.WEAVIATE_API_KEY) : undefined,
        skipInitChecks: true,
      });
      client.catch(() => (client = undefined));
    }
    return client;
  };
  return {
    client: get,
    async ping() {
      const c = await get();
      // /v1/.well-known/ready is unauthenticated: /v1/meta also proves the API key is accepted.
      if (!(await c.isReady())) throw new Error("weaviate is not ready");
      await c.getMeta();
    },
    async close() {
      if (client) await client.then((c) => c.close()).catch(() => undefined);
    },
  };
}
export type WeaviateKitClient = ReturnType<typeof createWeaviate>;

