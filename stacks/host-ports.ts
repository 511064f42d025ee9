/**
 * The host ports a Docker stack publishes, from its parsed configuration: what `npm run up`
 * checks before its builds (scripts/lib/host-ports.ts), so that a port another program holds is
 * named at once rather than by `pulumi up`'s "port is already allocated" after minutes of builds.
 * The same rules as the components: the edge (Nginx) publishes httpPort/httpsPort on
 * DOCKER_EDGE_ADDRESS when an entry point is deployed; with publishAdminPorts each enabled
 * datastore (Redpanda only as the upstream server, not its offline stand-in), Prometheus and Grafana
 * publish their dockerAdminHostPorts port on adminBindAddress.
 * tests/unit/program.test.ts compares the list with the ports the program publishes.
 */
import { entryPoint } from "../catalog";
import { DOCKER_EDGE_ADDRESS, publishedAdminPorts, StackConfig } from "./config";

export interface HostPort {
  port: number;
  address: string;
  /** What publishes it: a datastore, prometheus, grafana, or the edge. */
  owner: string;
  /** The config keys that move it: the port's own key, or the keys that bind or drop the admin ports. */
  keys: string[];
}

export function dockerHostPorts(config: StackConfig): HostPort[] {
  if (config.target !== "docker") return [];
  const ports: HostPort[] = [];
  if (entryPoint(config.services)) {
    ports.push({ port: config.docker.httpPort, address: DOCKER_EDGE_ADDRESS, owner: "the edge (Nginx, HTTP)", keys: ["httpPort"] });
    ports.push({ port: config.docker.httpsPort, address: DOCKER_EDGE_ADDRESS, owner: "the edge (Nginx, HTTPS)", keys: ["httpsPort"] });
  }
  if (config.docker.publishAdminPorts) {
    const admin = (owner: string, port: number) =>
      ports.push({ port, address: config.docker.adminBindAddress, owner: `${owner} (admin port)`, keys: ["adminBindAddress", "publishAdminPorts"] });
    // The parser's rule (stacks/config.ts publishedAdminPorts), which keeps the edge off these ports.
    for (const { owner, port } of publishedAdminPorts(config)) admin(owner, port);
  }
  return ports;
}
