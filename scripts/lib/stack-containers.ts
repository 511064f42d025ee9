/**
 * Whose are a Docker stack's containers (ai-trading-<stack>-*): this clone's, or another clone's of
 * the repo that deployed the same stack from its own state? `npm run up`'s check before the builds
 * (scripts/lib/host-ports.ts) names the other clone's, which `pulumi up` here would fail on (Docker's
 * "container name ... is already in use") after the builds.
 *
 * A container is this clone's when its label trading.io/pulumi-state (set by the Docker runtime,
 * components/runtime/docker.ts) is this clone's state location, or when this clone's state records
 * its id (containers deployed before the label existed; a clone moved since, whose label names its
 * old path).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parse } from "yaml";
import { LABEL_PULUMI_STATE } from "../../catalog/labels";
import { cloneOf } from "../../stacks/state-location";

export interface DockerContainer {
  name: string;
  /** Published ports as `docker ps` shows them ("127.0.0.1:8443->443/tcp, ..."); empty for a stopped one. */
  ports: string;
  /** The full id. */
  id: string;
  state: string;
  /** Its trading.io/pulumi-state label, "" without one. */
  stateLabel: string;
}

/** Every container of the engine (running or not); undefined when docker does not answer. */
export function dockerContainers(): DockerContainer[] | undefined {
  try {
    const format = `{{.Names}}\t{{.Ports}}\t{{.ID}}\t{{.State}}\t{{.Label "${LABEL_PULUMI_STATE}"}}`;
    const out = execFileSync("docker", ["ps", "--all", "--no-trunc", "--format", format], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 });
    return out
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [name, ports = "", id = "", state = "", stateLabel = ""] = line.split("\t");
        return { name, ports, id, state, stateLabel: stateLabel === "<no value>" ? "" : stateLabel };
      });
  } catch {
    return undefined;
  }
}

/** What this clone's state records of a Docker stack's engine objects. */
export interface StateRecords {
  /** The container ids. */
  containers: Set<string>;
  /** The volume and network names (a network's id is the engine's, its name an output). */
  volumes: Set<string>;
  networks: Set<string>;
}

interface StateResource {
  type?: string;
  id?: string;
  outputs?: { name?: string };
}

/**
 * The containers, volumes and networks this clone's state records for STACK (its file backend's
 * checkpoint, read once), empty sets when it holds no such stack yet, undefined when it cannot be read
 * (another backend, a file that does not parse).
 */
export function stateRecords(root: string, backendUrl: string | undefined, stack: string): StateRecords | undefined {
  const resources = stateResources(root, backendUrl, stack);
  if (!resources) return undefined;
  const names = (type: string) => new Set(resources.filter((r) => r.type === type).map((r) => r.outputs?.name ?? r.id).filter((n): n is string => typeof n === "string"));
  return {
    containers: new Set(resources.filter((r) => r.type === "docker:index/container:Container" && r.id).map((r) => r.id!)),
    volumes: names("docker:index/volume:Volume"),
    networks: names("docker:index/network:Network"),
  };
}

