/**
 * The edge's generated Nginx configuration (components/edge/nginx.ts) run by the real nginx on free
 * loopback ports, with a throwaway certificate: for tests of what the edge itself answers and logs.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { catalog } from "../../catalog";
import { EDGE_ERRORS_PORT, EDGE_ERRORS_STATUS_PORT, errorPagesConfig } from "../../components/edge/error-pages";
import { freePort } from "../harness/proc";
import { NGINX_HTTP_PORT, NGINX_HTTPS_PORT, nginxConfig, publicRoutes, TLS_DIR } from "../../components/edge/nginx";

export interface EdgeNginx {
  httpPort: number;
  httpsPort: number;
  /** The access log's path. */
  log: string;
  stop(): Promise<void>;
}

/**
 * A free loopback port for nginx to bind later: the harness's (reserved machine-wide, below the
 * ephemeral range). Before, a port from listen(0), closed again, could be taken before nginx bound
 * it (an outgoing connection, another run's listen(0)).
 */
export const freeLoopbackPort = freePort;

/** A throwaway self-signed EC certificate for localhost in `dir`/tls (tls.crt, tls.key), as the edge reads them. */
export function throwawayTls(dir: string): void {
  fs.mkdirSync(path.join(dir, "tls"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-keyout", path.join(dir, "tls", "tls.key"), "-out", path.join(dir, "tls", "tls.crt"),
  ], { stdio: "ignore" });
}

/** Starts nginx with the edge's configuration for a gateway at 127.0.0.1:`gatewayPort`; resolves once it listens. */
export async function startEdgeNginx(gatewayPort: number): Promise<EdgeNginx> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trading-edge-"));
  throwawayTls(dir);
  const [httpPort, httpsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const log = path.join(dir, "access.log");
  const conf = nginxConfig({ services: catalog, gateway: { host: "127.0.0.1", port: gatewayPort }, publicHttpsPort: 8443, serverName: "localhost" })
    .replaceAll(TLS_DIR, path.join(dir, "tls"))
    .replace(`listen ${NGINX_HTTP_PORT} `, `listen 127.0.0.1:${httpPort} `)
    .replace(`listen ${NGINX_HTTPS_PORT} `, `listen 127.0.0.1:${httpsPort} `)
    .replace("pid /tmp/nginx.pid;", `pid ${path.join(dir, "nginx.pid")};`)
    .replace("resolver 127.0.0.11 valid=10s ipv6=off;", "")
    .replace(/access_log \/dev\/stdout/, `access_log ${log}`);
  const stop = await runNginx(dir, conf, httpsPort);
  return { httpPort, httpsPort, log, stop };
}

/** Runs nginx with `conf` (written into `dir`, removed on stop) until it listens on `port`: its stop. */
async function runNginx(dir: string, conf: string, port: number): Promise<() => Promise<void>> {
  fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
  const nginx = spawn("nginx", ["-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  nginx.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const stop = async () => {
    if (nginx.exitCode === null) {
      nginx.kill("SIGQUIT");
      await new Promise((res) => nginx.once("exit", res));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (up) break;
    if (i > 300 || nginx.exitCode !== null) {
      await stop();
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return stop;
}

/**
 * Starts nginx with edge-errors' configuration (components/edge/error-pages.ts, the catalog's public
 * routes, `host` as the platform's: by default the loopback address the tests ask) on free loopback
 * ports: its first port (ingress-nginx, Traefik's catch-all), its status port (Traefik's errors
 * middleware) and stop.
 */
export async function startErrorPagesNginx(host = "127.0.0.1"): Promise<{ port: number; statusPort: number; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trading-edge-errors-"));
  const [port, statusPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const conf = errorPagesConfig(publicRoutes(catalog), host)
    .replace(`listen ${EDGE_ERRORS_PORT};`, `listen 127.0.0.1:${port};`)
    .replace(`listen ${EDGE_ERRORS_STATUS_PORT};`, `listen 127.0.0.1:${statusPort};`)
    .replaceAll(" /tmp/", ` ${dir}/`);
  return { port, statusPort, stop: await runNginx(dir, conf, port) };
}
