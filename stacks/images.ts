/**
 * The image manifest: for every component, the image a stack runs and what the workload must know
 * about that image (the user it runs as, the HTTP client it carries for health checks, which server
 * build it holds). Components take a `ContainerImage` and never ask where it came from.
 *
 * Two sets, chosen by `trading:imageSource`:
 * - `upstream`: the vendors' images, pinned to an exact version;
 * - `local`: OFFLINE STAND-INS, built on the Docker host from Debian by
 *   `scripts/images/build-images.sh` (machines without the vendors' registries, CI) and recorded
 *   with their tags in `images/versions.json`. Redis stands in for Dragonfly, Apache Kafka for
 *   Redpanda; Weaviate is the server built from the Go module proxy (scripts/weaviate/build.sh);
 *   ArangoDB and Grafana have none.
 * A per-datastore override (`trading:<name>Image`) is an upstream-style image at another reference.
 */
import * as fs from "fs";
import * as path from "path";
import type { DataComponent, ImageSource, StackConfig } from "./config";

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

/**
 * Which server build an image holds, where builds of one component are launched differently:
 * `dragonfly` (password from a secret flag file, `--flagfile`), `redis` (the official image: password from a config
 * file), `redis-env` (REDIS_PASSWORD, the Debian build), `redpanda` (`redpanda start` flags) or
 * `kafka` (Apache Kafka in KRaft mode speaking Redpanda's protocol), `prometheus-flags` (flags on
 * the command line) or `prometheus-env` (the Debian build's entrypoint reads PROMETHEUS_RETENTION).
 * Images whose launch does not vary say `standard`.
 */
export type ServerBuild = "standard" | "dragonfly" | "redis" | "redis-env" | "redpanda" | "kafka" | "prometheus-flags" | "prometheus-env";

export interface ContainerImage {
  /** Reference to pull (or the local tag). */
  ref: string;
  /**
   * The user the image's server runs as: a numeric uid (Kubernetes verifies runAsNonRoot by
   * number) and, where Docker must run it by name, the name.
   */
  user?: { uid: number; name?: string };
  /** HTTP client inside the image, for exec health checks. */
  httpClient: "curl" | "wget";
  /**
   * The entrypoint reads each of its secret variables NAME from the file NAME_FILE names (as the
   * official PostgreSQL image does, and the local builds' entrypoints): on Docker the credentials
   * are then files, not container variables (WorkloadSpec.secretEnvFiles).
   */
  secretFiles?: boolean;
  server: ServerBuild;
}

type Facts = Omit<ContainerImage, "ref">;
const upstream = (ref: string, facts: Partial<Facts> = {}): ContainerImage => ({ ref, httpClient: "wget", server: "standard", ...facts });

/** The vendors' images. Exact versions; never `latest`. Bumping one is a reviewed change. */
export const upstreamImages: Record<ImageName, ContainerImage> = {
  postgres: upstream("postgres:16.4-bookworm", { user: { uid: 999 }, secretFiles: true }),
  dragonfly: upstream("docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", { user: { uid: 999 }, server: "dragonfly" }),
  clickhouse: upstream("clickhouse/clickhouse-server:24.8.4.13", { user: { uid: 101 } }),
  weaviate: upstream("cr.weaviate.io/semitechnologies/weaviate:1.26.5", { user: { uid: 1000 } }),
  // The platform's start script (components/data/arangodb-start.ts, in place of the image's entrypoint)
  // reads ARANGO_ROOT_PASSWORD_FILE, as the vendor's entrypoint does.
  arangodb: upstream("arangodb:3.11.11", { user: { uid: 1000 }, secretFiles: true }),
  redpanda: upstream("docker.redpanda.com/redpandadata/redpanda:v24.2.7", { user: { uid: 101 }, server: "redpanda" }),
  redis: upstream("redis:7.4.1-bookworm", { user: { uid: 999 }, server: "redis" }),
  prometheus: upstream("prom/prometheus:v2.54.1", { user: { uid: 65534 }, server: "prometheus-flags" }),
  grafana: upstream("grafana/grafana:11.2.2"),
  nginx: upstream("nginx:1.27.2-bookworm", { user: { uid: 101, name: "nginx" } }),
  node: upstream("node:20.18.0-bookworm-slim"),
};

/**
 * The offline stand-ins: which local build (images/<build>/Dockerfile) serves each component and
 * what that build pins (users by name and uid, curl for checks).
 */
export const localStandIns: Partial<Record<ImageName, { build: string } & Facts>> = {
  postgres: { build: "postgres", user: { uid: 999, name: "postgres" }, httpClient: "curl", secretFiles: true, server: "standard" },
  dragonfly: { build: "redis", user: { uid: 999, name: "redis" }, httpClient: "curl", secretFiles: true, server: "redis-env" },
  redis: { build: "redis", user: { uid: 999, name: "redis" }, httpClient: "curl", secretFiles: true, server: "redis-env" },
  clickhouse: { build: "clickhouse", user: { uid: 101, name: "clickhouse" }, httpClient: "curl", secretFiles: true, server: "standard" },
  weaviate: { build: "weaviate", user: { uid: 1000, name: "weaviate" }, httpClient: "wget", secretFiles: true, server: "standard" },
  redpanda: { build: "kafka", user: { uid: 10092, name: "kafka" }, httpClient: "curl", server: "kafka" },
  prometheus: { build: "prometheus", user: { uid: 999, name: "prometheus" }, httpClient: "curl", server: "prometheus-env" },
  nginx: { build: "nginx", user: { uid: 33, name: "www-data" }, httpClient: "curl", server: "standard" },
  node: { build: "node", httpClient: "curl", server: "standard" },
};

/**
 * Where the local builds are named. `localhost` is a registry host to the Docker engine and to
 * containerd, so a local image that is missing is never fetched from Docker Hub, where a bare
 * `ai-trading/<build>` would be whatever the owner of that namespace pushed.
 */
export const LOCAL_REPOSITORY = "localhost/ai-trading";

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

/** The image of a component for a source, or undefined when the local set has no stand-in. */
export function containerImage(name: ImageName, source: ImageSource, override?: string): ContainerImage | undefined {
  if (override) return { ...upstreamImages[name], ref: override };
  if (source === "upstream") return upstreamImages[name];
  const standIn = localStandIns[name];
  if (!standIn) return undefined;
  const { build, ...facts } = standIn;
  const tag = readLocalTags()[build];
  if (!tag) throw new Error(`images/versions.json has no tag for '${build}'`);
  return { ref: `${LOCAL_REPOSITORY}/${build}:${tag}`, ...facts };
}

/**
 * Which server build runs a component for a source (an override is a vendor's image), without reading
 * images/versions.json: what the stack config needs to know which ports a stack publishes (Redpanda's
 * admin port only with Redpanda's server, not its offline stand-in Kafka). Undefined without a stand-in.
 */
export function serverBuildOf(name: ImageName, source: ImageSource, override?: string): ServerBuild | undefined {
  if (override || source === "upstream") return upstreamImages[name].server;
  return localStandIns[name]?.server;
}

/**
 * The images of one stack: `trading:imageSource` picks the set, `trading:<datastore>Image`
 * overrides one datastore's reference. Undefined where the local set has no stand-in.
 */
export function stackImages(config: Pick<StackConfig, "imageSource" | "datastores">): (name: ImageName) => ContainerImage | undefined {
  const isDatastore = (name: ImageName): name is DataComponent => name in config.datastores;
  return (name) => containerImage(name, config.imageSource, isDatastore(name) ? config.datastores[name].image : undefined);
}
