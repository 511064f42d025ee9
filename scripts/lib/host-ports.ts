/**
 * `npm run up`'s check of the host ports a Docker stack publishes, before its builds
 * (scripts/lib/check-host-ports.sh runs it). Before, a port another program held (8443, the admin
 * ports 15432...) was found by `pulumi up`, after the image builds, as Docker's "port is already
 * allocated".
 *
 *   tsx scripts/lib/host-ports.ts <stack>
 *
 * The ports come from the stack's own configuration (Pulumi.<stack>.yaml through the program's
 * parser and stacks/host-ports.ts: no second list). Each is bound here for a moment; one that is
 * taken is looked up among Docker's containers: held by this stack's own (ai-trading-<stack>-*: a
 * second `npm run up`, a rerun after a failure) it is fine, as `pulumi up` replaces or keeps them;
 * held by another container or program it is named, with the key that moves it. A configuration
 * the parser refuses is reported the same way now, not after the builds.
 *
 * "This stack's own" is this clone's: a second clone of the repo (its own .pulumi-state) deploys the
 * same stack under the same container names, and `pulumi up` here then failed on Docker's name
 * conflict after the builds (its containers passed for ours). A container is ours when its label
 * trading.io/pulumi-state (components/runtime/docker.ts) names this clone's state, or when this
 * clone's state records its id (a container from before the label, a clone moved since); any other
 * ai-trading-<stack>-* container, running or not, holding a port or not, is named with the clone
 * that deployed it and what to do (scripts/lib/stack-containers.ts). Without a state location of
 * its own (PULUMI_BACKEND_URL unset: run outside scripts/lib/pulumi-env.sh) the check cannot tell,
 * and takes them for ours as before.
 * Exit 0: every port free or ours; 1: a port taken, another clone's container or an address this
 * host lacks; 2: a config error.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { ConfigError, CONFIG_NAMESPACE, configKeys, parseStackConfig, RawConfig, StackConfig } from "../../stacks/config";
import { dockerHostPorts, HostPort } from "../../stacks/host-ports";
import { stateLocation } from "../../stacks/state-location";
import { dockerContainers, dockerVolumesAndNetworks, foreignContainers, stateRecords, strayVolumesAndNetworks } from "./stack-containers";

const root = resolve(__dirname, "../..");
const say = (line: string) => process.stderr.write(`[up] ${line}\n`);

/** The stack's raw configuration as the program receives it: plain values as text, structured ones as JSON. */
function rawConfig(stack: string): RawConfig {
  const doc = parse(readFileSync(join(root, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> } | null;
  const raw: RawConfig = {};
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    const name = key.startsWith(`${CONFIG_NAMESPACE}:`) ? key.slice(CONFIG_NAMESPACE.length + 1) : undefined;
    if (name === undefined || !configKeys.includes(name) || value === null || value === undefined) continue;
    if (typeof value === "object" && "secure" in value) continue; // encrypted: the program judges it
    raw[name] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return raw;
}

/** Why PORT on ADDRESS cannot be bound now (EADDRINUSE, EADDRNOTAVAIL), or undefined when it can. */
function bindProblem(address: string, port: number): Promise<string | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => done(e.code === "EACCES" ? undefined : (e.code ?? e.message))); // EACCES: below 1024, Docker binds as root
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => done(undefined)));
  });
}

/** The listening process of PORT as `ss` shows it (needs the rights to see it), else "". */
function listener(port: number): string {
  try {
    const out = execFileSync("ss", ["-Htlnp", `sport = :${port}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
    const users = out.match(/users:\(\((.*)\)\)/)?.[1];
    return users ? ` (${users.replace(/"/g, "")})` : "";
  } catch {
    return "";
  }
}

function howToMove(stack: string, p: HostPort): string {
  if (p.keys[0] === "adminBindAddress") {
    return `set trading:adminBindAddress to another address of this host (pulumi config set --stack ${stack} trading:adminBindAddress <address>) or stop publishing the admin ports (pulumi config set --stack ${stack} trading:publishAdminPorts false)`;
  }
  return `move it: pulumi config set --stack ${stack} trading:${p.keys[0]} <a free port> (the key trading:${p.keys[0]} of Pulumi.${stack}.yaml)`;
}

async function main(): Promise<number> {
  const stack = process.argv[2];
  if (!stack) {
    say("usage: tsx scripts/lib/host-ports.ts <stack>");
    return 2;
  }
  let ports: HostPort[];
  let config: StackConfig;
  try {
    config = parseStackConfig(stack, rawConfig(stack));
    ports = dockerHostPorts(config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    say(`${e.message} (Pulumi.${stack}.yaml): fix it and run again`);
    return 2;
  }
  if (config.target !== "docker") return 0;
  const engine = process.env.DOCKER_HOST ?? "";
  const problems: string[] = [];
  // This stack's containers that another clone deployed, by name: pulumi up here fails on them.
  const known = dockerContainers();
  const mine = stateLocation(process.env.PULUMI_BACKEND_URL);
  const ours = mine === undefined ? undefined : stateRecords(root, process.env.PULUMI_BACKEND_URL, stack);
  const foreign = known && mine !== undefined ? foreignContainers(stack, known, mine, ours?.containers) : { names: new Set<string>(), problems: [] };
  problems.push(...foreign.problems);
  // Their volumes and network, with no container left (another clone's running stack is named above, with what to do).
  const found = foreign.problems.length === 0 && mine !== undefined ? dockerVolumesAndNetworks() : undefined;
  if (found) problems.push(...strayVolumesAndNetworks(stack, found, ours));
  if (ports.length > 0 && engine !== "" && !engine.startsWith("unix://")) {
    say(`DOCKER_HOST=${engine}: the host ports of stack ${stack} are that engine's host's, not checked here`);
    ports = [];
  }
  for (const p of ports) {
    const problem = await bindProblem(p.address, p.port);
    if (problem === undefined) continue;
    if (problem === "EADDRNOTAVAIL") {
      problems.push(`trading:adminBindAddress ${p.address} of stack ${stack} is not an address of this host (${p.owner} ${p.port} binds to it): ${howToMove(stack, p)}`);
      continue;
    }
    const holder = known?.find((c) => new RegExp(`(^|[ ,])[^ ,]*:${p.port}->`).test(c.ports));
    if (holder && foreign.names.has(holder.name)) {
      problems.push(`host port ${p.port} on ${p.address}, which stack ${stack} publishes for ${p.owner}, is held by ${holder.name}, stack ${stack}'s container of another clone (above): take that down, or ${howToMove(stack, p)}`);
      continue;
    }
    if (holder?.name.startsWith(`ai-trading-${stack}-`)) continue; // this stack's own container: pulumi up keeps or replaces it
    const who = holder ? `Docker container ${holder.name}, not one of stack ${stack}'s (docker stop ${holder.name})` : `another program${listener(p.port)}`;
    problems.push(`host port ${p.port} on ${p.address}, which stack ${stack} publishes for ${p.owner}, is taken (${problem}) by ${who}: free it, or ${howToMove(stack, p)}`);
  }
  for (const line of problems) say(`ERROR: ${line}`);
  if (problems.length > 0) say(`stopped before the builds: pulumi up would fail on ${problems.length === 1 ? "that" : "those"} after them`);
  return problems.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`ERROR: checking the host ports failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  },
);