/** The resources of STACK in this clone's file backend's checkpoint; [] without the stack, undefined when unreadable. */
function stateResources(root: string, backendUrl: string | undefined, stack: string): StateResource[] | undefined {
  if (!backendUrl?.startsWith("file://")) return undefined;
  const stacks = join(backendUrl.slice("file://".length), ".pulumi", "stacks");
  let project: string | undefined;
  try {
    project = (parse(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as { name?: string } | null)?.name;
  } catch {
    project = undefined;
  }
  // Pulumi's project-scoped layout (.pulumi/stacks/<project>/<stack>.json), else the legacy one; gzipped with PULUMI_SELF_MANAGED_STATE_GZIP.
  let projects: string[] = [];
  try {
    projects = project ? [project] : readdirSync(stacks, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    projects = [];
  }
  const files = [...projects.map((p) => join(stacks, p, stack)), join(stacks, stack)].flatMap((f) => [`${f}.json`, `${f}.json.gz`]);
  const file = files.find((f) => existsSync(f));
  if (!file) return [];
  try {
    const bytes = readFileSync(file);
    const doc = JSON.parse((file.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8")) as { checkpoint?: { latest?: { resources?: StateResource[] } } };
    return doc.checkpoint?.latest?.resources ?? [];
  } catch {
    return undefined;
  }
}

/** The way out that keeps both deployments: this clone under another stack name. */
const otherStack = (stack: string) => `run this clone as another stack (cp Pulumi.${stack}.yaml Pulumi.<name>.yaml, move its ports there, npm run up -- <name>)`;

/** The names of the engine's volumes and networks; undefined when docker does not answer. */
export function dockerVolumesAndNetworks(): { volumes: string[]; networks: string[] } | undefined {
  try {
    const names = (what: string) =>
      execFileSync("docker", [what, "ls", "--format", "{{.Name}}"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 }).split("\n").filter(Boolean);
    return { volumes: names("volume"), networks: names("network") };
  } catch {
    return undefined;
  }
}

/**
 * STACK's volumes and network (ai-trading-<stack>-*) that this clone's state does not record
 * (OURS; undefined when unreadable: nothing is said): left by a deployment whose containers were
 * removed by hand (docker rm -f, not npm run down), another clone's or this one's before its state
 * was lost. pulumi up here refuses them after the builds (the Docker plugin will not take over a
 * volume, which holds that deployment's data and passwords; the engine will not make a second
 * network of a name): one line saying so, before the builds. Session 46.
 */
export function strayVolumesAndNetworks(stack: string, found: { volumes: string[]; networks: string[] }, ours: Pick<StateRecords, "volumes" | "networks"> | undefined): string[] {
  if (ours === undefined) return [];
  const prefix = `ai-trading-${stack}-`;
  const volumes = found.volumes.filter((v) => v.startsWith(prefix) && !ours.volumes.has(v)).sort();
  const networks = found.networks.filter((n) => n.startsWith(prefix) && !ours.networks.has(n)).sort();
  if (volumes.length + networks.length === 0) return [];
  const named = [
    volumes.length > 0 ? `volume${volumes.length === 1 ? "" : "s"} ${volumes.join(", ")}` : "",
    networks.length > 0 ? `network${networks.length === 1 ? "" : "s"} ${networks.join(", ")}` : "",
  ].filter(Boolean).join(" and ");
  const remove = [volumes.length > 0 ? `docker volume rm ${volumes.join(" ")}` : "", networks.length > 0 ? `docker network rm ${networks.join(" ")}` : ""].filter(Boolean).join("; ");
  return [
    `Docker ${named} of stack ${stack} ${volumes.length + networks.length === 1 ? "is" : "are"} not in this clone's state: a deployment whose containers were removed by hand (docker rm -f, not npm run down) left them, ` +
      `another clone's or this one's before its state was lost, and pulumi up here would refuse them (a volume holds that deployment's data, written with its passwords). ` +
      `Either take that stack down in the clone that deployed it (npm run down there), or, when their data is not needed, remove them (${remove}), ` +
      `or ${otherStack(stack)}`,
  ];
}

/**
 * STACK's containers among KNOWN that are not this clone's (its state location MINE, the ids its
 * state records, undefined when unreadable: a container without the label is then taken for ours),
 * and one line for each clone (or state) they came from, saying what to do.
 */
export function foreignContainers(stack: string, known: DockerContainer[], mine: string, ours: Set<string> | undefined): { names: Set<string>; problems: string[] } {
  const prefix = `ai-trading-${stack}-`;
  const byOwner = new Map<string, DockerContainer[]>();
  for (const c of known) {
    if (!c.name.startsWith(prefix)) continue;
    if (c.stateLabel === mine || (c.id !== "" && ours?.has(c.id))) continue;
    if (c.stateLabel === "" && ours === undefined) continue; // cannot tell: as before, ours
    byOwner.set(c.stateLabel, [...(byOwner.get(c.stateLabel) ?? []), c]);
  }
  const problems: string[] = [];
  const names = new Set<string>();
  const here = cloneOf(mine);
  for (const [owner, containers] of [...byOwner.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    containers.forEach((c) => names.add(c.name));
    const list = containers.map((c) => c.name).sort();
    const shown = `${list.slice(0, 5).join(", ")}${list.length > 5 ? ` and ${list.length - 5} more` : ""}`;
    const them = `Docker container${list.length === 1 ? "" : "s"} ${shown} of stack ${stack}`;
    const ownState = `this clone's state (${mine}${here ? "" : ", PULUMI_BACKEND_URL"})`;
    if (owner !== "") {
      const clone = cloneOf(owner);
      const where = clone ? `the clone at ${clone}` : `the state ${owner}`;
      const down = clone ? `take that stack down there (cd '${clone}' && npm run down${stack === "dev" ? "" : ` -- ${stack}`})` : `take that stack down from that state (pulumi destroy --stack ${stack} with PULUMI_BACKEND_URL=${owner})`;
      problems.push(
        `${them} ${list.length === 1 ? "was" : "were"} deployed by ${where}, not from ${ownState}: pulumi up here would fail on ${list.length === 1 ? "its name" : "their names"} (Docker's name conflict). Either ${down}, or ${otherStack(stack)}`,
      );
    } else {
      problems.push(
        `${them} ${list.length === 1 ? "is" : "are"} not in ${ownState} and carr${list.length === 1 ? "ies" : "y"} no ${LABEL_PULUMI_STATE} label: another clone of the repo deployed ${list.length === 1 ? "it" : "them"} (before its containers were labelled), or this clone's state was lost, and pulumi up here would fail on ${list.length === 1 ? "its name" : "their names"}. Either take that stack down in the clone that deployed it (npm run down there: its volumes go too, which a deploy here refuses to take over with their old data and passwords), or, when no clone has it any more, remove the stack's containers, network and volumes by hand (docker rm -f ${list.join(" ")}; docker network rm ai-trading-${stack}-net; docker volume ls --filter name=ai-trading-${stack}-), or ${otherStack(stack)}`,
      );
    }
  }
  return { names, problems };
}
