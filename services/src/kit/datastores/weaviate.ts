/** Weaviate: weaviate-client v3, connected on first use (HTTP from WEAVIATE_URL + gRPC port). */
import type { WeaviateClient } from "weaviate-client";
import type { DatastoreConfig } from "./env";

export function createWeaviate(cfg: DatastoreConfig["weaviate"]) {
  const u = new URL(cfg.WEAVIATE_URL);
  const secure = u.protocol === "https:";
  const base = u.href.endsWith("/") ? u.href : `${u.href}/`;
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
      // /v1/meta proves the API key is accepted. The client's isReady() is not used: on success it
      // fires a background /meta refresh whose rejection (a wrong or revoked key) nobody handles,
      // which would crash the service on an unhandled rejection.
      await c.getMeta();
      const ready = await fetch(new URL("v1/.well-known/ready", base), { signal: AbortSignal.timeout(5000) });
      if (ready.status !== 200) throw new Error(`weaviate is not ready (HTTP ${ready.status})`);
    },
    async close() {
      if (client) await client.then((c) => c.close()).catch(() => undefined);
    },
  };
}
export type WeaviateKitClient = ReturnType<typeof createWeaviate>;

