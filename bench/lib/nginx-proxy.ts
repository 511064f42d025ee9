/**
 * A second floor for bench/gateway.ts: Nginx (Debian's, installed by scripts/deps/install-test-deps.sh)
 * proxying to the upstream with fixed identity headers over kept-alive connections, one worker, no
 * access log. It answers "would a proxy that is not Node reach the target on this machine": Nginx
 * does no authentication and no rate limiting here, so it is a floor, not a gateway.
 * Not a product; the platform's Nginx (components/edge) is configured elsewhere.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../tests/harness";

export interface NginxProxy {
  url: string;
  /** The master and its worker: the worker does the proxying, the master's CPU is counted with it. */
  pids: number[];
  stop(): Promise<void>;
}

const NGINX = "/usr/sbin/nginx";

export function nginxAvailable(): boolean {
  return existsSync(NGINX);
}

/** Header values are the bench's own (a UUID, fixed words): quoted, and refused if they could break out. */
function quoted(value: string): string {
  if (!/^[\w.:@-]+$/.test(value)) throw new Error(`identity header value not safe for nginx.conf: ${value}`);
  return `"${value}"`;
}

/**
 * Requests under `prefix` go to `path` (the prefix replaced: "/api/users/" and "/" send
 * /api/users/me to /me). `auth`: an authoriser's base URL. Each request then first goes to it as an auth_request subrequest
 * (kept-alive, no body), and the identity headers sent upstream are the ones it answered with, not
 * `identity`'s values.
 */
export async function startNginxProxy(upstream: string, path: string, identity: Record<string, string>, auth?: string, prefix = "/"): Promise<NginxProxy> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "bench-nginx-"));
  const { hostname, port: upstreamPort } = new URL(upstream);
  const variable = (k: string) => `$auth_${k.replace(/\W/g, "_")}`;
  const headers = Object.entries(identity)
    .map(([k, v]) => (auth ? `      auth_request_set ${variable(k)} $upstream_http_${k.replace(/\W/g, "_")};\n      proxy_set_header ${k} ${variable(k)};` : `      proxy_set_header ${k} ${quoted(v)};`))
    .join("\n");
  const authUrl = auth ? new URL(auth) : undefined;
  const authUpstream = authUrl ? `  upstream authoriser { server ${authUrl.hostname}:${authUrl.port || 80}; keepalive 128; keepalive_requests 100000000; }\n` : "";
  const authLocation = authUrl
    ? `    location = /_auth {
      internal;
      proxy_pass http://authoriser/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
`
    : "";
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`).join("\n");
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
${temp}
  upstream target { server ${hostname}:${upstreamPort || 80}; keepalive 128; }
${authUpstream}  server {
    listen 127.0.0.1:${port};
    # autocannon keeps its 32 connections for the whole run: not closed after the default 1,000 requests.
    keepalive_requests 100000000;
${authLocation}    location ${prefix} {
${auth ? "      auth_request /_auth;\n" : ""}      proxy_pass http://target${path};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
${headers}
${auth ? '      proxy_set_header Authorization "";\n      proxy_set_header X-Api-Key "";' : ""}
    }
  }
}
`,
  );
  const master: ChildProcess = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off; user root;"], { stdio: ["ignore", "ignore", "inherit"] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (master.exitCode !== null) throw new Error(`nginx exited with ${master.exitCode} (its error above)`);
    // Any answer means Nginx is listening (one asking an authoriser may answer 500 for "/").
    const ok = await fetch(url).then(() => true, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const children = readFileSync(`/proc/${master.pid}/task/${master.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  return {
    url,
    pids: [master.pid!, ...children],
    async stop() {
      if (master.exitCode === null) {
        const exited = new Promise<void>((r) => master.once("exit", () => r()));
        master.kill("SIGQUIT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
