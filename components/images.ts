/**
 * Image references. `upstream` images are the vendors' own, pinned to an exact version; `local`
 * images are built on the Docker host from Debian by `scripts/images/build-images.sh` (offline
 * machines, CI) and recorded with their tags in `images/versions.json`.
 */
import * as fs from "fs";
import * as path from "path";

export type ImageName =
  | "postgres"
  | "dragonfly"
  | "clickhouse"
  | "weaviate"
  | "arangodb"
  | "redpanda"
  | "redis"
  | "prometheus"
  | "grafana"
  | "nginx"
  | "node";

/** Exact versions; never `latest`. Bumping one is a reviewed change. */
export const upstreamImages: Record<ImageName, string> = {
  postgres: "postgres:16.4-bookworm",
  dragonfly: "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2",
  clickhouse: "clickhouse/clickhouse-server:24.8.4.13",
  weaviate: "cr.weaviate.io/semitechnologies/weaviate:1.26.5",
  arangodb: "arangodb:3.11.11",
  redpanda: "docker.redpanda.com/redpandadata/redpanda:v24.2.7",
  redis: "redis:7.4.1-bookworm",
  prometheus: "prom/prometheus:v2.54.1",
  grafana: "grafana/grafana:11.2.2",
  nginx: "nginx:1.27.2-bookworm",
  node: "node:20.18.0-bookworm-slim",
};

/**
 * Which local image stands in for each component. Redis speaks Dragonfly's protocol and Apache
 * Kafka speaks Redpanda's; Weaviate, ArangoDB and Grafana have no offline build.
 */
export const localStandIns: Partial<Record<ImageName, string>> = {
  postgres: "postgres",
  dragonfly: "redis",
  redis: "redis",
  clickhouse: "clickhouse",
  redpanda: "kafka",
  prometheus: "prometheus",
  nginx: "nginx",
  node: "node",
};

const versionsFile = path.join(__dirname, "..", "images", "versions.json");

let localTags: Record<string, string> | undefined;
function readLocalTags(): Record<string, string> {
  if (!localTags) {
    if (!fs.existsSync(versionsFile)) {
      throw new Error(`${versionsFile} is missing: run scripts/images/build-images.sh to build the local images`);
    }
    localTags = JSON.parse(fs.readFileSync(versionsFile, "utf8")) as Record<string, string>;
  }
  return localTags;
}

/** Reference of an image for a source, or undefined when the local set has no stand-in. */
export function imageRef(name: ImageName, source: "local" | "upstream", override?: string): string | undefined {
  if (override) return override;
  if (source === "upstream") return upstreamImages[name];
  const standIn = localStandIns[name];
  if (!standIn) return undefined;
  const tag = readLocalTags()[standIn];
  if (!tag) throw new Error(`images/versions.json has no tag for '${standIn}'`);
  return `ai-trading/${standIn}:${tag}`;
}
